package sso

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/slo"
)

// The back channel of Single Logout (saml-profiles 4.4.3, saml-bindings 3.2): an app, or the
// tenant's IdP, sends a signed LogoutRequest in a SOAP envelope, server to server, with no
// browser. The broker checks it, has the logout engine end the sessions and tell every other
// party, and answers in the same HTTP exchange with its own signed LogoutResponse. A request that
// is refused is answered with a SOAP Fault saying what was wrong, and logs nothing out.

// SetLogout gives the handler the logout engine its SLO endpoints run; set it before serving.
func (h *Handler) SetLogout(e *slo.Engine) { h.logout = e }

func (h *Handler) idpSLOSOAPURL(slug string) string { return h.tenantURL(slug, "/idp/slo/soap") }
func (h *Handler) spSLOSOAPURL(slug string) string  { return h.tenantURL(slug, "/sp/slo/soap") }

// idpSLOSOAP receives an app's LogoutRequest (POST /t/{tenant}/idp/slo/soap): the user is logged
// out of the broker, every other app and the IdP, and the app gets the broker's answer as IdP.
func (h *Handler) idpSLOSOAP(c echo.Context) error { return h.sloSOAP(c, false) }

// spSLOSOAP receives the tenant's IdP's LogoutRequest (POST /t/{tenant}/sp/slo/soap): the user is
// logged out of the broker and every app of the sessions, and the IdP gets the broker's answer as
// SP.
func (h *Handler) spSLOSOAP(c echo.Context) error { return h.sloSOAP(c, true) }

// sloSOAP serves both SOAP logout endpoints; fromIdP tells which.
func (h *Handler) sloSOAP(c echo.Context, fromIdP bool) error {
	t, err := h.tenant(c)
	if err != nil {
		return h.soapFault(c, err)
	}
	if h.logout == nil {
		return h.soapFault(c, errors.New("no logout engine: SetLogout was not called"))
	}
	req, peer, err := h.readLogoutSOAP(c, t, fromIdP)
	if err != nil {
		return h.soapFault(c, err)
	}
	ctx := c.Request().Context()
	var (
		lo   *db.Logout
		resp *slo.LogoutResponse
	)
	if fromIdP {
		lo, resp, err = h.logout.IdPLogout(ctx, t.ID, peer, peer.ID, req)
	} else {
		lo, resp, err = h.logout.AppLogout(ctx, t.ID, peer, req)
	}
	if errors.Is(err, slo.ErrNameIDMismatch) {
		return h.soapFault(c, refuse(ReasonSubject, err, "LogoutRequest %s names a session of another user", req.ID))
	}
	if err != nil {
		return h.soapFault(c, fmt.Errorf("logout for LogoutRequest %s from %s: %w", req.ID, peer.Name, err))
	}
	// RSA-SHA256, unless the peer's quirks (or an app's setting) ask for another algorithm.
	signer, err := h.Signers()(ctx, t.ID, peer.Quirks.LogoutSigAlg)
	var msg []byte
	if err == nil {
		msg, err = slo.SignedXML(resp, signer)
	}
	if err != nil {
		// The logout did happen and is in the log; only the answer could not be signed.
		return h.soapFault(c, fmt.Errorf("sign LogoutResponse of logout %s: %w", lo.ID, err))
	}
	h.logger.InfoContext(ctx, "logout request answered", "tenant", t.Slug, "from", peer.Name, "binding", "soap", "request_id", req.ID,
		"logout", lo.ID, "outcome", lo.Outcome, "sessions", len(lo.SessionIDs))
	binding.WriteSOAP(c.Response(), msg)
	return nil
}

