// Package slo is the broker's Single Logout engine: its own LogoutRequest and LogoutResponse
// messages (crewjam/saml's cannot carry several SessionIndexes, nested status codes or an echoed
// NameID exactly as issued), their three bindings, and — in later steps — the planning, running
// and recording of logout legs. It knows neither echo nor gorm.
package slo

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// SAML namespaces and status codes (saml-core 3.2.2.2).
const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"

	StatusSuccess          = "urn:oasis:names:tc:SAML:2.0:status:Success"
	StatusRequester        = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusResponder        = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	StatusVersionMismatch  = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch"
	StatusPartialLogout    = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
	StatusRequestDenied    = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
	StatusUnknownPrincipal = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"

	// Logout reasons (saml-core 3.7.3).
	ReasonUser  = "urn:oasis:names:tc:SAML:2.0:logout:user"
	ReasonAdmin = "urn:oasis:names:tc:SAML:2.0:logout:admin"

	timeFormat = "2006-01-02T15:04:05.000Z"
)

// NameID is a subject's name identifier exactly as it was issued: a LogoutRequest must echo the
// format and qualifiers byte for byte (ADFS refuses anything else, event 368).
type NameID struct {
	Value           string
	Format          string
	NameQualifier   string
	SPNameQualifier string
	SPProvidedID    string
}

// LogoutRequest is a samlp:LogoutRequest (saml-core 3.7.1).
type LogoutRequest struct {
	ID           string
	Version      string
	IssueInstant time.Time
	Destination  string
	Issuer       string
	NotOnOrAfter time.Time // zero: absent
	Reason       string
	NameID       NameID
	// SessionIndexes in document order; a peer that keeps only one gets a slice of one.
	SessionIndexes []string
}

// Status is a samlp:Status: a top-level code, an optional nested chain, and a message.
type Status struct {
	// Codes are the status codes from the top level down (saml-core 3.2.2.2).
	Codes   []string
	Message string
}

// Top is the top-level status code.
func (s Status) Top() string {
	if len(s.Codes) == 0 {
		return ""
	}
	return s.Codes[0]
}

// Sub is the second-level status code, if any.
func (s Status) Sub() string {
	if len(s.Codes) < 2 {
		return ""
	}
	return s.Codes[1]
}

// String renders the status as "Top / Sub: message" with the URN prefixes trimmed.
func (s Status) String() string {
	parts := make([]string, 0, len(s.Codes))
	for _, c := range s.Codes {
		parts = append(parts, strings.TrimPrefix(c, "urn:oasis:names:tc:SAML:2.0:status:"))
	}
	out := strings.Join(parts, " / ")
	if s.Message != "" {
		out += ": " + s.Message
	}
	return out
}

// LogoutResponse is a samlp:LogoutResponse (saml-core 3.7.2).
type LogoutResponse struct {
	ID           string
	InResponseTo string
	Version      string
	IssueInstant time.Time
	Destination  string
	Issuer       string
	Status       Status
}

func newProtocolElement(tag string) *etree.Element {
	el := etree.NewElement("samlp:" + tag)
	el.CreateAttr("xmlns:samlp", nsProtocol)
	el.CreateAttr("xmlns:saml", nsAssertion)
	return el
}

func addIssuer(el *etree.Element, issuer string) {
	if issuer == "" {
		return
	}
	is := el.CreateElement("saml:Issuer")
	is.SetText(issuer)
}

// Element renders the request (unsigned).
func (r *LogoutRequest) Element() *etree.Element {
	el := newProtocolElement("LogoutRequest")
	el.CreateAttr("ID", r.ID)
	el.CreateAttr("Version", "2.0")
	el.CreateAttr("IssueInstant", r.IssueInstant.UTC().Format(timeFormat))
	if r.Destination != "" {
		el.CreateAttr("Destination", r.Destination)
	}
	if !r.NotOnOrAfter.IsZero() {
		el.CreateAttr("NotOnOrAfter", r.NotOnOrAfter.UTC().Format(timeFormat))
	}
	if r.Reason != "" {
		el.CreateAttr("Reason", r.Reason)
	}
	addIssuer(el, r.Issuer)
	n := el.CreateElement("saml:NameID")
	for _, a := range [][2]string{{"NameQualifier", r.NameID.NameQualifier}, {"SPNameQualifier", r.NameID.SPNameQualifier}, {"Format", r.NameID.Format}, {"SPProvidedID", r.NameID.SPProvidedID}} {
		if a[1] != "" {
			n.CreateAttr(a[0], a[1])
		}
	}
	n.SetText(r.NameID.Value)
	for _, si := range r.SessionIndexes {
		el.CreateElement("samlp:SessionIndex").SetText(si)
	}
	return el
}

// Element renders the response (unsigned).
func (r *LogoutResponse) Element() *etree.Element {
	el := newProtocolElement("LogoutResponse")
	el.CreateAttr("ID", r.ID)
	if r.InResponseTo != "" {
		el.CreateAttr("InResponseTo", r.InResponseTo)
	}
	el.CreateAttr("Version", "2.0")
	el.CreateAttr("IssueInstant", r.IssueInstant.UTC().Format(timeFormat))
	if r.Destination != "" {
		el.CreateAttr("Destination", r.Destination)
	}
	addIssuer(el, r.Issuer)
	st := el.CreateElement("samlp:Status")
	parent := st
	codes := r.Status.Codes
	if len(codes) == 0 {
		codes = []string{StatusSuccess}
	}
	for _, c := range codes {
		sc := parent.CreateElement("samlp:StatusCode")
		sc.CreateAttr("Value", c)
		parent = sc
	}
	if r.Status.Message != "" {
		st.CreateElement("samlp:StatusMessage").SetText(r.Status.Message)
	}
	return el
}

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed logout message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// text is all the character data of an element, comments skipped: a signer's
// "alice@evil.example<!---->.good.example" is read whole, never as its first part.
func text(el *etree.Element) string {
	var b strings.Builder
	for _, t := range el.Child {
		if cd, ok := t.(*etree.CharData); ok {
			b.WriteString(cd.Data)
		}
	}
	return strings.TrimSpace(b.String())
}

