package metadata_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sloworks/broker/metadata"
)

// certNow is the fixed instant the test certificates are made at.
var certNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testCerts makes two throwaway self-signed certificates (signing, encryption) once per run.
var testCerts = sync.OnceValues(func() ([2]*x509.Certificate, error) {
	var out [2]*x509.Certificate
	for i, cn := range []string{"idp signing", "idp encryption"} {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return out, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 1)),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    certNow.Add(-time.Hour),
			NotAfter:     certNow.Add(24 * time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			return out, err
		}
		if out[i], err = x509.ParseCertificate(der); err != nil {
			return out, err
		}
	}
	return out, nil
})

func certs(t testing.TB) (signing, encryption *x509.Certificate) {
	t.Helper()
	c, err := testCerts()
	if err != nil {
		t.Fatal(err)
	}
	return c[0], c[1]
}

const (
	mdNS      = `xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"`
	redirectB = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	postB     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	artifactB = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
)

// keyDesc is a KeyDescriptor for cert; use may be "" (no use attribute).
func keyDesc(use string, cert *x509.Certificate) string {
	attr := ""
	if use != "" {
		attr = ` use="` + use + `"`
	}
	return `<md:KeyDescriptor` + attr + `><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` +
		base64.StdEncoding.EncodeToString(cert.Raw) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`
}

func endpoint(el, binding, location string) string {
	return fmt.Sprintf(`<md:%s Binding="%s" Location="%s"/>`, el, binding, location)
}

func acs(binding, location string, index int, isDefault string) string {
	d := ""
	if isDefault != "" {
		d = ` isDefault="` + isDefault + `"`
	}
	return fmt.Sprintf(`<md:AssertionConsumerService Binding="%s" Location="%s" index="%d"%s/>`, binding, location, index, d)
}

// idpEntity is an EntityDescriptor with an IDPSSODescriptor holding inner.
func idpEntity(entityID string, inner ...string) string {
	return `<md:EntityDescriptor ` + mdNS + ` entityID="` + entityID + `">` +
		`<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
		strings.Join(inner, "") + `</md:IDPSSODescriptor></md:EntityDescriptor>`
}

