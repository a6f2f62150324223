package sso_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/sloworks/broker/slo"
	"github.com/sloworks/broker/sso"
)

func hasCookie(b *browser, u, name string) bool {
	pu, _ := url.Parse(u)
	for _, c := range b.c.Jar.Cookies(pu) {
		if c.Name == name {
			return true
		}
	}
	return false
}

// TestForceAuthnAfterLocalLogout: with a Google connection (no SAML logout, so its session
// outlives the broker's: quirk ForceAuthnAfterLogout), the next sign-in of a browser that signed
// out — through the browser, or by an operator ending its session — asks Google for ForceAuthn;
// a fresh browser does not, nor a browser that has signed in again since, nor a tenant whose IdP
// has no such quirk.
func TestForceAuthnAfterLocalLogout(t *testing.T) {
	h := newHarness(t)
	h.sso.SetLogout(h.engine())
	h.addTenantProvider("gsuite", "google", nil)
	forced := func(b *browser, slug string) bool {
		t.Helper()
		req := h.upstreamRequest(b.startLogin(slug, h.fx[slug].apps[0], ""))
		return req.ForceAuthn != nil && *req.ForceAuthn
	}

	t.Run("front-channel logout", func(t *testing.T) {
		front := h.addFrontApp(t, "gsuite", "gfront")
		b := h.browser()
		if forced(b, "gsuite") {
			t.Fatal("a fresh browser's sign-in asks for ForceAuthn")
		}
		as := b.signIn(t, "gsuite", front.testApp)
		r := b.get(front.logoutURL(t, as, "_g1"))
		if r.status != http.StatusFound {
			t.Fatalf("logout: %d %s", r.status, r.body)
		}
		followLogoutPage(t, b, r.location)
		_, legs := h.legsOfLatestLogout(t, "gsuite")
		if l := legs["idp"]; l.ErrorClass != slo.ClassNotSupported || !strings.Contains(l.Diagnosis, "ForceAuthn") {
			t.Errorf("Google leg: %+v", l)
		}
		if !forced(b, "gsuite") {
			t.Fatal("the sign-in after a local logout does not ask Google for ForceAuthn")
		}
		// Signing in again clears the mark.
		b.signIn(t, "gsuite", front.testApp)
		if hasCookie(b, h.url("gsuite", "/idp/sso"), sso.ReauthCookie) {
			t.Error("the mark outlives the next sign-in")
		}
	})

	t.Run("operator ends the session", func(t *testing.T) {
		before := h.liveSessions("gsuite")
		b := h.browser()
		b.signIn(t, "gsuite", h.fx["gsuite"].apps[1])
		var mine string
		for _, id := range h.liveSessions("gsuite") {
			if !slices.Contains(before, id) {
				mine = id
			}
		}
		if _, _, err := h.engine().EndSession(context.Background(), h.fx["gsuite"].tenant.ID, mine, slo.TriggerAdmin, "operator"); err != nil {
			t.Fatal(err)
		}
		if !forced(b, "gsuite") {
			t.Fatal("the sign-in after an operator's logout does not ask Google for ForceAuthn")
		}
	})

	t.Run("IdP without the quirk", func(t *testing.T) {
		front := h.addFrontApp(t, "acme", "afront")
		b := h.browser()
		as := b.signIn(t, "acme", front.testApp)
		r := b.get(front.logoutURL(t, as, "_a1"))
		followLogoutPage(t, b, r.location)
		if forced(b, "acme") {
			t.Error("ForceAuthn asked of an IdP without ForceAuthnAfterLogout")
		}
	})
}
