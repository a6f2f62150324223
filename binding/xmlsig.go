package binding

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Signature and digest algorithm URIs (xmldsig-core, xmldsig-more).
const (
	SigAlgRSASHA1      = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	SigAlgRSASHA256    = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	SigAlgRSASHA512    = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	digestSHA1         = "http://www.w3.org/2000/09/xmldsig#sha1"
	xmldsigNS          = "http://www.w3.org/2000/09/xmldsig#"
	excC14N            = "http://www.w3.org/2001/10/xml-exc-c14n#"
	excC14NWithComment = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
)

func hashFor(sigAlg string) (crypto.Hash, error) {
	switch sigAlg {
	case SigAlgRSASHA1:
		return crypto.SHA1, nil
	case SigAlgRSASHA256:
		return crypto.SHA256, nil
	case SigAlgRSASHA512:
		return crypto.SHA512, nil
	}
	return 0, &Error{Reason: fmt.Sprintf("unsupported signature algorithm %q", sigAlg), Err: ErrWeakAlgorithm}
}

func x509Algorithm(sigAlg string, allowSHA1 bool) (x509.SignatureAlgorithm, error) {
	switch sigAlg {
	case SigAlgRSASHA256:
		return x509.SHA256WithRSA, nil
	case SigAlgRSASHA512:
		return x509.SHA512WithRSA, nil
	case SigAlgRSASHA1:
		if allowSHA1 {
			return x509.SHA1WithRSA, nil
		}
		return 0, &Error{Reason: "RSA-SHA1 signatures are not accepted from this peer; sign with RSA-SHA256", Err: ErrWeakAlgorithm}
	}
	return 0, &Error{Reason: fmt.Sprintf("unsupported signature algorithm %q", sigAlg), Err: ErrWeakAlgorithm}
}

// SignEnveloped signs el with an enveloped XML signature (exclusive c14n) made through signer, and
// places it right after the Issuer child as the SAML schema requires (saml-core 5.4.1). el must
// carry an ID attribute. sigAlg is RSA-SHA256 when empty; RSA-SHA1 uses a SHA-1 digest too.
//
// It makes the signature goxmldsig's SigningContext makes (ConstructSignature, "ds" prefix),
// byte for byte, and leaves el as that does (in exclusive canonical form), with the canonical
// forms written straight from the tree (canonicalizeInPlace, canonicalExcC14N) instead of copies
// of it; TestSignEnvelopedMatchesGoxmldsig holds the two to the same output.
func SignEnveloped(el *etree.Element, signer crypto.Signer, cert *x509.Certificate, sigAlg string) error {
	if sigAlg == "" {
		sigAlg = SigAlgRSASHA256
	}
	hash, err := hashFor(sigAlg)
	if err != nil {
		return fmt.Errorf("signature method: %w", err)
	}
	digestAlg, ok := digestURI[hash]
	if !ok {
		return fmt.Errorf("signature method: no digest for %s", sigAlg)
	}
	canonical, err := canonicalizeInPlace(el)
	if err != nil {
		return fmt.Errorf("sign %s: %w", el.Tag, err)
	}
	h := hash.New()
	h.Write(canonical)

	sig := &etree.Element{Tag: "Signature", Space: "ds"}
	sig.CreateAttr("xmlns:ds", xmldsigNS)
	signedInfo := &etree.Element{Tag: "SignedInfo", Space: "ds"}
	child := func(parent *etree.Element, tag string) *etree.Element {
		c := parent.CreateElement(tag)
		c.Space = "ds"
		return c
	}
	child(signedInfo, "CanonicalizationMethod").CreateAttr("Algorithm", excC14N)
	child(signedInfo, "SignatureMethod").CreateAttr("Algorithm", sigAlg)
	ref := child(signedInfo, "Reference")
	if id := el.SelectAttrValue("ID", ""); id != "" {
		ref.CreateAttr("URI", "#"+id)
	} else {
		ref.CreateAttr("URI", "")
	}
	transforms := child(ref, "Transforms")
	child(transforms, "Transform").CreateAttr("Algorithm", envelopedTransform)
	child(transforms, "Transform").CreateAttr("Algorithm", excC14N)
	child(ref, "DigestMethod").CreateAttr("Algorithm", digestAlg)
	child(ref, "DigestValue").SetText(base64.StdEncoding.EncodeToString(h.Sum(nil)))
	sig.AddChild(signedInfo)

	insertAfterIssuer(el, sig)

	// SignedInfo in exclusive c14n with the namespaces in scope where it stands.
	si, err := canonicalExcC14N(signedInfo, "", nil)
	if err != nil {
		el.RemoveChild(sig)
		return fmt.Errorf("sign %s: %w", el.Tag, err)
	}
	h = hash.New()
	h.Write(si)
	raw, err := signer.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		el.RemoveChild(sig)
		return fmt.Errorf("sign %s: %w", el.Tag, err)
	}
	child(sig, "SignatureValue").SetText(base64.StdEncoding.EncodeToString(raw))
	child(child(child(sig, "KeyInfo"), "X509Data"), "X509Certificate").SetText(base64.StdEncoding.EncodeToString(cert.Raw))
	return nil
}

