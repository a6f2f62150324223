package slo

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/providers"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func goldenSigner(t testing.TB, alg string) *Signer {
	t.Helper()
	kb, _ := os.ReadFile("testdata/golden-key.pem")
	cb, _ := os.ReadFile("testdata/golden-cert.pem")
	kblock, _ := pem.Decode(kb)
	cblock, _ := pem.Decode(cb)
	if kblock == nil || cblock == nil {
		t.Fatal("golden key or certificate missing")
	}
	k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{Key: k.(crypto.Signer), Cert: c, SigAlg: alg}
}

func sampleRequest() *LogoutRequest {
	return &LogoutRequest{
		ID: "_lr1", IssueInstant: t0, Destination: "https://idp.example/slo", Issuer: "https://broker.example/t/acme/sp/metadata",
		NotOnOrAfter: t0.Add(5 * time.Minute), Reason: ReasonUser,
		NameID:         NameID{Value: "alice@acme.example", Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:transient", NameQualifier: "https://idp.example", SPNameQualifier: "https://broker.example/t/acme/sp/metadata"},
		SessionIndexes: []string{"_s1", "_s2"},
	}
}

func sampleResponse() *LogoutResponse {
	return &LogoutResponse{
		ID: "_resp1", InResponseTo: "_lr1", IssueInstant: t0, Destination: "https://app.example/slo", Issuer: "https://broker.example/t/acme/idp/metadata",
		Status: Status{Codes: []string{StatusSuccess, StatusPartialLogout}, Message: "the crm app did not answer"},
	}
}

func TestRoundTrip(t *testing.T) {
	req := sampleRequest()
	got, err := ParseLogoutRequest(req.Element())
	if err != nil {
		t.Fatal(err)
	}
	req.Version = "2.0"
	if d := cmp.Diff(req, got); d != "" {
		t.Errorf("request round trip (-want +got):\n%s", d)
	}
	resp := sampleResponse()
	gotResp, err := ParseLogoutResponse(resp.Element())
	if err != nil {
		t.Fatal(err)
	}
	resp.Version = "2.0"
	if d := cmp.Diff(resp, gotResp); d != "" {
		t.Errorf("response round trip (-want +got):\n%s", d)
	}
	if gotResp.Status.Top() != StatusSuccess || gotResp.Status.Sub() != StatusPartialLogout {
		t.Errorf("status %v", gotResp.Status)
	}
	if s := gotResp.Status.String(); s != "Success / PartialLogout: the crm app did not answer" {
		t.Errorf("status text %q", s)
	}
}

func mustParse(t *testing.T, doc string) *etree.Element {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromString(doc); err != nil {
		t.Fatal(err)
	}
	return d.Root()
}

const hdr = `xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"no NameID", `<samlp:LogoutRequest ` + hdr + ` ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"/>`, "no NameID"},
		{"two NameIDs", `<samlp:LogoutRequest ` + hdr + ` ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:NameID>a</saml:NameID><saml:NameID>b</saml:NameID></samlp:LogoutRequest>`, "more than one NameID"},
		{"encrypted ID", `<samlp:LogoutRequest ` + hdr + ` ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:EncryptedID/></samlp:LogoutRequest>`, "EncryptedID"},
		{"version 1.1", `<samlp:LogoutRequest ` + hdr + ` ID="_1" Version="1.1" IssueInstant="2026-01-01T00:00:00Z"><saml:NameID>a</saml:NameID></samlp:LogoutRequest>`, "Version"},
		{"no ID", `<samlp:LogoutRequest ` + hdr + ` Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:NameID>a</saml:NameID></samlp:LogoutRequest>`, "no ID"},
		{"bad time", `<samlp:LogoutRequest ` + hdr + ` ID="_1" Version="2.0" IssueInstant="yesterday"><saml:NameID>a</saml:NameID></samlp:LogoutRequest>`, "not a time"},
		{"wrong namespace", `<LogoutRequest ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"/>`, "expected a samlp:LogoutRequest"},
		{"response without status", `<samlp:LogoutResponse ` + hdr + ` ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"/>`, "no Status"},
		{"status without code", `<samlp:LogoutResponse ` + hdr + ` ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><samlp:Status/></samlp:LogoutResponse>`, "no StatusCode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el := mustParse(t, tc.doc)
			var err error
			if el.Tag == "LogoutResponse" {
				_, err = ParseLogoutResponse(el)
			} else {
				_, err = ParseLogoutRequest(el)
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v; want ErrMalformed mentioning %q", err, tc.want)
			}
		})
	}
}

// A comment inside the NameID never truncates it (the comment-truncation attack).
func TestNameIDWithComment(t *testing.T) {
	el := mustParse(t, `<samlp:LogoutRequest `+hdr+` ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:NameID>alice@evil.example<!---->.good.example</saml:NameID></samlp:LogoutRequest>`)
	r, err := ParseLogoutRequest(el)
	if err != nil {
		t.Fatal(err)
	}
	if r.NameID.Value != "alice@evil.example.good.example" {
		t.Fatalf("NameID %q", r.NameID.Value)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./slo -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the broker emits; if intended, -update and review\n%s", name, got)
	}
}

func xmlsec(t *testing.T, file string, cert string, idAttr string) error {
	t.Helper()
	bin, err := exec.LookPath("xmlsec1")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("xmlsec1 missing (apt-get install xmlsec1)")
		}
		t.Skip("xmlsec1 not installed")
	}
	out, err := exec.Command(bin, "--verify", "--pubkey-cert-pem", cert, "--enabled-reference-uris", "empty,same-doc", "--id-attr:ID", idAttr, file).CombinedOutput()
	if err != nil {
		return errors.New(string(out))
	}
	return nil
}

