package sso

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/keys"
)

var update = flag.Bool("update", false, "rewrite golden files")

func goldenKeyPair(t *testing.T) *keys.KeyPair {
	t.Helper()
	kb, err := os.ReadFile("testdata/golden-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := os.ReadFile("testdata/golden-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	kblock, _ := pem.Decode(kb)
	k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cblock, _ := pem.Decode(cb)
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		t.Fatal("golden key is not a signer")
	}
	return &keys.KeyPair{Signer: signer, Certificate: cert}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./sso -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the broker emits now; if the change is intended, run go test ./sso -run Golden -update and review the diff\n--- got:\n%s", name, got)
	}
}

func goldenHandler() *Handler {
	base, _ := url.Parse("https://broker.example")
	n := 0
	return New(Config{BaseURL: base, NewID: func() string { n++; return fmt.Sprintf("_id%04d", n) }}, nil, nil, nil, slog.New(slog.DiscardHandler), nil)
}

var goldenTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestGoldenMetadata(t *testing.T) {
	h := goldenHandler()
	kp := goldenKeyPair(t)
	for name, ed := range map[string]*saml.EntityDescriptor{
		"idp-metadata.golden.xml": h.IdPMetadata("acme", kp.Certificates(), goldenTime),
		"sp-metadata.golden.xml":  h.SPMetadata("acme", kp.Certificates(), goldenTime),
	} {
		out, err := MarshalMetadata(ed)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, out)
	}
}

func TestGoldenResponse(t *testing.T) {
	h := goldenHandler()
	kp := goldenKeyPair(t)
	s := &db.Session{ID: "s1", TenantID: "t1", NameID: "alice@acme.example", NameIDFormat: string(saml.EmailAddressNameIDFormat),
		CreatedAt: goldenTime.Add(-time.Minute), ExpiresAt: goldenTime.Add(8 * time.Hour)}
	p := &db.Participant{NameID: s.NameID, NameIDFormat: s.NameIDFormat, SessionIndex: "_si0001"}
	attrs := []saml.Attribute{{Name: "mail", Values: []saml.AttributeValue{{Type: "xs:string", Value: "alice@acme.example"}}}}
	for _, signResponse := range []bool{false, true} {
		app := &db.App{EntityID: "https://wiki.example/metadata", SignResponse: signResponse}
		tgt := issueTarget{acs: "https://wiki.example/acs", inResponseTo: "_appreq1", relayState: "r"}
		out, err := h.BuildResponse("acme", kp, s, p, app, tgt, attrs, goldenTime)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, fmt.Sprintf("response-signed-response-%v.golden.xml", signResponse), append(out, '\n'))
	}
}

// TestGoldenXmlsec1 checks the golden Responses with xmlsec1, an independent implementation,
// against the golden certificate, and that a tampered copy fails.
func TestGoldenXmlsec1(t *testing.T) {
	xmlsec, err := exec.LookPath("xmlsec1")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("xmlsec1 is missing (apt-get install xmlsec1)")
		}
		t.Skip("xmlsec1 not installed (apt-get install xmlsec1)")
	}
	for _, name := range []string{"response-signed-response-false.golden.xml", "response-signed-response-true.golden.xml"} {
		doc, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, tampered := range []bool{false, true} {
			d := doc
			if tampered {
				d = bytes.Replace(doc, []byte("alice@acme.example</saml:NameID>"), []byte("mallory@acme.example</saml:NameID>"), 1)
			}
			f := filepath.Join(t.TempDir(), "msg.xml")
			os.WriteFile(f, d, 0o644)
			out, err := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", "testdata/golden-cert.pem",
				"--enabled-reference-uris", "empty,same-doc",
				"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
				"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", f).CombinedOutput()
			if (err == nil) == tampered {
				t.Errorf("%s tampered=%v: xmlsec1 ok=%v\n%s", name, tampered, err == nil, out)
			}
		}
	}
}
