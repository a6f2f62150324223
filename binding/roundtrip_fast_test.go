package binding

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"testing"

	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// namespaceCases are start tags that declare namespaces, which survivesRoundTrip passes without
// the full round trip when the declarations are plain.
var namespaceCases = []string{
	`<samlp:R xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1" Version="2.0"></samlp:R>`,
	`<R xmlns="urn:x" xmlns:p="urn:p" a="1"/>`,
	`<p:R xmlns="urn:x" xmlns:p="urn:p"/>`,
	`<_xmlns:R xmlns:_xmlns="A" xmlns:x="B" _xmlns="c"/>`,
	`<xmlns:R xmlns:xmlns="A" xmlns:xml="B"/>`,
	`<x_xmlns:R xmlns:x_xmlns="A" xmlns:_xmlns_1="B"/>`,
	`<a xmlns:p="1" xmlns:p="2" p="3"/>`,
	`<a xmlns:p="" b=""/>`,
	`<a xmlns:p="http://example.com/xmlns/" xmlns:q="urn:&quot;&lt;&#9;&#10;&#13;"/>`,
	`<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>`,
	`<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body/></soap-env:Envelope>`,
	`<a xmlns:p="urn:p" p:b="1" xmlns:xsi="urn:xsi" xsi:type="xs:string"/>`,
	`<a xmlns:é="urn:x" xmlns:p="é"/>`,
}

// FuzzSurvivesRoundTrip: every token survivesRoundTrip lets through without the full round
// trip passes the full round trip.
func FuzzSurvivesRoundTrip(f *testing.F) {
	for _, tc := range roundTripCases {
		f.Add([]byte(tc.doc))
	}
	for _, doc := range namespaceCases {
		f.Add([]byte(doc))
	}
	files, _ := filepath.Glob("testdata/*.xml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		dec := xml.NewDecoder(bytes.NewReader(doc))
		dec.Strict = false
		dec.CharsetReader = func(_ string, input io.Reader) (io.Reader, error) { return input, nil }
		rt := roundTrippers.Get().(*roundTripper)
		defer rt.release()
		for {
			tok, err := dec.RawToken()
			if err != nil {
				return
			}
			if survivesRoundTrip(tok) {
				if err := rt.check(tok); err != nil {
					t.Fatalf("survivesRoundTrip passed %#v, which the round trip refuses: %v", tok, err)
				}
			}
		}
	})
}

// FuzzSurvivesRoundTripStart: as FuzzSurvivesRoundTrip, for start tags made directly, with names
// and values no decoder gives.
func FuzzSurvivesRoundTripStart(f *testing.F) {
	f.Add("samlp", "R", "xmlns", "samlp", "urn:p", "", "ID", "_1")
	f.Add("", "R", "", "xmlns", "urn:x", "xmlns", "p", "urn:p")
	f.Add("_xmlns", "R", "xmlns", "_xmlns", "A", "", "_xmlns", "c")
	f.Add("p", "R", "", "xmlns", "urn:x", "xmlns", "p", "urn:p")
	f.Add("a:b", "R", "xmlns", "xmlns", "\"<&>", "xmlns", "xml", "\t\r\n")
	f.Fuzz(func(t *testing.T, space, local, s1, l1, v1, s2, l2, v2 string) {
		rt := roundTrippers.Get().(*roundTripper)
		defer rt.release()
		attrs := []xml.Attr{{Name: xml.Name{Space: s1, Local: l1}, Value: v1}, {Name: xml.Name{Space: s2, Local: l2}, Value: v2}}
		for n := 0; n <= len(attrs); n++ {
			tok := xml.StartElement{Name: xml.Name{Space: space, Local: local}, Attr: attrs[:n]}
			if survivesRoundTrip(tok) {
				if err := rt.check(tok); err != nil {
					t.Fatalf("survivesRoundTrip passed %#v, which the round trip refuses: %v", tok, err)
				}
			}
		}
	})
}

// TestNamespaceDeclarationsSkipRoundTrip: plain namespace declarations need no full round trip.
func TestNamespaceDeclarationsSkipRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		fast bool
	}{
		{namespaceCases[0], true},
		{namespaceCases[1], true},
		{namespaceCases[2], false},  // a default namespace declaration on a prefixed element
		{namespaceCases[11], false}, // a prefixed attribute that is no declaration
		{namespaceCases[12], false}, // not ASCII
	} {
		dec := xml.NewDecoder(bytes.NewReader([]byte(tc.doc)))
		tok, err := dec.RawToken()
		if err != nil {
			t.Fatal(err)
		}
		if got := survivesRoundTrip(tok); got != tc.fast {
			t.Errorf("survivesRoundTrip(%s) = %v; want %v", tc.doc, got, tc.fast)
		}
	}
}

// TestNamespaceCasesMatchReference: on namespace declarations, ValidateRoundTrip still gives the
// reference validator's verdicts.
func TestNamespaceCasesMatchReference(t *testing.T) {
	for _, doc := range namespaceCases {
		ours := ValidateRoundTrip([]byte(doc))
		ref := xrv.Validate(bytes.NewReader([]byte(doc)))
		if (ours == nil) != (ref == nil) {
			t.Errorf("%s: ours: %v; reference: %v", doc, ours, ref)
		}
	}
}