// child returns the only child element with the namespace and tag; an error when repeated.
func child(el *etree.Element, ns, tag string) (*etree.Element, error) {
	var found *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			if found != nil {
				return nil, malformed("%s has more than one %s", el.Tag, tag)
			}
			found = c
		}
	}
	return found, nil
}

func parseTime(el *etree.Element, attr string, required bool) (time.Time, error) {
	v := el.SelectAttrValue(attr, "")
	if v == "" {
		if required {
			return time.Time{}, malformed("%s has no %s", el.Tag, attr)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, malformed("%s %s %q is not a time", el.Tag, attr, v)
	}
	return t.UTC(), nil
}

func checkRoot(el *etree.Element, tag string) error {
	if el == nil || el.Tag != tag || el.NamespaceURI() != nsProtocol {
		got := "nothing"
		if el != nil {
			got = "{" + el.NamespaceURI() + "}" + el.Tag
		}
		return malformed("expected a samlp:%s, got %s", tag, got)
	}
	if v := el.SelectAttrValue("Version", ""); v != "2.0" {
		return malformed("%s Version %q; want 2.0", tag, v)
	}
	if el.SelectAttrValue("ID", "") == "" {
		return malformed("%s has no ID", tag)
	}
	return nil
}

func issuer(el *etree.Element) (string, error) {
	is, err := child(el, nsAssertion, "Issuer")
	if err != nil || is == nil {
		return "", err
	}
	return text(is), nil
}

// ParseLogoutRequest reads a LogoutRequest from an element whose signature (if any) was already
// verified; it reads only that element.
func ParseLogoutRequest(el *etree.Element) (*LogoutRequest, error) {
	if err := checkRoot(el, "LogoutRequest"); err != nil {
		return nil, err
	}
	r := &LogoutRequest{ID: el.SelectAttrValue("ID", ""), Version: "2.0", Destination: el.SelectAttrValue("Destination", ""), Reason: el.SelectAttrValue("Reason", "")}
	var err error
	if r.IssueInstant, err = parseTime(el, "IssueInstant", true); err != nil {
		return nil, err
	}
	if r.NotOnOrAfter, err = parseTime(el, "NotOnOrAfter", false); err != nil {
		return nil, err
	}
	if r.Issuer, err = issuer(el); err != nil {
		return nil, err
	}
	n, err := child(el, nsAssertion, "NameID")
	if err != nil {
		return nil, err
	}
	if n == nil {
		if e, _ := child(el, nsAssertion, "EncryptedID"); e != nil {
			return nil, malformed("LogoutRequest carries an EncryptedID; the broker accepts plain NameIDs only")
		}
		return nil, malformed("LogoutRequest has no NameID")
	}
	r.NameID = NameID{
		Value:           text(n),
		Format:          n.SelectAttrValue("Format", ""),
		NameQualifier:   n.SelectAttrValue("NameQualifier", ""),
		SPNameQualifier: n.SelectAttrValue("SPNameQualifier", ""),
		SPProvidedID:    n.SelectAttrValue("SPProvidedID", ""),
	}
	if r.NameID.Value == "" {
		return nil, malformed("LogoutRequest NameID is empty")
	}
	for _, c := range el.ChildElements() {
		if c.Tag == "SessionIndex" && c.NamespaceURI() == nsProtocol {
			if si := text(c); si != "" {
				r.SessionIndexes = append(r.SessionIndexes, si)
			}
		}
	}
	return r, nil
}

// ParseLogoutResponse reads a LogoutResponse from an element whose signature (if any) was
// already verified.
func ParseLogoutResponse(el *etree.Element) (*LogoutResponse, error) {
	if err := checkRoot(el, "LogoutResponse"); err != nil {
		return nil, err
	}
	r := &LogoutResponse{ID: el.SelectAttrValue("ID", ""), Version: "2.0", InResponseTo: el.SelectAttrValue("InResponseTo", ""), Destination: el.SelectAttrValue("Destination", "")}
	var err error
	if r.IssueInstant, err = parseTime(el, "IssueInstant", true); err != nil {
		return nil, err
	}
	if r.Issuer, err = issuer(el); err != nil {
		return nil, err
	}
	st, err := child(el, nsProtocol, "Status")
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, malformed("LogoutResponse has no Status")
	}
	parent := st
	for depth := 0; depth < 8; depth++ {
		sc, err := child(parent, nsProtocol, "StatusCode")
		if err != nil {
			return nil, err
		}
		if sc == nil {
			break
		}
		v := sc.SelectAttrValue("Value", "")
		if v == "" {
			return nil, malformed("StatusCode without Value")
		}
		r.Status.Codes = append(r.Status.Codes, v)
		parent = sc
	}
	if len(r.Status.Codes) == 0 {
		return nil, malformed("LogoutResponse Status has no StatusCode")
	}
	if m, _ := child(st, nsProtocol, "StatusMessage"); m != nil {
		r.Status.Message = text(m)
	}
	return r, nil
}
