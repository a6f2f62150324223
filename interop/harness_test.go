package interop

// Test harness: builds the broker, runs it and real third-party SAML peers (SimpleSAMLphp,
// pysaml2, Apache + mod_auth_mellon; scripts under peers/) on free 127.0.0.1 ports, configures
// the broker through its admin API, and drives a headless browser (peers/flows/browse.py).
//
// Every process runs in its own process group and is killed (group-wide) in t.Cleanup, also
// when the test fails. On failure the logs of the broker and of the peers are printed.
//
// Environment:
//   CI=true          missing prerequisites fail the tests instead of skipping them
//   INTEROP_KEEP=1   keep the state directory (configs, logs, captured messages) and print its path
//   BROKER_TEST_VAULT_BIN  the Vault binary for the tests whose broker keeps its keys in Vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sloworks/broker/keys/vault/vaulttest"
)

const (
	pythonBin  = "/usr/bin/python3" // Debian's python: the one with python3-pysaml2 & co
	sspWWW     = "/usr/share/simplesamlphp/www"
	tenantSlug = "acme"
)

// brokerBinDir is created by TestMain; the broker is built into it once per test binary run.
var brokerBinDir string

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// brokerBinary builds github.com/sloworks/broker/cmd/broker once and returns its path.
func brokerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go toolchain not on PATH: %w", err)
			return
		}
		out := filepath.Join(brokerBinDir, "broker")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/sloworks/broker/cmd/broker")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/broker: %v\n%s", err, b)
			return
		}
		buildPath = out
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// requirePeers skips (or, with CI=true, fails) the test when a tool the peers need is missing.
func requirePeers(t *testing.T) {
	t.Helper()
	var missing []string // "what (Debian package)"
	for _, b := range []struct{ bin, pkg string }{
		{"php", "php-cli"}, {"xmlsec1", "xmlsec1"}, {"openssl", "openssl"}, {"curl", "curl"}, {"flock", "util-linux"},
	} {
		if _, err := exec.LookPath(b.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", b.bin, b.pkg))
		}
	}
	if st, err := os.Stat(sspWWW); err != nil || !st.IsDir() {
		missing = append(missing, "SimpleSAMLphp in "+sspWWW+" (simplesamlphp)")
	}
	if _, err := exec.LookPath("php"); err == nil {
		out, err := exec.Command("php", "-r",
			`foreach (['dom','mbstring','openssl','pdo_sqlite'] as $e) if (!extension_loaded($e)) echo "$e ";`).Output()
		if err != nil {
			missing = append(missing, fmt.Sprintf("a working php (%v)", err))
		} else if s := strings.TrimSpace(string(out)); s != "" {
			missing = append(missing, "php extensions "+s+" (php-xml php-mbstring php-sqlite3)")
		}
	}
	if _, err := os.Stat(pythonBin); err != nil {
		missing = append(missing, pythonBin+" (python3)")
	} else if out, err := exec.Command(pythonBin, "-c", "import saml2, requests, defusedxml").CombinedOutput(); err != nil {
		missing = append(missing, fmt.Sprintf("python modules saml2/requests/defusedxml for %s (python3-pysaml2 python3-requests python3-defusedxml): %s",
			pythonBin, lastLine(string(out))))
	}
	if len(missing) == 0 {
		return
	}
	msg := "interop prerequisites missing: " + strings.Join(missing, "; ") +
		"\ninstall them with interop/install.sh (Debian 12, as root or with sudo)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// requireMellon skips (or, with CI=true, fails) the test when Apache or mod_auth_mellon is missing.
func requireMellon(t *testing.T) {
	t.Helper()
	var missing []string
	for _, f := range []struct{ path, pkg string }{
		{apacheBin, "apache2-bin"},
		{"/usr/lib/apache2/modules/mod_mpm_prefork.so", "apache2-bin"},
		{"/usr/lib/apache2/modules/mod_auth_mellon.so", "libapache2-mod-auth-mellon"},
		{"/etc/mime.types", "media-types"},
	} {
		if _, err := os.Stat(f.path); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", f.path, f.pkg))
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "interop prerequisites for the mellon SP missing: " + strings.Join(missing, "; ") +
		"\ninstall them with interop/install.sh (Debian 12, as root or with sudo)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

const apacheBin = "/usr/sbin/apache2"

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// ---------------------------------------------------------------- processes

// proc is a long-running child process in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has been waited for
	err  error         // cmd.Wait's result, valid after done
	life *os.File      // write end of the child's stdin pipe (peers/lib/guard.sh): closing it stops the group
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop terminates the whole process group (php -S forks workers), SIGKILL after 5 s.
func (p *proc) stop() {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
			}
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // leftovers of the group, if any
	p.life.Close()
}

// env is one isolated set of broker + peers.
type env struct {
	t        *testing.T
	state    string // PEERS_STATE: every file the peers and the broker write
	peers    string // absolute path of interop/peers
	childEnv []string
	client   *http.Client
	logs     []string // files printed on failure

	brokerURL string
	token     string

	brokerEnv []string          // more environment for the broker (KEY=value), e.g. BROKER_KEY_ROTATION_OVERLAP
	vault     *vaulttest.Server // the Vault holding the broker's keys (nil: local keys)

	idpURL, sspSPURL, pySPURL string // peer base URLs (set when started)
	mellonURL, pyIdPURL       string // Apache + mod_auth_mellon SP, pysaml2 IdP (set when started)
	mellonDir                 string // the mellon instance's state folder ($PEERS_STATE/mellon/PORT)

	browseRuns int // browse.py runs so far (names their raw output files)
}

// keyBackend is where the broker under test keeps tenants' signing keys.
type keyBackend string

const (
	localKeys keyBackend = "local-keys" // the embedded default: key files in the data directory
	vaultKeys keyBackend = "vault-keys" // a real Vault dev server's Transit engine
	// vaultFileKeys: a real Vault server with file storage, which keeps its keys when it is
	// stopped and started again (TestVaultOutage).
	vaultFileKeys keyBackend = "vault-file-keys"
)

// withKeyBackends runs the scenario once with local keys and once with keys held in Vault, as
// subtests named after the backend.
func withKeyBackends(t *testing.T, scenario func(t *testing.T, kb keyBackend)) {
	for _, kb := range []keyBackend{localKeys, vaultKeys} {
		t.Run(string(kb), func(t *testing.T) { scenario(t, kb) })
	}
}

// newEnv checks the prerequisites, builds the broker and starts it with local keys (admin token
// e.token).
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvKeys(t, localKeys)
}

// newEnvKeys is newEnv with the keys in kb; for vaultKeys it first starts a Vault dev server
// (vaultFileKeys: a Vault server with file storage) and gives the broker a token with the least-privilege policy of docs/keys.md.
func newEnvKeys(t *testing.T, kb keyBackend) *env {
	t.Helper()
	return newEnvKeysEnv(t, kb, nil)
}

// newEnvKeysEnv is newEnvKeys with more environment for the broker (KEY=value; it comes last, so
// it wins over the harness's own settings).
func newEnvKeysEnv(t *testing.T, kb keyBackend, brokerEnv []string) *env {
	t.Helper()
	requirePeers(t)
	bin := brokerBinary(t)
	e := newPeersEnv(t)
	e.brokerEnv = brokerEnv
	switch kb {
	case vaultKeys:
		e.vault = vaulttest.Start(t)
	case vaultFileKeys:
		e.vault = vaulttest.StartPersistent(t)
	}
	if e.vault != nil {
		e.vault.EnableAudit(t, filepath.Join(e.state, "logs", "vault-audit.log"))
	}
	e.startBroker(bin)
	return e
}

// newPeersEnv prepares an isolated state directory and child environment (no processes yet).
func newPeersEnv(t *testing.T) *env {
	t.Helper()

	var state string
	if os.Getenv("INTEROP_KEEP") != "" {
		d, err := os.MkdirTemp("", "broker-interop-")
		if err != nil {
			t.Fatal(err)
		}
		state = d
		t.Cleanup(func() { t.Logf("INTEROP_KEEP: state kept in %s", d) })
	} else {
		state = t.TempDir()
	}
	peersDir, err := filepath.Abs("peers")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t:     t,
		state: state,
		peers: peersDir,
		client: &http.Client{
			Timeout:   15 * time.Second,
			Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PYTHONPATH", "PYTHONHOME", "PEERS_STATE", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY":
			continue
		}
		if strings.HasPrefix(k, "BROKER_") {
			continue
		}
		e.childEnv = append(e.childEnv, kv)
	}
	e.childEnv = append(e.childEnv, "PEERS_STATE="+state, "PYTHONDONTWRITEBYTECODE=1", "PEERS_WAIT=20",
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	if err := os.MkdirAll(filepath.Join(state, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered before any process: runs after every process has been stopped.
	t.Cleanup(e.dumpLogsOnFailure)
	return e
}

func (e *env) startBroker(bin string) {
	e.t.Helper()
	port := freePorts(e.t, 1)[0]
	e.brokerURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	e.token = randomHex(e.t, 24)
	brokerEnv := append(append([]string{}, e.childEnv...), "BROKER_BOOTSTRAP_TOKEN="+e.token, "BROKER_LOG_LEVEL=debug")
	if e.vault != nil {
		brokerEnv = append(brokerEnv, "BROKER_VAULT_ADDR="+e.vault.Addr, "BROKER_VAULT_TOKEN="+e.vault.BrokerToken(e.t))
	}
	brokerEnv = append(brokerEnv, e.brokerEnv...)
	p := e.start("broker", brokerEnv, bin, "serve",
		"--addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--base-url", e.brokerURL,
		"--data-dir", filepath.Join(e.state, "broker-data"),
		"--allow-http")
	e.waitHTTP(p, e.brokerURL+"/healthz", 30*time.Second)
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1 (held open together while picking).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// start runs argv in the background (own process group, output in logs/NAME.log) and
// registers its termination with t.Cleanup. It runs under peers/lib/guard.sh, which stops the
// group when this test process goes away, even without running its cleanups.
func (e *env) start(name string, environ []string, argv ...string) *proc {
	e.t.Helper()
	logPath := filepath.Join(e.state, "logs", name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close() // the child has its own copy
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	defer lifeR.Close()
	argv = append([]string{"/bin/bash", filepath.Join(e.peers, "lib", "guard.sh")}, argv...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = environ
	cmd.Dir = e.state
	cmd.Stdin, cmd.Stdout, cmd.Stderr = lifeR, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lifeW.Close()
		e.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{}), life: lifeW}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	e.logs = append(e.logs, logPath)
	e.t.Cleanup(p.stop)
	return p
}

// run runs a short command (own process group) and returns its combined output; fatal on error.
func (e *env) run(timeout time.Duration, argv ...string) string {
	e.t.Helper()
	out, err := e.runErr(timeout, nil, argv...)
	if err != nil {
		e.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

func (e *env) runErr(timeout time.Duration, stdout io.Writer, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = e.childEnv
	cmd.Dir = e.state
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var buf bytes.Buffer
	if stdout != nil {
		cmd.Stdout = stdout
		cmd.Stderr = &buf
	} else {
		cmd.Stdout, cmd.Stderr = &buf, &buf
	}
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything it left behind
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return buf.Bytes(), err
}

// waitHTTP waits until url answers 200; fatal if p exits or on timeout.
func (e *env) waitHTTP(p *proc, url string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := e.client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if p.exited() {
			e.t.Fatalf("%s exited while waiting for %s: %v (last: %s); log %s:\n%s",
				p.name, url, p.err, last, p.log, tail(p.log, 40))
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: no 200 from %s after %v (last: %s)", p.name, url, timeout, last)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (e *env) dumpLogsOnFailure() {
	if !e.t.Failed() {
		return
	}
	for _, f := range e.logs {
		if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
			continue // e.g. simplesamlphp.log before SimpleSAMLphp logged anything
		}
		e.t.Logf("===== %s (last %d lines) =====\n%s", strings.TrimPrefix(f, e.state+"/"), logTailLines, tail(f, logTailLines))
	}
}

const logTailLines = 300

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines cut)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------- broker admin API

// api sends a JSON request to the broker's admin API; it returns the status and the body.
func (e *env) api(method, path string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.brokerURL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// create POSTs body to path and requires 201 with a JSON object, which it returns.
func (e *env) create(path string, body any) map[string]any {
	e.t.Helper()
	code, b := e.api(http.MethodPost, path, body)
	req, _ := json.Marshal(body)
	if code != http.StatusCreated {
		e.t.Fatalf("POST %s %s: HTTP %d, want 201; body: %s", path, req, code, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatalf("POST %s %s: HTTP 201 but body is not a JSON object (%v): %s", path, req, err, b)
	}
	e.t.Logf("POST %s %s -> 201 %s", path, req, b)
	return m
}

func (e *env) tenantURL(suffix string) string {
	return e.tenantURLIn(tenantSlug, suffix)
}

// tenantURLIn is the broker's public URL of the tenant slug, plus suffix.
func (e *env) tenantURLIn(slug, suffix string) string {
	return e.brokerURL + "/t/" + slug + suffix
}

// ---------------------------------------------------------------- peers

// startSSPIdP starts a SimpleSAMLphp IdP (users student/studentpass, alice/alicepass).
func (e *env) startSSPIdP(name string) {
	e.t.Helper()
	port := freePorts(e.t, 1)[0]
	e.run(time.Minute, filepath.Join(e.peers, "ssp", "mkinstance.sh"), name, fmt.Sprint(port), "idp")
	e.idpURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	e.startSSP(name, e.idpURL+"/saml2/idp/metadata.php")
}

// startSSPSP starts a SimpleSAMLphp SP (test app /app/login, /app/status) trusting idpMetadata.
func (e *env) startSSPSP(name, idpMetadata string) {
	e.t.Helper()
	e.sspSPURL = e.startSSPSPAt(name, idpMetadata)
}

// startSSPSPAt starts another SimpleSAMLphp SP and returns its base URL (e.sspSPURL is unchanged).
func (e *env) startSSPSPAt(name, idpMetadata string) string {
	e.t.Helper()
	port := freePorts(e.t, 1)[0]
	e.run(time.Minute, filepath.Join(e.peers, "ssp", "mkinstance.sh"), name, fmt.Sprint(port), "sp", idpMetadata)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	e.startSSP(name, base+"/module.php/saml/sp/metadata.php/default-sp")
	return base
}

func (e *env) startSSP(name, readyURL string) {
	p := e.start(name, e.childEnv, filepath.Join(e.peers, "ssp", "run.sh"), name)
	e.logs = append(e.logs, filepath.Join(e.state, "ssp", name, "log", "simplesamlphp.log"))
	e.waitHTTP(p, readyURL, 30*time.Second)
}

// startPySAML2SP starts the pysaml2 SP (/login, /acs, /status) trusting idpMetadata (a URL);
// extra are more peer.py options (e.g. --slo-bindings).
func (e *env) startPySAML2SP(name, idpMetadata string, extra ...string) {
	e.t.Helper()
	e.pySPURL = e.startPySAML2SPAt(name, idpMetadata, extra...)
}

// startPySAML2SPAt starts another pysaml2 SP and returns its base URL (e.pySPURL is unchanged).
func (e *env) startPySAML2SPAt(name, idpMetadata string, extra ...string) string {
	e.t.Helper()
	port := freePorts(e.t, 1)[0]
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	argv := append([]string{pythonBin, filepath.Join(e.peers, "pysaml2", "peer.py"),
		"--port", fmt.Sprint(port), "--name", name, "--fetch-metadata", idpMetadata}, extra...)
	p := e.start(name, e.childEnv, argv...)
	e.waitHTTP(p, base+"/metadata", 40*time.Second)
	return base
}

// startMellon starts Apache + mod_auth_mellon (peers/mellon/run.sh) as an SP of the IdP whose
// metadata is at idpMetadata (fetched once: mellon reads it at start). Its Apache error log
// (mellon at debug level) and access log are printed on failure.
func (e *env) startMellon(idpMetadata string) {
	e.t.Helper()
	port := freePorts(e.t, 1)[0]
	e.mellonURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	e.mellonDir = filepath.Join(e.state, "mellon", fmt.Sprint(port))
	p := e.start("mellon", e.childEnv, filepath.Join(e.peers, "mellon", "run.sh"), fmt.Sprint(port), idpMetadata)
	e.logs = append(e.logs, filepath.Join(e.mellonDir, "logs", "error.log"), filepath.Join(e.mellonDir, "logs", "access.log"))
	e.waitHTTP(p, e.mellonURL+"/mellon/metadata", 30*time.Second)
}

// startPySAML2IdP starts the pysaml2 IdP (peers/pysaml2/idp.py; users student/studentpass,
// alice/alicepass). Its SPs' metadata goes into $PEERS_STATE/pysaml2/NAME/remote-metadata/.
func (e *env) startPySAML2IdP(name string) {
	e.t.Helper()
	port := freePorts(e.t, 1)[0]
	e.pyIdPURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	p := e.start(name, e.childEnv, pythonBin, filepath.Join(e.peers, "pysaml2", "idp.py"), "--port", fmt.Sprint(port), "--name", name)
	e.waitHTTP(p, e.pyIdPURL+"/metadata", 40*time.Second)
}

// trustAtPySAML2 drops the metadata at url into the pysaml2 peer's remote-metadata/ (re-read when
// the files change: no restart needed).
func (e *env) trustAtPySAML2(instance, file, url string) {
	e.t.Helper()
	dest := filepath.Join(e.state, "pysaml2", instance, "remote-metadata", file)
	out := e.run(time.Minute, filepath.Join(e.peers, "lib", "fetch-metadata.sh"), url, dest)
	e.t.Logf("%s trusts %s (entityID %s)", instance, url, strings.TrimSpace(out))
}

func (e *env) sspSPMetadataURL() string {
	return e.sspSPURL + "/module.php/saml/sp/metadata.php/default-sp"
}

// trustAtSSP drops the metadata at url into the SimpleSAMLphp instance's remote-metadata/
// (read on every request: no restart needed).
func (e *env) trustAtSSP(instance, file, url string) {
	e.t.Helper()
	dest := filepath.Join(e.state, "ssp", instance, "remote-metadata", file)
	out := e.run(time.Minute, filepath.Join(e.peers, "lib", "fetch-metadata.sh"), url, dest)
	e.t.Logf("%s trusts %s (entityID %s)", instance, url, strings.TrimSpace(out))
}

// ---------------------------------------------------------------- browser flows

type flowResult struct {
	Steps []flowStep `json:"steps"`
}

type flowStep struct {
	Name  string `json:"name"`
	Start string `json:"start"`
	Final *struct {
		URL         string `json:"url"`
		Status      int    `json:"status"`
		ContentType string `json:"content_type"`
		Body        string `json:"body"`
	} `json:"final"`
	Status *struct {
		URL        string          `json:"url"`
		HTTPStatus int             `json:"http_status"`
		JSON       json.RawMessage `json:"json"`
		Body       string          `json:"body"`
	} `json:"status"`
	Requests []struct {
		Method   string `json:"method"`
		URL      string `json:"url"`
		Status   int    `json:"status"`
		Location string `json:"location"`
	} `json:"requests"`
	PasswordForms []struct {
		URL    string `json:"url"`
		Filled bool   `json:"filled"`
	} `json:"password_forms"`
	SAML []samlMsg `json:"saml"`
	// Pages the browser acted on like a browser without JavaScript (iframes, meta refresh), and
	// the iframes it loaded.
	Pages  []noJSPage  `json:"pages"`
	Frames []frameLoad `json:"frames"`
	Error  string      `json:"error"`
}

// noJSPage is a page with iframes or a meta refresh (peers/lib/browser.py).
type noJSPage struct {
	URL     string   `json:"url"`
	Status  int      `json:"status"`
	Title   string   `json:"title"`
	IFrames []string `json:"iframes"`
	Refresh *struct {
		Content string  `json:"content"`
		Delay   float64 `json:"delay"`
		URL     string  `json:"url"`
	} `json:"refresh"`
	Waited *float64 `json:"waited"` // seconds the browser waited before following the refresh
}

// frameLoad is one iframe the browser loaded: where it ended.
type frameLoad struct {
	Page        string `json:"page"`
	Src         string `json:"src"`
	FinalURL    string `json:"final_url"`
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
	Error       string `json:"error"`
}

type samlMsg struct {
	Binding    string `json:"binding"` // redirect | post
	Param      string `json:"param"`   // SAMLRequest | SAMLResponse
	URL        string `json:"url"`     // where it was sent
	XML        string `json:"xml"`     // decoded (lossy: for display)
	Raw        string `json:"raw"`     // base64 value as sent (POST: the exact XML bytes)
	RelayState string `json:"relaystate"`
	SigAlg     string `json:"sigalg"`    // redirect: the SigAlg parameter
	Signature  string `json:"signature"` // redirect: the Signature parameter
	From       string `json:"from"`      // POST: URL of the page that carried the form
}

// flowStepArg is one --step of peers/flows/browse.py.
type flowStepArg struct{ name, start, status string }

// browse runs one headless browser (one cookie jar) through steps, logging in with user/password
// wherever a password form shows up.
func (e *env) browse(user, password string, steps ...flowStepArg) *flowResult {
	e.t.Helper()
	return e.browseWithCookies("", user, password, steps...)
}

// browseWithCookies is browse with a cookie jar kept in the file cookies (JSON): the browser starts
// with the cookies saved there by an earlier call, and saves its jar there at the end, so that
// several calls act as one browser ("" = a fresh jar, not saved).
func (e *env) browseWithCookies(cookies, user, password string, steps ...flowStepArg) *flowResult {
	e.t.Helper()
	argv := []string{pythonBin, filepath.Join(e.peers, "flows", "browse.py"), "--user", user, "--password", password}
	if cookies != "" {
		argv = append(argv, "--cookies", cookies)
	}
	for _, s := range steps {
		argv = append(argv, "--step", s.name, s.start)
		if s.status != "" {
			argv = append(argv, s.status)
		}
	}
	var stdout bytes.Buffer
	stderr, err := e.runErr(3*time.Minute, &stdout, argv...)
	e.browseRuns++
	raw := filepath.Join(e.state, "logs", fmt.Sprintf("browse-%s-%d.json", strings.ReplaceAll(e.t.Name(), "/", "_"), e.browseRuns))
	_ = os.WriteFile(raw, stdout.Bytes(), 0o644)
	if err != nil {
		e.t.Fatalf("browse.py: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, truncate(stdout.String(), 4000))
	}
	var res flowResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		e.t.Fatalf("browse.py: bad JSON (%v):\n%s\nstderr:\n%s", err, truncate(stdout.String(), 4000), stderr)
	}
	for _, s := range res.Steps {
		e.t.Logf("browser step %q:\n%s", s.Name, s.describe())
	}
	return &res
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "...(truncated)"
}

// describe lists the step's requests (URLs shortened) and its outcome, for the test log.
func (s *flowStep) describe() string {
	var b strings.Builder
	for _, r := range s.Requests {
		fmt.Fprintf(&b, "  %-4s %s -> %d", r.Method, truncate(r.URL, 140), r.Status)
		if r.Location != "" {
			fmt.Fprintf(&b, " Location: %s", truncate(r.Location, 100))
		}
		b.WriteString("\n")
	}
	for _, m := range s.SAML {
		fmt.Fprintf(&b, "  SAML %s %s -> %s\n", m.Binding, m.Param, m.URL)
	}
	for _, p := range s.PasswordForms {
		fmt.Fprintf(&b, "  password form at %s (filled %v)\n", truncate(p.URL, 120), p.Filled)
	}
	for _, p := range s.Pages {
		fmt.Fprintf(&b, "  no-JS page %s %q: %d iframe(s)", truncate(p.URL, 120), p.Title, len(p.IFrames))
		if p.Refresh != nil {
			fmt.Fprintf(&b, ", meta refresh %q", p.Refresh.Content)
		}
		if p.Waited != nil {
			fmt.Fprintf(&b, ", followed after %.2fs", *p.Waited)
		}
		b.WriteString("\n")
	}
	for _, f := range s.Frames {
		fmt.Fprintf(&b, "  iframe %s -> %d %s", truncate(f.Src, 120), f.Status, truncate(f.FinalURL, 120))
		if f.Error != "" {
			fmt.Fprintf(&b, " ERROR %s", f.Error)
		}
		b.WriteString("\n")
	}
	if s.Final != nil {
		fmt.Fprintf(&b, "  final page: %d %s %s\n", s.Final.Status, s.Final.ContentType, s.Final.URL)
	}
	if s.Status != nil {
		fmt.Fprintf(&b, "  status %s: %d %s\n", s.Status.URL, s.Status.HTTPStatus, truncate(strings.TrimSpace(s.Status.Body), 600))
	}
	if s.Error != "" {
		fmt.Fprintf(&b, "  ERROR: %s\n", s.Error)
	}
	return b.String()
}

// finalPage is a short dump of the step's last page, for failure messages.
func (s *flowStep) finalPage() string {
	if s.Final == nil {
		return "(no final page)"
	}
	return fmt.Sprintf("%d %s %s\n%s", s.Final.Status, s.Final.ContentType, s.Final.URL, truncate(s.Final.Body, 3000))
}

// hop is an expected request of a browser flow: method ("" = any) and URL prefix.
type hop struct{ method, prefix string }

// requireHops checks that the step's requests contain hops in this order (others may be between).
func (s *flowStep) requireHops(t *testing.T, hops ...hop) {
	t.Helper()
	i := 0
	for _, r := range s.Requests {
		if i < len(hops) && (hops[i].method == "" || hops[i].method == r.Method) && strings.HasPrefix(r.URL, hops[i].prefix) {
			i++
		}
	}
	if i < len(hops) {
		t.Errorf("step %q: missing hop %d %s %s (after the earlier ones); requests:\n%s",
			s.Name, i+1, hops[i].method, hops[i].prefix, s.describe())
	}
}

// ---------------------------------------------------------------- metadata, signatures

type mdEntity struct {
	XMLName  xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
	EntityID string   `xml:"entityID,attr"`
	IDPSSO   []mdRole `xml:"urn:oasis:names:tc:SAML:2.0:metadata IDPSSODescriptor"`
	SPSSO    []mdRole `xml:"urn:oasis:names:tc:SAML:2.0:metadata SPSSODescriptor"`
}

type mdRole struct {
	Keys []struct {
		Use     string `xml:"use,attr"`
		KeyInfo struct {
			X509Data []struct {
				Certs []string `xml:"http://www.w3.org/2000/09/xmldsig# X509Certificate"`
			} `xml:"http://www.w3.org/2000/09/xmldsig# X509Data"`
		} `xml:"http://www.w3.org/2000/09/xmldsig# KeyInfo"`
	} `xml:"urn:oasis:names:tc:SAML:2.0:metadata KeyDescriptor"`
}

// signingCertsPEM returns the role's signing certificates (use="signing" or no use) as PEM.
func (r mdRole) signingCertsPEM() ([][]byte, error) {
	var out [][]byte
	for _, k := range r.Keys {
		if k.Use != "" && k.Use != "signing" {
			continue
		}
		for _, xd := range k.KeyInfo.X509Data {
			for _, c := range xd.Certs {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c), ""))
				if err != nil {
					return nil, fmt.Errorf("X509Certificate is not base64: %w", err)
				}
				if _, err := x509.ParseCertificate(der); err != nil {
					return nil, fmt.Errorf("X509Certificate does not parse: %w", err)
				}
				out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no signing X509Certificate in the KeyDescriptors")
	}
	return out, nil
}

// fetchMetadata GETs and parses a SAML EntityDescriptor (the raw bytes are kept in the state dir).
func (e *env) fetchMetadata(url, saveAs string) (*mdEntity, []byte) {
	e.t.Helper()
	resp, err := e.client.Get(url)
	if err != nil {
		e.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: HTTP %d %v\n%s", url, resp.StatusCode, err, truncate(string(b), 2000))
	}
	_ = os.WriteFile(filepath.Join(e.state, saveAs), b, 0o644)
	var md mdEntity
	if err := xml.Unmarshal(b, &md); err != nil {
		e.t.Fatalf("%s: not a SAML EntityDescriptor: %v\n%s", url, err, truncate(string(b), 2000))
	}
	return &md, b
}

// xmlsecVerify checks the first enveloped signature of the SAML document in file against the
// pinned certificate certPEM with the xmlsec1 binary. It returns xmlsec1's verdict and output.
func (e *env) xmlsecVerify(certPEM, file string) (bool, string) {
	e.t.Helper()
	out, err := e.runErr(time.Minute, nil, "xmlsec1", "--verify", "--pubkey-cert-pem", certPEM,
		"--enabled-reference-uris", "empty,same-doc",
		"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
		"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest",
		"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse",
		"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
		file)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		e.t.Fatalf("xmlsec1: %v\n%s", err, out)
	}
	return err == nil, string(out)
}
