package sso

import (
	"context"
	"time"

	"github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/metadata"
)

// issueTarget is where and in answer to what the broker sends a Response to an app.
type issueTarget struct {
	acs          string // from the app's metadata
	inResponseTo string // the app's AuthnRequest ID
	relayState   string
	nameIDFormat string // the format the app asked for, if any
	// newSession: the session was created by this request, so it has no participant yet.
	newSession bool
	// participant, when set, is the app's participant already recorded with the session.
	participant *db.Participant
}

const (
	classUnspecified = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
	entityFormat     = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
)

// issue makes the app a participant of the session and POSTs it a signed Response.
func (h *Handler) issue(c echo.Context, t *db.Tenant, s *db.Session, app *db.App, sp *metadata.SP, tgt issueTarget) error {
	ctx := c.Request().Context()
	p := tgt.participant
	if p == nil {
		var err error
		if p, err = h.participant(ctx, t.Slug, s, app, tgt.nameIDFormat, tgt.newSession); err != nil {
			return err
		}
	}
	attrs, err := attributes(s)
	if err != nil {
		return err
	}
	kp, err := h.keyPair(ctx, t)
	if err != nil {
		return err
	}
	doc, err := h.BuildResponse(t.Slug, kp, s, p, app, tgt, attrs, h.now())
	if err != nil {
		return &PageError{Status: 503, Message: "Signing is unavailable right now. Try again in a minute.", Err: err}
	}
	h.logger.InfoContext(ctx, "signed in to app", "tenant", t.Slug, "app", app.Name, "session", s.ID, "participant", p.ID)
	return postForm(c, &binding.Form{Action: tgt.acs, Param: "SAMLResponse", Message: doc, RelayState: tgt.relayState})
}

// participant returns the app's participant record in the session, creating it on the app's
// first sign-in: the NameID and SessionIndex the broker issues to that app. A session this
// request created has none to look up.
func (h *Handler) participant(ctx context.Context, slug string, s *db.Session, app *db.App, wantFormat string, newSession bool) (*db.Participant, error) {
	if !newSession {
		ps, err := h.store.ListParticipants(ctx, s.TenantID, s.ID)
		if err != nil {
			return nil, err
		}
		for i := range ps {
			if ps[i].AppID == app.ID {
				return &ps[i], nil
			}
		}
	}
	return h.newParticipant(ctx, h.store, slug, s, app, wantFormat)
}

// newParticipant records, through st, the app as a new participant of the session: the NameID
// and SessionIndex the broker issues to it.
func (h *Handler) newParticipant(ctx context.Context, st Store, slug string, s *db.Session, app *db.App, wantFormat string) (*db.Participant, error) {
	p := &db.Participant{
		TenantID:     s.TenantID,
		SessionID:    s.ID,
		AppID:        app.ID,
		NameID:       s.NameID,
		NameIDFormat: s.NameIDFormat,
		SessionIndex: h.cfg.NewID(),
		CreatedAt:    h.now(),
	}
	// A transient NameID (asked for by the app, or the IdP's own) is never passed on: each app
	// gets its own, so one app cannot correlate with another (saml-core 8.3.8).
	if wantFormat == string(saml.TransientNameIDFormat) || s.NameIDFormat == string(saml.TransientNameIDFormat) {
		p.NameID = h.cfg.NewID()
		p.NameIDFormat = string(saml.TransientNameIDFormat)
	}
	if p.NameIDFormat == "" {
		p.NameIDFormat = string(saml.UnspecifiedNameIDFormat)
	}
	if p.NameIDFormat == string(saml.TransientNameIDFormat) || p.NameIDFormat == string(saml.PersistentNameIDFormat) {
		p.NameQualifier = h.IdPEntityID(slug)
		p.SPNameQualifier = app.EntityID
	}
	if err := st.AddParticipant(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// BuildResponse makes the signed Response for an app: the assertion is always signed; the
// Response too when the app asks for it.
func (h *Handler) BuildResponse(slug string, kp *keys.KeyPair, s *db.Session, p *db.Participant, app *db.App, tgt issueTarget, attrs []saml.Attribute, now time.Time) ([]byte, error) {
	idp := h.IdPEntityID(slug)
	notOnOrAfter := now.Add(h.cfg.AssertionLifetime)
	sessionEnd := s.ExpiresAt.UTC()
	a := &saml.Assertion{
		ID:           h.cfg.NewID(),
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       saml.Issuer{Format: entityFormat, Value: idp},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: p.NameIDFormat, NameQualifier: p.NameQualifier, SPNameQualifier: p.SPNameQualifier, Value: p.NameID},
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					InResponseTo: tgt.inResponseTo,
					NotOnOrAfter: notOnOrAfter,
					Recipient:    tgt.acs,
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:            now.Add(-h.cfg.ClockSkew),
			NotOnOrAfter:         notOnOrAfter,
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: app.EntityID}}},
		},
		AuthnStatements: []saml.AuthnStatement{{
			AuthnInstant:        s.CreatedAt.UTC(),
			SessionIndex:        p.SessionIndex,
			SessionNotOnOrAfter: &sessionEnd,
			AuthnContext:        saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{Value: classUnspecified}},
		}},
	}
	if len(attrs) > 0 {
		a.AttributeStatements = []saml.AttributeStatement{{Attributes: attrs}}
	}
	assertionEl := a.Element()
	if err := binding.SignEnveloped(assertionEl, kp.Signer, kp.Certificate, ""); err != nil {
		return nil, err
	}
	resp := &saml.Response{
		ID:           h.cfg.NewID(),
		InResponseTo: tgt.inResponseTo,
		Version:      "2.0",
		IssueInstant: now,
		Destination:  tgt.acs,
		Issuer:       &saml.Issuer{Format: entityFormat, Value: idp},
		Status:       saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
	}
	respEl := resp.Element()
	respEl.AddChild(assertionEl)
	if app.SignResponse {
		if err := binding.SignEnveloped(respEl, kp.Signer, kp.Certificate, ""); err != nil {
			return nil, err
		}
	}
	return binding.Serialize(respEl), nil
}

// issueStatus POSTs the app a signed Response carrying an error status and no assertion.
func (h *Handler) issueStatus(c echo.Context, t *db.Tenant, app *db.App, tgt issueTarget, code, subCode string) error {
	kp, err := h.keyPair(c.Request().Context(), t)
	if err != nil {
		return err
	}
	st := saml.Status{StatusCode: saml.StatusCode{Value: code}}
	if subCode != "" {
		st.StatusCode.StatusCode = &saml.StatusCode{Value: subCode}
	}
	resp := &saml.Response{
		ID:           h.cfg.NewID(),
		InResponseTo: tgt.inResponseTo,
		Version:      "2.0",
		IssueInstant: h.now(),
		Destination:  tgt.acs,
		Issuer:       &saml.Issuer{Format: entityFormat, Value: h.IdPEntityID(t.Slug)},
		Status:       st,
	}
	el := resp.Element()
	if err := binding.SignEnveloped(el, kp.Signer, kp.Certificate, ""); err != nil {
		return &PageError{Status: 503, Message: "Signing is unavailable right now. Try again in a minute.", Err: err}
	}
	return postForm(c, &binding.Form{Action: tgt.acs, Param: "SAMLResponse", Message: binding.Serialize(el), RelayState: tgt.relayState})
}
