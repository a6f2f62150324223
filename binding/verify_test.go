package binding

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// The direct path must decide exactly as goxmldsig's general validator does for every signature
// it takes, and take the signatures real signers make.

var (
	directKeyOnce sync.Once
	directKey     *rsa.PrivateKey
	directCert    *x509.Certificate
)

func directSigner(t testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	directKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "direct"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			panic(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		directKey, directCert = k, c
	})
	return directKey, directCert
}

const directDoc = `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr1" Version="2.0" IssueInstant="2026-11-21T12:00:00Z" Destination="https://broker.example/t/acme/idp/slo/soap"><saml:Issuer>https://app.example/metadata</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" SPNameQualifier="https://app.example/metadata">alice &amp; co</saml:NameID><samlp:SessionIndex>_s1</samlp:SessionIndex></samlp:LogoutRequest>`

func signDoc(t testing.TB, doc, sigAlg string) []byte {
	t.Helper()
	k, c := directSigner(t)
	d := etree.NewDocument()
	if err := d.ReadFromString(doc); err != nil {
		t.Fatal(err)
	}
	if err := SignEnveloped(d.Root(), k, c, sigAlg); err != nil {
		t.Fatal(err)
	}
	b, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemCert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(readTestdata(t, name))
	if b == nil {
		t.Fatalf("%s holds no PEM block", name)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ReadTestdata and PEMCert are the fixture readers, for the external tests too.
var ReadTestdata, PEMCert = readTestdata, pemCert

// bothPaths runs the direct path and goxmldsig's on the same element, as VerifyEnveloped would,
// and reports whether the direct path took it; it fails the test when the two decide
// differently or, accepting, return different elements.
func bothPaths(t *testing.T, doc []byte, certs []*x509.Certificate, allowSHA1 bool) (took bool) {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return false
	}
	el := d.Root()
	if el == nil {
		return false
	}
	if strings.HasSuffix(el.Tag, "Response") && el.SelectElement("Assertion") != nil {
		// Check the assertion too, detached with its namespaces as callers do.
		if a := el.SelectElement("Assertion"); a != nil {
			ctxDoc := etree.NewDocument()
			ctxDoc.SetRoot(detachForTest(a))
			b, _ := ctxDoc.WriteToBytes()
			bothPaths(t, b, certs, allowSHA1)
		}
	}
	var sigEl *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == xmldsigNS {
			if sigEl != nil {
				return false
			}
			sigEl = c
		}
	}
	if sigEl == nil || checkSignatureAlgorithms(sigEl, allowSHA1) != nil {
		return false
	}
	before, _ := d.WriteToBytes()
	direct, derr := verifyDirect(el, sigEl, certs, allowSHA1)
	if errors.Is(derr, errOffPath) {
		return false
	}
	general, gerr := verifyGeneral(el, sigEl, certs)
	after, _ := d.WriteToBytes()
	if !bytes.Equal(before, after) {
		t.Errorf("verification changed the element it was given")
	}
	if (derr == nil) != (gerr == nil) {
		t.Fatalf("paths disagree: direct %v, goxmldsig %v\n%s", derr, gerr, doc)
	}
	if derr == nil {
		db, _ := canonicalBytes(direct.Copy())
		gb, _ := canonicalBytes(general.Copy())
		if !bytes.Equal(db, gb) {
			t.Fatalf("paths return different elements:\ndirect   %s\ngoxmldsig %s", db, gb)
		}
	}
	return true
}

func detachForTest(el *etree.Element) *etree.Element {
	ns := map[string]string{}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
				k := a.Space + ":" + a.Key
				if _, ok := ns[k]; !ok {
					ns[k] = a.Value
				}
			}
		}
	}
	c := el.Copy()
	for k, v := range ns {
		sp, key, _ := strings.Cut(k, ":")
		if c.SelectAttr(strings.TrimPrefix(sp+":"+key, ":")) == nil {
			c.CreateAttr(strings.TrimPrefix(sp+":"+key, ":"), v)
		}
	}
	return c
}

func TestVerifyDirectTakesRealSignatures(t *testing.T) {
	_, c := directSigner(t)
	ours := []*x509.Certificate{c}
	cases := []struct {
		name  string
		doc   []byte
		certs []*x509.Certificate
		sha1  bool
	}{
		{"broker RSA-SHA256", signDoc(t, directDoc, ""), ours, false},
		{"broker RSA-SHA1", signDoc(t, directDoc, SigAlgRSASHA1), ours, true},
		{"pysaml2 SOAP LogoutRequest", readTestdata(t, "pysaml2-soap-logoutrequest.xml"), []*x509.Certificate{pemCert(t, "pysaml2-soap-cert.pem")}, false},
	}
	ssp, err := DecodePOST(string(readTestdata(t, "ssp-idp-response.b64")))
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		name  string
		doc   []byte
		certs []*x509.Certificate
		sha1  bool
	}{"SimpleSAMLphp Response", ssp, []*x509.Certificate{pemCert(t, "ssp-idp-cert.pem")}, false})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc
			if d := etree.NewDocument(); d.ReadFromBytes(doc) == nil && d.Root().Tag == "Envelope" {
				// The SOAP body's message, detached as decodeSOAP does.
				msg := d.Root().FindElement("./Body/*")
				nd := etree.NewDocument()
				nd.SetRoot(detachForTest(msg))
				doc, _ = nd.WriteToBytes()
			}
			d := etree.NewDocument()
			if err := d.ReadFromBytes(doc); err != nil {
				t.Fatal(err)
			}
			var sigEl *etree.Element
			for _, c := range d.Root().ChildElements() {
				if c.Tag == "Signature" {
					sigEl = c
				}
			}
			if sigEl == nil {
				t.Skip("no signature on the root")
			}
			if _, err := verifyDirect(d.Root(), sigEl, tc.certs, tc.sha1); err != nil {
				t.Fatalf("direct path: %v", err)
			}
			if !bothPaths(t, doc, tc.certs, tc.sha1) {
				t.Fatal("the direct path did not take it")
			}
		})
	}
}

