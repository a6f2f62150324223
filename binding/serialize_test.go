package binding_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/sloworks/broker/binding"
)

// serializeCases are documents whose every element Serialize must write as etree writes it.
func serializeCases(t testing.TB) map[string][]byte {
	t.Helper()
	cases := map[string][]byte{
		"plain":     []byte(`<a xmlns="urn:x"><b attr="1">text</b><c/></a>`),
		"escapes":   []byte(`<a q="&quot;&amp;&lt;&gt;&#9;&#10;&#13;'"><b>&amp;&lt;&gt;"'&#13;</b></a>`),
		"mixed":     []byte(`<?xml version="1.0"?><!-- head --><p:a xmlns:p="urn:p" p:x="1"><!-- c --><![CDATA[<raw>]]><?pi data?>tail é</p:a>`),
		"empty":     []byte(`<a></a>`),
		"non-ascii": []byte("<a b=\"\u00e9\u2028\">\u00e9\U0001F600</a>"),
	}
	for _, name := range []string{"pysaml2-soap-logoutrequest.xml"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		cases[name] = b
	}
	raw, err := os.ReadFile("testdata/ssp-idp-response.b64")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	cases["ssp-idp-response"] = resp
	return cases
}

// TestSerializeMatchesDocument: Serialize writes every element of a document byte for byte as a
// Document with (a copy of) that element as its root does, and leaves the element in its tree.
func TestSerializeMatchesDocument(t *testing.T) {
	for name, doc := range serializeCases(t) {
		t.Run(name, func(t *testing.T) {
			for _, settings := range []etree.ReadSettings{{}, {PreserveCData: true}} {
				d := etree.NewDocument()
				d.ReadSettings = settings
				if err := d.ReadFromBytes(doc); err != nil {
					t.Fatal(err)
				}
				var walk func(*etree.Element)
				walk = func(el *etree.Element) {
					parent, index := el.Parent(), el.Index()
					want := etree.NewDocument()
					want.SetRoot(el.Copy())
					wantBytes, err := want.WriteToBytes()
					if err != nil {
						t.Fatal(err)
					}
					got := binding.Serialize(el)
					if !bytes.Equal(got, wantBytes) {
						t.Fatalf("<%s>:\n got %s\nwant %s", el.FullTag(), got, wantBytes)
					}
					if el.Parent() != parent || el.Index() != index {
						t.Fatalf("<%s> was moved", el.FullTag())
					}
					for _, c := range el.ChildElements() {
						walk(c)
					}
				}
				walk(d.Root())
			}
		})
	}
}

// TestSerializeResultsIndependent: results never share memory (the scratch buffer is reused).
func TestSerializeResultsIndependent(t *testing.T) {
	a := etree.NewElement("a")
	a.SetText(strings.Repeat("x", 100))
	b := etree.NewElement("b")
	first := binding.Serialize(a)
	keep := bytes.Clone(first)
	for range 10 {
		binding.Serialize(b)
	}
	if !bytes.Equal(first, keep) {
		t.Fatalf("an earlier result changed: %s", first)
	}
}
