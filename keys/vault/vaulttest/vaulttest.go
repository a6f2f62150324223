// Package vaulttest starts real Vault servers for tests — a dev server (in memory, unsealed, root
// token "root") or one with file storage that survives a restart — on a free 127.0.0.1 port, from the binary BROKER_TEST_VAULT_BIN names (scripts/test.sh
// builds it with scripts/vault-dev.sh), killed when the test ends. Without BROKER_TEST_VAULT_BIN
// the test is skipped, or failed when CI is set.
package vaulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/sloworks/broker/internal/syncbuf"
)

// Server is a running Vault server: a dev server (Start) or one with file storage that keeps its
// keys across a restart (StartPersistent).
type Server struct {
	Addr string

	bin    string
	argv   []string // the server's arguments, to start it again
	home   string
	root   string // the root token
	unseal string // the unseal key, when known from init (else read from the dev banner)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncbuf.Buffer

	audit string // the audit log (EnableAudit)
}

// RootToken is the dev server's root token.
const RootToken = "root"

// binary is the Vault binary the tests use.
func binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("BROKER_TEST_VAULT_BIN")
	if bin == "" {
		const msg = "BROKER_TEST_VAULT_BIN is not set; build Vault and run: " +
			"BROKER_TEST_VAULT_BIN=$(bash scripts/vault-dev.sh bin) go test ./keys/vault/ (or bash scripts/test.sh)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// Start starts a dev server for the test: in memory, unsealed, root token RootToken.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binary(t)
	var last string
	for range 5 { // a port taken between the probe and Vault's bind: try another
		addr := fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
		v := &Server{Addr: "http://" + addr, bin: bin, home: t.TempDir(), root: RootToken,
			argv: []string{"server", "-dev", "-dev-root-token-id=" + RootToken, "-dev-no-store-token", "-dev-listen-address=" + addr}}
		err := v.launch(t, v.healthy)
		if err == nil {
			v.Client(t, RootToken) // fail early if the API is not usable
			return v
		}
		last = err.Error()
	}
	t.Fatalf("vault dev server did not start: %s", last)
	return nil
}

// StartPersistent starts a server with file storage in a temporary directory, initialised with one
// unseal key, and unsealed: unlike a dev server it keeps its keys across Stop and Restart, as a
// production Vault does.
func StartPersistent(t testing.TB) *Server {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	var last string
	for range 5 {
		port := freePortPair(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cfg := fmt.Sprintf(`storage "file" { path = %q }
listener "tcp" {
  address     = %q
  tls_disable = true
}
disable_mlock = true
api_addr      = "http://%s"
cluster_addr  = "http://127.0.0.1:%d"
`, filepath.Join(dir, "data"), addr, addr, port+1)
		cfgPath := filepath.Join(dir, "vault.hcl")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		v := &Server{Addr: "http://" + addr, bin: bin, home: dir, argv: []string{"server", "-config=" + cfgPath}}
		if err := v.launch(t, v.answers); err != nil {
			last = err.Error()
			continue
		}
		init, err := v.Client(t, "").Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
		if err != nil {
			t.Fatalf("vault operator init: %v", err)
		}
		v.root, v.unseal = init.RootToken, init.Keys[0]
		v.Unseal(t)
		return v
	}
	t.Fatalf("vault server did not start: %s", last)
	return nil
}

// launch starts the server process and waits until ready says so; the process is killed when
// the test ends.
func (v *Server) launch(t testing.TB, ready func() bool) error {
	out := &syncbuf.Buffer{}
	cmd := exec.Command(v.bin, v.argv...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = []string{"HOME=" + v.home, "PATH=" + os.Getenv("PATH")} // no VAULT_* from the caller
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vault: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cmd.Process.Kill()
		<-done
	}
	v.mu.Lock()
	v.cmd, v.done, v.out = cmd, done, out
	v.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for !ready() {
		select {
		case <-done:
			return fmt.Errorf("vault exited:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("vault not ready after 30s:\n%s", out.String())
		}
	}
	t.Cleanup(stop)
	return nil
}

// Restart starts a stopped persistent server again, on the same address, and unseals it.
func (v *Server) Restart(t testing.TB) {
	t.Helper()
	if v.unseal == "" {
		t.Fatal("vaulttest: Restart of a dev server (its keys were in memory); use StartPersistent")
	}
	if err := v.launch(t, v.answers); err != nil {
		t.Fatalf("restart vault: %v", err)
	}
	v.Unseal(t)
}

// answers reports whether the server answers HTTP at all (initialised or not, sealed or not).
func (v *Server) answers() bool { return v.healthStatus() != 0 }

// healthy reports whether Vault answers as initialized, unsealed and active (200).
func (v *Server) healthy() bool { return v.healthStatus() == http.StatusOK }

// healthStatus is the status of /v1/sys/health, 0 when the server does not answer.
func (v *Server) healthStatus() int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(v.Addr + "/v1/sys/health")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// freePortPair finds a port P with P+1 also free: Vault dev binds P+1 for clustering.
func freePortPair(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port
		}
	}
	t.Fatal("no free pair of ports")
	return 0
}

