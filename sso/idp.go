package sso

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/metadata"
)

const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
)

// MaxRelayState is the longest RelayState accepted (saml-bindings 3.4.3, 3.5.3: 80 bytes is the
// spec's limit; real SPs send more, so the broker allows a little slack).
const MaxRelayState = 1024

// appRequest is a checked AuthnRequest from an app.
type appRequest struct {
	tenantID   string
	app        *db.App
	sp         *metadata.SP
	req        saml.AuthnRequest
	acs        string
	relayState string
	// seenUntil is how long the request's ID stays in the replay cache (markSeen).
	seenUntil time.Time
}

// idpSSO receives an AuthnRequest from an app (Redirect or POST binding).
func (h *Handler) idpSSO(c echo.Context) error {
	t, err := h.tenant(c)
	if err != nil {
		return err
	}
	ar, err := h.readAuthnRequest(c, t)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if !ar.forceAuthn() {
		sess, err := h.currentSession(c, t)
		if err != nil {
			return err
		}
		if sess != nil {
			if err := h.markSeen(ctx, h.store, ar); err != nil {
				return err
			}
			h.logger.InfoContext(ctx, "sign-in from existing session", "tenant", t.Slug, "app", ar.app.Name, "session", sess.ID)
			return h.issue(c, t, sess, ar.app, ar.sp, issueTarget{acs: ar.acs, inResponseTo: ar.req.ID, relayState: ar.relayState, nameIDFormat: ar.nameIDFormat()})
		}
	}
	if ar.req.IsPassive != nil && *ar.req.IsPassive {
		if err := h.markSeen(ctx, h.store, ar); err != nil {
			return err
		}
		return h.issueStatus(c, t, ar.app, issueTarget{acs: ar.acs, inResponseTo: ar.req.ID, relayState: ar.relayState}, saml.StatusResponder, "urn:oasis:names:tc:SAML:2.0:status:NoPassive")
	}
	return h.startUpstream(c, t, ar) // marks the request seen with the pending request, in one commit
}

func (ar *appRequest) forceAuthn() bool { return ar.req.ForceAuthn != nil && *ar.req.ForceAuthn }

func (ar *appRequest) nameIDFormat() string {
	if ar.req.NameIDPolicy != nil && ar.req.NameIDPolicy.Format != nil {
		return *ar.req.NameIDPolicy.Format
	}
	return ""
}

