package sso

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/slo"
)

// The front channel of Single Logout (saml-profiles 4.4.3, saml-bindings 3.4, 3.5): a
// LogoutRequest or LogoutResponse through the user's browser, by Redirect or POST.
// /t/{tenant}/idp/slo is for apps, /t/{tenant}/sp/slo for the tenant's IdP.

func (h *Handler) idpSLOURL(slug string) string { return h.tenantURL(slug, "/idp/slo") }
func (h *Handler) spSLOURL(slug string) string  { return h.tenantURL(slug, "/sp/slo") }

// idpSLO receives an app's LogoutRequest (the user signs out there) or an app's LogoutResponse
// (the answer to its leg, inside the logout page's iframe).
func (h *Handler) idpSLO(c echo.Context) error { return h.sloFront(c, false) }

// spSLO receives the IdP's LogoutRequest (the user signed out at the IdP) or its LogoutResponse
// (the answer to the broker's upstream leg).
func (h *Handler) spSLO(c echo.Context) error { return h.sloFront(c, true) }

func (h *Handler) sloFront(c echo.Context, fromIdP bool) error {
	t, err := h.tenant(c)
	if err != nil {
		return err
	}
	if h.logout == nil {
		return &PageError{Status: http.StatusNotFound, Message: "Sign-out is not available."}
	}
	rcv, err := readFront(c)
	if err != nil {
		return refuse(ReasonMalformed, err, "logout message")
	}
	ctx := c.Request().Context()
	switch rcv.Kind() {
	case "LogoutResponse":
		leg, _, err := h.logout.FinishFront(ctx, h.Peers(), t.ID, rcv)
		if errors.Is(err, slo.ErrUnknownResponse) {
			return refuse(ReasonInResponseTo, err, "LogoutResponse")
		}
		if err != nil {
			return err
		}
		if fromIdP || slo.IsStep(leg) {
			// A step of the browser: back to the logout page, which takes the next one.
			return c.Redirect(http.StatusFound, h.tenantURL(t.Slug, "/logout/"+leg.LogoutID))
		}
		frameable(c)
		return legDonePage(c, leg)
	case "LogoutRequest":
	default:
		return refuse(ReasonMalformed, nil, "a %s is not a logout message", rcv.Kind())
	}
	endpoint := h.idpSLOURL(t.Slug)
	if fromIdP {
		endpoint = h.spSLOURL(t.Slug)
	}
	req, peer, err := h.checkLogoutRequest(ctx, t, rcv, fromIdP, endpoint)
	if err != nil {
		return err
	}
	ini, err := h.initiator(c, t, rcv, req, peer, fromIdP)
	if err != nil {
		return err
	}
	var lo *db.Logout
	if fromIdP {
		lo, err = h.logout.IdPLogoutFront(ctx, t.ID, peer, peer.ID, req, ini)
	} else {
		lo, err = h.logout.AppLogoutFront(ctx, t.ID, peer, req, ini)
	}
	if errors.Is(err, slo.ErrNameIDMismatch) {
		return refuse(ReasonSubject, err, "LogoutRequest %s names a session of another user", req.ID)
	}
	if err != nil {
		return err
	}
	h.logger.InfoContext(ctx, "logout started", "tenant", t.Slug, "from", peer.Name, "binding", string(rcv.Binding), "request_id", req.ID, "logout", lo.ID, "sessions", len(lo.SessionIDs))
	// The browser's broker session is over; the logout page is its own.
	h.clearSessionCookie(c, t.Slug)
	h.setReauthCookie(c, t.Slug)
	h.setLogoutCookie(c, t.Slug, lo.ID, lo.Deadline)
	return c.Redirect(http.StatusFound, h.tenantURL(t.Slug, "/logout/"+lo.ID))
}

// readFront decodes a logout message from the Redirect (GET) or POST binding.
func readFront(c echo.Context) (*slo.Received, error) {
	r := c.Request()
	if r.Method == http.MethodGet {
		return slo.ReadRedirect(r.URL.RawQuery)
	}
	v := r.PostFormValue("SAMLRequest")
	if v == "" {
		v = r.PostFormValue("SAMLResponse")
	}
	if len(r.PostFormValue("RelayState")) > MaxRelayState {
		return nil, fmt.Errorf("RelayState is longer than %d bytes", MaxRelayState)
	}
	return slo.ReadPOST(v, r.PostFormValue("RelayState"))
}

// initiator is how the peer that started a logout gets its answer: in the binding its request
// came by where its metadata has a SingleLogoutService of that binding (else its other front
// binding), at the endpoint's ResponseLocation or Location.
func (h *Handler) initiator(c echo.Context, t *db.Tenant, rcv *slo.Received, req *slo.LogoutRequest, peer *slo.Peer, fromIdP bool) (*slo.Initiator, error) {
	ctx := c.Request().Context()
	// The answer is signed as the peer's quirks (or an app's setting) say: RSA-SHA256 by default.
	ini := &slo.Initiator{Kind: "app", PeerID: peer.ID, RequestID: req.ID, RelayState: rcv.RelayState, Issuer: h.IdPEntityID(t.Slug), SigAlg: peer.Quirks.LogoutSigAlg}
	full := peer
	if fromIdP {
		ini.Kind, ini.Issuer = "idp", h.SPEntityID(t.Slug)
	} else {
		p, err := h.Peers().AppPeer(ctx, t.ID, peer.ID)
		if err != nil {
			return nil, err
		}
		full = p
	}
	prefs := []providers.Binding{rcv.Binding, providers.BindingRedirect, providers.BindingPOST}
	for _, b := range prefs {
		for _, e := range full.SLO {
			if e.Binding != b {
				continue
			}
			ini.Binding, ini.ResponseURL = b, e.Location
			if e.ResponseLocation != "" {
				ini.ResponseURL = e.ResponseLocation
			}
			return ini, nil
		}
	}
	// No front-channel SingleLogoutService to answer at: the logout still happens; the page says
	// so at the end instead of sending the browser back.
	return ini, nil
}

// clearSessionCookie removes the tenant's session cookie from the browser.
func (h *Handler) clearSessionCookie(c echo.Context, slug string) {
	ck := &http.Cookie{Name: SessionCookie, Value: "", Path: "/t/" + slug + "/", Expires: time.Unix(0, 0), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if h.cfg.BaseURL.Scheme == "https" {
		ck.Secure, ck.SameSite = true, http.SameSiteNoneMode
	}
	c.SetCookie(ck)
}
