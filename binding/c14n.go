package binding

import (
	"bytes"
	"errors"
	"sort"
	"strings"

	"github.com/beevik/etree"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// Exclusive XML canonicalization (without comments) written straight from a tree.
//
// canonicalExcC14N produces, byte for byte, what goxmldsig produces for an element it verifies: a copy of
// the element detached with the namespaces in scope (etreeutils.NSDetatch), transformed in place
// by etreeutils.TransformExcC14n and written by etree with canonical settings. It makes the same
// decisions — which namespace declarations are visibly utilized and rendered, goxmldsig's
// attribute order (etreeutils.SortedAttrs), comments dropped — and has etree write each
// attribute and text as it would, but reads the tree where it stands: no copy of the tree, and namespace scopes kept on two stacks instead of
// a map copied for every element. FuzzExcC14N holds it to goxmldsig's output.

const (
	xmlNS   = "http://www.w3.org/XML/1998/namespace"
	xmlnsNS = "http://www.w3.org/2000/xmlns/"
)

var errReservedNamespace = errors.New("disallowed declaration of reserved namespace")

type nsBinding struct{ prefix, uri string }

// nsStack is a stack of namespace bindings; the innermost binding of a prefix wins.
type nsStack []nsBinding

func (s nsStack) lookup(prefix string) (string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i].prefix == prefix {
			return s[i].uri, true
		}
	}
	return "", false
}

// defaultScope is goxmldsig's default namespace context (NewDefaultNSContext).
func defaultScope() nsStack {
	return nsStack{{"", xmlNS}, {"xml", xmlNS}, {"xmlns", xmlnsNS}}
}

// declare pushes the namespace declarations among attrs, refusing the reserved ones as
// NSContext.SubContext does.
func (s nsStack) declare(attrs []etree.Attr) (nsStack, error) {
	for _, a := range attrs {
		switch {
		case a.Space == "xmlns":
			if (a.Key == "xml" && a.Value != xmlNS) || a.Key == "xmlns" {
				return s, errReservedNamespace
			}
			s = append(s, nsBinding{a.Key, a.Value})
		case a.Space == "" && a.Key == "xmlns":
			if a.Value == xmlnsNS {
				return s, errors.New("invalid default namespace declaration")
			}
			s = append(s, nsBinding{"", a.Value})
		}
	}
	return s, nil
}

func isDeclaration(a etree.Attr) bool {
	return a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")
}

// c14nWriter writes one canonical form.
type c14nWriter struct {
	b         bytes.Buffer
	inclusive map[string]struct{}
	skip      *etree.Element // left out (the enveloped signature)
	attrs     []etree.Attr   // scratch
	// inPlace: also leave each element as etreeutils.TransformExcC14n does (its canonical
	// attributes and declarations, no comments), as goxmldsig's signer leaves what it signs.
	inPlace bool
}

// canonicalizeInPlace transforms el in place as goxmldsig's signer does before it digests it
// (etreeutils.TransformExcC14n from the default namespace context, no inclusive prefixes) and
// returns the canonical bytes it digests (the transformed el, written with canonical settings).
func canonicalizeInPlace(el *etree.Element) ([]byte, error) {
	w := &c14nWriter{inPlace: true}
	w.b.Grow(4096)
	if err := w.element(el, el.Attr, defaultScope(), defaultScope()); err != nil {
		return nil, err
	}
	return w.b.Bytes(), nil
}