// Client returns an API client for the server with the token; the caller's VAULT_* settings do
// not apply.
func (v *Server) Client(t testing.TB, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// Root is a root client, with Transit enabled at "transit" on the first call.
func (v *Server) Root(t testing.TB) *api.Client {
	t.Helper()
	c := v.Client(t, v.root)
	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mounts["transit/"]; !ok {
		if err := c.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
			t.Fatalf("enable transit: %v", err)
		}
	}
	return c
}

var unsealRE = regexp.MustCompile(`(?m)^Unseal Key: (\S+)$`)

// unsealKey is the server's unseal key: from init, or from a dev server's banner.
func (v *Server) unsealKey(t testing.TB) string {
	t.Helper()
	if v.unseal != "" {
		return v.unseal
	}
	for range 100 {
		if m := unsealRE.FindStringSubmatch(v.out.String()); m != nil {
			return m[1]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no unseal key in vault's output:\n%s", v.out.String())
	return ""
}

// Seal seals the server.
func (v *Server) Seal(t testing.TB) {
	t.Helper()
	if err := v.Client(t, v.root).Sys().Seal(); err != nil {
		t.Fatalf("seal: %v", err)
	}
}

// Unseal unseals the server and waits until it is active.
func (v *Server) Unseal(t testing.TB) {
	t.Helper()
	st, err := v.Client(t, v.root).Sys().Unseal(v.unsealKey(t))
	if err != nil {
		t.Fatalf("unseal: %v", err)
	}
	if st.Sealed {
		t.Fatal("still sealed after the unseal key")
	}
	// Unsealed is not yet active: wait until it serves requests again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if v.healthy() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("vault not active 30s after unseal")
}

// Stop kills the server now (the cleanup then finds it gone); a persistent server can Restart.
func (v *Server) Stop(t testing.TB) {
	t.Helper()
	v.mu.Lock()
	cmd, done := v.cmd, v.done
	v.mu.Unlock()
	cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("vault did not exit 10s after kill")
	}
}

// BrokerPolicy is the least-privilege policy docs/keys.md gives operators
// (keys/vault/testdata/broker-policy.hcl).
func BrokerPolicy(t testing.TB) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("vaulttest: cannot locate its own source")
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "testdata", "broker-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BrokerToken enables Transit and returns a token with the broker's policy only (and Vault's
// default policy).
func (v *Server) BrokerToken(t testing.TB) string {
	t.Helper()
	return BrokerTokenFrom(t, v.Root(t))
}

// BrokerTokenFrom writes the broker's policy with root and returns a token with that policy only
// (and Vault's default policy).
func BrokerTokenFrom(t testing.TB, root *api.Client) string {
	t.Helper()
	if err := root.Sys().PutPolicy("broker", BrokerPolicy(t)); err != nil {
		t.Fatal(err)
	}
	sec, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"broker"}})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Auth.ClientToken
}

// EnableAudit turns on Vault's file audit device, writing to path, so a test can read which
// keys the broker signed with (Signs).
func (v *Server) EnableAudit(t testing.TB, path string) {
	t.Helper()
	err := v.Client(t, v.root).Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{
		// log_raw: request data in clear (the hash algorithm is what a test reads), test only.
		Type: "file", Options: map[string]string{"file_path": path, "log_raw": "true"},
	})
	if err != nil {
		t.Fatalf("enable the audit device: %v", err)
	}
	v.audit = path
}

// Sign is one Transit sign request from the audit log.
type Sign struct {
	Key           string // the Transit key's name
	HashAlgorithm string // as requested: sha1, sha2-256, ...
	KeyVersion    int    // the key_version requested (0: none, Transit's latest)
	OK            bool   // answered without an error
}

// Signs returns the Transit sign requests in the audit log so far (EnableAudit first), in order,
// each once, as answered.
func (v *Server) Signs(t testing.TB) []Sign {
	t.Helper()
	if v.audit == "" {
		t.Fatal("vaulttest: Signs without EnableAudit")
	}
	b, err := os.ReadFile(v.audit)
	if err != nil {
		t.Fatal(err)
	}
	var out []Sign
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e struct {
			Type    string `json:"type"`
			Error   string `json:"error"`
			Request struct {
				Path string         `json:"path"`
				Data map[string]any `json:"data"`
			} `json:"request"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit log line %q: %v", line, err)
		}
		if e.Type != "response" {
			continue
		}
		_, rest, ok := strings.Cut(e.Request.Path, "/sign/")
		if !ok {
			continue
		}
		key, _, _ := strings.Cut(rest, "/")
		alg, _ := e.Request.Data["hash_algorithm"].(string)
		out = append(out, Sign{Key: key, HashAlgorithm: alg, KeyVersion: intValue(e.Request.Data["key_version"]), OK: e.Error == ""})
	}
	return out
}

// intValue reads an integer request parameter from the audit log's JSON (a number, or a string
// when the client sent one); 0 when absent or not an integer.
func intValue(v any) int {
	switch v := v.(type) {
	case float64:
		return int(v)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	}
	return 0
}
