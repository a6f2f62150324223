package binding_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/sloworks/broker/binding"
)

func parseXML(t testing.TB, b []byte) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	return doc.Root()
}

func serialize(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signed returns doc signed by kp with sigAlg, serialized as a peer receives it.
func signed(t testing.TB, doc string, kp keyPair, sigAlg string) []byte {
	t.Helper()
	el := parseXML(t, []byte(doc))
	if err := binding.SignEnveloped(el, kp.key, kp.cert, sigAlg); err != nil {
		t.Fatal(err)
	}
	return serialize(t, el)
}

func childTags(el *etree.Element) []string {
	var tags []string
	for _, c := range el.ChildElements() {
		tags = append(tags, c.Tag)
	}
	return tags
}

func signatureOf(t testing.TB, el *etree.Element) *etree.Element {
	t.Helper()
	for _, c := range el.ChildElements() {
		if c.Tag == "Signature" {
			return c
		}
	}
	t.Fatalf("no Signature child in %s", el.Tag)
	return nil
}

func TestSignEnvelopedRoundTrip(t *testing.T) {
	signer, _ := peers(t)
	for _, sigAlg := range []string{"", binding.SigAlgRSASHA256, binding.SigAlgRSASHA512} {
		t.Run("alg="+sigAlg, func(t *testing.T) {
			b := signed(t, authnRequestXML, signer, sigAlg)
			root := parseXML(t, b)
			sig := signatureOf(t, root)
			wantAlg := sigAlg
			if wantAlg == "" {
				wantAlg = binding.SigAlgRSASHA256
			}
			if got := sig.FindElement("./SignedInfo/SignatureMethod").SelectAttrValue("Algorithm", ""); got != wantAlg {
				t.Errorf("SignatureMethod %q; want %q", got, wantAlg)
			}
			if got := sig.FindElement("./SignedInfo/Reference").SelectAttrValue("URI", ""); got != "#_a1b2c3" {
				t.Errorf("Reference URI %q; want #_a1b2c3", got)
			}
			verified, err := binding.VerifyEnveloped(root, []*x509.Certificate{signer.cert}, false)
			if err != nil {
				t.Fatalf("VerifyEnveloped: %v\n%s", err, b)
			}
			if diff := cmp.Diff([]string{"Issuer", "NameIDPolicy"}, childTags(verified)); diff != "" {
				t.Errorf("verified element children (-want +got):\n%s", diff)
			}
			orig := parseXML(t, []byte(authnRequestXML))
			for _, a := range orig.Attr {
				if a.Space == "xmlns" {
					continue // exclusive c14n moves namespace declarations to where they are used
				}
				if got := verified.SelectAttrValue(a.FullKey(), "(missing)"); got != a.Value {
					t.Errorf("verified %s = %q; want %q", a.FullKey(), got, a.Value)
				}
			}
			if got, want := verified.FindElement("./Issuer").Text(), orig.FindElement("./Issuer").Text(); got != want {
				t.Errorf("verified Issuer %q; want %q", got, want)
			}
			if len(root.ChildElements()) != 3 {
				t.Errorf("VerifyEnveloped changed its argument: %v", childTags(root))
			}
		})
	}
}

// VerifyEnveloped sets the signature's KeyInfo aside while it checks, and puts it back: its
// argument serialises the same afterwards, whether the signature verified or not.
func TestVerifyEnvelopedLeavesArgument(t *testing.T) {
	signer, other := peers(t)
	root := parseXML(t, signed(t, authnRequestXML, signer, ""))
	if signatureOf(t, root).SelectElement("KeyInfo") == nil {
		t.Fatal("the signed fixture has no KeyInfo to set aside")
	}
	doc := etree.NewDocument()
	doc.SetRoot(root)
	before, _ := doc.WriteToString()
	for _, certs := range [][]*x509.Certificate{{signer.cert}, {other.cert}, {other.cert, signer.cert}} {
		binding.VerifyEnveloped(root, certs, false)
		if after, _ := doc.WriteToString(); after != before {
			t.Fatalf("VerifyEnveloped changed its argument:\n%s\nwant\n%s", after, before)
		}
	}
}

func TestSignEnvelopedPlacement(t *testing.T) {
	signer, _ := peers(t)
	const ns = `xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"compact", authnRequestXML, []string{"Issuer", "Signature", "NameIDPolicy"}},
		{
			"pretty-printed with a comment first",
			"<samlp:LogoutRequest " + ns + ` ID="_l1" Version="2.0" IssueInstant="2026-01-02T03:04:05Z">
  <!-- made by hand -->
  <saml:Issuer>https://broker.example</saml:Issuer>
  <saml:NameID>alice</saml:NameID>
  <samlp:SessionIndex>s1</samlp:SessionIndex>
</samlp:LogoutRequest>`,
			[]string{"Issuer", "Signature", "NameID", "SessionIndex"},
		},
		{"Issuer last", "<samlp:LogoutResponse " + ns + ` ID="_l2" Version="2.0"><samlp:Status/><saml:Issuer>x</saml:Issuer></samlp:LogoutResponse>`, []string{"Status", "Issuer", "Signature"}},
		{"no Issuer", "<samlp:LogoutResponse " + ns + ` ID="_l3" Version="2.0"><samlp:Status/></samlp:LogoutResponse>`, []string{"Signature", "Status"}},
		{"no children", "<samlp:LogoutResponse " + ns + ` ID="_l4" Version="2.0"/>`, []string{"Signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := parseXML(t, signed(t, tt.doc, signer, ""))
			if diff := cmp.Diff(tt.want, childTags(root)); diff != "" {
				t.Errorf("children (-want +got):\n%s", diff)
			}
			if _, err := binding.VerifyEnveloped(root, []*x509.Certificate{signer.cert}, false); err != nil {
				t.Errorf("VerifyEnveloped: %v", err)
			}
		})
	}
}

// resign recomputes the SignatureValue of sig (in its document) over its current SignedInfo with
// key and h, the way a real signer would, so a test can make a signature that verifies
// cryptographically but uses the algorithms the test wants.
func resign(t *testing.T, sig *etree.Element, key *rsa.PrivateKey, h crypto.Hash) {
	t.Helper()
	si := sig.FindElement("./SignedInfo")
	ctx, err := etreeutils.NSBuildParentContext(sig)
	if err != nil {
		t.Fatal(err)
	}
	if ctx, err = ctx.SubContext(sig); err != nil {
		t.Fatal(err)
	}
	det, err := etreeutils.NSDetatch(ctx, si)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("").Canonicalize(det)
	if err != nil {
		t.Fatal(err)
	}
	d := h.New()
	d.Write(canon)
	v, err := rsa.SignPKCS1v15(rand.Reader, key, h, d.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	sig.FindElement("./SignatureValue").SetText(base64.StdEncoding.EncodeToString(v))
}

// goxmldsigAccepts reports whether goxmldsig alone (no policy of ours) verifies el with cert.
func goxmldsigAccepts(el *etree.Element, cert *x509.Certificate) error {
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	vc.Clock = dsig.NewFakeClockAt(certNow)
	_, err := vc.Validate(el.Copy())
	return err
}

func TestVerifyEnvelopedRefusals(t *testing.T) {
	signer, other := peers(t)
	good := signed(t, authnRequestXML, signer, "")
	certs := []*x509.Certificate{signer.cert}

	tests := []struct {
		name      string
		build     func(t *testing.T) *etree.Element
		certs     []*x509.Certificate
		allowSHA1 bool
		wantErr   error
		wantMsg   string
	}{
		{
			name: "tampered Issuer text",
			build: func(t *testing.T) *etree.Element {
				return parseXML(t, bytes.Replace(good, []byte("/t/acme/sp<"), []byte("/t/evil/sp<"), 1))
			},
			wantErr: binding.ErrBadSignature,
		},
		{
			name: "tampered attribute",
			build: func(t *testing.T) *etree.Element {
				return parseXML(t, bytes.Replace(good, []byte("/t/acme/sp/acs"), []byte("/t/acme/sp/evil"), 1))
			},
			wantErr: binding.ErrBadSignature,
		},
		{
			name: "element added",
			build: func(t *testing.T) *etree.Element {
				el := parseXML(t, good)
				el.CreateElement("samlp:Scoping")
				return el
			},
			wantErr: binding.ErrBadSignature,
		},
		{
			name: "SignatureValue changed",
			build: func(t *testing.T) *etree.Element {
				el := parseXML(t, good)
				sv := signatureOf(t, el).FindElement("./SignatureValue")
				b, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sv.Text()), ""))
				b[10] ^= 1
				sv.SetText(base64.StdEncoding.EncodeToString(b))
				return el
			},
			wantErr: binding.ErrBadSignature,
		},
		{
			name: "two Signature children",
			build: func(t *testing.T) *etree.Element {
				el := parseXML(t, good)
				el.AddChild(signatureOf(t, el).Copy())
				return el
			},
			wantErr: binding.ErrBadSignature, wantMsg: "two Signature",
		},
		{
			name: "two Signature children, the second by another key",
			build: func(t *testing.T) *etree.Element {
				el := parseXML(t, good)
				el.AddChild(signatureOf(t, parseXML(t, signed(t, authnRequestXML, other, ""))).Copy())
				return el
			},
			certs:   []*x509.Certificate{signer.cert, other.cert},
			wantErr: binding.ErrBadSignature, wantMsg: "two Signature",
		},
		{
			name: "signature of another element moved in (wrapping)",
			build: func(t *testing.T) *etree.Element {
				evil := parseXML(t, []byte(strings.Replace(authnRequestXML, `ID="_a1b2c3"`, `ID="_evil"`, 1)))
				evil.InsertChildAt(1, signatureOf(t, parseXML(t, good)).Copy())
				return evil
			},
			wantErr: binding.ErrBadSignature,
		},
		{
			name:    "signed by another key, its certificate in KeyInfo",
			build:   func(t *testing.T) *etree.Element { return parseXML(t, signed(t, authnRequestXML, other, "")) },
			wantErr: binding.ErrBadSignature,
		},
		{
			name:    "no certificates",
			build:   func(t *testing.T) *etree.Element { return parseXML(t, good) },
			certs:   []*x509.Certificate{},
			wantErr: binding.ErrBadSignature,
		},
		{
			name:    "unsigned",
			build:   func(t *testing.T) *etree.Element { return parseXML(t, []byte(authnRequestXML)) },
			wantErr: binding.ErrNoSignature,
		},
		{
			name: "Signature in another namespace",
			build: func(t *testing.T) *etree.Element {
				return parseXML(t, bytes.ReplaceAll(good, []byte("http://www.w3.org/2000/09/xmldsig#"), []byte("http://evil.example/xmldsig#")))
			},
			wantErr: binding.ErrNoSignature,
		},
		{
			name: "RSA-SHA1 not allowed",
			build: func(t *testing.T) *etree.Element {
				return parseXML(t, signed(t, authnRequestXML, signer, binding.SigAlgRSASHA1))
			},
			wantErr: binding.ErrWeakAlgorithm, wantMsg: "SHA1",
		},
		{
			name: "SHA-1 digest under RSA-SHA256 not allowed",
			build: func(t *testing.T) *etree.Element {
				return sha1DigestSHA256Sig(t, signer)
			},
			wantErr: binding.ErrWeakAlgorithm, wantMsg: "SHA-1",
		},
		{
			name: "exclusive c14n with comments",
			build: func(t *testing.T) *etree.Element {
				return withCommentsSigned(t, signer, dsig.MakeC14N10ExclusiveWithCommentsCanonicalizerWithPrefixList(""))
			},
			wantErr: binding.ErrBadSignature, wantMsg: "comments",
		},
		{
			name: "inclusive c14n 1.1 with comments",
			build: func(t *testing.T) *etree.Element {
				return withCommentsSigned(t, signer, dsig.MakeC14N11WithCommentsCanonicalizer())
			},
			wantErr: binding.ErrBadSignature, wantMsg: "comments",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.certs
			if c == nil {
				c = certs
			}
			el := tt.build(t)
			got, err := binding.VerifyEnveloped(el, c, tt.allowSHA1)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("VerifyEnveloped = %v; want errors.Is %v", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("refused, but returned an element too")
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

// withCommentsSigned signs the AuthnRequest with a c14n-with-comments canonicalizer, checking
// that goxmldsig itself accepts it (so any refusal is the package's policy).
func withCommentsSigned(t *testing.T, kp keyPair, c dsig.Canonicalizer) *etree.Element {
	t.Helper()
	el := parseXML(t, []byte(strings.Replace(authnRequestXML, "</saml:Issuer>", "<!-- c --></saml:Issuer>", 1)))
	ctx, err := dsig.NewSigningContext(kp.key, [][]byte{kp.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = c
	sig, err := ctx.ConstructSignature(el, true)
	if err != nil {
		t.Fatal(err)
	}
	el.InsertChildAt(1, sig)
	el = parseXML(t, serialize(t, el))
	if err := goxmldsigAccepts(el, kp.cert); err != nil {
		t.Fatalf("goxmldsig refuses the with-comments signature itself: %v", err)
	}
	return el
}

// sha1DigestSHA256Sig makes a valid RSA-SHA256 signature whose Reference uses a SHA-1 digest.
func sha1DigestSHA256Sig(t *testing.T, kp keyPair) *etree.Element {
	t.Helper()
	el := parseXML(t, signed(t, authnRequestXML, kp, binding.SigAlgRSASHA1))
	sig := signatureOf(t, el)
	sig.FindElement("./SignedInfo/SignatureMethod").CreateAttr("Algorithm", binding.SigAlgRSASHA256)
	resign(t, sig, kp.key, crypto.SHA256)
	el = parseXML(t, serialize(t, el))
	if err := goxmldsigAccepts(el, kp.cert); err != nil {
		t.Fatalf("goxmldsig refuses the re-signed element: %v", err)
	}
	return el
}

func TestVerifyEnvelopedSHA1(t *testing.T) {
	signer, _ := peers(t)
	tests := []struct {
		name  string
		build func(t *testing.T) *etree.Element
	}{
		{"RSA-SHA1", func(t *testing.T) *etree.Element {
			return parseXML(t, signed(t, authnRequestXML, signer, binding.SigAlgRSASHA1))
		}},
		{"SHA-1 digest under RSA-SHA256", func(t *testing.T) *etree.Element { return sha1DigestSHA256Sig(t, signer) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el := tt.build(t)
			if dm := signatureOf(t, el).FindElement("./SignedInfo/Reference/DigestMethod").SelectAttrValue("Algorithm", ""); dm != "http://www.w3.org/2000/09/xmldsig#sha1" {
				t.Fatalf("DigestMethod %q; want SHA-1", dm)
			}
			if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{signer.cert}, false); !errors.Is(err, binding.ErrWeakAlgorithm) {
				t.Errorf("allowSHA1=false: %v; want ErrWeakAlgorithm", err)
			}
			if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{signer.cert}, true); err != nil {
				t.Errorf("allowSHA1=true: %v", err)
			}
		})
	}
}

// TestVerifyEnvelopedTrustByKey: metadata certificates are trusted by key; their dates do not
// matter (an IdP with an expired self-signed certificate is common and still that IdP).
func TestVerifyEnvelopedTrustByKey(t *testing.T) {
	signer, _ := peers(t)
	tests := []struct {
		name                string
		notBefore, notAfter time.Time
	}{
		{"expired", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"not yet valid", time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2091, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"valid for one second", certNow, certNow.Add(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := certFor(signer.key, "dated", tt.notBefore, tt.notAfter)
			if err != nil {
				t.Fatal(err)
			}
			el := parseXML(t, signed(t, authnRequestXML, keyPair{signer.key, cert}, ""))
			if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{cert}, false); err != nil {
				t.Errorf("signed with the pinned certificate: %v", err)
			}
			// Signed with the current certificate in KeyInfo, checked against the dated one.
			el = parseXML(t, signed(t, authnRequestXML, signer, ""))
			if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{cert}, false); err != nil {
				t.Errorf("KeyInfo holds another certificate of the same key: %v", err)
			}
		})
	}
}

// TestVerifyEnvelopedSimpleSAMLphp verifies a Response signed by SimpleSAMLphp (xmlseclibs).
func TestVerifyEnvelopedSimpleSAMLphp(t *testing.T) {
	b, err := binding.DecodePOST(string(readTestdata(t, "ssp-idp-response.b64")))
	if err != nil {
		t.Fatal(err)
	}
	cert := pemCert(t, "ssp-idp-cert.pem")
	_, other := peers(t)
	root := parseXML(t, b)
	verified, err := binding.VerifyEnveloped(root, []*x509.Certificate{cert}, false)
	if err != nil {
		t.Fatalf("VerifyEnveloped: %v", err)
	}
	if got := verified.FindElement("./Issuer").Text(); got != "http://127.0.0.1:18181/saml2/idp/metadata.php" {
		t.Errorf("Issuer %q", got)
	}
	for _, c := range verified.ChildElements() {
		if c.Tag == "Signature" {
			t.Errorf("the verified Response still has its Signature")
		}
	}
	if _, err := binding.VerifyEnveloped(root, []*x509.Certificate{other.cert}, false); !errors.Is(err, binding.ErrBadSignature) {
		t.Errorf("another certificate: %v", err)
	}
	tampered := parseXML(t, bytes.Replace(b, []byte("alice@example.org"), []byte("mallory@example.org"), 1))
	if bytes.Equal(serialize(t, tampered), serialize(t, root)) {
		t.Fatal("the fixture has no alice@example.org to tamper with")
	}
	if _, err := binding.VerifyEnveloped(tampered, []*x509.Certificate{cert}, false); !errors.Is(err, binding.ErrBadSignature) {
		t.Errorf("tampered attribute value: %v", err)
	}
}

// TestSignEnvelopedXmlsec1 checks SignEnveloped's output with xmlsec1, an independent
// implementation, and that a tampered copy fails there too.
func TestSignEnvelopedXmlsec1(t *testing.T) {
	xmlsec := needTool(t, "xmlsec1")
	signer, _ := peers(t)
	dir := t.TempDir()
	certPath := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signer.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, sigAlg := range []string{binding.SigAlgRSASHA256, binding.SigAlgRSASHA512} {
		doc := signed(t, authnRequestXML, signer, sigAlg)
		for _, tampered := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tampered=%v", sigAlg, tampered), func(t *testing.T) {
				d := doc
				if tampered {
					d = bytes.Replace(doc, []byte("nameid-format:persistent"), []byte("nameid-format:transient"), 1)
					if bytes.Equal(d, doc) {
						t.Fatal("nothing to tamper with")
					}
				}
				f := filepath.Join(dir, "msg.xml")
				if err := os.WriteFile(f, d, 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", certPath,
					"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest", f).CombinedOutput()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatalf("xmlsec1: %v\n%s", err, out)
				}
				if (err == nil) == tampered {
					t.Errorf("xmlsec1 ok=%v; want %v\n%s\n%s", err == nil, !tampered, out, d)
				}
			})
		}
	}
}
