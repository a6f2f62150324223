package sso

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// Reading an IdP's Response and Assertion from their parsed (and, for what is signed, verified)
// trees, into the fields of crewjam/saml's types the checks and the session use. It reads what
// encoding/xml would through those types, with two differences, both refusals: an element the
// schema allows once (Issuer, Status, StatusCode, StatusMessage, Subject, NameID,
// SubjectConfirmationData, Conditions) given twice is malformed, and every element must be in its
// SAML namespace. Text is all the character data of an element, comments skipped, so that a signer's
// "alice@evil.example<!---->.good.example" is read whole, as encoding/xml reads it.

// errDuplicate is wrapped when a singleton element repeats.
var errDuplicate = errors.New("element given more than once")

// xmlText is the character data of el's own text and CDATA children, comments skipped.
func xmlText(el *etree.Element) string {
	var only string
	n := 0
	for _, t := range el.Child {
		if cd, ok := t.(*etree.CharData); ok {
			only = cd.Data
			n++
		}
	}
	if n <= 1 {
		return only
	}
	var b strings.Builder
	for _, t := range el.Child {
		if cd, ok := t.(*etree.CharData); ok {
			b.WriteString(cd.Data)
		}
	}
	return b.String()
}

// attrValue is the value of el's attribute with the local name, whatever its prefix; the last one
// when repeated (as encoding/xml reads it). A namespace declaration (xmlns:ID) is no attribute.
func attrValue(el *etree.Element, name string) (string, bool) {
	v, ok := "", false
	for _, a := range el.Attr {
		if a.Key == name && a.Space != "xmlns" {
			v, ok = a.Value, true
		}
	}
	return v, ok
}

// timeAttr parses an optional time attribute as saml.RelaxedTime does; absent is the zero time.
func timeAttr(el *etree.Element, name string) (time.Time, error) {
	v, ok := attrValue(el, name)
	if !ok {
		return time.Time{}, nil
	}
	var t saml.RelaxedTime
	if err := t.UnmarshalText([]byte(v)); err != nil {
		return time.Time{}, fmt.Errorf("%s %s: %w", el.Tag, name, err)
	}
	return time.Time(t), nil
}

// children returns el's child elements with the namespace and tag.
func children(el *etree.Element, ns, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

// only returns el's single child with the namespace and tag, nil when there is none.
func only(el *etree.Element, ns, tag string) (*etree.Element, error) {
	var found *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			if found != nil {
				return nil, fmt.Errorf("%s in %s: %w", tag, el.Tag, errDuplicate)
			}
			found = c
		}
	}
	return found, nil
}

// issuerOf reads el's Issuer child, given at most once (nil when absent).
func issuerOf(el *etree.Element) (*saml.Issuer, error) {
	is, err := only(el, nsAssertion, "Issuer")
	if err != nil || is == nil {
		return nil, err
	}
	return readIssuer(is), nil
}

func readIssuer(el *etree.Element) *saml.Issuer {
	is := &saml.Issuer{Value: xmlText(el)}
	is.NameQualifier, _ = attrValue(el, "NameQualifier")
	is.SPNameQualifier, _ = attrValue(el, "SPNameQualifier")
	is.Format, _ = attrValue(el, "Format")
	is.SPProvidedID, _ = attrValue(el, "SPProvidedID")
	return is
}

func readNameID(el *etree.Element) *saml.NameID {
	n := &saml.NameID{Value: xmlText(el)}
	n.NameQualifier, _ = attrValue(el, "NameQualifier")
	n.SPNameQualifier, _ = attrValue(el, "SPNameQualifier")
	n.Format, _ = attrValue(el, "Format")
	n.SPProvidedID, _ = attrValue(el, "SPProvidedID")
	return n
}