// TestGoldenSigned: the POST/SOAP forms of both messages, with RSA-SHA256 and (for peers whose
// quirks need it) RSA-SHA1, are stable and verify with xmlsec1; a tampered copy does not.
func TestGoldenSigned(t *testing.T) {
	for _, alg := range []string{"", binding.SigAlgRSASHA1} {
		for _, m := range []Message{sampleRequest(), sampleResponse()} {
			kind := m.Element().Tag
			name := kind + "-sha256.golden.xml"
			if alg != "" {
				name = kind + "-sha1.golden.xml"
			}
			doc, err := SignedXML(m, goldenSigner(t, alg))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, append(doc, '\n'))
			f := filepath.Join(t.TempDir(), "m.xml")
			os.WriteFile(f, doc, 0o644)
			if err := xmlsec(t, f, "testdata/golden-cert.pem", "urn:oasis:names:tc:SAML:2.0:protocol:"+kind); err != nil {
				t.Errorf("%s: xmlsec1 refused: %v", name, err)
			}
			os.WriteFile(f, bytes.Replace(doc, []byte("alice@acme.example"), []byte("bob@acme.example"), 1), 0o644)
			if kind == "LogoutRequest" {
				if err := xmlsec(t, f, "testdata/golden-cert.pem", "urn:oasis:names:tc:SAML:2.0:protocol:"+kind); err == nil {
					t.Errorf("%s: xmlsec1 accepted a tampered copy", name)
				}
			}
		}
	}
}

// TestBindingsRoundTrip: each binding carries a signed message that verifies on arrival, and the
// verified element is what is read.
func TestBindingsRoundTrip(t *testing.T) {
	s := goldenSigner(t, "")
	certs := []*x509.Certificate{s.Cert}
	req := sampleRequest()

	u, err := RedirectURL("https://idp.example/slo", req, "rs-1", s)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	rd, err := ReadRedirect(pu.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	if rd.Binding != providers.BindingRedirect || rd.RelayState != "rs-1" || !rd.Signed() || rd.Kind() != "LogoutRequest" {
		t.Fatalf("redirect: %+v", rd)
	}
	if strings.Contains(pu.RawQuery, "Signature") && bytes.Contains(mustXML(t, rd.Element), []byte("SignatureValue")) {
		t.Error("Redirect message carries an XML signature; the binding signs the query only")
	}
	if err := rd.Verify(certs, false); err != nil {
		t.Fatalf("redirect verify: %v", err)
	}
	if got, err := ParseLogoutRequest(rd.Element); err != nil || got.SessionIndexes[1] != "_s2" {
		t.Fatalf("redirect parse: %v %v", got, err)
	}
	// Re-encoding the query (here: lowercase percent-escapes) breaks the signature.
	lower := strings.NewReplacer("%2F", "%2f", "%3D", "%3d", "%2B", "%2b").Replace(pu.RawQuery)
	if lower != pu.RawQuery {
		rd2, err := ReadRedirect(lower)
		if err != nil {
			t.Fatal(err)
		}
		if err := rd2.Verify(certs, false); !errors.Is(err, binding.ErrBadSignature) {
			t.Errorf("re-encoded query: %v; want ErrBadSignature", err)
		}
	}

	f, err := POSTForm("https://app.example/slo", sampleResponse(), "rs-2", s)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := ReadPOST(base64.StdEncoding.EncodeToString(f.Message), f.RelayState)
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Verify(certs, false); err != nil {
		t.Fatalf("post verify: %v", err)
	}
	if got, err := ParseLogoutResponse(pr.Element); err != nil || got.Status.Sub() != StatusPartialLogout {
		t.Fatalf("post parse: %v %v", got, err)
	}

	// Unsigned: ErrUnsigned, distinguishable from a bad signature.
	uu, _ := RedirectURL("https://idp.example/slo", req, "", nil)
	pu, _ = url.Parse(uu)
	ru, _ := ReadRedirect(pu.RawQuery)
	if err := ru.Verify(certs, false); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned redirect: %v", err)
	}
	unsigned, _ := SignedXML(req, nil)
	rp, _ := ReadPOST(base64.StdEncoding.EncodeToString(unsigned), "")
	if err := rp.Verify(certs, false); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned post: %v", err)
	}
	// SHA-1 only where allowed.
	sha1Doc, _ := SignedXML(req, goldenSigner(t, binding.SigAlgRSASHA1))
	r1, _ := ReadPOST(base64.StdEncoding.EncodeToString(sha1Doc), "")
	if err := r1.Verify(certs, false); !errors.Is(err, binding.ErrWeakAlgorithm) {
		t.Errorf("sha1 without quirk: %v", err)
	}
	r1, _ = ReadPOST(base64.StdEncoding.EncodeToString(sha1Doc), "")
	if err := r1.Verify(certs, true); err != nil {
		t.Errorf("sha1 with quirk: %v", err)
	}
}

func mustXML(t *testing.T, el *etree.Element) []byte {
	d := etree.NewDocument()
	d.SetRoot(el.Copy())
	b, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseLogoutMessages(f *testing.F) {
	for _, name := range []string{"LogoutRequest-sha256.golden.xml", "LogoutResponse-sha256.golden.xml"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`<samlp:LogoutRequest ` + hdr + ` ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:NameID>a</saml:NameID></samlp:LogoutRequest>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		r, err := ReadPOST(base64.StdEncoding.EncodeToString(doc), "")
		if err != nil {
			return
		}
		ParseLogoutRequest(r.Element)
		ParseLogoutResponse(r.Element)
	})
}