// insertAfterIssuer makes sig el's child right after its Issuer (its first child when it has
// none), as the SAML schema places a signature (saml-core 5.4.1).
func insertAfterIssuer(el, sig *etree.Element) {
	pos := 0
	for i, c := range el.ChildElements() {
		if c.Tag == "Issuer" {
			pos = i + 1
			break
		}
	}
	// InsertChildAt counts all tokens; find the token index of the pos-th element.
	idx := 0
	seen := 0
	for i, tok := range el.Child {
		if _, ok := tok.(*etree.Element); ok {
			if seen == pos {
				idx = i
				break
			}
			seen++
		}
		idx = i + 1
	}
	el.InsertChildAt(idx, sig)
}

// digestURI names the digest of each hash (xmldsig-core, xmlenc).
var digestURI = map[crypto.Hash]string{
	crypto.SHA1:   digestSHA1,
	crypto.SHA256: "http://www.w3.org/2001/04/xmlenc#sha256",
	crypto.SHA512: "http://www.w3.org/2001/04/xmlenc#sha512",
}

// VerifyEnveloped checks the enveloped signature that is a direct child of el against the peer's
// certificates and returns the verified element (without its signature): callers must read the
// returned element, never el, so that only signed bytes are trusted. The certificates are
// trusted by key, as SAML metadata trust is; their validity dates are not checked. ErrNoSignature
// when el has no signature child. el is left as it was, but is changed during the call (its
// signature's KeyInfo is set aside): no other goroutine may use el's tree meanwhile.
func VerifyEnveloped(el *etree.Element, certs []*x509.Certificate, allowSHA1 bool) (*etree.Element, error) {
	var sigEl *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == xmldsigNS {
			if sigEl != nil {
				return nil, &Error{Reason: el.Tag + " has two Signature elements", Err: ErrBadSignature}
			}
			sigEl = c
		}
	}
	if sigEl == nil {
		return nil, ErrNoSignature
	}
	if err := checkSignatureAlgorithms(sigEl, allowSHA1); err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, &Error{Reason: "no certificate to verify the signature with", Err: ErrBadSignature}
	}
	verified, err := verifyDirect(el, sigEl, certs, allowSHA1)
	switch {
	case err == nil:
		return verified, nil
	case !errors.Is(err, errOffPath):
		var be *Error
		if errors.As(err, &be) {
			return nil, be
		}
		return nil, &Error{Reason: el.Tag + " signature does not verify against the peer's certificates", Err: fmt.Errorf("%w: %v", ErrBadSignature, err)}
	}
	// Any other shape goes to goxmldsig's general validator.
	return verifyGeneral(el, sigEl, certs)
}

// verifyGeneral verifies through goxmldsig's ValidationContext, which takes every shape of
// enveloped signature goxmldsig knows.
func verifyGeneral(el, sigEl *etree.Element, certs []*x509.Certificate) (*etree.Element, error) {
	// Trust by key: set KeyInfo aside (a signer's embedded certificate proves nothing) and try each
	// pinned certificate as the only root, at a time inside its validity. Validate works on its
	// own copy of el, so el itself need not be copied; KeyInfo is put back when done.
	if ki := sigEl.SelectElement("KeyInfo"); ki != nil {
		i := ki.Index()
		sigEl.RemoveChildAt(i)
		defer sigEl.InsertChildAt(i, ki)
	}
	var lastErr error
	for _, cert := range certs {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		vc.IdAttribute = "ID"
		vc.Clock = dsig.NewFakeClockAt(validInstant(cert))
		verified, err := vc.Validate(el)
		if err == nil {
			return verified, nil
		}
		lastErr = err
	}
	return nil, &Error{Reason: el.Tag + " signature does not verify against the peer's certificates", Err: fmt.Errorf("%w: %v", ErrBadSignature, lastErr)}
}

func validInstant(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 2)
}

// checkSignatureAlgorithms refuses SHA-1 (unless allowed), unknown algorithms, and c14n with
// comments (which lets a signer hide text a parser would read).
func checkSignatureAlgorithms(sigEl *etree.Element, allowSHA1 bool) error {
	si := sigEl.SelectElement("SignedInfo")
	if si == nil {
		return &Error{Reason: "Signature has no SignedInfo", Err: ErrBadSignature}
	}
	if cm := si.SelectElement("CanonicalizationMethod"); cm != nil {
		switch cm.SelectAttrValue("Algorithm", "") {
		case excC14NWithComment, "http://www.w3.org/2006/12/xml-c14n11#WithComments", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments":
			return &Error{Reason: "canonicalization with comments is not accepted", Err: ErrBadSignature}
		}
	}
	sm := si.SelectElement("SignatureMethod")
	if sm == nil {
		return &Error{Reason: "Signature has no SignatureMethod", Err: ErrBadSignature}
	}
	if _, err := x509Algorithm(sm.SelectAttrValue("Algorithm", ""), allowSHA1); err != nil {
		return err
	}
	refs := si.SelectElements("Reference")
	if len(refs) != 1 {
		return &Error{Reason: fmt.Sprintf("Signature has %d References; want exactly 1", len(refs)), Err: ErrBadSignature}
	}
	if dm := refs[0].SelectElement("DigestMethod"); dm != nil && dm.SelectAttrValue("Algorithm", "") == digestSHA1 && !allowSHA1 {
		return &Error{Reason: "SHA-1 digests are not accepted from this peer; use SHA-256", Err: ErrWeakAlgorithm}
	}
	return nil
}