// readResponse reads the Response's own fields (not its assertion).
func readResponse(el *etree.Element, r *saml.Response) error {
	var err error
	r.ID, _ = attrValue(el, "ID")
	r.InResponseTo, _ = attrValue(el, "InResponseTo")
	r.Version, _ = attrValue(el, "Version")
	r.Destination, _ = attrValue(el, "Destination")
	if r.IssueInstant, err = timeAttr(el, "IssueInstant"); err != nil {
		return err
	}
	if r.Issuer, err = issuerOf(el); err != nil {
		return err
	}
	st, err := only(el, nsProtocol, "Status")
	if err != nil || st == nil {
		return err
	}
	code, err := only(st, nsProtocol, "StatusCode")
	if err != nil {
		return err
	}
	if code != nil {
		r.Status.StatusCode.Value, _ = attrValue(code, "Value")
		sub, err := only(code, nsProtocol, "StatusCode")
		if err != nil {
			return err
		}
		if sub != nil {
			r.Status.StatusCode.StatusCode = &saml.StatusCode{}
			r.Status.StatusCode.StatusCode.Value, _ = attrValue(sub, "Value")
		}
	}
	msg, err := only(st, nsProtocol, "StatusMessage")
	if err != nil {
		return err
	}
	if msg != nil {
		r.Status.StatusMessage = &saml.StatusMessage{Value: xmlText(msg)}
	}
	return nil
}

// readAssertion reads the assertion's fields: issuer, subject, conditions, authentication and
// attribute statements.
func readAssertion(el *etree.Element, a *saml.Assertion) error {
	var err error
	a.ID, _ = attrValue(el, "ID")
	a.Version, _ = attrValue(el, "Version")
	if a.IssueInstant, err = timeAttr(el, "IssueInstant"); err != nil {
		return err
	}
	is, err := issuerOf(el)
	if err != nil {
		return err
	}
	if is != nil {
		a.Issuer = *is
	}
	if err := readSubject(el, a); err != nil {
		return err
	}
	if err := readConditions(el, a); err != nil {
		return err
	}
	for _, st := range children(el, nsAssertion, "AuthnStatement") {
		var s saml.AuthnStatement
		if s.AuthnInstant, err = timeAttr(st, "AuthnInstant"); err != nil {
			return err
		}
		s.SessionIndex, _ = attrValue(st, "SessionIndex")
		if _, ok := attrValue(st, "SessionNotOnOrAfter"); ok {
			t, err := timeAttr(st, "SessionNotOnOrAfter")
			if err != nil {
				return err
			}
			s.SessionNotOnOrAfter = &t
		}
		a.AuthnStatements = append(a.AuthnStatements, s)
	}
	for _, st := range children(el, nsAssertion, "AttributeStatement") {
		var s saml.AttributeStatement
		for _, at := range children(st, nsAssertion, "Attribute") {
			out := saml.Attribute{}
			out.Name, _ = attrValue(at, "Name")
			out.NameFormat, _ = attrValue(at, "NameFormat")
			out.FriendlyName, _ = attrValue(at, "FriendlyName")
			for _, v := range children(at, nsAssertion, "AttributeValue") {
				out.Values = append(out.Values, saml.AttributeValue{Value: xmlText(v)})
			}
			s.Attributes = append(s.Attributes, out)
		}
		a.AttributeStatements = append(a.AttributeStatements, s)
	}
	return nil
}

func readSubject(el *etree.Element, a *saml.Assertion) error {
	sub, err := only(el, nsAssertion, "Subject")
	if err != nil || sub == nil {
		return err
	}
	a.Subject = &saml.Subject{}
	nid, err := only(sub, nsAssertion, "NameID")
	if err != nil {
		return err
	}
	if nid != nil {
		a.Subject.NameID = readNameID(nid)
	}
	for _, sc := range children(sub, nsAssertion, "SubjectConfirmation") {
		c := saml.SubjectConfirmation{}
		c.Method, _ = attrValue(sc, "Method")
		d, err := only(sc, nsAssertion, "SubjectConfirmationData")
		if err != nil {
			return err
		}
		if d != nil {
			c.SubjectConfirmationData = &saml.SubjectConfirmationData{}
			scd := c.SubjectConfirmationData
			if scd.NotBefore, err = timeAttr(d, "NotBefore"); err != nil {
				return err
			}
			if scd.NotOnOrAfter, err = timeAttr(d, "NotOnOrAfter"); err != nil {
				return err
			}
			scd.Recipient, _ = attrValue(d, "Recipient")
			scd.InResponseTo, _ = attrValue(d, "InResponseTo")
			scd.Address, _ = attrValue(d, "Address")
		}
		a.Subject.SubjectConfirmations = append(a.Subject.SubjectConfirmations, c)
	}
	return nil
}

