package slo

import (
	"crypto"
	"crypto/x509"
	"errors"

	"github.com/beevik/etree"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/providers"
)

// Message is a logout message the broker sends.
type Message interface {
	Element() *etree.Element
}

// Signer signs the broker's logout messages with a tenant's key.
type Signer struct {
	Key  crypto.Signer
	Cert *x509.Certificate
	// SigAlg is the signature algorithm; empty means RSA-SHA256. RSA-SHA1 only where a peer's
	// quirks ask for it (it then also uses a SHA-1 digest).
	SigAlg string
}

// param is the query/form parameter name of a message (saml-bindings 3.4.4, 3.5.4).
func param(m Message) string {
	if _, ok := m.(*LogoutResponse); ok {
		return "SAMLResponse"
	}
	return "SAMLRequest"
}

// RedirectURL encodes m for the HTTP-Redirect binding with the signature over the query string
// (saml-bindings 3.4.4.1), never inside the XML. A nil signer sends it unsigned.
func RedirectURL(dest string, m Message, relayState string, s *Signer) (string, error) {
	xml := binding.Serialize(m.Element())
	if s == nil {
		return binding.EncodeRedirect(dest, param(m), xml, relayState, nil, "")
	}
	return binding.EncodeRedirect(dest, param(m), xml, relayState, s.Key, s.SigAlg)
}

// SignedXML renders m with an enveloped signature, for the POST and SOAP bindings.
func SignedXML(m Message, s *Signer) ([]byte, error) {
	el := m.Element()
	if s != nil {
		if err := binding.SignEnveloped(el, s.Key, s.Cert, s.SigAlg); err != nil {
			return nil, err
		}
	}
	return binding.Serialize(el), nil
}

// POSTForm is the auto-submitting form that carries m to dest over the POST binding.
func POSTForm(dest string, m Message, relayState string, s *Signer) (*binding.Form, error) {
	xml, err := SignedXML(m, s)
	if err != nil {
		return nil, err
	}
	return &binding.Form{Action: dest, Param: param(m), Message: xml, RelayState: relayState}, nil
}

// Received is a logout message as it arrived, before and after its signature check.
type Received struct {
	Binding    providers.Binding
	RelayState string
	// Element is the message; after Verify, the verified element (read nothing else).
	Element  *etree.Element
	redirect *binding.Redirect
	verified bool
}

// ReadRedirect decodes a message from a raw Redirect query string.
func ReadRedirect(rawQuery string) (*Received, error) {
	rd, err := binding.DecodeRedirect(rawQuery)
	if err != nil {
		return nil, err
	}
	el, err := parse(rd.XML)
	if err != nil {
		return nil, err
	}
	return &Received{Binding: providers.BindingRedirect, RelayState: rd.RelayState, Element: el, redirect: rd}, nil
}

// ReadPOST decodes a message from the value of a SAMLRequest/SAMLResponse form field.
func ReadPOST(value, relayState string) (*Received, error) {
	doc, err := binding.DecodePOST(value)
	if err != nil {
		return nil, err
	}
	el, err := parse(doc)
	if err != nil {
		return nil, err
	}
	return &Received{Binding: providers.BindingPOST, RelayState: relayState, Element: el}, nil
}

// ReadSOAP takes a message the SOAP binding extracted from its envelope.
func ReadSOAP(el *etree.Element) *Received {
	return &Received{Binding: providers.BindingSOAP, Element: el}
}

func parse(doc []byte) (*etree.Element, error) {
	if err := binding.ValidateRoundTrip(doc); err != nil {
		return nil, malformed("not well-formed XML: %v", err)
	}
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, malformed("not XML: %v", err)
	}
	if d.Root() == nil {
		return nil, malformed("empty document")
	}
	return d.Root(), nil
}

// Kind is "LogoutRequest" or "LogoutResponse" (or the unexpected element's name).
func (r *Received) Kind() string { return r.Element.Tag }

// ClaimedIssuer is the Issuer the message claims, before any check: only for choosing whose
// certificates must have signed it.
func (r *Received) ClaimedIssuer() string {
	is, _ := issuer(r.Element)
	return is
}

// Signed reports whether the message carries a signature in its binding.
func (r *Received) Signed() bool {
	if r.redirect != nil {
		return r.redirect.Signed()
	}
	for _, c := range r.Element.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == "http://www.w3.org/2000/09/xmldsig#" {
			return true
		}
	}
	return false
}

// ErrUnsigned is returned by Verify for a message with no signature.
var ErrUnsigned = binding.ErrNoSignature

// Verify checks the signature against the peer's certificates (query signature for Redirect,
// enveloped XML signature for POST and SOAP) and replaces Element with the verified element.
// allowSHA1 admits RSA-SHA1 for peers whose quirks need it. errors.Is(err, ErrUnsigned) when
// there is no signature at all.
func (r *Received) Verify(certs []*x509.Certificate, allowSHA1 bool) error {
	if r.redirect != nil {
		if err := r.redirect.Verify(certs, allowSHA1); err != nil {
			return err
		}
		// A Redirect message must not also carry an XML signature that nobody checked.
		for _, c := range r.Element.ChildElements() {
			if c.Tag == "Signature" {
				return errors.New("redirect message carries an XML signature as well; refused")
			}
		}
		r.verified = true
		return nil
	}
	el, err := binding.VerifyEnveloped(r.Element, certs, allowSHA1)
	if err != nil {
		return err
	}
	r.Element, r.verified = el, true
	return nil
}

// Verified reports whether Verify succeeded.
func (r *Received) Verified() bool { return r.verified }
