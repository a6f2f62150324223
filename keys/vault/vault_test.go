package vault_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/vault/api"

	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/vault"
	"github.com/sloworks/broker/keys/vault/vaulttest"
)

// clock is the injected time for certificates.
var clock = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// Tenant IDs shaped like the store's (32 hex digits).
const (
	tenantA = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	tenantB = "f9e8d7c6b5a4039281706f5e4d3c2b1a"
)

func newSource(t testing.TB, c *api.Client, certDir string, mod ...func(*vault.Options)) *vault.Source {
	t.Helper()
	if certDir == "" {
		certDir = t.TempDir()
	}
	o := vault.Options{Client: c, CertDir: certDir, Now: func() time.Time { return clock }}
	for _, m := range mod {
		m(&o)
	}
	s, err := vault.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keyPair(t testing.TB, s *vault.Source, tenant string) *keys.KeyPair {
	t.Helper()
	kp, err := s.KeyPair(context.Background(), tenant)
	if err != nil {
		t.Fatalf("KeyPair(%s): %v", tenant, err)
	}
	return kp
}

func vaultSigner(t testing.TB, kp *keys.KeyPair) *vault.Signer {
	t.Helper()
	vs, ok := kp.Signer.(*vault.Signer)
	if !ok {
		t.Fatalf("signer is %T; want *vault.Signer", kp.Signer)
	}
	return vs
}

func certKey(t testing.TB, kp *keys.KeyPair) *rsa.PublicKey {
	t.Helper()
	pub, ok := kp.Certificate.PublicKey.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("certificate key is %T; want RSA", kp.Certificate.PublicKey)
	}
	return pub
}

// transitKey reads the key as Vault has it (root): its public keys by version and its flags.
type transitKey struct {
	Type          string `json:"type"`
	Exportable    bool   `json:"exportable"`
	LatestVersion int    `json:"latest_version"`
	Keys          map[string]struct {
		PublicKey string `json:"public_key"`
	} `json:"keys"`
}

func readTransitKey(t testing.TB, root *api.Client, name string) *transitKey {
	t.Helper()
	sec, err := root.Logical().Read("transit/keys/" + name)
	if err != nil {
		t.Fatalf("read transit/keys/%s: %v", name, err)
	}
	if sec == nil {
		t.Fatalf("transit/keys/%s does not exist", name)
	}
	b, _ := json.Marshal(sec.Data)
	var k transitKey
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	return &k
}