func readConditions(el *etree.Element, a *saml.Assertion) error {
	c, err := only(el, nsAssertion, "Conditions")
	if err != nil || c == nil {
		return err
	}
	a.Conditions = &saml.Conditions{}
	if a.Conditions.NotBefore, err = timeAttr(c, "NotBefore"); err != nil {
		return err
	}
	if a.Conditions.NotOnOrAfter, err = timeAttr(c, "NotOnOrAfter"); err != nil {
		return err
	}
	for _, ar := range children(c, nsAssertion, "AudienceRestriction") {
		// One Audience per restriction is read, the last, as encoding/xml reads crewjam's type.
		r := saml.AudienceRestriction{}
		for _, aud := range children(ar, nsAssertion, "Audience") {
			r.Audience.Value = xmlText(aud)
		}
		a.Conditions.AudienceRestrictions = append(a.Conditions.AudienceRestrictions, r)
	}
	return nil
}

// boolAttr parses an optional boolean attribute as encoding/xml does for a *bool; absent is nil.
func boolAttr(el *etree.Element, name string) (*bool, error) {
	v, ok := attrValue(el, name)
	if !ok {
		return nil, nil
	}
	if v == "" { // encoding/xml reads an empty value as false
		f := false
		return &f, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %q is not a boolean", el.Tag, name, v)
	}
	return &b, nil
}

// readAuthnRequest reads an app's AuthnRequest: the fields the broker acts on (ID, Version,
// IssueInstant, Destination, Issuer, NameIDPolicy, ForceAuthn, IsPassive, the ACS and protocol
// binding asked for). Issuer and NameIDPolicy may each be given once.
func readAuthnRequest(el *etree.Element, r *saml.AuthnRequest) error {
	var err error
	r.ID, _ = attrValue(el, "ID")
	r.Version, _ = attrValue(el, "Version")
	r.Destination, _ = attrValue(el, "Destination")
	r.Consent, _ = attrValue(el, "Consent")
	r.AssertionConsumerServiceIndex, _ = attrValue(el, "AssertionConsumerServiceIndex")
	r.AssertionConsumerServiceURL, _ = attrValue(el, "AssertionConsumerServiceURL")
	r.ProtocolBinding, _ = attrValue(el, "ProtocolBinding")
	r.AttributeConsumingServiceIndex, _ = attrValue(el, "AttributeConsumingServiceIndex")
	r.ProviderName, _ = attrValue(el, "ProviderName")
	if r.IssueInstant, err = timeAttr(el, "IssueInstant"); err != nil {
		return err
	}
	if r.ForceAuthn, err = boolAttr(el, "ForceAuthn"); err != nil {
		return err
	}
	if r.IsPassive, err = boolAttr(el, "IsPassive"); err != nil {
		return err
	}
	if r.Issuer, err = issuerOf(el); err != nil {
		return err
	}
	p, err := only(el, nsProtocol, "NameIDPolicy")
	if err != nil {
		return err
	}
	if p != nil {
		r.NameIDPolicy = &saml.NameIDPolicy{}
		if v, ok := attrValue(p, "Format"); ok {
			r.NameIDPolicy.Format = &v
		}
		if v, ok := attrValue(p, "SPNameQualifier"); ok {
			r.NameIDPolicy.SPNameQualifier = &v
		}
		if r.NameIDPolicy.AllowCreate, err = boolAttr(p, "AllowCreate"); err != nil {
			return err
		}
	}
	return nil
}