// spEntity is an EntityDescriptor with an SPSSODescriptor holding inner.
func spEntity(entityID string, inner ...string) string {
	return `<md:EntityDescriptor ` + mdNS + ` entityID="` + entityID + `">` +
		`<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
		strings.Join(inner, "") + `</md:SPSSODescriptor></md:EntityDescriptor>`
}

func aggregate(children ...string) string {
	return `<md:EntitiesDescriptor ` + mdNS + ` Name="federation">` + strings.Join(children, "") + `</md:EntitiesDescriptor>`
}

// goodIdP is a minimal acceptable IdP with its SSO at sso.
func goodIdP(t testing.TB, entityID, sso string) string {
	sig, _ := certs(t)
	return idpEntity(entityID, keyDesc("signing", sig), endpoint("SingleSignOnService", redirectB, sso))
}

func goodSP(entityID, acsURL string) string {
	return spEntity(entityID, acs(postB, acsURL, 0, ""))
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// idpView is what an admin checks of a parsed IdP.
type idpView struct {
	EntityID     string
	SSO          []saml.Endpoint
	SLO          []saml.Endpoint
	SigningCerts []string // subject CNs
	WantSigned   bool
}

func viewIdP(idp *metadata.IdP) idpView {
	v := idpView{EntityID: idp.EntityID, SSO: idp.SSO, SLO: idp.SLO, WantSigned: idp.WantAuthnRequestsSigned}
	for _, c := range idp.SigningCerts {
		v.SigningCerts = append(v.SigningCerts, c.Subject.CommonName)
	}
	return v
}

// wantRefusal checks that err is a *metadata.Error whose message has every part of want.
func wantRefusal(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error containing %q", want)
	}
	var me *metadata.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *metadata.Error", err, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestParseIdP(t *testing.T) {
	sig, enc := certs(t)
	const eid = "https://idp.example/metadata"
	sso := saml.Endpoint{Binding: redirectB, Location: "https://idp.example/sso"}
	ssoXML := endpoint("SingleSignOnService", sso.Binding, sso.Location)
	signing := keyDesc("signing", sig)
	ssp := readTestdata(t, "ssp-idp-metadata.xml")

	tests := []struct {
		name      string
		doc       string
		allowHTTP bool
		want      *idpView // nil: refused
		wantErr   []string // parts of the refusal message
	}{
		{
			name: "plain EntityDescriptor",
			doc: idpEntity(eid, signing, keyDesc("encryption", enc), ssoXML,
				endpoint("SingleSignOnService", postB, "https://idp.example/sso/post"),
				endpoint("SingleSignOnService", artifactB, "https://idp.example/sso/artifact"),
				endpoint("SingleLogoutService", redirectB, "https://idp.example/slo")),
			want: &idpView{
				EntityID:     eid,
				SSO:          []saml.Endpoint{sso, {Binding: postB, Location: "https://idp.example/sso/post"}},
				SLO:          []saml.Endpoint{{Binding: redirectB, Location: "https://idp.example/slo"}},
				SigningCerts: []string{sig.Subject.CommonName},
			},
		},
		{
			name: "key without use attribute is for signing",
			doc:  idpEntity(eid, keyDesc("", sig), ssoXML),
			want: &idpView{EntityID: eid, SSO: []saml.Endpoint{sso}, SigningCerts: []string{sig.Subject.CommonName}},
		},
		{
			name: "WantAuthnRequestsSigned",
			doc: strings.Replace(idpEntity(eid, signing, ssoXML), `protocolSupportEnumeration=`,
				`WantAuthnRequestsSigned="true" protocolSupportEnumeration=`, 1),
			want: &idpView{EntityID: eid, SSO: []saml.Endpoint{sso}, SigningCerts: []string{sig.Subject.CommonName}, WantSigned: true},
		},
		{
			name: "aggregate with one IdP among SPs",
			doc:  aggregate(goodSP("https://sp1.example", "https://sp1.example/acs"), goodIdP(t, eid, sso.Location), goodSP("https://sp2.example", "https://sp2.example/acs")),
			want: &idpView{EntityID: eid, SSO: []saml.Endpoint{sso}, SigningCerts: []string{sig.Subject.CommonName}},
		},
		{
			name:    "aggregate with two IdPs",
			doc:     aggregate(goodIdP(t, eid, sso.Location), goodIdP(t, "https://other-idp.example", "https://other-idp.example/sso")),
			wantErr: []string{"2 entities", "IDPSSODescriptor", "exactly one"},
		},
		{
			name: "nested aggregate with one IdP",
			doc: aggregate(goodSP("https://sp1.example", "https://sp1.example/acs"),
				aggregate(aggregate(goodIdP(t, eid, sso.Location)))),
			want: &idpView{EntityID: eid, SSO: []saml.Endpoint{sso}, SigningCerts: []string{sig.Subject.CommonName}},
		},
		{
			name:    "nested aggregates with two IdPs on different levels",
			doc:     aggregate(goodIdP(t, eid, sso.Location), aggregate(goodIdP(t, "https://other-idp.example", "https://other-idp.example/sso"))),
			wantErr: []string{"2 entities", "exactly one"},
		},
		{
			name:    "aggregate with no IdP",
			doc:     aggregate(goodSP("https://sp1.example", "https://sp1.example/acs")),
			wantErr: []string{"no entity with an IDPSSODescriptor"},
		},
		{
			name:    "SP metadata given as IdP",
			doc:     goodSP("https://sp1.example", "https://sp1.example/acs"),
			wantErr: []string{"https://sp1.example", "no IDPSSODescriptor"},
		},
		{
			name:    "no KeyDescriptor",
			doc:     idpEntity(eid, ssoXML),
			wantErr: []string{eid, "no signing certificate"},
		},
		{
			name:    "encryption key only",
			doc:     idpEntity(eid, keyDesc("encryption", enc), ssoXML),
			wantErr: []string{eid, "no signing certificate"},
		},
		{
			name:    "certificate is not base64",
			doc:     idpEntity(eid, `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>!!not base64!!</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`, ssoXML),
			wantErr: []string{"not valid base64"},
		},
		{
			name:    "certificate is not a certificate",
			doc:     idpEntity(eid, `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>`+base64.StdEncoding.EncodeToString([]byte("hello"))+`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`, ssoXML),
			wantErr: []string{"cannot be parsed"},
		},
		{
			name:    "no SingleSignOnService",
			doc:     idpEntity(eid, signing, endpoint("SingleLogoutService", redirectB, "https://idp.example/slo")),
			wantErr: []string{eid, "no SingleSignOnService"},
		},
		{
			name:    "only an Artifact SingleSignOnService",
			doc:     idpEntity(eid, signing, endpoint("SingleSignOnService", artifactB, "https://idp.example/sso")),
			wantErr: []string{"no SingleSignOnService"},
		},
		{
			name:    "no entityID",
			doc:     strings.Replace(goodIdP(t, eid, sso.Location), ` entityID="`+eid+`"`, "", 1),
			wantErr: []string{"no entityID"},
		},
		{name: "javascript: SSO", doc: goodIdP(t, eid, "javascript:alert(document.cookie)"), wantErr: []string{"javascript"}},
		{name: "data: SSO", doc: goodIdP(t, eid, "data:text/html,<script>alert(1)</script>"), wantErr: []string{"data"}},
		{name: "relative SSO", doc: goodIdP(t, eid, "/idp/sso")},
		{name: "scheme-relative SSO", doc: goodIdP(t, eid, "//idp.example/sso")},
		{name: "http SSO refused", doc: goodIdP(t, eid, "http://idp.example/sso"), wantErr: []string{`"http://idp.example/sso"`, "http://", "BROKER_ALLOW_HTTP"}},
		{
			name:      "http SSO with allowHTTP",
			doc:       goodIdP(t, eid, "http://idp.example/sso"),
			allowHTTP: true,
			want:      &idpView{EntityID: eid, SSO: []saml.Endpoint{{Binding: redirectB, Location: "http://idp.example/sso"}}, SigningCerts: []string{sig.Subject.CommonName}},
		},
		{name: "ftp SSO refused with allowHTTP", doc: goodIdP(t, eid, "ftp://idp.example/sso"), allowHTTP: true, wantErr: []string{"ftp"}},
		{name: "SSO with user info", doc: goodIdP(t, eid, "https://admin:secret@idp.example/sso"), wantErr: []string{"user info"}},
		{
			name:    "javascript: SingleLogoutService",
			doc:     idpEntity(eid, signing, ssoXML, endpoint("SingleLogoutService", postB, "javascript:alert(1)")),
			wantErr: []string{"javascript"},
		},
		{
			name:    "http ResponseLocation of SingleLogoutService",
			doc:     idpEntity(eid, signing, ssoXML, `<md:SingleLogoutService Binding="`+redirectB+`" Location="https://idp.example/slo" ResponseLocation="http://idp.example/slo-resp"/>`),
			wantErr: []string{"SingleLogoutService ResponseLocation", "http://"},
		},
		{name: "empty document", doc: " \n\t", wantErr: []string{"empty"}},
		{name: "not XML", doc: "{\"entityID\": \"x\"}", wantErr: []string{"metadata"}},
		{name: "HTML page", doc: "<html><body>Sign in</body></html>", wantErr: []string{"root element"}},
		{name: "SAML 1 namespace", doc: `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:1.0:metadata" entityID="x"/>`, wantErr: []string{"root element"}},
		{name: "truncated", doc: goodIdP(t, eid, sso.Location)[:200], wantErr: []string{"metadata"}},
		{
			name: "SimpleSAMLphp IdP (testdata) with allowHTTP",
			doc:  string(ssp), allowHTTP: true,
			want: &idpView{
				EntityID: "http://127.0.0.1:18181/saml2/idp/metadata.php",
				SSO:      []saml.Endpoint{{Binding: redirectB, Location: "http://127.0.0.1:18181/saml2/idp/SSOService.php"}},
				SLO: []saml.Endpoint{
					{Binding: redirectB, Location: "http://127.0.0.1:18181/saml2/idp/SingleLogoutService.php"},
					{Binding: postB, Location: "http://127.0.0.1:18181/saml2/idp/SingleLogoutService.php"},
				},
				SigningCerts: []string{"mdidp.peers.test"},
			},
		},
		{name: "SimpleSAMLphp IdP (testdata) over http refused", doc: string(ssp), wantErr: []string{"http://127.0.0.1:18181/saml2/idp/SSOService.php"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idp, err := metadata.ParseIdP([]byte(tt.doc), tt.allowHTTP)
			if tt.want == nil {
				wantRefusal(t, err, tt.wantErr...)
				if idp != nil {
					t.Errorf("refused, but returned %+v too", idp)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if diff := cmp.Diff(*tt.want, viewIdP(idp)); diff != "" {
				t.Errorf("ParseIdP (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseIdPCertificateBytes checks that the certificate handed out is the one in the
// document, byte for byte (a CN comparison alone would not catch a swapped key).
func TestParseIdPCertificateBytes(t *testing.T) {
	sig, enc := certs(t)
	doc := idpEntity("https://idp.example", keyDesc("encryption", enc), keyDesc("signing", sig),
		endpoint("SingleSignOnService", redirectB, "https://idp.example/sso"))
	idp, err := metadata.ParseIdP([]byte(doc), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(idp.SigningCerts) != 1 || !idp.SigningCerts[0].Equal(sig) {
		t.Errorf("SigningCerts = %v; want exactly the signing certificate", idp.SigningCerts)
	}
}

type spView struct {
	EntityID             string
	ACS                  []metadata.ACS
	SLO                  []saml.Endpoint
	SigningCerts         int
	AuthnRequestsSigned  bool
	WantAssertionsSigned bool
}

func viewSP(sp *metadata.SP) spView {
	return spView{EntityID: sp.EntityID, ACS: sp.ACS, SLO: sp.SLO, SigningCerts: len(sp.SigningCerts),
		AuthnRequestsSigned: sp.AuthnRequestsSigned, WantAssertionsSigned: sp.WantAssertionsSigned}
}

func TestParseSP(t *testing.T) {
	sig, enc := certs(t)
	const eid = "https://wiki.example/sp"
	ssp := string(readTestdata(t, "ssp-sp-metadata.xml"))
	const sspBase = "http://127.0.0.1:18182"
	sspHTTPS := strings.ReplaceAll(ssp, sspBase, "https://wiki.example")
	sspPOST := metadata.ACS{Binding: postB, Location: "/module.php/saml/sp/saml2-acs.php/default-sp", Index: 0}
	sspSLO := []saml.Endpoint{
		{Binding: redirectB, Location: "/module.php/saml/sp/saml2-logout.php/default-sp"},
		{Binding: postB, Location: "/module.php/saml/sp/saml2-logout.php/default-sp"},
	}
	under := func(base string) spView {
		a := sspPOST
		a.Location = base + a.Location
		v := spView{EntityID: base + "/sp", ACS: []metadata.ACS{a}, SigningCerts: 1, AuthnRequestsSigned: true}
		for _, e := range sspSLO {
			e.Location = base + e.Location
			v.SLO = append(v.SLO, e)
		}
		return v
	}

	tests := []struct {
		name      string
		doc       string
		allowHTTP bool
		want      *spView
		wantErr   []string
	}{
		{
			name: "plain EntityDescriptor",
			doc: strings.Replace(spEntity(eid, keyDesc("signing", sig), keyDesc("encryption", enc),
				endpoint("SingleLogoutService", redirectB, "https://wiki.example/slo"),
				acs(postB, "https://wiki.example/acs", 0, "")), `protocolSupportEnumeration=`, `WantAssertionsSigned="true" protocolSupportEnumeration=`, 1),
			want: &spView{
				EntityID: eid, ACS: []metadata.ACS{{Binding: postB, Location: "https://wiki.example/acs"}},
				SLO:          []saml.Endpoint{{Binding: redirectB, Location: "https://wiki.example/slo"}},
				SigningCerts: 1, WantAssertionsSigned: true,
			},
		},
		{
			name: "SP without keys is fine",
			doc:  goodSP(eid, "https://wiki.example/acs"),
			want: &spView{EntityID: eid, ACS: []metadata.ACS{{Binding: postB, Location: "https://wiki.example/acs"}}},
		},
		// SimpleSAMLphp 1.19 lists four ACSs: SAML 2 POST, SAML 1 browser-post, Artifact, SAML 1
		// artifact. Only the first is for the broker; the others must not make it refuse.
		{name: "SimpleSAMLphp SP (testdata) with allowHTTP", doc: ssp, allowHTTP: true, want: ptr(under(sspBase))},
		{name: "SimpleSAMLphp SP (testdata) on https", doc: sspHTTPS, want: ptr(under("https://wiki.example"))},
		{name: "SimpleSAMLphp SP (testdata) over http refused", doc: ssp, wantErr: []string{sspBase + sspPOST.Location, "http://"}},
		{
			name: "SAML 1 and Artifact ACSs with javascript: are ignored, not used",
			doc: spEntity(eid, acs("urn:oasis:names:tc:SAML:1.0:profiles:browser-post", "javascript:alert(1)", 0, "true"),
				acs(postB, "https://wiki.example/acs", 1, "")),
			want: &spView{EntityID: eid, ACS: []metadata.ACS{{Binding: postB, Location: "https://wiki.example/acs", Index: 1}}},
		},
		{
			name:    "no HTTP-POST ACS",
			doc:     spEntity(eid, acs(artifactB, "https://wiki.example/acs", 0, ""), acs("urn:oasis:names:tc:SAML:1.0:profiles:browser-post", "https://wiki.example/acs1", 1, "")),
			wantErr: []string{eid, "no AssertionConsumerService with the HTTP-POST binding"},
		},
		{name: "no ACS at all", doc: spEntity(eid), wantErr: []string{"HTTP-POST"}},
		{name: "javascript: ACS", doc: goodSP(eid, "javascript:alert(document.cookie)"), wantErr: []string{"javascript"}},
		{name: "data: ACS", doc: goodSP(eid, "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="), wantErr: []string{"data"}},
		{name: "relative ACS", doc: goodSP(eid, "/acs")},
		{name: "http ACS refused", doc: goodSP(eid, "http://wiki.example/acs"), wantErr: []string{"AssertionConsumerService", "http://wiki.example/acs"}},
		{
			name: "http ACS with allowHTTP", doc: goodSP(eid, "http://wiki.example/acs"), allowHTTP: true,
			want: &spView{EntityID: eid, ACS: []metadata.ACS{{Binding: postB, Location: "http://wiki.example/acs"}}},
		},
		{
			name:    "javascript: SingleLogoutService",
			doc:     spEntity(eid, endpoint("SingleLogoutService", redirectB, "javascript:alert(1)"), acs(postB, "https://wiki.example/acs", 0, "")),
			wantErr: []string{"javascript"},
		},
		{
			name:    "http SingleLogoutService",
			doc:     spEntity(eid, endpoint("SingleLogoutService", redirectB, "http://wiki.example/slo"), acs(postB, "https://wiki.example/acs", 0, "")),
			wantErr: []string{"SingleLogoutService", "http://wiki.example/slo"},
		},
		{
			name: "aggregate with one SP among IdPs",
			doc:  aggregate(goodIdP(t, "https://idp.example", "https://idp.example/sso"), aggregate(goodSP(eid, "https://wiki.example/acs"))),
			want: &spView{EntityID: eid, ACS: []metadata.ACS{{Binding: postB, Location: "https://wiki.example/acs"}}},
		},
		{
			name:    "aggregate with two SPs",
			doc:     aggregate(goodSP(eid, "https://wiki.example/acs"), goodSP("https://crm.example/sp", "https://crm.example/acs")),
			wantErr: []string{"2 entities", "SPSSODescriptor", "exactly one"},
		},
		{name: "IdP metadata given as SP", doc: goodIdP(t, "https://idp.example", "https://idp.example/sso"), wantErr: []string{"no SPSSODescriptor"}},
		{name: "no entityID", doc: strings.Replace(goodSP(eid, "https://wiki.example/acs"), ` entityID="`+eid+`"`, "", 1), wantErr: []string{"no entityID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := metadata.ParseSP([]byte(tt.doc), tt.allowHTTP)
			if tt.want == nil {
				wantRefusal(t, err, tt.wantErr...)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if diff := cmp.Diff(*tt.want, viewSP(sp)); diff != "" {
				t.Errorf("ParseSP (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestParseSPKeepsEveryPOSTACS: every HTTP-POST ACS is kept, the default first
// (saml-metadata 2.2.3); other bindings are dropped even when marked default.
func TestParseSPKeepsEveryPOSTACS(t *testing.T) {
	doc := spEntity("https://wiki.example/sp",
		acs(artifactB, "https://wiki.example/acs/art", 0, "true"),
		acs(postB, "https://wiki.example/acs/3", 3, ""), acs(postB, "https://wiki.example/acs/1", 1, ""),
		acs(postB, "https://wiki.example/acs/5", 5, "true"), acs(postB, "https://wiki.example/acs/2", 2, "false"))
	sp, err := metadata.ParseSP([]byte(doc), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []metadata.ACS{
		{Binding: postB, Location: "https://wiki.example/acs/1", Index: 1},
		{Binding: postB, Location: "https://wiki.example/acs/2", Index: 2},
		{Binding: postB, Location: "https://wiki.example/acs/3", Index: 3},
		{Binding: postB, Location: "https://wiki.example/acs/5", Index: 5, IsDefault: true},
	}
	byIndex := cmpopts.SortSlices(func(a, b metadata.ACS) bool { return a.Index < b.Index })
	if diff := cmp.Diff(want, sp.ACS, byIndex); diff != "" {
		t.Errorf("ACS (-want +got):\n%s", diff)
	}
	if len(sp.ACS) == 0 || sp.ACS[0].Index != 5 {
		t.Errorf("ACS[0] = %+v; want the isDefault one (index 5) first", sp.ACS)
	}
}

// pad makes doc exactly size bytes long with a trailing XML comment.
func pad(t *testing.T, doc string, size int) []byte {
	t.Helper()
	const cOpen, cClose = "<!--", "-->"
	n := size - len(doc) - len(cOpen) - len(cClose)
	if n < 0 {
		t.Fatalf("document already %d bytes", len(doc))
	}
	out := []byte(doc + cOpen + strings.Repeat("x", n) + cClose)
	if len(out) != size {
		t.Fatalf("padded to %d bytes, want %d", len(out), size)
	}
	return out
}

func TestSizeLimit(t *testing.T) {
	idp := goodIdP(t, "https://idp.example", "https://idp.example/sso")
	sp := goodSP("https://wiki.example/sp", "https://wiki.example/acs")
	tests := []struct {
		name   string
		parse  func([]byte) error
		doc    string
		size   int
		refuse bool
	}{
		{"IdP at the limit", func(b []byte) error { _, err := metadata.ParseIdP(b, false); return err }, idp, metadata.MaxSize, false},
		{"IdP one byte over", func(b []byte) error { _, err := metadata.ParseIdP(b, false); return err }, idp, metadata.MaxSize + 1, true},
		{"SP at the limit", func(b []byte) error { _, err := metadata.ParseSP(b, false); return err }, sp, metadata.MaxSize, false},
		{"SP 4 MiB", func(b []byte) error { _, err := metadata.ParseSP(b, false); return err }, sp, 4 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(pad(t, tt.doc, tt.size))
			if !tt.refuse {
				if err != nil {
					t.Fatalf("a %d-byte document is refused: %v", tt.size, err)
				}
				return
			}
			wantRefusal(t, err, "larger than", fmt.Sprint(metadata.MaxSize))
		})
	}
}

// TestHostileXML feeds entity-expansion and external-entity documents: each must be refused (or
// be harmless), quickly and without allocating much.
func TestHostileXML(t *testing.T) {
	sig, _ := certs(t)
	cert := base64.StdEncoding.EncodeToString(sig.Raw)
	var lol strings.Builder
	lol.WriteString(`<!DOCTYPE md:EntityDescriptor [<!ENTITY lol0 "lol">`)
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&lol, `<!ENTITY lol%d "%s">`, i, strings.Repeat(fmt.Sprintf("&lol%d;", i-1), 10))
	}
	lol.WriteString(`]>`)
	inEntityID := `<?xml version="1.0"?>` + lol.String() + strings.Replace(goodIdP(t, "https://idp.example", "https://idp.example/sso"), `entityID="https://idp.example"`, `entityID="&lol9;"`, 1)
	inText := `<?xml version="1.0"?>` + lol.String() + strings.Replace(goodIdP(t, "https://idp.example", "https://idp.example/sso"), cert, "&lol9;", 1)
	xxe := `<?xml version="1.0"?><!DOCTYPE md:EntityDescriptor [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` +
		strings.Replace(goodIdP(t, "https://idp.example", "https://idp.example/sso"), `entityID="https://idp.example"`, `entityID="&xxe;"`, 1)
	// Quadratic blowup: one big entity referenced many times (stays under MaxSize).
	quad := `<?xml version="1.0"?><!DOCTYPE md:EntityDescriptor [<!ENTITY a "` + strings.Repeat("a", 50000) + `">]>` +
		strings.Replace(goodIdP(t, "https://idp.example", "https://idp.example/sso"), `entityID="https://idp.example"`, `entityID="`+strings.Repeat("&a;", 20000)+`"`, 1)

	for _, tt := range []struct{ name, doc string }{
		{"billion laughs in an attribute", inEntityID},
		{"billion laughs in text", inText},
		{"external entity", xxe},
		{"quadratic blowup", quad},
	} {
		for _, role := range []string{"IdP", "SP"} {
			t.Run(tt.name+"/"+role, func(t *testing.T) {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				start := time.Now()
				var err error
				var got string
				if role == "IdP" {
					var idp *metadata.IdP
					if idp, err = metadata.ParseIdP([]byte(tt.doc), false); idp != nil {
						got = idp.EntityID
					}
				} else {
					_, err = metadata.ParseSP([]byte(tt.doc), false)
				}
				elapsed := time.Since(start)
				runtime.ReadMemStats(&after)
				if err == nil && (strings.Contains(got, "lol") || strings.Contains(got, "root:")) {
					t.Errorf("entities were expanded: entityID %.80q", got)
				}
				if err != nil {
					t.Logf("refused: %.120s", err)
				}
				if err == nil && role == "IdP" {
					t.Logf("accepted with entityID %.80q", got)
				}
				if elapsed > 2*time.Second {
					t.Errorf("took %v", elapsed)
				}
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
					t.Errorf("allocated %d MiB for a %d-byte document", alloc>>20, len(tt.doc))
				}
			})
		}
	}
}

func TestResolveACS(t *testing.T) {
	const (
		a0 = "https://wiki.example/acs/0"
		a1 = "https://wiki.example/acs/1"
		a2 = "https://wiki.example/acs/artifact"
	)
	withDefault := spEntity("https://wiki.example/sp",
		acs(postB, a0, 0, ""), acs(postB, a1, 1, "true"), acs(artifactB, a2, 2, ""))
	// saml-metadata 2.2.3: with no isDefault="true", the default is the first endpoint without
	// isDefault="false"; failing that, the first in the sequence (document order, not index).
	docOrder := spEntity("https://wiki.example/sp", acs(postB, a1, 1, ""), acs(postB, a0, 0, ""))
	explicitFalse := spEntity("https://wiki.example/sp", acs(postB, a0, 0, "false"), acs(postB, a1, 1, ""))

	tests := []struct {
		name        string
		doc         string
		url, index  string
		want        string
		errContains string // "" with want == "": any error
	}{
		{name: "by URL in metadata", doc: withDefault, url: a0, want: a0},
		{name: "by URL of the default", doc: withDefault, url: a1, want: a1},
		{name: "by URL not in metadata", doc: withDefault, url: "https://evil.example/acs", errContains: "https://evil.example/acs"},
		{name: "by URL that differs in case", doc: withDefault, url: strings.ToUpper(a0[:5]) + a0[5:], errContains: "not an HTTP-POST ACS"},
		{name: "by URL of an Artifact ACS", doc: withDefault, url: a2, errContains: "not an HTTP-POST ACS"},
		{name: "by index 0", doc: withDefault, index: "0", want: a0},
		{name: "by index 1", doc: withDefault, index: "1", want: a1},
		{name: "by index of an Artifact ACS", doc: withDefault, index: "2", errContains: "2"},
		{name: "by unknown index", doc: withDefault, index: "7", errContains: "7"},
		{name: "by non-numeric index", doc: withDefault, index: "one", errContains: `"one"`},
		{name: "by negative index", doc: withDefault, index: "-1", errContains: `"-1"`},
		{name: "URL wins over index", doc: withDefault, url: a0, index: "1", want: a0},
		{name: "default is isDefault=true", doc: withDefault, want: a1},
		{name: "default without isDefault is the first in document order", doc: docOrder, want: a1},
		{name: "default skips isDefault=false", doc: explicitFalse, want: a1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := metadata.ParseSP([]byte(tt.doc), false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sp.ResolveACS(tt.url, tt.index)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ResolveACS(%q, %q) = %q; want an error", tt.url, tt.index, got)
				}
				if !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("error %q does not mention %q", err, tt.errContains)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ResolveACS(%q, %q) = %q, %v; want %q", tt.url, tt.index, got, err, tt.want)
			}
		})
	}
}

// fuzzSeeds adds every testdata document and a few built ones.
func fuzzSeeds(f *testing.F) {
	ents, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".xml") {
			f.Add(readTestdata(f, e.Name()))
		}
	}
	f.Add([]byte(goodIdP(f, "https://idp.example", "https://idp.example/sso")))
	f.Add([]byte(aggregate(goodSP("https://a.example", "https://a.example/acs"), aggregate(goodIdP(f, "https://b.example", "https://b.example/sso")))))
	f.Add([]byte(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"><md:EntitiesDescriptor/></md:EntitiesDescriptor>`))
	f.Add([]byte(""))
}

func FuzzParseIdP(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		idp, err := metadata.ParseIdP(doc, false)
		if err != nil {
			var me *metadata.Error
			if !errors.As(err, &me) {
				t.Fatalf("error %v (%T) is not a *metadata.Error", err, err)
			}
			return
		}
		if idp.EntityID == "" || len(idp.SSO) == 0 || len(idp.SigningCerts) == 0 {
			t.Fatalf("accepted an IdP without entity ID, SSO or certificate: %+v", idp)
		}
		for _, e := range idp.SSO {
			if err := metadata.CheckURL(e.Location, false); err != nil {
				t.Fatalf("accepted an unsafe SSO URL: %v", err)
			}
		}
	})
}

func FuzzParseSP(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		sp, err := metadata.ParseSP(doc, false)
		if err != nil {
			var me *metadata.Error
			if !errors.As(err, &me) {
				t.Fatalf("error %v (%T) is not a *metadata.Error", err, err)
			}
			return
		}
		if sp.EntityID == "" || len(sp.ACS) == 0 {
			t.Fatalf("accepted an SP without entity ID or ACS: %+v", sp)
		}
		for _, a := range sp.ACS {
			if err := metadata.CheckURL(a.Location, false); err != nil || a.Binding != postB {
				t.Fatalf("accepted ACS %+v: %v", a, err)
			}
		}
		if _, err := sp.ResolveACS("", ""); err != nil {
			t.Fatalf("accepted SP has no default ACS: %v", err)
		}
	})
}
