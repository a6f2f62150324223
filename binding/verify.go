package binding

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
	"github.com/russellhaering/goxmldsig/types"
)

const envelopedTransform = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

// errOffPath says a signature is not of the one shape verifyDirect handles; VerifyEnveloped then
// hands it to goxmldsig's general validator, which decides.
var errOffPath = errors.New("signature shape outside the direct path")

// verifyDirect verifies the enveloped signature sigEl (a direct child of el) of the shape every
// SAML signer we meet makes: SignedInfo canonicalized with exclusive c14n, one Reference to
// el's ID, transforms enveloped-signature and exclusive c14n (with an optional inclusive prefix
// list). It does what goxmldsig's ValidationContext.Validate does for that shape, in the same
// order, with the same canonical bytes (canonicalExcC14N writes what etreeutils' exclusive c14n
// and etree's canonical serialization write, without copying the tree) and x509's signature
// check, and without its general search for the signature: the signature over the canonical SignedInfo is checked first, the Reference is read
// from those verified bytes only, the digest is compared over el without its signature, and the
// element returned is parsed from the digested bytes. It returns errOffPath, having checked
// nothing, for any other shape.
//
// checkSignatureAlgorithms has already run: one Reference, no c14n with comments, an accepted
// SignatureMethod and DigestMethod.
func verifyDirect(el, sigEl *etree.Element, certs []*x509.Certificate, allowSHA1 bool) (*etree.Element, error) {
	// The shape goxmldsig insists on (validateShape): one SignedInfo, one SignatureValue, at
	// most one KeyInfo, counted by local name.
	var signedInfo, sigValue *etree.Element
	counts := map[string]int{}
	for _, c := range sigEl.ChildElements() {
		counts[c.Tag]++
		switch c.Tag {
		case "SignedInfo":
			signedInfo = c
		case "SignatureValue":
			sigValue = c
		}
	}
	if counts["SignedInfo"] != 1 || counts["SignatureValue"] != 1 || counts["KeyInfo"] > 1 {
		return nil, errOffPath
	}
	if signedInfo.NamespaceURI() != xmldsigNS || sigValue.NamespaceURI() != xmldsigNS || len(sigValue.ChildElements()) != 0 {
		return nil, errOffPath
	}
	cm := signedInfo.SelectElement("CanonicalizationMethod")
	if cm == nil || cm.NamespaceURI() != xmldsigNS || cm.SelectAttrValue("Algorithm", "") != excC14N || len(cm.ChildElements()) != 0 {
		return nil, errOffPath
	}
	if !directReference(signedInfo) {
		return nil, errOffPath
	}
	sm := signedInfo.SelectElement("SignatureMethod")
	if sm == nil {
		return nil, errOffPath
	}
	alg, err := x509Algorithm(sm.SelectAttrValue("Algorithm", ""), allowSHA1)
	if err != nil {
		return nil, err
	}

	// The canonical SignedInfo, with the namespaces in scope where it stands.
	canonicalSignedInfo, err := canonicalExcC14N(signedInfo, "", nil)
	if err != nil {
		return nil, err
	}

	// SignatureValue's character data, as encoding/xml reads it for goxmldsig (the base64
	// decoder skips line breaks).
	signature, err := base64.StdEncoding.DecodeString(charData(sigValue))
	if err != nil {
		return nil, errors.New("could not decode signature")
	}
	var verr error
	verified := false
	for _, cert := range certs {
		if verr = cert.CheckSignature(alg, canonicalSignedInfo, signature); verr == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, verr
	}

	// From here on only what the verified bytes say is read. They are the canonical form of
	// signedInfo: every attribute value and every element's namespace as they stand there, and
	// each text whole (comments left out), so readReference reads them from signedInfo.
	ref, err := readReference(signedInfo)
	if err != nil {
		return nil, err
	}
	id := el.SelectAttrValue("ID", "")
	if id == "" || ref.URI != "#"+id {
		return nil, fmt.Errorf("the signature's reference %q is not to this element (ID %q)", ref.URI, id)
	}
	prefixList, err := directTransforms(ref.Transforms.Transforms)
	if err != nil {
		return nil, err
	}
	hash, ok := digestHash(ref.DigestAlgo.Algorithm)
	switch {
	case !ok:
		return nil, fmt.Errorf("unknown digest algorithm %q", ref.DigestAlgo.Algorithm)
	case hash == crypto.SHA1 && !allowSHA1:
		return nil, &Error{Reason: "SHA-1 digests are not accepted from this peer; use SHA-256", Err: ErrWeakAlgorithm}
	}
	want, err := base64.StdEncoding.DecodeString(ref.DigestValue)
	if err != nil {
		return nil, err
	}

	// The referenced element: el without its signature, in exclusive c14n.
	referenced, err := canonicalExcC14N(el, prefixList, sigEl)
	if err != nil {
		return nil, err
	}
	h := hash.New()
	h.Write(referenced)
	if got := h.Sum(nil); len(got) < 20 || !bytes.Equal(got, want) {
		return nil, errors.New("signature could not be verified: the digest does not match")
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(referenced); err != nil {
		return nil, err
	}
	return doc.Root(), nil
}

// readReference reads the one Reference of SignedInfo (as its canonical form reads): its URI, transforms
// (with an exclusive c14n prefix list), digest method and digest value, each given once, in the
// XML signature namespace.
func readReference(signedInfo *etree.Element) (types.Reference, error) {
	var ref types.Reference
	one := func(parent *etree.Element, tag string) (*etree.Element, error) {
		var found *etree.Element
		for _, c := range parent.ChildElements() {
			if c.Tag == tag {
				if found != nil || c.NamespaceURI() != xmldsigNS {
					return nil, fmt.Errorf("signed info: %s must be given once, in the XML signature namespace", tag)
				}
				found = c
			}
		}
		if found == nil {
			return nil, fmt.Errorf("signed info has no %s", tag)
		}
		return found, nil
	}
	r, err := one(signedInfo, "Reference")
	if err != nil {
		return ref, err
	}
	ref.URI = r.SelectAttrValue("URI", "")
	ts, err := one(r, "Transforms")
	if err != nil {
		return ref, err
	}
	for _, t := range ts.ChildElements() {
		if t.Tag != "Transform" || t.NamespaceURI() != xmldsigNS {
			return ref, fmt.Errorf("signed info: unexpected %s in Transforms", t.Tag)
		}
		tr := types.Transform{Algorithm: t.SelectAttrValue("Algorithm", "")}
		for _, in := range t.ChildElements() {
			if in.Tag != "InclusiveNamespaces" || in.NamespaceURI() != excC14N || tr.InclusiveNamespaces != nil {
				return ref, fmt.Errorf("signed info: unexpected %s in a Transform", in.Tag)
			}
			tr.InclusiveNamespaces = &types.InclusiveNamespaces{PrefixList: in.SelectAttrValue("PrefixList", "")}
		}
		ref.Transforms.Transforms = append(ref.Transforms.Transforms, tr)
	}
	dm, err := one(r, "DigestMethod")
	if err != nil {
		return ref, err
	}
	ref.DigestAlgo.Algorithm = dm.SelectAttrValue("Algorithm", "")
	dv, err := one(r, "DigestValue")
	if err != nil {
		return ref, err
	}
	if len(dv.ChildElements()) != 0 {
		return ref, errors.New("signed info: DigestValue holds an element")
	}
	ref.DigestValue = charData(dv)
	return ref, nil
}

// charData is all of el's own character data (text and CDATA, comments and processing
// instructions skipped), as encoding/xml reads an element's chardata.
func charData(el *etree.Element) string {
	var b strings.Builder
	for _, tok := range el.Child {
		if cd, ok := tok.(*etree.CharData); ok {
			b.WriteString(cd.Data)
		}
	}
	return b.String()
}

// digestHash is the hash a DigestMethod names (digestURI read backwards).
func digestHash(uri string) (crypto.Hash, bool) {
	for h, u := range digestURI {
		if u == uri {
			return h, true
		}
	}
	return 0, false
}

// directReference reports whether SignedInfo's one Reference looks like the direct path's
// before anything is verified (to choose the path; what counts is read again from the verified
// bytes): a non-empty URI and the two transforms.
func directReference(signedInfo *etree.Element) bool {
	refs := signedInfo.SelectElements("Reference")
	if len(refs) != 1 || refs[0].SelectAttrValue("URI", "") == "" {
		return false
	}
	ts := refs[0].SelectElement("Transforms")
	if ts == nil {
		return false
	}
	var list []types.Transform
	for _, t := range ts.SelectElements("Transform") {
		list = append(list, types.Transform{Algorithm: t.SelectAttrValue("Algorithm", "")})
	}
	_, err := directTransforms(list)
	return err == nil
}

// directTransforms accepts exactly the enveloped-signature and exclusive c14n transforms (in
// either order) and returns the c14n's inclusive prefix list.
func directTransforms(ts []types.Transform) (string, error) {
	if len(ts) != 2 {
		return "", fmt.Errorf("the reference has %d transforms; want enveloped-signature and exclusive c14n", len(ts))
	}
	prefixList := ""
	seen := map[string]bool{}
	for _, t := range ts {
		switch t.Algorithm {
		case envelopedTransform:
		case excC14N:
			if t.InclusiveNamespaces != nil {
				prefixList = t.InclusiveNamespaces.PrefixList
			}
		default:
			return "", fmt.Errorf("unsupported transform %q", t.Algorithm)
		}
		if seen[t.Algorithm] {
			return "", fmt.Errorf("transform %q given twice", t.Algorithm)
		}
		seen[t.Algorithm] = true
	}
	return prefixList, nil
}
