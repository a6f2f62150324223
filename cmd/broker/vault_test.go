package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/sloworks/broker/keys/vault"
	"github.com/sloworks/broker/keys/vault/vaulttest"
)

const opToken = "vault-test-operator-token"

// metadataCerts serves one of the tenant's metadata documents and returns its signing certificates.
func metadataCerts(t *testing.T, srv *server, path string) []*x509.Certificate {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.echo.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
	}
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(rec.Body.Bytes(), &ed); err != nil {
		t.Fatal(err)
	}
	var kds []saml.KeyDescriptor
	if len(ed.IDPSSODescriptors) > 0 {
		kds = ed.IDPSSODescriptors[0].KeyDescriptors
	} else {
		kds = ed.SPSSODescriptors[0].KeyDescriptors
	}
	var out []*x509.Certificate
	for _, kd := range kds {
		der, _ := base64.StdEncoding.DecodeString(kd.KeyInfo.X509Data.X509Certificates[0].Data)
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestMigrateToVaultKeepsMetadata: a tenant made with local keys keeps its published certificate
// when the broker is configured with Vault (adopted), and after broker keys migrate (imported into
// Transit): the Vault-held key then signs, verifiably with the unchanged certificate in the
// metadata. A rotation through the API then lists both certificates in both documents, and
// deleting the tenant deletes its Transit key.
func TestMigrateToVaultKeepsMetadata(t *testing.T) {
	v := vaulttest.Start(t)
	token := v.BrokerToken(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	localEnv := map[string]string{"BROKER_DATA_DIR": dataDir, "BROKER_BOOTSTRAP_TOKEN": opToken, "BROKER_LOG_LEVEL": "warn"}
	vaultEnv := map[string]string{"BROKER_VAULT_ADDR": v.Addr, "BROKER_VAULT_TOKEN": token}
	for k, val := range localEnv {
		vaultEnv[k] = val
	}
	start := func(e map[string]string) *server {
		t.Helper()
		cfg, err := loadConfig("serve", []string{"--addr", freeAddr(t)}, env(e))
		if err != nil {
			t.Fatal(err)
		}
		srv, err := newServer(context.Background(), cfg, newLogger(cfg, io.Discard), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.ln.Close(); srv.close() })
		return srv
	}
	ctx := context.Background()

	srv := start(localEnv)
	tn, err := srv.tenants.CreateTenant(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	published := metadataCerts(t, srv, "/t/acme/idp/metadata")
	if len(published) != 1 {
		t.Fatalf("%d certificates", len(published))
	}
	cert := published[0]

	srv = start(vaultEnv) // Vault configured: the local key is adopted, not replaced
	for _, doc := range []string{"/t/acme/idp/metadata", "/t/acme/sp/metadata"} {
		if got := metadataCerts(t, srv, doc); len(got) != 1 || !got[0].Equal(cert) {
			t.Fatalf("%s changed when Vault was configured", doc)
		}
	}

	var out bytes.Buffer
	if err := run([]string{"keys", "migrate", "acme"}, &out, env(vaultEnv)); err != nil {
		t.Fatalf("keys migrate: %v", err)
	}
	if !strings.Contains(out.String(), "imported") {
		t.Fatalf("keys migrate: %s", out.String())
	}

	srv = start(vaultEnv)
	for _, doc := range []string{"/t/acme/idp/metadata", "/t/acme/sp/metadata"} {
		if got := metadataCerts(t, srv, doc); len(got) != 1 || !got[0].Equal(cert) {
			t.Fatalf("%s changed by the migration", doc)
		}
	}
	kp, err := srv.ring.KeyPair(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kp.Signer.(*vault.Signer); !ok {
		t.Fatalf("after migration the broker signs with %T", kp.Signer)
	}
	sum := sha256.Sum256([]byte("<saml:Assertion/>"))
	sig, err := kp.Signer.Sign(nil, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("the Vault-held key's signature does not verify with the metadata certificate: %v", err)
	}

	call := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+opToken)
		srv.echo.ServeHTTP(rec, req)
		return rec
	}
	if rec := call("POST", "/api/v1/tenants/acme/keys/rotate"); rec.Code != http.StatusCreated {
		t.Fatalf("rotate: %d %s", rec.Code, rec.Body)
	}
	for _, doc := range []string{"/t/acme/idp/metadata", "/t/acme/sp/metadata"} {
		if got := metadataCerts(t, srv, doc); len(got) != 2 || !got[0].Equal(cert) || got[1].Equal(cert) {
			t.Fatalf("%s after rotation: %d certificates, want the current one and the next", doc, len(got))
		}
	}
	if rec := call("DELETE", "/api/v1/tenants/acme"); rec.Code/100 != 2 {
		t.Fatalf("delete tenant: %d %s", rec.Code, rec.Body)
	}
	if sec, err := v.Root(t).Logical().Read("transit/keys/broker-" + tn.ID); err != nil || sec != nil {
		t.Errorf("the deleted tenant's Transit key is still there: %v, %v", sec, err)
	}
}
