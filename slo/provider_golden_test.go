package slo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/auth0"
	"github.com/sloworks/broker/providers/generic"
	"github.com/sloworks/broker/providers/salesforce"
)

// providerCase is one provider's connection, opened from its fixtures as the broker would.
type providerCase struct {
	name     string // golden file stem: logout-NAME.*
	provider providers.Provider
	fixture  string // metadata in the provider package's testdata
	config   map[string]any
}

var providerCases = []providerCase{
	{"generic", generic.New(), "../providers/generic/testdata/generic-metadata.xml", nil},
	{"okta", generic.Okta(), "../providers/generic/testdata/okta-metadata.xml", nil},
	{"entra", generic.Entra(), "../providers/generic/testdata/entra-metadata.xml", nil},
	{"adfs", generic.ADFS(), "../providers/generic/testdata/adfs-metadata.xml", nil},
	{"keycloak", generic.Keycloak(), "../providers/generic/testdata/keycloak-metadata.xml", nil},
	{"google", generic.Google(), "../providers/generic/testdata/google-metadata.xml", nil},
	{"salesforce", salesforce.New(), "../providers/salesforce/testdata/salesforce-idp-metadata.xml", map[string]any{"my_domain": "acme"}},
	{"salesforce-post", salesforce.New(), "../providers/salesforce/testdata/salesforce-idp-metadata.xml",
		map[string]any{"my_domain": "acme", "slo_binding": "post"}},
	{"salesforce-selected-post", salesforce.New(), "../providers/salesforce/testdata/salesforce-idp-metadata.xml",
		map[string]any{"my_domain": "acme", "slo_use_sso_signature_method": true, "slo_binding": "post"}},
	{"auth0", auth0.New(), "../providers/auth0/testdata/auth0-metadata.xml", map[string]any{"domain": "acme.us.auth0.com", "client_id": "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"}},
}

const goldenRelayState = "_lo0001"

// goldenLeg plans the upstream leg of one logout toward peer, with a fixed clock and counter IDs.
func goldenLeg(peer *Peer) *Leg {
	n := 0
	p := MakePlan(PlanInput{Upstream: peer, Apps: nil, Browser: true, Issuer: "https://broker.example/t/acme/idp/metadata",
		UpstreamIssuer: "https://broker.example/t/acme/sp/metadata", Reason: ReasonUser, Now: t0, Timeout: 5 * time.Second,
		NewID: func() string { n++; return fmt.Sprintf("_lr%04d", n) }})
	if p.Upstream != nil {
		return p.Upstream
	}
	return p.Front[0]
}

// emit is the signed message of a leg in its channel: a Redirect URL (query signature), or the
// enveloped-signed XML (POST, SOAP), as the engine sends it (SendFront, RunBack).
func emit(t *testing.T, l *Leg) (redirectURL string, xml []byte) {
	t.Helper()
	alg := l.SigAlg
	if alg == "" {
		alg = binding.SigAlgRSASHA256
	}
	s := goldenSigner(t, alg)
	switch l.Channel {
	case ChannelRedirect, ChannelIframe:
		if l.Endpoint.Binding == providers.BindingRedirect {
			u, err := RedirectURL(l.Endpoint.Location, l.Request, goldenRelayState, s)
			if err != nil {
				t.Fatal(err)
			}
			return u, binding.Serialize(l.Request.Element())
		}
	}
	x, err := SignedXML(l.Request, s)
	if err != nil {
		t.Fatal(err)
	}
	return "", x
}

func upstreamPeer(t *testing.T, c providerCase) *Peer {
	t.Helper()
	doc, err := os.ReadFile(c.fixture)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	for k, v := range c.config {
		cfg[k] = v
	}
	if _, ok := c.provider.(*auth0.Provider); !ok {
		cfg["metadata_url"] = "https://idp.example/metadata"
	}
	raw, _ := json.Marshal(cfg)
	up, err := c.provider.Load(raw, doc, providers.Env{})
	if err != nil {
		t.Fatalf("%s: open the connection: %v", c.name, err)
	}
	return &Peer{Upstream: true, ID: "c1", Name: c.name, EntityID: up.EntityID, SLO: up.SLO, Certs: up.SigningCerts, Quirks: up.Quirks,
		NameID: NameID{Value: "alice@acme.example", Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
			NameQualifier: up.EntityID, SPNameQualifier: "https://broker.example/t/acme/sp/metadata"},
		SessionIndexes: []string{"_idp-session-1", "_idp-session-2"}}
}

