package sso_test

import (
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
)

// responseSpec is what the test IdP puts in a Response; hostile tests change fields.
type responseSpec struct {
	issuer       string
	destination  string
	inResponseTo string
	recipient    string
	audience     string
	nameID       string
	assertionID  string
	issueInstant time.Time
	notOnOrAfter time.Time
	status       string
	sessionIndex string // the IdP's SessionIndex; empty: one per assertion

	signAssertion bool
	signResponse  bool
	signer        *peerKey // defaults to the IdP's key
	// wrap adds a second, unsigned assertion for another user (signature wrapping).
	wrap bool
	// commentNameID splits the NameID text with a comment (comment-truncation attack).
	commentNameID bool
}

// defaultResponse is a valid answer to requestID for the tenant's ACS.
func (h *harness) defaultResponse(slug, requestID string) *responseSpec {
	now := time.Now().UTC()
	return &responseSpec{
		issuer:        h.fx[slug].idp.entityID,
		destination:   h.url(slug, "/sp/acs"),
		inResponseTo:  requestID,
		recipient:     h.url(slug, "/sp/acs"),
		audience:      h.url(slug, "/sp/metadata"),
		nameID:        "alice@" + slug + ".example",
		assertionID:   "_a" + randHex(),
		issueInstant:  now,
		notOnOrAfter:  now.Add(5 * time.Minute),
		status:        saml.StatusSuccess,
		signAssertion: true,
	}
}

func (s *responseSpec) assertion(nameID, id string) *saml.Assertion {
	si := s.sessionIndex
	if si == "" {
		si = "_idpsession" + id
	}
	return &saml.Assertion{
		ID: id, IssueInstant: s.issueInstant, Version: "2.0",
		Issuer: saml.Issuer{Value: s.issuer},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: string(saml.PersistentNameIDFormat), Value: nameID},
			SubjectConfirmations: []saml.SubjectConfirmation{{Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer", SubjectConfirmationData: &saml.SubjectConfirmationData{
				InResponseTo: s.inResponseTo, NotOnOrAfter: s.notOnOrAfter, Recipient: s.recipient,
			}}},
		},
		Conditions: &saml.Conditions{NotBefore: s.issueInstant.Add(-time.Minute), NotOnOrAfter: s.notOnOrAfter,
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: s.audience}}}},
		AuthnStatements: []saml.AuthnStatement{{AuthnInstant: s.issueInstant, SessionIndex: si,
			AuthnContext: saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}}}},
		AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{{Name: "mail", Values: []saml.AttributeValue{{Type: "xs:string", Value: nameID}}}}}},
	}
}

// build renders and signs the Response as the spec says.
func (s *responseSpec) build(h *harness, idp *testIdP) []byte {
	h.t.Helper()
	signer := s.signer
	if signer == nil {
		signer = idp.peerKey
	}
	ael := s.assertion(s.nameID, s.assertionID).Element()
	if s.commentNameID {
		nid := ael.FindElement(".//NameID")
		text := nid.Text()
		nid.SetText(text[:3])
		nid.CreateComment("x")
		nid.CreateText(text[3:])
	}
	counted := countingSigner{signer.key, &h.idpSigs}
	if s.signAssertion {
		if err := binding.SignEnveloped(ael, counted, signer.cert, ""); err != nil {
			h.t.Fatal(err)
		}
	}
	resp := &saml.Response{ID: "_r" + randHex(), InResponseTo: s.inResponseTo, Version: "2.0", IssueInstant: s.issueInstant,
		Destination: s.destination, Issuer: &saml.Issuer{Value: s.issuer},
		Status: saml.Status{StatusCode: saml.StatusCode{Value: s.status}}}
	rel := resp.Element()
	if s.wrap {
		// The attacker's assertion first, unsigned, then the genuine signed one.
		evil := s.assertion("mallory@evil.example", "_evil"+randHex()).Element()
		rel.AddChild(evil)
	}
	rel.AddChild(ael)
	if s.signResponse {
		if err := binding.SignEnveloped(rel, counted, signer.cert, ""); err != nil {
			h.t.Fatal(err)
		}
	}
	d := etree.NewDocument()
	d.SetRoot(rel)
	out, err := d.WriteToBytes()
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}
