package local_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/local"
)

// clock is the injected time; certificates carry whole seconds.
var clock = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func now() time.Time { return clock }

func newSource(t *testing.T, dir string) *local.Source {
	t.Helper()
	s, err := local.New(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keyPair(t *testing.T, s *local.Source, tenant string) *keys.KeyPair {
	t.Helper()
	kp, err := s.KeyPair(context.Background(), tenant)
	if err != nil {
		t.Fatalf("KeyPair(%q): %v", tenant, err)
	}
	return kp
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func rsaPublic(t *testing.T, kp *keys.KeyPair) *rsa.PublicKey {
	t.Helper()
	pub, ok := kp.Signer.Public().(*rsa.PublicKey)
	if !ok {
		t.Fatalf("signer's public key is %T; want RSA", kp.Signer.Public())
	}
	return pub
}

func TestFirstKeyPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	s := newSource(t, dir)
	kp := keyPair(t, s, "acme")

	if got := rsaPublic(t, kp).N.BitLen(); got != 2048 {
		t.Errorf("key is %d bits; want 2048", got)
	}
	if diff := cmp.Diff([]string{"acme.crt", "acme.key"}, listDir(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if m := mode(t, filepath.Join(dir, "acme.key")); m != 0o600 {
		t.Errorf("key file mode %o; want 600", m)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("key directory mode %o; want 700", m)
	}

	cert := kp.Certificate
	if !rsaPublic(t, kp).Equal(cert.PublicKey) {
		t.Error("the certificate's public key is not the signer's")
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("the certificate does not verify with its own key (not self-signed through the signer): %v", err)
	}
	if !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		t.Errorf("issuer %s differs from subject %s", cert.Issuer, cert.Subject)
	}
	if !strings.Contains(cert.Subject.CommonName, "acme") {
		t.Errorf("subject %q does not name the tenant", cert.Subject.CommonName)
	}
	if want := clock.Add(-time.Hour); !cert.NotBefore.Equal(want) {
		t.Errorf("NotBefore %v; want %v (injected clock - 1h)", cert.NotBefore, want)
	}
	if want := clock.Add(keys.CertificateValidity); !cert.NotAfter.Equal(want) {
		t.Errorf("NotAfter %v; want %v", cert.NotAfter, want)
	}

	// The signer signs what the certificate verifies.
	sum := sha256.Sum256([]byte("saml-bindings 3.4.4.1 octets"))
	sig, err := kp.Signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(x509.SHA256WithRSA, []byte("saml-bindings 3.4.4.1 octets"), sig); err != nil {
		t.Errorf("a signature by the signer does not verify with the certificate: %v", err)
	}

	// The files hold that key and that certificate.
	kb, _ := pem.Decode(mustRead(t, filepath.Join(dir, "acme.key")))
	if kb == nil || kb.Type != "PRIVATE KEY" {
		t.Fatalf("key file is not a PKCS#8 PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !rsaPublic(t, kp).Equal(k.(crypto.Signer).Public()) {
		t.Error("the key file holds another key")
	}
	cb, _ := pem.Decode(mustRead(t, filepath.Join(dir, "acme.crt")))
	if cb == nil || !bytes.Equal(cb.Bytes, cert.Raw) {
		t.Error("the certificate file holds another certificate")
	}

	// The same Source answers from its cache with the same pair.
	if again := keyPair(t, s, "acme"); !again.Certificate.Equal(cert) {
		t.Error("a second KeyPair call returned another certificate")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExistingDirectoryIsRestricted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	newSource(t, dir)
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("an existing 0755 key directory is left at %o; want 700", m)
	}
}

func TestSecondSourceSameDirectory(t *testing.T) {
	dir := t.TempDir()
	first := keyPair(t, newSource(t, dir), "acme")
	// A new Source (a restart) reads the files; a different clock must not matter.
	s2, err := local.New(dir, func() time.Time { return clock.Add(1000 * time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	second := keyPair(t, s2, "acme")
	if !second.Certificate.Equal(first.Certificate) {
		t.Error("after a restart the certificate changed")
	}
	if !rsaPublic(t, second).Equal(rsaPublic(t, first)) {
		t.Error("after a restart the key changed")
	}
	k1, _ := first.Signer.(*rsa.PrivateKey)
	k2, _ := second.Signer.(*rsa.PrivateKey)
	if k1 == nil || k2 == nil || !k1.Equal(k2) {
		t.Error("after a restart the private key differs")
	}
}

func TestTenantsGetDifferentKeys(t *testing.T) {
	s := newSource(t, t.TempDir())
	a, b := keyPair(t, s, "acme"), keyPair(t, s, "globex")
	if rsaPublic(t, a).Equal(rsaPublic(t, b)) {
		t.Error("two tenants share a key")
	}
	if a.Certificate.Equal(b.Certificate) {
		t.Error("two tenants share a certificate")
	}
}

func TestForget(t *testing.T) {
	dir := t.TempDir()
	s := newSource(t, dir)
	ctx := context.Background()
	old := keyPair(t, s, "acme")
	keep := keyPair(t, s, "globex")
	if err := s.Forget(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"globex.crt", "globex.key"}, listDir(t, dir)); diff != "" {
		t.Errorf("files after Forget (-want +got):\n%s", diff)
	}
	// Forgetting twice, or a tenant that never had keys, is fine.
	for _, id := range []string{"acme", "never-seen"} {
		if err := s.Forget(ctx, id); err != nil {
			t.Errorf("Forget(%q): %v", id, err)
		}
	}
	fresh := keyPair(t, s, "acme")
	if rsaPublic(t, fresh).Equal(rsaPublic(t, old)) {
		t.Error("after Forget, KeyPair returned the old key")
	}
	if m := mode(t, filepath.Join(dir, "acme.key")); m != 0o600 {
		t.Errorf("new key file mode %o", m)
	}
	if again := keyPair(t, newSource(t, dir), "globex"); !again.Certificate.Equal(keep.Certificate) {
		t.Error("Forget of one tenant changed another's key")
	}
	if err := s.Forget(ctx, "../globex"); err == nil {
		t.Error("Forget accepted a path as tenant id")
	}
	if diff := cmp.Diff([]string{"acme.crt", "acme.key", "globex.crt", "globex.key"}, listDir(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestKeyFileReadableByOthers(t *testing.T) {
	for _, m := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		t.Run(m.String(), func(t *testing.T) {
			dir := t.TempDir()
			keyPair(t, newSource(t, dir), "acme")
			if err := os.Chmod(filepath.Join(dir, "acme.key"), m); err != nil {
				t.Fatal(err)
			}
			before := mustRead(t, filepath.Join(dir, "acme.key"))
			kp, err := newSource(t, dir).KeyPair(context.Background(), "acme")
			if err == nil {
				t.Fatalf("a key file with mode %o is used: %v", m, kp.Certificate.Subject)
			}
			if !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), "acme.key") {
				t.Errorf("error %q does not tell to chmod 600 acme.key", err)
			}
			if !bytes.Equal(before, mustRead(t, filepath.Join(dir, "acme.key"))) {
				t.Error("the refused key file was replaced")
			}
		})
	}
}

func TestBadTenantID(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "keys")
	s := newSource(t, dir)
	for _, id := range []string{"../evil", "..", "a/b", `a\b`, "", ".hidden", "acme.key", "x\x00y", strings.Repeat("a", 129), "tenant id"} {
		t.Run(id, func(t *testing.T) {
			if kp, err := s.KeyPair(context.Background(), id); err == nil {
				t.Errorf("KeyPair(%q) = %v; want an error", id, kp.Certificate.Subject)
			}
		})
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("files made in the key directory: %v", names)
	}
	if diff := cmp.Diff([]string{"keys"}, listDir(t, root)); diff != "" {
		t.Errorf("files made next to the key directory (-want +got):\n%s", diff)
	}
	// The longest allowed id works.
	keyPair(t, s, strings.Repeat("a", 128))
}

func TestConcurrentFirstUse(t *testing.T) {
	dir := t.TempDir()
	s := newSource(t, dir)
	const n = 16
	var wg sync.WaitGroup
	certs := make([][]byte, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			tenant := "acme"
			if i%4 == 3 {
				tenant = "globex"
			}
			kp, err := s.KeyPair(context.Background(), tenant)
			errs[i] = err
			if err == nil {
				certs[i] = kp.Certificate.Raw
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ref := 0
		if i%4 == 3 {
			ref = 3
		}
		if !bytes.Equal(certs[i], certs[ref]) {
			t.Errorf("caller %d got another certificate than caller %d", i, ref)
		}
	}
	if bytes.Equal(certs[0], certs[3]) {
		t.Error("two tenants share a certificate")
	}
	if diff := cmp.Diff([]string{"acme.crt", "acme.key", "globex.crt", "globex.key"}, listDir(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	// What is on disk is what the callers got.
	if got := keyPair(t, newSource(t, dir), "acme"); !bytes.Equal(got.Certificate.Raw, certs[0]) {
		t.Error("the certificate on disk is not the one handed out")
	}
}

// TestCertificateMissing: the key file is the secret that matters; if its certificate is gone
// (deleted by hand, restored from a partial backup), KeyPair must not silently replace the key:
// every app trusting the tenant's metadata would break and the old key would be lost.
func TestCertificateMissing(t *testing.T) {
	dir := t.TempDir()
	orig := keyPair(t, newSource(t, dir), "acme")
	keyFile := filepath.Join(dir, "acme.key")
	before := mustRead(t, keyFile)
	if err := os.Remove(filepath.Join(dir, "acme.crt")); err != nil {
		t.Fatal(err)
	}
	kp, err := newSource(t, dir).KeyPair(context.Background(), "acme")
	if !bytes.Equal(before, mustRead(t, keyFile)) {
		t.Errorf("the key file was replaced because its certificate was missing (KeyPair err=%v)", err)
	}
	if err == nil && !rsaPublic(t, kp).Equal(rsaPublic(t, orig)) {
		t.Error("KeyPair returned a new key instead of the one on disk")
	}
}

func TestDamagedFiles(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		wantErr string
	}{
		{"key file not PEM", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "acme.key"), []byte("garbage")) }, "no PKCS#8 private key"},
		{"certificate of another key", func(t *testing.T, dir string) {
			keyPair(t, newSource(t, dir), "globex")
			writeFile(t, filepath.Join(dir, "acme.crt"), mustRead(t, filepath.Join(dir, "globex.crt")))
		}, "does not match"},
		{"certificate file not PEM", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "acme.crt"), []byte("garbage")) }, "holds no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keyPair(t, newSource(t, dir), "acme")
			tt.damage(t, dir)
			_, err := newSource(t, dir).KeyPair(context.Background(), "acme")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("KeyPair = %v; want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
