package sso

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/db"
)

// ReauthCookie marks a browser that signed out through the broker (its session cookie is then
// removed): the next sign-in at an IdP whose session outlives the broker's logout (quirk
// ForceAuthnAfterLogout, e.g. Google, which has no SAML logout) asks it to authenticate the user
// again. It holds no secret and names no user.
const ReauthCookie = "broker_reauth"

// setReauthCookie marks the browser as signed out, for as long as a session would have lasted.
func (h *Handler) setReauthCookie(c echo.Context, slug string) {
	ck := &http.Cookie{Name: ReauthCookie, Value: "1", Path: "/t/" + slug + "/", Expires: h.now().Add(h.cfg.SessionLifetime), HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if h.cfg.BaseURL.Scheme == "https" {
		ck.Secure, ck.SameSite = true, http.SameSiteNoneMode
	}
	c.SetCookie(ck)
}

// clearReauthCookie removes the mark once the user has signed in again.
func (h *Handler) clearReauthCookie(c echo.Context, slug string) {
	if _, err := c.Cookie(ReauthCookie); err != nil {
		return
	}
	ck := &http.Cookie{Name: ReauthCookie, Value: "", Path: "/t/" + slug + "/", Expires: time.Unix(0, 0), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if h.cfg.BaseURL.Scheme == "https" {
		ck.Secure, ck.SameSite = true, http.SameSiteNoneMode
	}
	c.SetCookie(ck)
}

// signedOutBefore reports whether this browser's last broker session of the tenant was logged
// out: it signed out through the broker (ReauthCookie), or it still holds the cookie of a session
// that ended (an operator's "end session", a SOAP logout, expiry) or is gone.
func (h *Handler) signedOutBefore(c echo.Context, t *db.Tenant) (bool, error) {
	if _, err := c.Cookie(ReauthCookie); err == nil {
		return true, nil
	}
	ck, err := c.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return false, nil
	}
	s, err := h.store.GetSessionByCookie(c.Request().Context(), t.ID, cookieHash(ck.Value))
	if errors.Is(err, db.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return s.EndedAt != nil || !h.now().Before(s.ExpiresAt), nil
}