// canonicalExcC14N returns the exclusive canonical form of el (detached with the namespaces in scope at
// it), leaving out the child element skip when it is not nil. prefixList is the InclusiveNamespaces
// PrefixList.
func canonicalExcC14N(el *etree.Element, prefixList string, skip *etree.Element) ([]byte, error) {
	// The namespaces in scope at el's parent, outermost first.
	var chain []*etree.Element
	for p := el.Parent(); p != nil; p = p.Parent() {
		chain = append(chain, p)
	}
	scope := defaultScope()
	var err error
	for i := len(chain) - 1; i >= 0; i-- {
		if scope, err = scope.declare(chain[i].Attr); err != nil {
			return nil, err
		}
	}
	w := &c14nWriter{skip: skip}
	w.b.Grow(4096)
	if prefixes := strings.Fields(prefixList); len(prefixes) > 0 {
		w.inclusive = make(map[string]struct{}, len(prefixes))
		for _, p := range prefixes {
			w.inclusive[p] = struct{}{}
		}
	}
	// NSDetatch: el carries every declaration in scope (but the implicit xml and xmlns ones, and
	// a default namespace of the XML namespace, which is the default context's own).
	inner, err := scope.declare(el.Attr)
	if err != nil {
		return nil, err
	}
	attrs := make([]etree.Attr, 0, len(el.Attr)+4)
	for _, a := range el.Attr {
		if !isDeclaration(a) {
			attrs = append(attrs, a)
		}
	}
	seen := map[string]bool{}
	for i := len(inner) - 1; i >= 0; i-- {
		b := inner[i]
		if seen[b.prefix] {
			continue
		}
		seen[b.prefix] = true
		switch {
		case b.prefix == "xmlns" || b.prefix == "xml":
		case b.prefix == "" && b.uri == xmlNS:
		case b.prefix == "":
			attrs = append(attrs, etree.Attr{Key: "xmlns", Value: b.uri})
		default:
			attrs = append(attrs, etree.Attr{Space: "xmlns", Key: b.prefix, Value: b.uri})
		}
	}
	if err := w.element(el, attrs, defaultScope(), defaultScope()); err != nil {
		return nil, err
	}
	return w.b.Bytes(), nil
}

// element writes el, whose attributes are attrs, in the scope of its parent (scope: every
// declaration; declared: those the canonical form has rendered).
func (w *c14nWriter) element(el *etree.Element, attrs []etree.Attr, scope, declared nsStack) error {
	scope, err := scope.declare(attrs)
	if err != nil {
		return err
	}
	// Visibly utilized prefixes: the element's, its attributes', and the inclusive ones it
	// declares.
	utilized := []string{el.Space}
	out := w.attrs[:0]
	for _, a := range attrs {
		switch {
		case a.Space == "xmlns":
			if _, ok := w.inclusive[a.Key]; ok {
				utilized = appendUnique(utilized, a.Key)
			}
		case a.Space == "" && a.Key == "xmlns":
			if _, ok := w.inclusive[""]; ok {
				utilized = appendUnique(utilized, "")
			}
		default:
			if a.Space != "" {
				utilized = appendUnique(utilized, a.Space)
			}
			out = append(out, a)
		}
	}
	for _, p := range utilized {
		if d, ok := declared.lookup(p); ok {
			if v, ok := scope.lookup(p); ok && d == v {
				continue
			}
		}
		uri, ok := scope.lookup(p)
		if !ok {
			return etreeutils.ErrUndeclaredNSPrefix{Prefix: p}
		}
		declared = append(declared, nsBinding{p, uri})
		if p == "" {
			out = append(out, etree.Attr{Key: "xmlns", Value: uri})
		} else {
			out = append(out, etree.Attr{Space: "xmlns", Key: p, Value: uri})
		}
	}
	sort.Sort(etreeutils.SortedAttrs(out))
	if w.inPlace {
		el.Attr = append([]etree.Attr(nil), out...)
		for i := 0; i < len(el.Child); {
			if _, ok := el.Child[i].(*etree.Comment); ok {
				el.RemoveChildAt(i)
			} else {
				i++
			}
		}
	}

	w.b.WriteByte('<')
	writeFullName(&w.b, el.Space, el.Tag)
	for i := range out {
		w.b.WriteByte(' ')
		out[i].WriteTo(&w.b, &canonicalWriteSettings)
	}
	w.attrs = out[:0] // the scratch is free again: out is written
	w.b.WriteByte('>')
	for _, tok := range el.Child {
		switch t := tok.(type) {
		case *etree.Element:
			if t == w.skip {
				continue
			}
			if err := w.element(t, t.Attr, scope, declared); err != nil {
				return err
			}
		case *etree.Comment:
		default: // text, CDATA, processing instructions and directives, as etree writes them
			t.WriteTo(&w.b, &canonicalWriteSettings)
		}
	}
	w.b.WriteString("</")
	writeFullName(&w.b, el.Space, el.Tag)
	w.b.WriteByte('>')
	return nil
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func writeFullName(b *bytes.Buffer, space, local string) {
	if space != "" {
		b.WriteString(space)
		b.WriteByte(':')
	}
	b.WriteString(local)
}

// canonicalWriteSettings are the settings goxmldsig serializes canonical forms with.
var canonicalWriteSettings = etree.WriteSettings{CanonicalAttrVal: true, CanonicalEndTags: true, CanonicalText: true}
