package sso

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/tenants"
)

// SessionCookie is the name of the broker's session cookie; its path scopes it to one tenant.
const SessionCookie = "broker_session"

func cookieHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// currentSession returns the live broker session of the browser for the tenant, or nil.
func (h *Handler) currentSession(c echo.Context, t *db.Tenant) (*db.Session, error) {
	ck, err := c.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	s, err := h.store.GetSessionByCookie(c.Request().Context(), t.ID, cookieHash(ck.Value))
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if s.EndedAt != nil || !h.now().Before(s.ExpiresAt) {
		return nil, nil
	}
	return s, nil
}

// setSessionCookie sets the tenant-scoped session cookie. Over https it is SameSite=None; Secure
// so that cross-site POSTs from apps and IdPs carry it; over plain http (local testing) Lax.
func (h *Handler) setSessionCookie(c echo.Context, slug, secret string, expires time.Time) {
	ck := &http.Cookie{
		Name:     SessionCookie,
		Value:    secret,
		Path:     "/t/" + slug + "/",
		Expires:  expires,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if h.cfg.BaseURL.Scheme == "https" {
		ck.Secure = true
		ck.SameSite = http.SameSiteNoneMode
	}
	c.SetCookie(ck)
}

// startUpstream keeps the app's request and sends the browser to the tenant's IdP with an
// AuthnRequest made as the provider's quirks say.
func (h *Handler) startUpstream(c echo.Context, t *db.Tenant, ar *appRequest) error {
	ctx := c.Request().Context()
	conn, up, err := h.tenants.LoginConnection(ctx, t.ID)
	if errors.Is(err, tenants.ErrNoConnection) {
		return &PageError{Status: http.StatusServiceUnavailable, Message: "This organisation has not connected its identity provider yet.", Err: err}
	}
	if err != nil {
		return err
	}
	ep, err := up.SSOEndpoint()
	if err != nil {
		return err
	}
	now := h.now()
	p := &db.PendingRequest{
		ID:           h.cfg.NewID(),
		TenantID:     t.ID,
		ConnectionID: conn.ID,
		AppID:        ar.app.ID,
		AppRequestID: ar.req.ID,
		ACSURL:       ar.acs,
		RelayState:   ar.relayState,
		NameIDFormat: ar.nameIDFormat(),
		CreatedAt:    now,
		ExpiresAt:    now.Add(h.cfg.RequestLifetime),
	}
	allowCreate := true
	req := saml.AuthnRequest{
		ID:                          p.ID,
		Version:                     "2.0",
		IssueInstant:                now,
		Destination:                 ep.Location,
		AssertionConsumerServiceURL: h.acsURL(t.Slug),
		ProtocolBinding:             saml.HTTPPostBinding,
		Issuer:                      &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: h.SPEntityID(t.Slug)},
		NameIDPolicy:                &saml.NameIDPolicy{AllowCreate: &allowCreate},
	}
	force := ar.forceAuthn()
	if !force && up.Quirks.ForceAuthnAfterLogout {
		// The IdP's session outlived the broker's logout (it has no SAML logout): a browser
		// that signed out must not be signed straight back in by it.
		if force, err = h.signedOutBefore(c, t); err != nil {
			return err
		}
	}
	if force {
		req.ForceAuthn = &force
	}
	sign := !up.Quirks.DontSignAuthnRequests || up.WantAuthnRequestsSigned
	sigAlg := up.Quirks.AuthnRequestSigAlg
	// The app's request is used up and the IdP's awaited in one commit.
	err = db.Batch(ctx, h.store, func(st Store) error {
		if err := h.markSeen(ctx, st, ar); err != nil {
			return err
		}
		return st.CreatePendingRequest(ctx, p)
	})
	if err != nil {
		return err
	}
	el := req.Element()
	switch ep.Binding {
	case providers.BindingRedirect:
		msg := binding.Serialize(el)
		var u string
		if sign {
			kp, err := h.keyPair(ctx, t)
			if err != nil {
				return err
			}
			u, err = binding.EncodeRedirect(ep.Location, "SAMLRequest", msg, "", kp.Signer, sigAlg)
			if err != nil {
				return &PageError{Status: http.StatusServiceUnavailable, Message: "Signing is unavailable right now. Try again in a minute.", Err: err}
			}
		} else if u, err = binding.EncodeRedirect(ep.Location, "SAMLRequest", msg, "", nil, ""); err != nil {
			return err
		}
		h.logger.InfoContext(ctx, "sign-in sent upstream", "tenant", t.Slug, "app", ar.app.Name, "idp", up.EntityID, "binding", "redirect", "request_id", p.ID)
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusFound, u)
	default: // POST
		if sign {
			kp, err := h.keyPair(ctx, t)
			if err != nil {
				return err
			}
			if err := binding.SignEnveloped(el, kp.Signer, kp.Certificate, sigAlg); err != nil {
				return &PageError{Status: http.StatusServiceUnavailable, Message: "Signing is unavailable right now. Try again in a minute.", Err: err}
			}
		}
		msg := binding.Serialize(el)
		h.logger.InfoContext(ctx, "sign-in sent upstream", "tenant", t.Slug, "app", ar.app.Name, "idp", up.EntityID, "binding", "post", "request_id", p.ID)
		return postForm(c, &binding.Form{Action: ep.Location, Param: "SAMLRequest", Message: msg})
	}
}

// postForm renders an auto-submitting POST-binding form with a fresh CSP nonce.
func postForm(c echo.Context, f *binding.Form) error {
	f.Nonce = newSecret()[:32]
	hd := c.Response().Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", f.CSP())
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	c.Response().WriteHeader(http.StatusOK)
	return f.Write(c.Response())
}