// readLogoutSOAP decodes a LogoutRequest from a SOAP request and checks it: a sender known by its
// claimed Issuer (an app of the tenant, or the IdP of one of its connections), a signature by a
// key in that sender's metadata (unsigned is refused: no app or connection may opt out yet), then
// on the signed request alone: the Issuer, the Destination, NotOnOrAfter, IssueInstant and that
// its ID was not seen before.
func (h *Handler) readLogoutSOAP(c echo.Context, t *db.Tenant, fromIdP bool) (*slo.LogoutRequest, *slo.Peer, error) {
	ctx := c.Request().Context()
	el, err := binding.ReadSOAPRequest(c.Request())
	if err != nil {
		return nil, nil, refuse(ReasonMalformed, err, "SOAP request")
	}
	rcv := slo.ReadSOAP(el)
	if rcv.Kind() != "LogoutRequest" {
		return nil, nil, refuse(ReasonMalformed, nil, "the SOAP Body holds a %s; this endpoint takes a LogoutRequest", rcv.Kind())
	}
	endpoint := h.idpSLOSOAPURL(t.Slug)
	if fromIdP {
		endpoint = h.spSLOSOAPURL(t.Slug)
	}
	return h.checkLogoutRequest(ctx, t, rcv, fromIdP, endpoint)
}

