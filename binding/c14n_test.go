package binding

import (
	"bytes"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// canonicalBytes serializes a canonicalized element as goxmldsig does (etree's canonical
// attribute values, end tags and text). el becomes the root of a new document.
func canonicalBytes(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	doc.WriteSettings = canonicalWriteSettings
	var b bytes.Buffer
	if _, err := doc.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// goxmldsigC14N is the reference: what goxmldsig's validator canonicalizes for el (detached with
// its namespaces), leaving out skip.
func goxmldsigC14N(el *etree.Element, prefixList string, skip *etree.Element) ([]byte, error) {
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, err
	}
	c, err := etreeutils.NSDetatch(ctx, el)
	if err != nil {
		return nil, err
	}
	if skip != nil {
		c.RemoveChildAt(skip.Index())
	}
	if err := etreeutils.TransformExcC14n(c, prefixList, false); err != nil {
		return nil, err
	}
	return canonicalBytes(c)
}

// compareC14N canonicalizes every element of doc both ways (and each element without its first
// child element, as the enveloped transform does) and fails on any difference.
func compareC14N(t *testing.T, doc, prefixList string) (compared int) {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromString(doc); err != nil || d.Root() == nil {
		return 0
	}
	var all []*etree.Element
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		all = append(all, e)
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	walk(d.Root())
	if len(all) > 200 {
		return 0
	}
	for _, el := range all {
		skips := []*etree.Element{nil}
		if kids := el.ChildElements(); len(kids) > 0 {
			skips = append(skips, kids[0])
		}
		for _, skip := range skips {
			want, werr := goxmldsigC14N(el, prefixList, skip)
			got, gerr := canonicalExcC14N(el, prefixList, skip)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("errors differ for %s: goxmldsig %v, ours %v\n%s", el.Tag, werr, gerr, doc)
			}
			if werr == nil && !bytes.Equal(got, want) {
				t.Fatalf("c14n of %s differs:\ngoxmldsig %s\nours      %s\ndoc %s", el.Tag, want, got, doc)
			}
			compared++
		}
	}
	return compared
}

var c14nSamples = []string{
	directDoc,
	`<a:r xmlns:a="urn:a" xmlns:b="urn:b" xmlns="urn:d" b:x="1" y="2" a:z="3"><c>text &amp; &lt;more&gt; "q" &#xD;</c><b:d xmlns:b="urn:b2" b:w="&#x9;&#xA;&quot;"/><!-- gone --><?pi some?>data?><e xmlns=""><f/></e></a:r>`,
	`<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema"><v xsi:type="xs:string">alice</v><w xml:lang="en" xsi:nil="true" a="1"/></r>`,
	`<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:x="urn:x" xmlns:y="urn:x" ID="_a"><saml:Issuer>i</saml:Issuer><saml:Subject x:p="1" y:p="2"><saml:NameID>n</saml:NameID></saml:Subject></saml:Assertion>`,
	`<r><![CDATA[raw <text> ]]> here</r>`,
}

func TestExcC14NMatchesGoxmldsig(t *testing.T) {
	for _, doc := range c14nSamples {
		for _, pl := range []string{"", "b", "xsi xs", "a b x y"} {
			if compareC14N(t, doc, pl) == 0 {
				t.Fatalf("nothing compared for %s", doc)
			}
		}
	}
}

func FuzzExcC14N(f *testing.F) {
	for _, doc := range c14nSamples {
		f.Add(doc, "")
		f.Add(doc, "b xs")
	}
	f.Fuzz(func(t *testing.T, doc, prefixList string) {
		if strings.Count(doc, "<") > 300 {
			return
		}
		compareC14N(t, doc, prefixList)
	})
}
