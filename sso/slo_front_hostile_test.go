package sso_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sloworks/broker/slo"
)

// TestFrontChannelHostile: LogoutRequests through the browser that must be refused with a clear
// page, logging nobody out.
func TestFrontChannelHostile(t *testing.T) {
	h := newHarness(t)
	h.sso.SetLogout(h.engine())
	app := h.addFrontApp(t, "acme", "frontwiki")
	other := h.addFrontApp(t, "acme", "frontcrm")
	b := h.browser()
	as := b.signIn(t, "acme", app.testApp)
	b.signIn(t, "acme", other.testApp)
	dest := h.url("acme", "/idp/slo")

	mk := func(mut func(r *slo.LogoutRequest)) *slo.LogoutRequest {
		r := &slo.LogoutRequest{ID: "_h" + randHex(), IssueInstant: time.Now(), Destination: dest, Issuer: app.entityID,
			NameID:         slo.NameID{Value: as.Subject.NameID.Value, Format: as.Subject.NameID.Format},
			SessionIndexes: []string{as.AuthnStatements[0].SessionIndex}}
		if mut != nil {
			mut(r)
		}
		return r
	}
	signed := func(r *slo.LogoutRequest, k *peerKey) string {
		var s *slo.Signer
		if k != nil {
			s = &slo.Signer{Key: k.key, Cert: k.cert}
		}
		u, err := slo.RedirectURL(dest, r, "rs", s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	replayed := signed(mk(nil), app.peerKey)
	u, _ := url.Parse(signed(mk(nil), app.peerKey))
	reencoded := dest + "?" + strings.NewReplacer("%2F", "%2f", "%3D", "%3d", "%2B", "%2b").Replace(u.RawQuery)
	betaApp := h.fx["beta"].apps[0]

	// The replayed request is first accepted once, by another browser whose session is unknown:
	// the broker answers Success and logs nobody out (the session is not that browser's).
	first := h.browser().get(replayed)
	if first.status != http.StatusFound {
		t.Fatalf("first use of the request: %d %s", first.status, first.body)
	}
	// ...which did end alice's session: requests name sessions, not browsers. Sign in again.
	b2 := h.browser()
	as = b2.signIn(t, "acme", app.testApp)
	b2.signIn(t, "acme", other.testApp)

	tests := []struct {
		name, url, want string
	}{
		{"unsigned", signed(mk(nil), nil), "not signed"},
		{"signed by another key", signed(mk(nil), testKey(t, "stranger")), "not signed"},
		{"re-encoded query", reencoded, "not signed"},
		{"replayed request", replayed, "already"},
		{"issuer of another tenant's app", signed(mk(func(r *slo.LogoutRequest) { r.Issuer = betaApp.entityID }), betaApp.peerKey), "not an app of this organisation"},
		{"NameID of another user", signed(mk(func(r *slo.LogoutRequest) { r.NameID.Value = "mallory@acme.example" }), app.peerKey), "another user"},
		{"wrong destination", signed(mk(func(r *slo.LogoutRequest) { r.Destination = "https://evil.example/slo" }), app.peerKey), "Destination"},
		{"expired", signed(mk(func(r *slo.LogoutRequest) { r.NotOnOrAfter = time.Now().Add(-time.Hour) }), app.peerKey), "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.liveSessions("acme"))
			r := b2.get(tc.url)
			if r.status != http.StatusBadRequest || !strings.Contains(r.body, "Sign-out failed") || !strings.Contains(r.body, "error ID") {
				t.Fatalf("status %d; want a 400 sign-out error page:\n%s", r.status, r.body)
			}
			if got := len(h.liveSessions("acme")); got != before || got == 0 {
				t.Errorf("live sessions %d → %d: a refused request must log nobody out", before, got)
			}
			if !strings.Contains(h.logs.String(), tc.want) {
				t.Errorf("log does not say %q", tc.want)
			}
		})
	}
	// A SessionIndex the broker issued in another tenant names no session here: nothing ends.
	bb := h.browser()
	ab := bb.signIn(t, "beta", betaApp)
	before := len(h.liveSessions("beta"))
	cross := signed(mk(func(r *slo.LogoutRequest) { r.SessionIndexes = []string{ab.AuthnStatements[0].SessionIndex} }), app.peerKey)
	b2.get(cross)
	if got := len(h.liveSessions("beta")); got != before {
		t.Errorf("a logout at acme ended a session of beta")
	}
	// An unsigned LogoutRequest from the IdP side is refused too.
	idpReq := &slo.LogoutRequest{ID: "_i" + randHex(), IssueInstant: time.Now(), Destination: h.url("acme", "/sp/slo"), Issuer: h.fx["acme"].idp.entityID,
		NameID: slo.NameID{Value: "alice@acme.example"}}
	iu, _ := slo.RedirectURL(h.url("acme", "/sp/slo"), idpReq, "", nil)
	if r := h.browser().get(iu); r.status != http.StatusBadRequest {
		t.Errorf("unsigned IdP LogoutRequest: %d", r.status)
	}
}

// liveSessions are the tenant's sessions that have not ended.
func (h *harness) liveSessions(slug string) []string {
	var out []string
	for _, s := range h.sessions(slug) {
		if s.EndedAt == nil {
			out = append(out, s.ID)
		}
	}
	return out
}