// TestVerifyDirectAgreesOnTampering: for every change an attacker might make, both paths
// refuse alike (or the direct path hands the shape to goxmldsig).
func TestVerifyDirectAgreesOnTampering(t *testing.T) {
	_, c := directSigner(t)
	certs := []*x509.Certificate{c}
	good := string(signDoc(t, directDoc, ""))
	_, other := func() (*rsa.PrivateKey, *x509.Certificate) {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		oc, _ := x509.ParseCertificate(der)
		return k, oc
	}()
	mutations := map[string]string{
		"text changed":                       strings.Replace(good, "alice &amp; co", "mallory", 1),
		"attribute changed":                  strings.Replace(good, `Destination="https://broker.example`, `Destination="https://evil.example`, 1),
		"attribute added":                    strings.Replace(good, `Version="2.0"`, `Version="2.0" Extra="1"`, 1),
		"element added":                      strings.Replace(good, "</samlp:LogoutRequest>", "<samlp:SessionIndex>_s2</samlp:SessionIndex></samlp:LogoutRequest>", 1),
		"reference elsewhere":                strings.Replace(good, `URI="#_lr1"`, `URI="#_other"`, 1),
		"ID changed":                         strings.Replace(good, `ID="_lr1"`, `ID="_lr2"`, 1),
		"empty reference":                    strings.Replace(good, `URI="#_lr1"`, `URI=""`, 1),
		"digest changed":                     strings.Replace(good, "<ds:DigestValue>", "<ds:DigestValue>AAAA", 1),
		"signature value cut":                strings.Replace(good, "<ds:SignatureValue>", "<ds:SignatureValue>AAAA", 1),
		"comment inside the signature value": strings.Replace(good, "</ds:SignatureValue>", "<!--x--></ds:SignatureValue>", 1),
		"line breaks in the signature value": strings.Replace(good, "<ds:SignatureValue>", "<ds:SignatureValue>\n", 1),
		"prefix rebound in a child":          strings.Replace(good, "<saml:NameID ", `<saml:NameID xmlns:saml="urn:evil" `, 1),
		"default namespace added":            strings.Replace(good, "<samlp:SessionIndex>", `<samlp:SessionIndex xmlns="urn:evil">`, 1),
		"inclusive prefix list":              strings.Replace(good, `<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`, `<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="saml"/></ds:Transform>`, 1),
		"transform dropped":                  strings.Replace(good, `<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>`, "", 1),
		"second SignedInfo":                  strings.Replace(good, "</ds:SignedInfo>", "</ds:SignedInfo><ds:SignedInfo/>", 1),
		"second KeyInfo":                     strings.Replace(good, "</ds:SignatureValue>", "</ds:SignatureValue><ds:KeyInfo/><ds:KeyInfo/>", 1),
		"SignedInfo whitespace":              strings.Replace(good, "<ds:SignedInfo>", "<ds:SignedInfo> ", 1),
		"comment inside the digest value":    strings.Replace(good, "</ds:DigestValue>", "<!--x--></ds:DigestValue>", 1),
		"comment splitting the NameID":       strings.Replace(good, "alice &amp; co", "alice<!--x--> &amp; co", 1),
		"CDATA in the NameID":                strings.Replace(good, "alice &amp; co", "alice<![CDATA[ & co]]>", 1),
	}
	for name, doc := range mutations {
		t.Run(name, func(t *testing.T) {
			if doc == good {
				t.Fatalf("the mutation changed nothing")
			}
			bothPaths(t, []byte(doc), certs, false)
			bothPaths(t, []byte(doc), []*x509.Certificate{other, c}, false)
		})
	}
	// A comment splits the NameID's text in the tree; the signed bytes have it whole, and so
	// must the element returned (a reader taking the first text node alone would see "alice").
	t.Run("returned text is whole", func(t *testing.T) {
		doc := strings.Replace(good, "alice &amp; co", "alice<!--x--> &amp; co", 1)
		d := etree.NewDocument()
		if err := d.ReadFromString(doc); err != nil {
			t.Fatal(err)
		}
		el := d.Root()
		v, err := verifyDirect(el, el.SelectElement("Signature"), certs, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.SelectElement("NameID").Text(); got != "alice & co" {
			t.Errorf("NameID read from the verified element: %q, want %q", got, "alice & co")
		}
	})
	t.Run("another key", func(t *testing.T) {
		if !bothPaths(t, []byte(good), []*x509.Certificate{other}, false) {
			t.Fatal("the direct path did not take it")
		}
	})
}

// FuzzVerifyDirect: on any input, the direct path decides as goxmldsig does.
func FuzzVerifyDirect(f *testing.F) {
	f.Add(signDoc(f, directDoc, ""))
	f.Add(signDoc(f, strings.Replace(directDoc, "<saml:Issuer>", `<saml:Issuer xmlns:x="urn:x" x:a="1">`, 1), ""))
	f.Fuzz(func(t *testing.T, doc []byte) {
		_, c := directSigner(t)
		bothPaths(t, doc, []*x509.Certificate{c}, false)
	})
}