func (k *transitKey) public(t testing.TB, version int) *rsa.PublicKey {
	t.Helper()
	v, ok := k.Keys[fmt.Sprint(version)]
	if !ok {
		t.Fatalf("no version %d", version)
	}
	block, _ := pem.Decode([]byte(v.PublicKey))
	if block == nil {
		t.Fatalf("version %d: public key is not PEM: %q", version, v.PublicKey)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub.(*rsa.PublicKey)
}

func listTransitKeys(t testing.TB, root *api.Client) []string {
	t.Helper()
	sec, err := root.Logical().List("transit/keys")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if sec != nil {
		ks, _ := sec.Data["keys"].([]any)
		for _, k := range ks {
			names = append(names, k.(string))
		}
	}
	sort.Strings(names)
	return names
}

func TestSignAndVerify(t *testing.T) {
	v := startVault(t)
	s := newSource(t, v.Root(t), "")
	kp := keyPair(t, s, tenantA)
	msg := []byte("saml-bindings 3.4.4.1: SAMLRequest=...&RelayState=...&SigAlg=...")
	tests := []struct {
		name string
		hash crypto.Hash
		sum  func([]byte) []byte
		alg  x509.SignatureAlgorithm
	}{
		{"SHA-256", crypto.SHA256, func(b []byte) []byte { h := sha256.Sum256(b); return h[:] }, x509.SHA256WithRSA},
		// SHA-1 where a provider's quirks demand it (Salesforce SLO, DESIGN.md).
		{"SHA-1", crypto.SHA1, func(b []byte) []byte { h := sha1.Sum(b); return h[:] }, x509.SHA1WithRSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			digest := tt.sum(msg)
			sig, err := kp.Signer.Sign(rand.Reader, digest, tt.hash)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := rsa.VerifyPKCS1v15(certKey(t, kp), tt.hash, digest, sig); err != nil {
				t.Errorf("the signature does not verify with the certificate's key: %v", err)
			}
			if len(sig) != 256 {
				t.Errorf("signature is %d bytes; want 256 (RSA-2048)", len(sig))
			}
			bad := append([]byte(nil), digest...)
			bad[0] ^= 1
			if rsa.VerifyPKCS1v15(certKey(t, kp), tt.hash, bad, sig) == nil {
				t.Error("the signature also verifies another digest")
			}
		})
	}

	t.Run("refused options", func(t *testing.T) {
		sum256 := sha256.Sum256(msg)
		sum512 := sha512.Sum512(msg)
		for _, c := range []struct {
			name   string
			digest []byte
			opts   crypto.SignerOpts
		}{
			{"SHA-512", sum512[:], crypto.SHA512},
			{"PSS", sum256[:], &rsa.PSSOptions{Hash: crypto.SHA256}},
			{"digest of the wrong size", sum256[:20], crypto.SHA256},
			{"no hash", msg, crypto.Hash(0)},
		} {
			_, err := kp.Signer.Sign(rand.Reader, c.digest, c.opts)
			if !errors.Is(err, vault.ErrUnsupported) {
				t.Errorf("%s: %v; want ErrUnsupported", c.name, err)
			}
			if errors.Is(err, keys.ErrUnavailable) {
				t.Errorf("%s: %v is not an outage", c.name, err)
			}
		}
	})
}

func TestCertificateIsTheTransitKey(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	dir := t.TempDir()
	s := newSource(t, root, dir)
	kp := keyPair(t, s, tenantA)
	vs := vaultSigner(t, kp)

	if got, want := vs.KeyName(), "broker-"+tenantA; got != want {
		t.Errorf("key name %q; want %q", got, want)
	}
	if vs.KeyVersion() != 1 {
		t.Errorf("key version %d; want 1", vs.KeyVersion())
	}
	tk := readTransitKey(t, root, vs.KeyName())
	if tk.Type != "rsa-2048" || tk.Exportable {
		t.Errorf("Transit key type %s exportable %v; want rsa-2048, not exportable", tk.Type, tk.Exportable)
	}
	if !tk.public(t, 1).Equal(kp.Certificate.PublicKey) {
		t.Error("the certificate's public key is not Transit's")
	}
	if !tk.public(t, 1).Equal(kp.Signer.Public()) {
		t.Error("the signer's public key is not Transit's")
	}
	cert := kp.Certificate
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("the certificate does not verify its own signature (self-signed through Transit): %v", err)
	}
	if !bytes.Equal(cert.RawIssuer, cert.RawSubject) || !strings.Contains(cert.Subject.CommonName, tenantA) {
		t.Errorf("subject %s, issuer %s; want self-issued, naming the tenant", cert.Subject, cert.Issuer)
	}
	if want := clock.Add(-time.Hour); !cert.NotBefore.Equal(want) {
		t.Errorf("NotBefore %v; want %v (injected clock - 1h)", cert.NotBefore, want)
	}

	// Stored as a public file beside the data, holding that certificate.
	path := filepath.Join(dir, vs.KeyName()+".crt")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("certificate file mode %o; want 644", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if block, _ := pem.Decode(b); block == nil || !bytes.Equal(block.Bytes, cert.Raw) {
		t.Error("the certificate file holds another certificate")
	}
	if again := keyPair(t, s, tenantA); again != kp {
		t.Error("a second KeyPair call did not answer from the cache")
	}
}

