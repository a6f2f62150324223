package vault_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/sloworks/broker/binding"
)

// needTool finds a binary for an independent check: skipped when missing, fatal on CI.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (apt-get install %s)", name, name)
		}
		t.Skipf("%s not installed (apt-get install %s)", name, name)
	}
	return p
}

const assertionXML = `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1b2c3d4e5f6" Version="2.0" IssueInstant="2026-03-04T05:06:07Z">` +
	`<saml:Issuer>https://sso.example.com/t/acme/idp/metadata</saml:Issuer>` +
	`<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">alice</saml:NameID></saml:Subject>` +
	`</saml:Assertion>`

// TestXMLSignatureVerifiesWithXmlsec1: an assertion signed through Transit (goxmldsig's signing
// context over the crypto.Signer) verifies with xmlsec1 against the certificate, and a changed
// copy does not.
func TestXMLSignatureVerifiesWithXmlsec1(t *testing.T) {
	xmlsec := needTool(t, "xmlsec1")
	v := startVault(t)
	kp := keyPair(t, newSource(t, v.Root(t), ""), tenantA)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.Certificate.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	verify := func(file string) (bool, string) {
		out, err := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", certFile,
			"--enabled-reference-uris", "empty,same-doc",
			"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", file).CombinedOutput()
		if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
			t.Fatalf("xmlsec1: %v\n%s", err, out)
		}
		return err == nil, string(out)
	}
	for _, alg := range []string{binding.SigAlgRSASHA256, binding.SigAlgRSASHA1} {
		t.Run(alg[strings.LastIndex(alg, "#")+1:], func(t *testing.T) {
			doc := etree.NewDocument()
			if err := doc.ReadFromString(assertionXML); err != nil {
				t.Fatal(err)
			}
			if err := binding.SignEnveloped(doc.Root(), kp.Signer, kp.Certificate, alg); err != nil {
				t.Fatalf("SignEnveloped through Transit: %v", err)
			}
			signed, err := doc.WriteToBytes()
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "signed.xml")
			if err := os.WriteFile(file, signed, 0o644); err != nil {
				t.Fatal(err)
			}
			if ok, out := verify(file); !ok {
				t.Fatalf("xmlsec1 rejects the assertion signed through Transit:\n%s\n%s", out, signed)
			}
			// The broker's own verifier agrees.
			back := etree.NewDocument()
			if err := back.ReadFromBytes(signed); err != nil {
				t.Fatal(err)
			}
			if _, err := binding.VerifyEnveloped(back.Root(), []*x509.Certificate{kp.Certificate}, true); err != nil {
				t.Errorf("VerifyEnveloped: %v", err)
			}
			tampered := bytes.Replace(signed, []byte(">alice<"), []byte(">mallory<"), 1)
			if err := os.WriteFile(file, tampered, 0o644); err != nil {
				t.Fatal(err)
			}
			if ok, _ := verify(file); ok {
				t.Error("xmlsec1 accepts a copy with another NameID")
			}
		})
	}
}

// TestRedirectSignatureVerifiesWithOpenssl: a Redirect-binding query signed through Transit
// (saml-bindings 3.4.4.1) verifies with openssl dgst over the signed octets.
func TestRedirectSignatureVerifiesWithOpenssl(t *testing.T) {
	openssl := needTool(t, "openssl")
	v := startVault(t)
	kp := keyPair(t, newSource(t, v.Root(t), ""), tenantA)
	dir := t.TempDir()
	pub, err := x509.MarshalPKIXPublicKey(kp.Certificate.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		t.Fatal(err)
	}
	msg := []byte(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0" IssueInstant="2026-03-04T05:06:07Z"/>`)
	for _, c := range []struct{ alg, dgst string }{{binding.SigAlgRSASHA256, "-sha256"}, {binding.SigAlgRSASHA1, "-sha1"}} {
		u, err := binding.EncodeRedirect("https://idp.example.com/slo", "SAMLRequest", msg, "rs-1", kp.Signer, c.alg)
		if err != nil {
			t.Fatalf("%s: %v", c.alg, err)
		}
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		signed, sigParam, ok := strings.Cut(pu.RawQuery, "&Signature=")
		if !ok {
			t.Fatalf("no Signature in %s", u)
		}
		sigB64, _ := url.QueryUnescape(sigParam)
		sig, err := base64.StdEncoding.DecodeString(sigB64)
		if err != nil {
			t.Fatal(err)
		}
		data, sigFile := filepath.Join(dir, "octets"), filepath.Join(dir, "sig")
		os.WriteFile(data, []byte(signed), 0o644)
		os.WriteFile(sigFile, sig, 0o644)
		if out, err := exec.Command(openssl, "dgst", c.dgst, "-verify", pubFile, "-signature", sigFile, data).CombinedOutput(); err != nil {
			t.Errorf("%s: openssl dgst rejects the query signature: %v\n%s", c.alg, err, out)
		}
		r, err := binding.DecodeRedirect(pu.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Verify([]*x509.Certificate{kp.Certificate}, true); err != nil {
			t.Errorf("%s: Redirect.Verify: %v", c.alg, err)
		}
	}
}
