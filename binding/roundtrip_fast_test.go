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
	`<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">x</saml:AttributeValue>`,
	`<e X:a="1" xmlns:X="u" X:b="2" Y:c="3"/>`,
	`<e xmlns:xmlns="A" xmlns:p="B" q:c="1"/>`,
	`<e xml:lang="en" XmL:a="1" _p:b="2" _xmlns:c="3"/>`,
	`<p:e xmlns:p="urn:p" a="1" q:b="2" p:c="3" q:d="4" xmlns="urn:x"/>`,
	`<e xsi:type="t" xmlns:xsi="urn:xsi"/>`,
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
	f.Add("samlp", "R", "xmlns", "samlp", "urn:p", "", "ID", "_1", "", "", "")
	f.Add("", "R", "", "xmlns", "urn:x", "xmlns", "p", "urn:p", "", "", "")
	f.Add("_xmlns", "R", "xmlns", "_xmlns", "A", "", "_xmlns", "c", "", "", "")
	f.Add("p", "R", "", "xmlns", "urn:x", "xmlns", "p", "urn:p", "", "", "")
	f.Add("a:b", "R", "xmlns", "xmlns", "\"<&>", "xmlns", "xml", "\t\r\n", "", "", "")
	f.Add("saml", "AttributeValue", "xmlns", "xsi", "urn:xsi", "xsi", "type", "xs:string", "", "a", "1")
	f.Add("", "e", "X", "a", "1", "xmlns", "X", "u", "X", "b", "2")
	f.Add("", "e", "xmlns", "xmlns", "A", "xmlns", "p", "B", "q", "c", "1")
	f.Fuzz(func(t *testing.T, space, local, s1, l1, v1, s2, l2, v2, s3, l3, v3 string) {
		rt := roundTrippers.Get().(*roundTripper)
		defer rt.release()
		attrs := []xml.Attr{{Name: xml.Name{Space: s1, Local: l1}, Value: v1}, {Name: xml.Name{Space: s2, Local: l2}, Value: v2}, {Name: xml.Name{Space: s3, Local: l3}, Value: v3}}
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
		{namespaceCases[11], false}, // declarations and two prefixes
		{namespaceCases[12], false}, // not ASCII
		{namespaceCases[13], true},
		{namespaceCases[14], false}, // declarations and two prefixes
		{namespaceCases[15], false}, // xmlns:xmlns
		{namespaceCases[16], false}, // prefixes the encoder renames
		{namespaceCases[18], true},
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

// FuzzSurvivesRoundTripAttrs: as FuzzSurvivesRoundTripStart, for start tags of up to eight
// attributes whose names are drawn from a few that meet one another: prefixes, the prefixes the
// encoder declares, and declarations of them.
func FuzzSurvivesRoundTripAttrs(f *testing.F) {
	f.Add([]byte{0, 0})
	f.Add([]byte{2, 0, 2, 0, 1, 2, 1, 2, 1, 3, 2, 1})    // X:a xmlns:X X:b Y:c
	f.Add([]byte{0, 1, 1, 2, 1, 2, 0, 3, 1, 4, 5, 0})    // xmlns:xmlns xmlns:X Y:a
	f.Add([]byte{4, 1, 1, 1, 4, 0, 4, 1, 6, 0, 4, 0, 0}) // saml:AttributeValue xmlns:xsi xsi:type
	spaces := []string{"", "xmlns", "X", "Y", "xsi", "_xmlns", "xml", "XmL", "X_1", "_X"}
	locals := []string{"a", "xmlns", "X", "Y", "xsi", "_xmlns", "type", "xml"}
	values := []string{"1", "xmlns", "X", "_xmlns", "\"<&>\t\n\r", ""}
	f.Fuzz(func(t *testing.T, spec []byte) {
		if len(spec) < 2 {
			return
		}
		tok := xml.StartElement{Name: xml.Name{Space: spaces[int(spec[0])%len(spaces)], Local: locals[int(spec[1])%len(locals)]}}
		spec = spec[2:]
		for i := 0; i+2 < len(spec) && len(tok.Attr) < 8; i += 3 {
			tok.Attr = append(tok.Attr, xml.Attr{
				Name:  xml.Name{Space: spaces[int(spec[i])%len(spaces)], Local: locals[int(spec[i+1])%len(locals)]},
				Value: values[int(spec[i+2])%len(values)],
			})
		}
		if !survivesRoundTrip(tok) {
			return
		}
		rt := roundTrippers.Get().(*roundTripper)
		defer rt.release()
		if err := rt.check(tok); err != nil {
			t.Fatalf("survivesRoundTrip passed %#v, which the round trip refuses: %v", tok, err)
		}
	})
}
