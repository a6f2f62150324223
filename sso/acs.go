package sso

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/slo"
)

// Attribute is one attribute of the IdP's assertion, as kept in the broker session.
type Attribute struct {
	Name         string   `json:"name"`
	NameFormat   string   `json:"name_format,omitempty"`
	FriendlyName string   `json:"friendly_name,omitempty"`
	Values       []string `json:"values"`
}

// spACS receives the IdP's Response (POST binding), checks it, opens or extends the broker
// session, and signs the user in to the app that asked.
func (h *Handler) spACS(c echo.Context) error {
	t, err := h.tenant(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	doc, err := binding.DecodePOST(c.Request().PostFormValue("SAMLResponse"))
	if err != nil {
		return refuse(ReasonMalformed, err, "decode POST Response")
	}
	root, err := parseXML(doc, "Response")
	if err != nil {
		return err
	}
	now := h.now()
	// The pending request is taken before the checks: each request gets one answer, good or bad.
	inResponseTo := peekInResponseTo(root)
	if inResponseTo == "" {
		return refuse(ReasonInResponseTo, nil, "unsolicited Response (no InResponseTo); sign in from the application")
	}
	pending, err := h.store.TakePendingRequest(ctx, t.ID, inResponseTo, now)
	if errors.Is(err, db.ErrNotFound) {
		return refuse(ReasonInResponseTo, err, "no pending request %q for tenant %s (unknown, expired or already answered)", inResponseTo, t.Slug)
	}
	if err != nil {
		return err
	}
	conn, up, err := h.tenants.Connection(ctx, t.ID, pending.ConnectionID)
	if errors.Is(err, db.ErrNotFound) {
		return &PageError{Status: http.StatusConflict, Message: "The identity provider connection was removed during sign-in. Start again from the application.", Err: err}
	}
	if err != nil {
		return err
	}
	checked, err := h.checkResponse(root, responseExpectation{
		acsURL:    h.acsURL(t.Slug),
		audience:  h.SPEntityID(t.Slug),
		requestID: pending.ID,
		upstream:  up,
		now:       now,
	})
	if err != nil {
		return err
	}
	a := &checked.assertion
	app, err := h.tenants.App(ctx, t.ID, pending.AppID)
	if errors.Is(err, db.ErrNotFound) {
		return &PageError{Status: http.StatusConflict, Message: "The application was removed during sign-in.", Err: err}
	}
	if err != nil {
		return err
	}
	sp, err := h.tenants.AppMetadata(app)
	if err != nil {
		return err
	}
	cur, err := h.currentSession(c, t)
	if err != nil {
		return err
	}
	// The assertion is used up, the session opened (or extended) and, for a new session, the
	// app made its participant, all in one commit: a refusal on the way (a replay, an IdP
	// session that was logged out) leaves nothing behind.
	var (
		opened *openedSession
		part   *db.Participant
	)
	err = db.Batch(ctx, h.store, func(st Store) error {
		fresh, err := st.MarkSeen(ctx, t.ID, "assertion|"+conn.ID+"|"+a.ID, checked.expires)
		if err != nil {
			return err
		}
		if !fresh {
			return refuse(ReasonReplay, nil, "assertion %s from %s was already used", a.ID, up.EntityID)
		}
		// A logged-out IdP session stays logged out: a late assertion cannot open it again.
		if si := a.AuthnStatements[0].SessionIndex; si != "" {
			ended, err := st.Seen(ctx, t.ID, slo.TombstoneKey(conn.ID, si), now)
			if err != nil {
				return err
			}
			if ended {
				return refuse(ReasonEnded, nil, "assertion %s carries SessionIndex %s of an IdP session that was logged out", a.ID, si)
			}
		}
		if opened, err = h.openSession(ctx, st, cur, t, conn, checked); err != nil {
			return err
		}
		if opened.created {
			part, err = h.newParticipant(ctx, st, t.Slug, opened.session, app, pending.NameIDFormat)
		}
		return err
	})
	if err != nil {
		return err
	}
	sess := opened.session
	h.setSessionCookie(c, t.Slug, opened.secret, sess.ExpiresAt)
	h.clearReauthCookie(c, t.Slug) // signed in again: a later sign-in is not "after a logout"
	h.logger.InfoContext(ctx, "signed in at idp", "tenant", t.Slug, "idp", up.EntityID, "session", sess.ID, "app", app.Name)
	return h.issue(c, t, sess, app, sp, issueTarget{acs: pending.ACSURL, inResponseTo: pending.AppRequestID, relayState: pending.RelayState, nameIDFormat: pending.NameIDFormat, newSession: opened.created, participant: part})
}

// openedSession is a session a sign-in opened or extended, with its new cookie secret.
type openedSession struct {
	session *db.Session
	created bool
	secret  string
}

// openSession extends cur, the browser's session, when it is the same user at the same IdP,
// else creates a new one (created), through st. The caller sets the cookie once st's writes
// are committed.
func (h *Handler) openSession(ctx context.Context, st Store, cur *db.Session, t *db.Tenant, conn *db.Connection, checked *checkedResponse) (*openedSession, error) {
	a := &checked.assertion
	nameID := a.Subject.NameID
	sessionIndex := a.AuthnStatements[0].SessionIndex
	now := h.now()
	if cur != nil && cur.ConnectionID == conn.ID && cur.NameID == nameID.Value && cur.NameIDFormat == nameID.Format && cur.UpstreamSessionIndex == sessionIndex {
		// A fresh authentication extends the session and rotates its cookie secret.
		ext := *cur
		secret := newSecret()
		ext.ExpiresAt = now.Add(h.cfg.SessionLifetime)
		ext.CookieHash = cookieHash(secret)
		if err := st.UpdateSession(ctx, &ext); err != nil {
			return nil, err
		}
		return &openedSession{session: &ext, secret: secret}, nil
	}
	var attrs []Attribute
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			out := Attribute{Name: at.Name, NameFormat: at.NameFormat, FriendlyName: at.FriendlyName, Values: []string{}}
			for _, v := range at.Values {
				out.Values = append(out.Values, v.Value)
			}
			attrs = append(attrs, out)
		}
	}
	attrJSON, err := json.Marshal(attrs)
	if err != nil {
		return nil, err
	}
	secret := newSecret()
	s := &db.Session{
		TenantID:             t.ID,
		ConnectionID:         conn.ID,
		CookieHash:           cookieHash(secret),
		NameID:               nameID.Value,
		NameIDFormat:         nameID.Format,
		NameQualifier:        nameID.NameQualifier,
		SPNameQualifier:      nameID.SPNameQualifier,
		UpstreamSessionIndex: sessionIndex,
		Attributes:           attrJSON,
		CreatedAt:            now,
		ExpiresAt:            now.Add(h.cfg.SessionLifetime),
	}
	if sno := a.AuthnStatements[0].SessionNotOnOrAfter; sno != nil && sno.Before(s.ExpiresAt) {
		s.ExpiresAt = sno.UTC()
	}
	if err := st.CreateSession(ctx, s); err != nil {
		return nil, err
	}
	return &openedSession{session: s, created: true, secret: secret}, nil
}

// attributes decodes a session's attributes into SAML attributes for an app.
func attributes(s *db.Session) ([]saml.Attribute, error) {
	var attrs []Attribute
	if len(s.Attributes) > 0 {
		if err := json.Unmarshal(s.Attributes, &attrs); err != nil {
			return nil, err
		}
	}
	out := make([]saml.Attribute, 0, len(attrs))
	for _, at := range attrs {
		sa := saml.Attribute{Name: at.Name, NameFormat: at.NameFormat, FriendlyName: at.FriendlyName}
		for _, v := range at.Values {
			sa.Values = append(sa.Values, saml.AttributeValue{Type: "xs:string", Value: v})
		}
		out = append(out, sa)
	}
	return out, nil
}