// TestGoldenProviderLogout: the LogoutRequest each provider's connection makes the broker send
// (fixtures of its package, fixed clock and IDs, the golden key) is stable: testdata/logout-NAME
// .golden.xml (the XML; signed for POST and SOAP) and, for the Redirect binding,
// logout-NAME.redirect.golden.txt (the URL with its query signature). Google has no SAML logout:
// nothing is sent. Rewrite with go test ./slo -run Golden -update and review the diff.
func TestGoldenProviderLogout(t *testing.T) {
	for _, c := range providerCases {
		t.Run(c.name, func(t *testing.T) {
			l := goldenLeg(upstreamPeer(t, c))
			if c.name == "google" {
				if l.Channel != ChannelNone {
					t.Fatalf("google: channel %s; want none (no SAML logout)", l.Channel)
				}
				return
			}
			u, x := emit(t, l)
			golden(t, "logout-"+c.name+".golden.xml", append(x, '\n'))
			if u != "" {
				golden(t, "logout-"+c.name+".redirect.golden.txt", []byte(u+"\n"))
			}
			switch c.name {
			case "salesforce":
				if u == "" || !strings.Contains(u, url.QueryEscape(binding.SigAlgRSASHA1)) || strings.Count(string(x), "<samlp:SessionIndex>") != 1 {
					t.Errorf("salesforce: want a Redirect signed RSA-SHA1 with exactly one SessionIndex:\n%s\n%s", u, x)
				}
			case "salesforce-post":
				if u != "" || !bytes.Contains(x, []byte(`Algorithm="`+binding.SigAlgRSASHA1+`"`)) || !bytes.Contains(x, []byte(`Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"`)) {
					t.Errorf("salesforce by POST: want RSA-SHA1 with a SHA-1 digest:\n%s", x)
				}
			case "salesforce-selected-post", "auth0":
				if u != "" || !bytes.Contains(x, []byte(binding.SigAlgRSASHA256)) {
					t.Errorf("%s: want a POST message signed RSA-SHA256:\n%s", c.name, x)
				}
			}
		})
	}
	// Salesforce as an app: the broker's LogoutRequest to it.
	t.Run("salesforce-app", func(t *testing.T) {
		app := &Peer{ID: "a1", Name: "crm", EntityID: "https://acme.my.salesforce.com",
			SLO:    []providers.Endpoint{{Binding: providers.BindingRedirect, Location: "https://acme.my.salesforce.com/services/auth/sp/saml2/logout"}},
			Quirks: salesforce.AppQuirks(false), NameID: NameID{Value: "_pw-alice", Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"},
			SessionIndexes: []string{"_app-session-1", "_app-session-2"}}
		l := goldenLeg(app)
		l.Channel = ChannelRedirect // the iframe's request: the same Redirect URL
		u, x := emit(t, l)
		golden(t, "logout-salesforce-app.golden.xml", append(x, '\n'))
		golden(t, "logout-salesforce-app.redirect.golden.txt", []byte(u+"\n"))
		if !strings.Contains(u, url.QueryEscape(binding.SigAlgRSASHA1)) || strings.Count(string(x), "<samlp:SessionIndex>") != 1 {
			t.Errorf("salesforce app: want RSA-SHA1 and exactly one SessionIndex:\n%s\n%s", u, x)
		}
	})
}

// TestGoldenProviderLogoutVerify: every signed golden logout message verifies independently:
// the enveloped signatures with xmlsec1, the Redirect query signatures with openssl dgst over the
// raw query octets; a tampered copy of each fails.
func TestGoldenProviderLogoutVerify(t *testing.T) {
	files, _ := filepath.Glob("testdata/logout-*.golden.xml")
	redirects, _ := filepath.Glob("testdata/logout-*.redirect.golden.txt")
	if len(files) < 8 || len(redirects) < 2 {
		t.Fatalf("golden logout files missing (%d XML, %d Redirect): go test ./slo -run Golden -update", len(files), len(redirects))
	}
	signed := 0
	for _, f := range files {
		doc, _ := os.ReadFile(f)
		if !bytes.Contains(doc, []byte("SignatureValue")) {
			continue // the XML of a Redirect message: its signature is in the query
		}
		signed++
		if err := xmlsec(t, f, "testdata/golden-cert.pem", "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest"); err != nil {
			t.Errorf("%s: xmlsec1 refused: %v", f, err)
		}
		tf := filepath.Join(t.TempDir(), "tampered.xml")
		os.WriteFile(tf, bytes.Replace(doc, []byte("alice@acme.example"), []byte("bob@acme.example"), 1), 0o644)
		if err := xmlsec(t, tf, "testdata/golden-cert.pem", "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest"); err == nil {
			t.Errorf("%s: xmlsec1 accepted a tampered copy", f)
		}
	}
	if signed < 2 {
		t.Errorf("only %d enveloped-signed golden logout messages", signed)
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl missing (apt-get install openssl)")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.pem")
	if out, err := exec.Command(openssl, "x509", "-in", "testdata/golden-cert.pem", "-pubkey", "-noout", "-out", pub).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	for _, f := range redirects {
		b, _ := os.ReadFile(f)
		u, err := url.Parse(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		// saml-bindings 3.4.4.1: SAMLRequest, RelayState, SigAlg, exactly as in the query.
		raw := map[string]string{}
		for _, kv := range strings.Split(u.RawQuery, "&") {
			k, v, _ := strings.Cut(kv, "=")
			raw[k] = v
		}
		octets := "SAMLRequest=" + raw["SAMLRequest"] + "&RelayState=" + raw["RelayState"] + "&SigAlg=" + raw["SigAlg"]
		sigB64, _ := url.QueryUnescape(raw["Signature"])
		sig, err := base64.StdEncoding.DecodeString(sigB64)
		if err != nil {
			t.Fatalf("%s: Signature: %v", f, err)
		}
		alg, _ := url.QueryUnescape(raw["SigAlg"])
		digest := "-sha256"
		if alg == binding.SigAlgRSASHA1 {
			digest = "-sha1"
		}
		sigFile := filepath.Join(dir, "sig.bin")
		os.WriteFile(sigFile, sig, 0o644)
		for _, tampered := range []bool{false, true} {
			data := octets
			if tampered {
				data = strings.Replace(octets, "RelayState="+raw["RelayState"], "RelayState=_lo0002", 1)
			}
			msg := filepath.Join(dir, "signed.txt")
			os.WriteFile(msg, []byte(data), 0o644)
			out, err := exec.Command(openssl, "dgst", digest, "-verify", pub, "-signature", sigFile, msg).CombinedOutput()
			if (err == nil) == tampered {
				t.Errorf("%s tampered=%v: openssl dgst %s ok=%v\n%s", f, tampered, digest, err == nil, out)
			}
		}
	}
}
