package sso_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
)

// login runs a whole sign-in of app at the tenant: AuthnRequest, IdP Response (as spec says),
// and returns the broker's answer to the ACS post.
func (b *browser) login(slug string, app *testApp, mutate func(*responseSpec)) (result, *responseSpec) {
	b.h.t.Helper()
	req := b.h.upstreamRequest(b.startLogin(slug, app, "state-1"))
	spec := b.h.defaultResponse(slug, req.ID)
	if mutate != nil {
		mutate(spec)
	}
	doc := spec.build(b.h, b.h.fx[slug].idp)
	return b.post(b.h.url(slug, "/sp/acs"), url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}}), spec
}

// verifyAppResponse checks what an app receives: a form to its ACS with a Response whose
// assertion is signed by the broker's published certificate, for the app, for the user.
func verifyAppResponse(t *testing.T, h *harness, slug string, app *testApp, r result, wantRelay string) *saml.Assertion {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("ACS answered %d: %s\nlogs:\n%s", r.status, r.body, h.logs)
	}
	f := parseForm(t, r.body)
	if f.action != app.acs || f.param != "SAMLResponse" || f.relayState != wantRelay {
		t.Fatalf("form to %q (%s, RelayState %q); want %q, SAMLResponse, %q", f.action, f.param, f.relayState, app.acs, wantRelay)
	}
	d := etree.NewDocument()
	if err := d.ReadFromBytes(f.xml); err != nil {
		t.Fatal(err)
	}
	ael := d.Root().SelectElement("Assertion")
	verified, err := binding.VerifyEnveloped(ael, []*x509.Certificate{h.brokerCert(slug)}, false)
	if err != nil {
		t.Fatalf("assertion signature: %v", err)
	}
	vd := etree.NewDocument()
	vd.SetRoot(verified)
	b, _ := vd.WriteToBytes()
	var a saml.Assertion
	if err := xml.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if got := a.Conditions.AudienceRestrictions[0].Audience.Value; got != app.entityID {
		t.Errorf("audience %q; want %q", got, app.entityID)
	}
	if got := a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient; got != app.acs {
		t.Errorf("recipient %q; want %q", got, app.acs)
	}
	if a.Issuer.Value != h.url(slug, "/idp/metadata") {
		t.Errorf("issuer %q", a.Issuer.Value)
	}
	return &a
}

func TestLoginSecondAppWithoutIdP(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	wiki, crm := h.fx["acme"].apps[0], h.fx["acme"].apps[1]

	r, spec := b.login("acme", wiki, nil)
	a1 := verifyAppResponse(t, h, "acme", wiki, r, "state-1")
	if a1.Subject.NameID.Value != spec.nameID {
		t.Errorf("wiki got NameID %q; want the IdP's %q", a1.Subject.NameID.Value, spec.nameID)
	}
	if got := a1.AttributeStatements[0].Attributes[0].Values[0].Value; got != spec.nameID {
		t.Errorf("mail attribute %q not passed on", got)
	}

	// The second app: the browser's broker session answers, no trip to the IdP.
	r2 := b.startLogin("acme", crm, "state-2")
	if r2.status == http.StatusFound {
		t.Fatalf("second app was sent to the IdP (%s); want a sign-in from the broker session", r2.location)
	}
	a2 := verifyAppResponse(t, h, "acme", crm, r2, "state-2")
	if a2.AuthnStatements[0].SessionIndex == a1.AuthnStatements[0].SessionIndex {
		t.Error("both apps got the same SessionIndex; each participant needs its own")
	}
	ss := h.sessions("acme")
	if len(ss) != 1 {
		t.Fatalf("%d sessions; want 1", len(ss))
	}
	ps, err := h.store.ListParticipants(context.Background(), ss[0].TenantID, ss[0].ID)
	if err != nil || len(ps) != 2 {
		t.Fatalf("participants %v, %v; want 2", ps, err)
	}
	// The session cookie belongs to acme only: beta's apps still go to beta's IdP.
	if r := b.startLogin("beta", h.fx["beta"].apps[0], ""); r.status != http.StatusFound || !strings.HasPrefix(r.location, h.fx["beta"].idp.ssoURL) {
		t.Fatalf("beta sign-in with acme's cookie: %d %s", r.status, r.location)
	}
}