// checkLogoutRequest checks a received LogoutRequest in any binding: a sender known by its
// claimed Issuer, a signature by a key in that sender's metadata (unsigned is refused), then on
// the signed request alone: the Issuer, the Destination (endpoint), NotOnOrAfter, IssueInstant
// and that its ID was not seen before.
func (h *Handler) checkLogoutRequest(ctx context.Context, t *db.Tenant, rcv *slo.Received, fromIdP bool, endpoint string) (*slo.LogoutRequest, *slo.Peer, error) {
	var err error
	// Who claims to have sent it decides whose keys must have signed it; nothing else is read
	// before the signature is checked.
	claimed := rcv.ClaimedIssuer()
	if claimed == "" {
		return nil, nil, refuse(ReasonIssuer, nil, "the LogoutRequest has no Issuer")
	}
	var peer *slo.Peer
	if fromIdP {
		peer, err = h.logoutIdP(ctx, t, claimed)
	} else {
		peer, err = h.logoutApp(ctx, t, claimed)
	}
	if err != nil {
		return nil, nil, err
	}
	// RSA-SHA1 only from a peer whose quirks or setting use it for logout: this peer alone.
	allowSHA1 := peer.Quirks.LogoutSigAlg == binding.SigAlgRSASHA1
	if err := rcv.Verify(peer.Certs, allowSHA1); errors.Is(err, slo.ErrUnsigned) && fromIdP && peer.Quirks.AllowUnsignedLogoutRequest {
		// The connection allows unsigned IdP LogoutRequests (generic allow_unsigned_logout_request;
		// its API view warns about it).
		h.logger.WarnContext(ctx, "unsigned logout request accepted", "tenant", t.Slug, "from", peer.Name)
	} else if errors.Is(err, slo.ErrUnsigned) {
		return nil, nil, refuse(ReasonSignature, nil, "the LogoutRequest is not signed; an unsigned LogoutRequest is refused")
	} else if err != nil {
		return nil, nil, refuse(ReasonSignature, err, "the LogoutRequest is not signed by a key in the metadata of %s", claimed)
	}
	req, err := slo.ParseLogoutRequest(rcv.Element)
	if err != nil {
		return nil, nil, refuse(ReasonMalformed, err, "LogoutRequest")
	}
	if req.Issuer != peer.EntityID {
		return nil, nil, refuse(ReasonIssuer, nil, "the signed Issuer %q is not %q, whose key signed the request", req.Issuer, peer.EntityID)
	}
	if req.Destination != "" && req.Destination != endpoint {
		return nil, nil, refuse(ReasonDestination, nil, "LogoutRequest Destination %q; this endpoint is %q", req.Destination, endpoint)
	}
	now := h.now()
	// saml-core 3.7.1: NotOnOrAfter is when the request expires.
	if !req.NotOnOrAfter.IsZero() && !now.Before(req.NotOnOrAfter.Add(h.cfg.ClockSkew)) {
		return nil, nil, refuse(ReasonExpired, nil, "LogoutRequest %s expired at %s (NotOnOrAfter; now %s)", req.ID,
			req.NotOnOrAfter.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	if err := h.checkIssueInstant(req.IssueInstant, now); err != nil {
		return nil, nil, err
	}
	// The IssueInstant window bounds how long a request is accepted, and so how long its ID is kept.
	fresh, err := h.store.MarkSeen(ctx, t.ID, "logoutrequest|"+peer.ID+"|"+req.ID, now.Add(h.cfg.MaxIssueDelay+2*h.cfg.ClockSkew))
	if err != nil {
		return nil, nil, err
	}
	if !fresh {
		return nil, nil, refuse(ReasonReplay, nil, "LogoutRequest %s from %s was already received", req.ID, peer.EntityID)
	}
	return req, peer, nil
}

// logoutApp is the tenant's app with the entity ID, as the peer that started a logout.
func (h *Handler) logoutApp(ctx context.Context, t *db.Tenant, entityID string) (*slo.Peer, error) {
	app, sp, err := h.tenants.AppByEntityID(ctx, t.ID, entityID)
	if errors.Is(err, db.ErrNotFound) {
		return nil, refuse(ReasonUnknownApp, nil, "LogoutRequest from %q, which is not an app of this organisation", entityID)
	}
	if err != nil {
		return nil, err
	}
	q, err := h.tenants.AppQuirks(app)
	if err != nil {
		return nil, err
	}
	return &slo.Peer{ID: app.ID, Name: app.Name, EntityID: app.EntityID, Certs: sp.SigningCerts, Quirks: q}, nil
}

// logoutIdP is the IdP of the tenant's connection with the entity ID, as the peer that started a
// logout.
func (h *Handler) logoutIdP(ctx context.Context, t *db.Tenant, entityID string) (*slo.Peer, error) {
	conns, err := h.tenants.ListConnections(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	for i := range conns {
		conn := &conns[i]
		if conn.EntityID != entityID {
			continue
		}
		up, err := h.tenants.Upstream(conn)
		if err != nil {
			return nil, err
		}
		return &slo.Peer{Upstream: true, ID: conn.ID, Name: conn.Name, EntityID: up.EntityID, SLO: up.SLO, Certs: up.SigningCerts, Quirks: up.Quirks}, nil
	}
	return nil, refuse(ReasonIssuer, nil, "LogoutRequest from %q, which is not an identity provider connected to this organisation", entityID)
}

// soapFault answers a SOAP logout request that was refused or failed with a SOAP Fault (SOAP 1.1
// 4.4, status 500): for a refusal, code Client (VersionMismatch or MustUnderstand where SOAP 1.1
// 4.4.1 says so) and what was wrong; otherwise Server and no detail. Either carries an error ID,
// under which the log has the detail.
func (h *Handler) soapFault(c echo.Context, err error) error {
	ctx := c.Request().Context()
	id := newErrorID()
	code, text := binding.SOAPFaultServer, "The broker could not process the request."
	var ve *ValidationError
	var pe *PageError
	var be *binding.Error
	switch {
	case errors.As(err, &ve):
		code, text = binding.SOAPFaultClient, "LogoutRequest refused ("+string(ve.Reason)+"): "+ve.Detail
		if ve.Err != nil {
			text += ": " + ve.Err.Error()
		}
		if errors.As(ve.Err, &be) {
			code = binding.SOAPFaultCode(ve.Err)
		}
		h.logger.WarnContext(ctx, "saml message refused", "error_id", id, "reason", string(ve.Reason), "path", c.Path(), "error", err)
	case errors.As(err, &pe) && pe.Status < 500:
		code, text = binding.SOAPFaultClient, pe.Message
		h.logger.WarnContext(ctx, "request failed", "error_id", id, "status", pe.Status, "path", c.Path(), "error", err)
	default:
		h.logger.ErrorContext(ctx, "request failed", "error_id", id, "path", c.Path(), "error", err)
	}
	binding.WriteSOAPFault(c.Response(), code, text+" (error ID "+id+")")
	return nil
}