func TestKeyTypes(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	for _, tt := range []struct {
		typ  string
		bits int
	}{{"rsa-3072", 3072}, {"rsa-4096", 4096}} {
		t.Run(tt.typ, func(t *testing.T) {
			s := newSource(t, root, "", func(o *vault.Options) { o.KeyType = tt.typ; o.KeyPrefix = tt.typ + "-" })
			kp := keyPair(t, s, tenantA)
			if got := certKey(t, kp).N.BitLen(); got != tt.bits {
				t.Errorf("key is %d bits; want %d", got, tt.bits)
			}
			if got := readTransitKey(t, root, vaultSigner(t, kp).KeyName()).Type; got != tt.typ {
				t.Errorf("Transit key type %s; want %s", got, tt.typ)
			}
			sum := sha256.Sum256([]byte("x"))
			sig, err := kp.Signer.Sign(nil, sum[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if err := rsa.VerifyPKCS1v15(certKey(t, kp), crypto.SHA256, sum[:], sig); err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := vault.New(vault.Options{Client: root, CertDir: t.TempDir(), KeyType: "ed25519"}); err == nil {
		t.Error("key type ed25519 accepted")
	}
}

// auditedSigns returns, per Transit sign path, how many requests Vault's audit log recorded.
func auditedSigns(t *testing.T, file string) map[string]int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line: %v", err)
		}
		if e.Type == "request" && strings.HasPrefix(e.Request.Path, "transit/sign/") {
			got[e.Request.Path]++
		}
	}
	return got
}

func TestTenantsSignWithTheirOwnKeys(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	// Vault's audit log records the path of every request: the key each signature used.
	audit := filepath.Join(t.TempDir(), "audit.log")
	if err := root.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": audit}}); err != nil {
		t.Fatal(err)
	}
	s := newSource(t, root, "")
	a, b := keyPair(t, s, tenantA), keyPair(t, s, tenantB) // one signature each: the certificate
	if a.Certificate.PublicKey.(*rsa.PublicKey).Equal(b.Certificate.PublicKey) {
		t.Error("two tenants share a key")
	}
	if got, want := vaultSigner(t, b).KeyName(), "broker-"+tenantB; got != want {
		t.Errorf("tenant B's key name %q; want %q", got, want)
	}
	sum := sha256.Sum256([]byte("logout"))
	for i, kp := range []*keys.KeyPair{a, b, b} {
		if _, err := kp.Signer.Sign(nil, sum[:], crypto.SHA256); err != nil {
			t.Fatalf("sign %d: %v", i, err)
		}
	}
	want := map[string]int{"transit/sign/broker-" + tenantA: 2, "transit/sign/broker-" + tenantB: 3}
	if diff := cmp.Diff(want, auditedSigns(t, audit)); diff != "" {
		t.Errorf("signatures per Transit key (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"broker-" + tenantA, "broker-" + tenantB}, listTransitKeys(t, root)); diff != "" {
		t.Errorf("Transit keys (-want +got):\n%s", diff)
	}
}

func TestSecondSourceSameKey(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	dir := t.TempDir()
	first := keyPair(t, newSource(t, root, dir), tenantA)

	// A restart: a new Source, same certificate directory.
	restarted := keyPair(t, newSource(t, root, dir, func(o *vault.Options) {
		o.Now = func() time.Time { return clock.Add(1000 * time.Hour) }
	}), tenantA)
	if !restarted.Certificate.Equal(first.Certificate) {
		t.Error("after a restart the certificate changed")
	}
	// Another broker on the same Vault without the file: same key, its own certificate.
	other := keyPair(t, newSource(t, root, ""), tenantA)
	if !certKey(t, other).Equal(certKey(t, first)) {
		t.Error("a second Source got another key")
	}
	if diff := cmp.Diff([]string{"broker-" + tenantA}, listTransitKeys(t, root)); diff != "" {
		t.Errorf("Transit keys (-want +got):\n%s", diff)
	}
	if tk := readTransitKey(t, root, "broker-"+tenantA); tk.LatestVersion != 1 {
		t.Errorf("latest version %d; want 1 (nothing rotated or created again)", tk.LatestVersion)
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	dir := t.TempDir()
	// Two Sources (two broker processes on one data directory) and many callers at once.
	sources := []*vault.Source{newSource(t, root, dir), newSource(t, root, dir)}
	var wg sync.WaitGroup
	certs := make([]*x509.Certificate, 16)
	errs := make([]error, len(certs))
	for i := range certs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kp, err := sources[i%2].KeyPair(context.Background(), tenantA)
			if err == nil {
				certs[i] = kp.Certificate
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if !certs[i].Equal(certs[0]) {
			t.Errorf("caller %d got another certificate", i)
		}
	}
	if diff := cmp.Diff([]string{"broker-" + tenantA}, listTransitKeys(t, root)); diff != "" {
		t.Errorf("Transit keys (-want +got):\n%s", diff)
	}
}

func TestRefusedKeys(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	// Each refused key under its own tenant.
	if _, err := root.Logical().Write("transit/keys/broker-exportable", map[string]any{"type": "rsa-2048", "exportable": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("transit/keys/broker-aes", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	s := newSource(t, root, "")
	for _, tenant := range []string{"exportable", "aes"} {
		_, err := s.KeyPair(context.Background(), tenant)
		if err == nil {
			t.Errorf("%s: a refused key was used", tenant)
			continue
		}
		if errors.Is(err, keys.ErrUnavailable) {
			t.Errorf("%s: %v; a refused key is not an outage", tenant, err)
		}
		t.Logf("%s: %v", tenant, err)
	}
	for _, bad := range []string{"", "../x", "a/b", "-x", "x-", "a b", strings.Repeat("a", 129)} {
		if _, err := s.KeyPair(context.Background(), bad); err == nil {
			t.Errorf("tenant id %q accepted as a key name", bad)
		}
	}
}

func TestCertificateOfAnotherKey(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	dir := t.TempDir()
	keyPair(t, newSource(t, root, ""), tenantA) // A's key exists in Vault
	b := keyPair(t, newSource(t, root, dir), tenantB)
	// A's certificate file holds B's certificate (another Vault, or A's key was replaced).
	pemB := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Certificate.Raw})
	if err := os.WriteFile(filepath.Join(dir, "broker-"+tenantA+".crt"), pemB, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := newSource(t, root, dir).KeyPair(context.Background(), tenantA)
	if err == nil || !strings.Contains(err.Error(), "matches no version") {
		t.Fatalf("KeyPair = %v; want an error saying the certificate matches no version of the key", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "broker-"+tenantA+".crt")); !bytes.Equal(b, pemB) {
		t.Error("the published certificate file was replaced")
	}
}

func TestKeyGoneBehindItsCertificate(t *testing.T) {
	dir := t.TempDir()
	// The certificate was made on one Vault; this one (a wiped one, another mount) lacks the key.
	first := keyPair(t, newSource(t, startVault(t).Root(t), dir), tenantA)
	other := startVault(t)
	root := other.Root(t)
	_, err := newSource(t, root, dir).KeyPair(context.Background(), tenantA)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("KeyPair = %v; want an error saying the key behind the published certificate does not exist", err)
	}
	if names := listTransitKeys(t, root); len(names) != 0 {
		t.Errorf("a new key was created behind the published certificate: %v", names)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "broker-"+tenantA+".crt")); err != nil || !bytes.Contains(got, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: first.Certificate.Raw})) {
		t.Errorf("the published certificate file was changed (%v)", err)
	}
}

func TestForget(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	dir := t.TempDir()
	var logs bytes.Buffer
	s := newSource(t, root, dir, func(o *vault.Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	first := keyPair(t, s, tenantA)
	if err := s.Forget(context.Background(), tenantA); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "broker-"+tenantA+".crt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("certificate file still there: %v", err)
	}
	// The key stays in Vault (the broker's policy cannot delete keys); the log names it.
	readTransitKey(t, root, "broker-"+tenantA)
	if !strings.Contains(logs.String(), "broker-"+tenantA) {
		t.Errorf("the log does not name the key left in Vault:\n%s", logs.String())
	}
	again := keyPair(t, s, tenantA)
	if again == first || again.Certificate.Equal(first.Certificate) {
		t.Error("after Forget the cached pair or certificate was reused")
	}
}

// brokerPolicy is the least-privilege policy docs/keys.md shows.
func brokerPolicy(t *testing.T) string { return vaulttest.BrokerPolicy(t) }

// TestDocsShowThePolicy: the policy an operator copies from docs/keys.md is the one tested here.
func TestDocsShowThePolicy(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "keys.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte(brokerPolicy(t))) {
		t.Error("docs/keys.md does not show testdata/broker-policy.hcl as it is")
	}
}

// brokerToken creates a token with the broker's policy only (and Vault's default policy).
func brokerToken(t *testing.T, root *api.Client) string { return vaulttest.BrokerTokenFrom(t, root) }

func TestLeastPrivilegePolicy(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	token := brokerToken(t, root)
	c := v.Client(t, token)
	// The policy is enough: create on first use, read, sign.
	kp := keyPair(t, newSource(t, c, ""), tenantA)
	sum := sha256.Sum256([]byte("assertion"))
	sig, err := kp.Signer.Sign(nil, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("sign with the broker's policy: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(certKey(t, kp), crypto.SHA256, sum[:], sig); err != nil {
		t.Error(err)
	}
	name := "broker-" + tenantA

	// Not exportable: even root cannot export it.
	if _, err := root.Logical().Read("transit/export/signing-key/" + name); err == nil {
		t.Error("root exported the key")
	} else {
		t.Logf("root export refused: %v", err)
	}

	// Another application's key on the same mount, and another Transit mount.
	if _, err := root.Logical().Write("transit/keys/payroll", map[string]any{"type": "rsa-2048"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().Mount("other-transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("other-transit/keys/broker-"+tenantA, map[string]any{"type": "rsa-2048"}); err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"input": "aGk=", "signature_algorithm": "pkcs1v15"}
	refused := []struct {
		name string
		do   func() error
	}{
		{"export the signing key", func() error { _, err := c.Logical().Read("transit/export/signing-key/" + name); return err }},
		{"export a version", func() error { _, err := c.Logical().Read("transit/export/signing-key/" + name + "/1"); return err }},
		{"back up the key", func() error { _, err := c.Logical().Read("transit/backup/" + name); return err }},
		{"make it exportable", func() error {
			_, err := c.Logical().Write("transit/keys/"+name+"/config", map[string]any{"exportable": true})
			return err
		}},
		{"make it exportable and deletable at once", func() error {
			_, err := c.Logical().Write("transit/keys/"+name+"/config", map[string]any{"exportable": true, "deletion_allowed": true})
			return err
		}},
		{"raise its minimum versions", func() error {
			_, err := c.Logical().Write("transit/keys/"+name+"/config", map[string]any{"min_decryption_version": 2})
			return err
		}},
		{"trim it", func() error {
			_, err := c.Logical().Write("transit/keys/"+name+"/trim", map[string]any{"min_available_version": 1})
			return err
		}},
		{"sign with another application's key", func() error { _, err := c.Logical().Write("transit/sign/payroll", in); return err }},
		{"sign on another mount", func() error {
			_, err := c.Logical().Write("other-transit/sign/broker-"+tenantA, in)
			return err
		}},
		{"create a mount", func() error { return c.Sys().Mount("mine", &api.MountInput{Type: "transit"}) }},
		{"write a policy", func() error { return c.Sys().PutPolicy("more", `path "*" { capabilities = ["sudo"] }`) }},
		{"list the keys", func() error { _, err := c.Logical().List("transit/keys"); return err }},
	}
	for _, r := range refused {
		err := r.do()
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %v; want 403 permission denied", r.name, err)
		}
	}
}

func TestAppRoleLoginAndExpiredToken(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	if err := root.Sys().PutPolicy("broker", brokerPolicy(t)); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	// Tokens that expire after 2s: the Source must log in again by itself.
	if _, err := root.Logical().Write("auth/approle/role/broker", map[string]any{
		"token_policies": "broker", "token_ttl": "2s", "token_max_ttl": "2s", "secret_id_num_uses": 0,
	}); err != nil {
		t.Fatal(err)
	}
	sec, err := root.Logical().Read("auth/approle/role/broker/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID := sec.Data["role_id"].(string)
	sec, err = root.Logical().Write("auth/approle/role/broker/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	secretID := sec.Data["secret_id"].(string)
	secretFile := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(secretFile, []byte(secretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	st := vault.Settings{Addr: v.Addr, RoleID: roleID, SecretIDFile: secretFile}.WithDefaults()
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := vault.Open(st, t.TempDir(), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	kp := keyPair(t, s, tenantA)
	sum := sha256.Sum256([]byte("after login"))
	if _, err := kp.Signer.Sign(nil, sum[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the token expires
	sig, err := kp.Signer.Sign(nil, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("sign after the token expired: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(certKey(t, kp), crypto.SHA256, sum[:], sig); err != nil {
		t.Error(err)
	}
	if strings.Contains(logs.String(), secretID) || strings.Contains(logs.String(), roleID) {
		t.Error("the log holds AppRole credentials")
	}

	// A wrong secret ID: unavailable, and no credential in the error.
	if err := os.WriteFile(secretFile, []byte("not-the-secret-id"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := vault.Open(st, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s2.KeyPair(context.Background(), tenantA)
	if !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("KeyPair with a wrong secret ID: %v; want ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "not-the-secret-id") {
		t.Errorf("the error shows the secret ID: %v", err)
	}
}

func TestOutageAndRecovery(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	// A token with a recognisable value, to check it appears in no error and no log line.
	const secretToken = "outage-test-token-0123456789"
	if err := root.Sys().PutPolicy("broker", brokerPolicy(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Auth().Token().Create(&api.TokenCreateRequest{ID: secretToken, Policies: []string{"broker"}}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s := newSource(t, v.Client(t, secretToken), "", func(o *vault.Options) {
		o.Timeout = time.Second
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	a := keyPair(t, s, tenantA)
	sum := sha256.Sum256([]byte("during the outage"))
	sign := func() error {
		sig, err := a.Signer.Sign(nil, sum[:], crypto.SHA256)
		if err == nil {
			err = rsa.VerifyPKCS1v15(certKey(t, a), crypto.SHA256, sum[:], sig)
		}
		return err
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	var errs []error
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, keys.ErrUnavailable) {
			t.Errorf("%s: %v; want an error wrapping keys.ErrUnavailable", what, err)
		}
		errs = append(errs, err)
	}

	v.Seal(t)
	start := time.Now()
	check("sign while sealed", sign())
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("sign while sealed took %v; the 1s timeout should bound it", d)
	}
	_, err := s.KeyPair(context.Background(), tenantB)
	check("KeyPair of a new tenant while sealed", err)
	check("Ping while sealed", s.Ping(context.Background()))

	v.Unseal(t)
	// The same Source, the same signer: no restart.
	if err := sign(); err != nil {
		t.Errorf("sign after unseal: %v", err)
	}
	if _, err := s.KeyPair(context.Background(), tenantB); err != nil {
		t.Errorf("KeyPair after unseal: %v", err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping after unseal: %v", err)
	}

	// Vault stopped: connection refused.
	v.Stop(t)
	check("sign with vault stopped", sign())
	check("Ping with vault stopped", s.Ping(context.Background()))

	// Nothing listening at all (a broker pointed at a closed port).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	cfg := api.DefaultConfig()
	cfg.Address = closed
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(secretToken)
	_, err = newSource(t, c, "", func(o *vault.Options) { o.Timeout = time.Second }).KeyPair(context.Background(), tenantA)
	check("KeyPair with nothing listening", err)

	for _, err := range errs {
		if err != nil && strings.Contains(err.Error(), secretToken) {
			t.Errorf("an error shows the token: %v", err)
		}
	}
	if strings.Contains(logs.String(), secretToken) {
		t.Error("the log shows the token")
	}
	t.Logf("while sealed: %v", errs[0])
}