func TestUpstreamAuthnRequestSigned(t *testing.T) {
	h := newHarness(t)
	r := h.browser().startLogin("acme", h.fx["acme"].apps[0], "")
	u, _ := url.Parse(r.location)
	rd, err := binding.DecodeRedirect(u.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.Verify([]*x509.Certificate{h.brokerCert("acme")}, false); err != nil {
		t.Fatalf("upstream AuthnRequest query signature: %v", err)
	}
	req := h.upstreamRequest(r)
	if req.Issuer.Value != h.url("acme", "/sp/metadata") || req.AssertionConsumerServiceURL != h.url("acme", "/sp/acs") || req.Destination != h.fx["acme"].idp.ssoURL {
		t.Errorf("upstream request issuer %q acs %q destination %q", req.Issuer.Value, req.AssertionConsumerServiceURL, req.Destination)
	}
	if strings.Contains(string(rd.XML), "Signature>") {
		t.Error("Redirect AuthnRequest carries an XML signature; the binding signs the query only")
	}
}

func TestHostileResponses(t *testing.T) {
	h := newHarness(t)
	beta := h.fx["beta"].idp
	tests := []struct {
		name   string
		mutate func(*responseSpec)
		want   string // in the page the user sees
	}{
		{"unsigned", func(s *responseSpec) { s.signAssertion = false }, "not signed by a party"},
		{"signature wrapping", func(s *responseSpec) { s.wrap = true }, "not a valid SAML message"},
		{"wrapping under a signed response", func(s *responseSpec) { s.wrap = true; s.signResponse = true; s.signAssertion = false }, "not a valid SAML message"},
		{"wrong audience", func(s *responseSpec) { s.audience = "https://other.example/sp" }, "meant for another service"},
		{"wrong destination", func(s *responseSpec) { s.destination = "https://evil.example/acs" }, "meant for another address"},
		{"wrong recipient", func(s *responseSpec) { s.recipient = "https://evil.example/acs" }, "meant for another address"},
		{"expired", func(s *responseSpec) {
			s.issueInstant = time.Now().Add(-2 * time.Hour)
			s.notOnOrAfter = time.Now().Add(-time.Hour)
		}, "expired"},
		{"unknown InResponseTo", func(s *responseSpec) { s.inResponseTo = "_never-sent" }, "does not match a sign-in"},
		{"signed by tenant B's IdP", func(s *responseSpec) { s.signer = beta.peerKey }, "not signed by a party"},
		{"issuer of tenant B", func(s *responseSpec) { s.issuer = beta.entityID; s.signer = beta.peerKey }, "not signed by a party"},
		{"IdP says no", func(s *responseSpec) { s.status = saml.StatusRequester }, "did not sign you in"},
		{"comment-truncated NameID", func(s *responseSpec) { s.commentNameID = true; s.signAssertion = false; s.signResponse = true }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			before := len(h.sessions("acme"))
			r, spec := b.login("acme", h.fx["acme"].apps[0], tc.mutate)
			if tc.name == "comment-truncated NameID" {
				// Accepted, but the user is the whole NameID the IdP signed, never a prefix of it.
				a := verifyAppResponse(t, h, "acme", h.fx["acme"].apps[0], r, "state-1")
				if a.Subject.NameID.Value != spec.nameID {
					t.Fatalf("NameID %q; want %q", a.Subject.NameID.Value, spec.nameID)
				}
				return
			}
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d; want 400. body: %s", r.status, r.body)
			}
			if !strings.Contains(r.body, tc.want) || !strings.Contains(r.body, "error ID") {
				t.Errorf("page does not say %q with an error ID: %s", tc.want, r.body)
			}
			if got := len(h.sessions("acme")); got != before {
				t.Errorf("sessions %d → %d; a refused Response must create none", before, got)
			}
		})
	}
}

func TestReplayedAssertion(t *testing.T) {
	h := newHarness(t)
	app := h.fx["acme"].apps[0]
	r, spec := h.browser().login("acme", app, nil)
	verifyAppResponse(t, h, "acme", app, r, "state-1")
	// Another browser starts a sign-in and answers it with the same assertion ID, properly signed.
	r2, _ := h.browser().login("acme", app, func(s *responseSpec) { s.assertionID = spec.assertionID })
	if r2.status != http.StatusBadRequest || !strings.Contains(r2.body, "already used") {
		t.Fatalf("replayed assertion: %d %s", r2.status, r2.body)
	}
	if n := len(h.sessions("acme")); n != 1 {
		t.Fatalf("%d sessions after a replay; want 1", n)
	}
	// And the same Response posted twice is refused the second time (its request was answered).
	b := h.browser()
	req := h.upstreamRequest(b.startLogin("acme", app, ""))
	doc := h.defaultResponse("acme", req.ID).build(h, h.fx["acme"].idp)
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}}
	if r := b.post(h.url("acme", "/sp/acs"), form); r.status != http.StatusOK {
		t.Fatalf("first post: %d %s", r.status, r.body)
	}
	if r := b.post(h.url("acme", "/sp/acs"), form); r.status != http.StatusBadRequest {
		t.Fatalf("second post of the same Response: %d; want 400", r.status)
	}
}