// readAuthnRequest decodes and checks an app's AuthnRequest: a registered issuer, its signature
// when signed (required when its metadata says it signs), destination, time, replay, and an ACS
// URL from its metadata.
func (h *Handler) readAuthnRequest(c echo.Context, t *db.Tenant) (*appRequest, error) {
	r := c.Request()
	var (
		doc        []byte
		relayState string
		redirect   *binding.Redirect
		err        error
	)
	switch r.Method {
	case http.MethodGet:
		redirect, err = binding.DecodeRedirect(r.URL.RawQuery)
		if err != nil {
			return nil, refuse(ReasonMalformed, err, "decode redirect AuthnRequest")
		}
		if redirect.Param != "SAMLRequest" {
			return nil, refuse(ReasonMalformed, nil, "expected SAMLRequest, got %s", redirect.Param)
		}
		doc, relayState = redirect.XML, redirect.RelayState
	case http.MethodPost:
		doc, err = binding.DecodePOST(r.PostFormValue("SAMLRequest"))
		if err != nil {
			return nil, refuse(ReasonMalformed, err, "decode POST AuthnRequest")
		}
		relayState = r.PostFormValue("RelayState")
	}
	if len(relayState) > MaxRelayState {
		return nil, refuse(ReasonMalformed, nil, "RelayState is %d bytes; at most %d are accepted", len(relayState), MaxRelayState)
	}
	root, err := parseXML(doc, "AuthnRequest")
	if err != nil {
		return nil, err
	}
	// Who sent it decides which key must have signed it.
	issuerEl := root.FindElement("./Issuer")
	if issuerEl == nil || issuerEl.Text() == "" {
		return nil, refuse(ReasonUnknownApp, nil, "AuthnRequest has no Issuer")
	}
	ctx := r.Context()
	app, sp, err := h.tenants.AppByEntityID(ctx, t.ID, issuerEl.Text())
	if errors.Is(err, db.ErrNotFound) {
		return nil, refuse(ReasonUnknownApp, err, "AuthnRequest from %q, which is not a registered app of tenant %s", issuerEl.Text(), t.Slug)
	}
	if err != nil {
		return nil, err
	}
	signed := false
	if redirect != nil {
		if err := redirect.Verify(sp.SigningCerts, false); err == nil {
			signed = true
		} else if !errors.Is(err, binding.ErrNoSignature) {
			return nil, refuse(ReasonSignature, err, "AuthnRequest from app %s", app.Name)
		}
	} else {
		verified, err := binding.VerifyEnveloped(root, sp.SigningCerts, false)
		switch {
		case err == nil:
			root, signed = verified, true
		case !errors.Is(err, binding.ErrNoSignature):
			return nil, refuse(ReasonSignature, err, "AuthnRequest from app %s", app.Name)
		}
	}
	if sp.AuthnRequestsSigned && !signed {
		return nil, refuse(ReasonSignature, nil, "app %s says in its metadata that it signs AuthnRequests, and this one is not signed", app.Name)
	}
	var req saml.AuthnRequest
	if err := readAuthnRequest(root, &req); err != nil {
		return nil, refuse(ReasonMalformed, err, "AuthnRequest")
	}
	if req.Issuer == nil || req.Issuer.Value != app.EntityID {
		return nil, refuse(ReasonIssuer, nil, "signed Issuer differs from the one the request was routed by")
	}
	if req.Version != "2.0" {
		return nil, refuse(ReasonMalformed, nil, "AuthnRequest Version %q; want 2.0", req.Version)
	}
	if req.ID == "" {
		return nil, refuse(ReasonMalformed, nil, "AuthnRequest has no ID")
	}
	if req.Destination != "" && req.Destination != h.ssoURL(t.Slug) {
		return nil, refuse(ReasonDestination, nil, "AuthnRequest Destination %q; this endpoint is %q", req.Destination, h.ssoURL(t.Slug))
	}
	now := h.now()
	if err := h.checkIssueInstant(req.IssueInstant, now); err != nil {
		return nil, err
	}
	if req.ProtocolBinding != "" && req.ProtocolBinding != saml.HTTPPostBinding {
		return nil, refuse(ReasonACS, nil, "AuthnRequest asks for ProtocolBinding %q; the broker answers with HTTP-POST only", req.ProtocolBinding)
	}
	acs, err := sp.ResolveACS(req.AssertionConsumerServiceURL, req.AssertionConsumerServiceIndex)
	if err != nil {
		return nil, refuse(ReasonACS, err, "app %s", app.Name)
	}
	return &appRequest{tenantID: t.ID, app: app, sp: sp, req: req, acs: acs, relayState: relayState, seenUntil: now.Add(h.cfg.MaxIssueDelay + 2*h.cfg.ClockSkew)}, nil
}

// markSeen records the app's AuthnRequest ID in the replay cache through st, and refuses a
// request already received. Every way idpSSO answers calls it first.
func (h *Handler) markSeen(ctx context.Context, st Store, ar *appRequest) error {
	fresh, err := st.MarkSeen(ctx, ar.tenantID, "authnrequest|"+ar.app.ID+"|"+ar.req.ID, ar.seenUntil)
	if err != nil {
		return err
	}
	if !fresh {
		return refuse(ReasonReplay, nil, "AuthnRequest %s from app %s was already received", ar.req.ID, ar.app.Name)
	}
	return nil
}

// parseXML checks that doc is well-formed XML that round-trips through encoding/xml (no
// parser differentials), and that its root is the named SAML protocol element.
func parseXML(doc []byte, wantRoot string) (*etree.Element, error) {
	if err := binding.ValidateRoundTrip(doc); err != nil {
		return nil, refuse(ReasonMalformed, err, "%s is not well-formed XML", wantRoot)
	}
	d := etree.NewDocument()
	d.ReadSettings.Permissive = false
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, refuse(ReasonMalformed, err, "%s is not XML", wantRoot)
	}
	root := d.Root()
	if root == nil || root.Tag != wantRoot || root.NamespaceURI() != nsProtocol {
		got := "nothing"
		if root != nil {
			got = "{" + root.NamespaceURI() + "}" + root.Tag
		}
		return nil, refuse(ReasonMalformed, nil, "expected a samlp:%s, got %s", wantRoot, got)
	}
	return root, nil
}
