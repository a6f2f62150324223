package sso

import (
	"errors"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/providers"
)

// checkedResponse is an IdP Response that passed every check; every field comes from signed bytes.
type checkedResponse struct {
	response  saml.Response
	assertion saml.Assertion
	// expires is when the assertion can no longer be used (for the replay cache).
	expires time.Time
}

// responseExpectation is what a Response must match.
type responseExpectation struct {
	acsURL    string // our ACS URL: Destination and Recipient
	audience  string // our SP entity ID
	requestID string // the pending AuthnRequest's ID
	upstream  *providers.Upstream
	now       time.Time
}

// peekInResponseTo reads InResponseTo from an unverified Response, only to find the pending
// request (and so which IdP's keys must have signed it).
func peekInResponseTo(root *etree.Element) string {
	return root.SelectAttrValue("InResponseTo", "")
}

// checkResponse verifies an IdP's Response (saml-profiles 4.1.4.3): one assertion, signed by the
// IdP (Response or Assertion signature, every present signature valid), from the IdP, for us,
// now, in response to our request.
func (h *Handler) checkResponse(root *etree.Element, want responseExpectation) (*checkedResponse, error) {
	up := want.upstream
	// Signature wrapping: exactly one assertion anywhere in the document, as a direct child.
	var assertions, encrypted int
	var walk func(*etree.Element)
	walk = func(el *etree.Element) {
		for _, c := range el.ChildElements() {
			if c.NamespaceURI() == nsAssertion {
				switch c.Tag {
				case "Assertion":
					assertions++
				case "EncryptedAssertion":
					encrypted++
				}
			}
			walk(c)
		}
	}
	walk(root)
	if encrypted > 0 {
		return nil, refuse(ReasonMalformed, nil, "Response carries an EncryptedAssertion; the broker accepts plain signed assertions only")
	}
	if assertions != 1 {
		return nil, refuse(ReasonMalformed, nil, "Response carries %d assertions; exactly one is accepted", assertions)
	}

	responseSigned := false
	verifiedRoot, err := binding.VerifyEnveloped(root, up.SigningCerts, false)
	switch {
	case err == nil:
		root, responseSigned = verifiedRoot, true
	case !errors.Is(err, binding.ErrNoSignature):
		return nil, refuse(ReasonSignature, err, "Response signature from %s", up.EntityID)
	}
	var assertionEl *etree.Element
	for _, c := range root.ChildElements() {
		if c.Tag == "Assertion" && c.NamespaceURI() == nsAssertion {
			assertionEl = c
		}
	}
	if assertionEl == nil {
		return nil, refuse(ReasonMalformed, nil, "the Assertion is not a direct child of the Response")
	}
	verifiedAssertion, err := binding.VerifyEnveloped(detach(assertionEl), up.SigningCerts, false)
	switch {
	case err == nil:
		assertionEl = verifiedAssertion
	case errors.Is(err, binding.ErrNoSignature):
		if !responseSigned {
			return nil, refuse(ReasonSignature, nil, "neither the Response nor the Assertion from %s is signed", up.EntityID)
		}
	default:
		return nil, refuse(ReasonSignature, err, "Assertion signature from %s", up.EntityID)
	}

	var out checkedResponse
	// Read straight from the trees: root as verified (or unsigned), and only the verified
	// assertion element, never the Response's copy of it.
	if err := readResponse(root, &out.response); err != nil {
		return nil, refuse(ReasonMalformed, err, "Response")
	}
	if err := readAssertion(assertionEl, &out.assertion); err != nil {
		return nil, refuse(ReasonMalformed, err, "Assertion")
	}
	resp, a := &out.response, &out.assertion
	now := want.now
	skew := h.cfg.ClockSkew

	if resp.Version != "2.0" || a.Version != "2.0" {
		return nil, refuse(ReasonMalformed, nil, "Response/Assertion Version is not 2.0")
	}
	if resp.Issuer != nil && resp.Issuer.Value != up.EntityID {
		return nil, refuse(ReasonIssuer, nil, "Response Issuer %q; the connection's IdP is %q", resp.Issuer.Value, up.EntityID)
	}
	if a.Issuer.Value != up.EntityID {
		return nil, refuse(ReasonIssuer, nil, "Assertion Issuer %q; the connection's IdP is %q", a.Issuer.Value, up.EntityID)
	}
	// saml-bindings 3.5.5.2: a signed Response must carry Destination; when present it must be us.
	if resp.Destination != want.acsURL && (resp.Destination != "" || responseSigned) {
		return nil, refuse(ReasonDestination, nil, "Response Destination %q; this endpoint is %q", resp.Destination, want.acsURL)
	}
	if resp.InResponseTo != want.requestID {
		return nil, refuse(ReasonInResponseTo, nil, "Response InResponseTo %q does not match the pending request %q", resp.InResponseTo, want.requestID)
	}
	if resp.Status.StatusCode.Value != saml.StatusSuccess {
		detail := resp.Status.StatusCode.Value
		if resp.Status.StatusCode.StatusCode != nil {
			detail += " / " + resp.Status.StatusCode.StatusCode.Value
		}
		if resp.Status.StatusMessage != nil {
			detail += ": " + resp.Status.StatusMessage.Value
		}
		return nil, refuse(ReasonStatus, nil, "IdP %s answered %s", up.EntityID, detail)
	}
	if err := h.checkIssueInstant(resp.IssueInstant, now); err != nil {
		return nil, err
	}
	if err := h.checkIssueInstant(a.IssueInstant, now); err != nil {
		return nil, err
	}

	// Subject: a NameID and a bearer confirmation for our ACS and our request (saml-profiles 4.1.4.2).
	if a.Subject == nil || a.Subject.NameID == nil || a.Subject.NameID.Value == "" {
		return nil, refuse(ReasonSubject, nil, "Assertion has no Subject NameID")
	}
	bearer := false
	for _, sc := range a.Subject.SubjectConfirmations {
		if sc.Method != "urn:oasis:names:tc:SAML:2.0:cm:bearer" || sc.SubjectConfirmationData == nil {
			continue
		}
		d := sc.SubjectConfirmationData
		if d.Recipient != want.acsURL {
			return nil, refuse(ReasonRecipient, nil, "SubjectConfirmationData Recipient %q; this endpoint is %q", d.Recipient, want.acsURL)
		}
		if d.InResponseTo != want.requestID {
			return nil, refuse(ReasonInResponseTo, nil, "SubjectConfirmationData InResponseTo %q does not match the pending request", d.InResponseTo)
		}
		if d.NotOnOrAfter.IsZero() || !now.Before(d.NotOnOrAfter.Add(skew)) {
			return nil, refuse(ReasonExpired, nil, "SubjectConfirmationData expired at %s (now %s)", d.NotOnOrAfter.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
		}
		if !d.NotBefore.IsZero() && now.Add(skew).Before(d.NotBefore) {
			return nil, refuse(ReasonExpired, nil, "SubjectConfirmationData not valid before %s", d.NotBefore.UTC().Format(time.RFC3339))
		}
		bearer = true
		out.expires = d.NotOnOrAfter
	}
	if !bearer {
		return nil, refuse(ReasonSubject, nil, "Assertion has no bearer SubjectConfirmation")
	}

	// Conditions: time window and our audience.
	if a.Conditions == nil {
		return nil, refuse(ReasonAudience, nil, "Assertion has no Conditions (and so no AudienceRestriction)")
	}
	if !a.Conditions.NotBefore.IsZero() && now.Add(skew).Before(a.Conditions.NotBefore) {
		return nil, refuse(ReasonExpired, nil, "Assertion not valid before %s", a.Conditions.NotBefore.UTC().Format(time.RFC3339))
	}
	if !a.Conditions.NotOnOrAfter.IsZero() {
		if !now.Before(a.Conditions.NotOnOrAfter.Add(skew)) {
			return nil, refuse(ReasonExpired, nil, "Assertion expired at %s (now %s)", a.Conditions.NotOnOrAfter.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
		}
		if a.Conditions.NotOnOrAfter.After(out.expires) {
			out.expires = a.Conditions.NotOnOrAfter
		}
	}
	if len(a.Conditions.AudienceRestrictions) == 0 {
		return nil, refuse(ReasonAudience, nil, "Assertion has no AudienceRestriction")
	}
	// Every AudienceRestriction must include us (saml-core 2.5.1.4).
	for _, ar := range a.Conditions.AudienceRestrictions {
		if ar.Audience.Value != want.audience {
			return nil, refuse(ReasonAudience, nil, "Assertion Audience %q; the broker is %q", ar.Audience.Value, want.audience)
		}
	}
	if len(a.AuthnStatements) == 0 {
		return nil, refuse(ReasonSubject, nil, "Assertion has no AuthnStatement")
	}
	out.expires = out.expires.Add(skew)
	return &out, nil
}