func TestHostileAuthnRequests(t *testing.T) {
	h := newHarness(t)
	app := h.fx["acme"].apps[0]
	sso := h.url("acme", "/idp/sso")
	redirect := func(msg []byte) string {
		return sso + "?SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflate(msg)))
	}
	unregistered := &testApp{entityID: "https://stranger.example/metadata", acs: "https://stranger.example/acs"}
	bomb := deflate([]byte("<samlp:AuthnRequest " + strings.Repeat(" ", 8<<20)))
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"unregistered app", redirect(unregistered.authnRequest(sso, "_x1", "")), "not registered with this organisation"},
		{"ACS not in metadata", redirect(app.authnRequest(sso, "_x2", "https://evil.example/acs")), "not registered for it"},
		{"app of another tenant", redirect(h.fx["beta"].apps[0].authnRequest(sso, "_x3", "")), "not registered with this organisation"},
		{"wrong destination", redirect(app.authnRequest("https://elsewhere.example/sso", "_x4", "")), "meant for another address"},
		{"deflate bomb", sso + "?SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(bomb)), "not a valid SAML message"},
		{"not XML", redirect([]byte("hello")), "not a valid SAML message"},
		{"no SAMLRequest", sso + "?foo=bar", "not a valid SAML message"},
		{"bad query signature", redirect(app.authnRequest(sso, "_x5", "")) + "&SigAlg=" + url.QueryEscape(binding.SigAlgRSASHA256) + "&Signature=AAAA", "not signed by a party"},
		{"unknown tenant", h.url("nobody", "/idp/sso") + "?SAMLRequest=x", "no organisation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := h.browser().get(tc.url)
			if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
				t.Fatalf("status %d; want 400/404: %s", r.status, r.body)
			}
			if !strings.Contains(r.body, tc.want) {
				t.Errorf("page does not say %q: %s", tc.want, r.body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
	// A replayed AuthnRequest ID from the same app is refused.
	msg := app.authnRequest(sso, "_dup", "")
	if r := h.browser().get(redirect(msg)); r.status != http.StatusFound {
		t.Fatalf("first request: %d %s", r.status, r.body)
	}
	if r := h.browser().get(redirect(msg)); r.status != http.StatusBadRequest || !strings.Contains(r.body, "already used") {
		t.Fatalf("replayed request: %d %s", r.status, r.body)
	}
	// So is one replayed into a browser that already has a session (answered without the IdP).
	b := h.browser()
	if r, _ := b.login("acme", app, nil); r.status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	again := app.authnRequest(sso, "_dup_session", "")
	if r := b.get(redirect(again)); r.status != http.StatusOK {
		t.Fatalf("request with a session: %d %s", r.status, r.body)
	}
	if r := b.get(redirect(again)); r.status != http.StatusBadRequest || !strings.Contains(r.body, "already used") {
		t.Fatalf("replayed request with a session: %d %s", r.status, r.body)
	}
}

// TestForceAuthnExtendsSession: an app asking for ForceAuthn sends the user back to the IdP even
// with a broker session; the same user's fresh Response in the same IdP session extends that
// broker session (no second one) and rotates its cookie, so the old cookie signs no one in.
func TestForceAuthnExtendsSession(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	wiki, crm := h.fx["acme"].apps[0], h.fx["acme"].apps[1]
	r, spec := b.login("acme", wiki, nil)
	verifyAppResponse(t, h, "acme", wiki, r, "state-1")
	oldCookie := b.c.Jar.Cookies(mustURL(h.url("acme", "/")))

	force := true
	req := saml.AuthnRequest{ID: "_force1", Version: "2.0", IssueInstant: time.Now().UTC(), ForceAuthn: &force, Issuer: &saml.Issuer{Value: crm.entityID}}
	d := etree.NewDocument()
	d.SetRoot(req.Element())
	msg, _ := d.WriteToBytes()
	r2 := b.get(h.url("acme", "/idp/sso") + "?SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflate(msg))))
	up := h.upstreamRequest(r2) // to the IdP despite the session
	if up.ForceAuthn == nil || !*up.ForceAuthn {
		t.Error("upstream AuthnRequest does not carry ForceAuthn")
	}
	again := h.defaultResponse("acme", up.ID)
	again.nameID = spec.nameID
	again.sessionIndex = "_idpsession" + spec.assertionID
	doc := again.build(h, h.fx["acme"].idp)
	r3 := b.post(h.url("acme", "/sp/acs"), url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}})
	verifyAppResponse(t, h, "acme", crm, r3, "")
	ss := h.sessions("acme")
	if len(ss) != 1 {
		t.Fatalf("%d sessions; want the one session, extended", len(ss))
	}
	newCookie := b.c.Jar.Cookies(mustURL(h.url("acme", "/")))
	if len(oldCookie) == 0 || len(newCookie) == 0 || oldCookie[0].Value == newCookie[0].Value {
		t.Fatal("session cookie not rotated after a fresh sign-in")
	}
	// A browser holding the old cookie is sent to the IdP; the new cookie still signs in.
	stale := h.browser()
	stale.c.Jar.SetCookies(mustURL(h.url("acme", "/")), oldCookie)
	if r := stale.startLogin("acme", wiki, ""); r.status != http.StatusFound {
		t.Errorf("old cookie still signs in: %d", r.status)
	}
	if r := b.startLogin("acme", wiki, ""); r.status != http.StatusOK {
		t.Errorf("new cookie does not sign in: %d %s", r.status, r.body)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
