package binding

import (
	"crypto"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// goxmldsigSign is the reference: goxmldsig's SigningContext signing el, the signature placed
// after the Issuer as SignEnveloped places it.
func goxmldsigSign(t *testing.T, el *etree.Element, signer crypto.Signer, cert *x509.Certificate, sigAlg string) error {
	t.Helper()
	ctx, err := dsig.NewSigningContext(signer, [][]byte{cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(sigAlg); err != nil {
		t.Fatal(err)
	}
	sig, err := ctx.ConstructSignature(el, true)
	if err != nil {
		return err
	}
	insertAfterIssuer(el, sig)
	return nil
}

// TestSignEnvelopedMatchesGoxmldsig: SignEnveloped writes the document goxmldsig's signer
// writes (PKCS#1 v1.5 signatures are deterministic), for every algorithm and for elements with
// comments, namespaces declared on a parent and attributes to reorder.
func TestSignEnvelopedMatchesGoxmldsig(t *testing.T) {
	k, c := directSigner(t)
	response := `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_resp" Version="2.0" IssueInstant="2026-11-21T12:00:00Z"><saml:Issuer>https://broker.example/t/acme/idp/metadata</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion ID="_a1" Version="2.0" IssueInstant="2026-11-21T12:00:00Z"><saml:Issuer>https://broker.example/t/acme/idp/metadata</saml:Issuer><!-- note --><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">alice</saml:NameID></saml:Subject><saml:AttributeStatement xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><saml:Attribute Name="mail"><saml:AttributeValue xsi:type="xs:string">alice@acme.example</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>`
	signed := 0
	for _, alg := range []string{SigAlgRSASHA256, SigAlgRSASHA1, SigAlgRSASHA512} {
		for _, doc := range []string{directDoc, response, strings.Replace(directDoc, `Version="2.0"`, `Version="2.0" xmlns:unused="urn:u" z="1" a="2"`, 1)} {
			// The whole document, and (for the Response) its assertion where it stands.
			for _, path := range []string{".", "./Assertion"} {
				want, got := etree.NewDocument(), etree.NewDocument()
				if err := want.ReadFromString(doc); err != nil {
					t.Fatal(err)
				}
				if err := got.ReadFromString(doc); err != nil {
					t.Fatal(err)
				}
				we, ge := want.Root().FindElement(path), got.Root().FindElement(path)
				if we == nil {
					continue
				}
				werr := goxmldsigSign(t, we, k, c, alg)
				gerr := SignEnveloped(ge, k, c, alg)
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("%s, %s: goxmldsig %v, ours %v", alg, path, werr, gerr)
				}
				if werr == nil {
					signed++
				}
				wb, _ := want.WriteToString()
				gb, _ := got.WriteToString()
				if wb != gb {
					t.Fatalf("%s, %s: documents differ\ngoxmldsig %s\nours      %s", alg, path, wb, gb)
				}
			}
		}
	}
	if signed == 0 {
		t.Fatal("nothing was signed")
	}
}

// FuzzSignEnveloped: on any document, SignEnveloped and goxmldsig's signer succeed or fail
// alike and write the same document.
func FuzzSignEnveloped(f *testing.F) {
	f.Add(directDoc)
	f.Add(`<a:r xmlns:a="urn:a" xmlns:b="urn:b" ID="_x" b:k="v"><a:Issuer>i</a:Issuer><!-- c --><b:c xmlns:b="urn:b2"/></a:r>`)
	f.Fuzz(func(t *testing.T, doc string) {
		if strings.Count(doc, "<") > 100 {
			return
		}
		k, c := directSigner(t)
		want, got := etree.NewDocument(), etree.NewDocument()
		if want.ReadFromString(doc) != nil || want.Root() == nil {
			return
		}
		if err := got.ReadFromString(doc); err != nil {
			t.Fatal(err)
		}
		werr := goxmldsigSign(t, want.Root(), k, c, SigAlgRSASHA256)
		gerr := SignEnveloped(got.Root(), k, c, SigAlgRSASHA256)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("goxmldsig %v, ours %v\n%s", werr, gerr, doc)
		}
		if werr != nil {
			return
		}
		wb, _ := want.WriteToString()
		gb, _ := got.WriteToString()
		if wb != gb {
			t.Fatalf("documents differ\ngoxmldsig %s\nours      %s", wb, gb)
		}
	})
}
