package sso_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/slo"
)

// frontSP is an app whose SingleLogoutService is HTTP-Redirect (front channel): it checks the
// broker's signed LogoutRequest, ends its session, and sends the browser back with its signed
// LogoutResponse; it also receives the broker's answer to a logout it started.
type frontSP struct {
	*testApp
	h          *harness
	slug       string
	srv        *httptest.Server
	mu         sync.Mutex
	ended      []*slo.LogoutRequest
	answers    []*slo.LogoutResponse
	answerErrs []error
	// sigAlg is the algorithm the app signs its logout messages with, and the only one besides
	// RSA-SHA256 it accepts (RSA-SHA1 for a Salesforce-like app); "" = RSA-SHA256.
	sigAlg string
	// sigAlgs are the SigAlg of each broker message it received.
	sigAlgs []string
}

func (h *harness) addFrontApp(t *testing.T, slug, name string) *frontSP {
	a := &frontSP{h: h, slug: slug}
	a.testApp, a.srv = h.registerApp(t, slug, name, a.serve, saml.HTTPRedirectBinding, "/slo")
	return a
}

func (a *frontSP) serve(w http.ResponseWriter, r *http.Request) {
	rcv, err := slo.ReadRedirect(r.URL.RawQuery)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if err := rcv.Verify([]*x509.Certificate{a.h.brokerCert(a.slug)}, a.sigAlg == binding.SigAlgRSASHA1); err != nil {
		http.Error(w, "signature: "+err.Error(), 400)
		return
	}
	a.mu.Lock()
	a.sigAlgs = append(a.sigAlgs, r.URL.Query().Get("SigAlg"))
	a.mu.Unlock()
	if rcv.Kind() == "LogoutResponse" {
		resp, err := slo.ParseLogoutResponse(rcv.Element)
		a.mu.Lock()
		a.answers, a.answerErrs = append(a.answers, resp), append(a.answerErrs, err)
		a.mu.Unlock()
		w.Write([]byte("signed out"))
		return
	}
	req, err := slo.ParseLogoutRequest(rcv.Element)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	a.mu.Lock()
	a.ended = append(a.ended, req)
	a.mu.Unlock()
	resp := &slo.LogoutResponse{ID: "_r" + randHex(), InResponseTo: req.ID, IssueInstant: time.Now(), Destination: a.h.url(a.slug, "/idp/slo"), Issuer: a.entityID, Status: slo.Status{Codes: []string{slo.StatusSuccess}}}
	u, err := slo.RedirectURL(a.h.url(a.slug, "/idp/slo"), resp, rcv.RelayState, &slo.Signer{Key: a.key, Cert: a.cert, SigAlg: a.sigAlg})
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// startLogout is the app's signed LogoutRequest for what the broker issued to it.
func (a *frontSP) logoutURL(t *testing.T, as *saml.Assertion, id string) string {
	req := &slo.LogoutRequest{ID: id, IssueInstant: time.Now(), Destination: a.h.url(a.slug, "/idp/slo"), Issuer: a.entityID,
		NameID:         slo.NameID{Value: as.Subject.NameID.Value, Format: as.Subject.NameID.Format, NameQualifier: as.Subject.NameID.NameQualifier, SPNameQualifier: as.Subject.NameID.SPNameQualifier},
		SessionIndexes: []string{as.AuthnStatements[0].SessionIndex}}
	u, err := slo.RedirectURL(a.h.url(a.slug, "/idp/slo"), req, "back-to-home", &slo.Signer{Key: a.key, Cert: a.cert, SigAlg: a.sigAlg})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var iframeRE = regexp.MustCompile(`<iframe title="[^"]*" src="([^"]+)"`)

// TestFrontChannelLogout: an app starts a logout through the browser; the broker ends the
// session, tells the SOAP app at once over the back channel, shows the logout page whose iframe
// reaches the other front-channel app, and when every leg has settled answers the initiator with a
// signed PartialLogout (the test IdP has no SLO).
func TestFrontChannelLogout(t *testing.T) {
	h := newHarness(t)
	h.sso.SetLogout(h.engine())
	initiator := h.addFrontApp(t, "acme", "frontwiki")
	other := h.addFrontApp(t, "acme", "frontcrm")
	soap := h.addSOAPApp(t, "acme", "soapapp")
	b := h.browser()
	ai := b.signIn(t, "acme", initiator.testApp)
	ao := b.signIn(t, "acme", other.testApp)
	b.signIn(t, "acme", soap.testApp)

	r := b.get(initiator.logoutURL(t, ai, "_out1"))
	if r.status != http.StatusFound || !strings.Contains(r.location, "/t/acme/logout/") {
		t.Fatalf("logout start: %d %s %s\n%s", r.status, r.location, r.body, h.logs)
	}
	page := r.location
	if n := len(h.sessions("acme")); n != 1 || h.sessions("acme")[0].EndedAt == nil {
		t.Fatal("session not ended at once")
	}
	p := b.get(page)
	frames := iframeRE.FindAllStringSubmatch(p.body, -1)
	if p.status != http.StatusOK || len(frames) != 1 || !strings.Contains(p.body, "frontcrm") {
		t.Fatalf("logout page: %d %d frames\n%s", p.status, len(frames), p.body)
	}
	// The iframe: the broker's signed request to the other app, which answers back to the broker.
	leg := b.get(frames[0][1])
	if leg.status != http.StatusFound || !strings.HasPrefix(leg.location, other.srv.URL+"/slo?") {
		t.Fatalf("iframe: %d %s", leg.status, leg.location)
	}
	back := b.get(leg.location)
	if back.status != http.StatusFound {
		t.Fatalf("app answer: %d %s", back.status, back.body)
	}
	done := b.get(back.location)
	if done.status != http.StatusOK || !strings.Contains(done.body, "Signed out of frontcrm") {
		t.Fatalf("leg answer: %d %s", done.status, done.body)
	}
	other.mu.Lock()
	if len(other.ended) != 1 || other.ended[0].NameID.Value != ao.Subject.NameID.Value || other.ended[0].SessionIndexes[0] != ao.AuthnStatements[0].SessionIndex {
		t.Errorf("other app received %+v", other.ended)
	}
	other.mu.Unlock()
	// The SOAP leg runs by itself; wait for the page's status to show every app leg settled.
	var st struct {
		Pending int `json:"pending"`
		Legs    []struct{ Name, State string }
	}
	for i := 0; i < 100; i++ {
		s := b.get(page + "/status")
		json.Unmarshal([]byte(s.body), &st)
		if st.Pending == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Pending != 0 {
		t.Fatalf("legs still pending: %+v", st)
	}
	// Back to the page: the initiator gets its answer.
	fin := b.get(page)
	if fin.status != http.StatusFound || !strings.HasPrefix(fin.location, initiator.srv.URL+"/slo?") {
		t.Fatalf("final step: %d %s %s", fin.status, fin.location, fin.body)
	}
	u, _ := url.Parse(fin.location)
	if u.Query().Get("RelayState") != "back-to-home" {
		t.Errorf("RelayState %q not carried back", u.Query().Get("RelayState"))
	}
	b.get(fin.location)
	initiator.mu.Lock()
	if len(initiator.answers) != 1 || initiator.answerErrs[0] != nil || initiator.answers[0].InResponseTo != "_out1" ||
		initiator.answers[0].Status.Top() != slo.StatusSuccess || initiator.answers[0].Status.Sub() != slo.StatusPartialLogout {
		t.Errorf("initiator's answer: %+v %v", initiator.answers, initiator.answerErrs)
	}
	if len(initiator.ended) != 0 {
		t.Error("the initiator was sent a LogoutRequest too")
	}
	initiator.mu.Unlock()
	soap.mu.Lock()
	if len(soap.ended) != 1 {
		t.Errorf("SOAP app got %d requests", len(soap.ended))
	}
	soap.mu.Unlock()
	los, _ := h.store.ListLogouts(context.Background(), h.fx["acme"].tenant.ID, db.LogoutFilter{})
	if len(los) != 1 || los[0].Outcome != slo.OutcomePartial || los[0].Trigger != slo.TriggerApp {
		t.Fatalf("log: %+v", los)
	}
	_, legs, _ := h.store.GetLogout(context.Background(), los[0].TenantID, los[0].ID)
	byName := map[string]db.LogoutLeg{}
	for _, l := range legs {
		byName[l.TargetName] = l
	}
	if l := byName["frontcrm"]; l.Channel != "iframe" || l.ErrorClass != "" || len(l.Received) == 0 {
		t.Errorf("front leg %+v", l)
	}
	if l := byName["soapapp"]; l.Channel != "soap" || l.ErrorClass != "" {
		t.Errorf("soap leg %+v", l)
	}
	// Another browser cannot see this logout page.
	if r := h.browser().get(page); r.status != http.StatusNotFound {
		t.Errorf("another browser sees the logout page: %d", r.status)
	}
}

// startSilentLogout signs a browser in to two front-channel apps, "frontwiki" and "silent", with
// the engine's leg timeout, and has frontwiki start a logout with request ID id; it returns the
// broker's answer to that request (a redirect to the logout page).
func startSilentLogout(t *testing.T, timeout time.Duration, id string) (*harness, *slo.Engine, *browser, *frontSP, result) {
	h := newHarness(t)
	e := h.engine()
	e.LegTimeout = timeout
	h.sso.SetLogout(e)
	initiator := h.addFrontApp(t, "acme", "frontwiki")
	silent := h.addFrontApp(t, "acme", "silent")
	b := h.browser()
	ai := b.signIn(t, "acme", initiator.testApp)
	b.signIn(t, "acme", silent.testApp)
	return h, e, b, initiator, b.get(initiator.logoutURL(t, ai, id))
}

// TestFrontChannelLegTimesOut: an app whose iframe never answers is settled as "no answer" when
// the deadline passes, and the initiator still gets its (partial) answer.
func TestFrontChannelLegTimesOut(t *testing.T) {
	h, _, b, initiator, r := startSilentLogout(t, 300*time.Millisecond, "_out2")
	page := r.location
	if p := b.get(page); !strings.Contains(p.body, "silent") {
		t.Fatalf("page: %s", p.body)
	}
	// The browser never loads the iframe (framing refused, say). After the deadline:
	time.Sleep(400 * time.Millisecond)
	fin := b.get(page)
	if fin.status != http.StatusFound || !strings.HasPrefix(fin.location, initiator.srv.URL+"/slo?") {
		t.Fatalf("final step: %d %s", fin.status, fin.body)
	}
	los, _ := h.store.ListLogouts(context.Background(), h.fx["acme"].tenant.ID, db.LogoutFilter{})
	_, legs, _ := h.store.GetLogout(context.Background(), los[0].TenantID, los[0].ID)
	for _, l := range legs {
		if l.TargetName == "silent" && (l.ErrorClass != slo.ClassNoAnswer || l.State != db.LegDone) {
			t.Errorf("silent leg %+v", l)
		}
	}
}

// TestAbandonedLogoutSettled: a browser that never comes back to its logout page leaves a
// running logout; after its time, the janitor settles the open legs as "no answer".
func TestAbandonedLogoutSettled(t *testing.T) {
	h, e, _, _, r := startSilentLogout(t, 3*time.Second, "_gone")
	if r.status != http.StatusFound {
		t.Fatalf("logout start: %d", r.status)
	}
	ctx := context.Background()
	tid := h.fx["acme"].tenant.ID
	if n, _ := e.SettleAbandoned(ctx, time.Now()); n != 0 {
		t.Fatalf("settled %d logouts before their time", n)
	}
	los, _ := h.store.ListLogouts(ctx, tid, db.LogoutFilter{})
	if len(los) != 1 || los[0].State != db.LogoutRunning {
		t.Fatalf("the logout should still be running: %+v", los)
	}
	n, err := e.SettleAbandoned(ctx, time.Now().Add(10*time.Second))
	if err != nil || n != 1 {
		t.Fatalf("SettleAbandoned = %d, %v; want 1", n, err)
	}
	lo, legs, _ := h.store.GetLogout(ctx, tid, los[0].ID)
	if lo.State != db.LogoutFinished || lo.Outcome == slo.OutcomeSuccess {
		t.Errorf("logout %+v", lo)
	}
	for _, l := range legs {
		if l.State != db.LegDone || (l.TargetName == "silent" && l.ErrorClass != slo.ClassNoAnswer) {
			t.Errorf("leg %+v", l)
		}
	}
}

// TestFrontChannelRedirectStep: an app whose logout page refuses to be framed gets no iframe; the
// browser goes to it as a step after the iframes, comes back, and the initiator gets its answer.
func TestFrontChannelRedirectStep(t *testing.T) {
	h := newHarness(t)
	h.sso.SetLogout(h.engine())
	initiator := h.addFrontApp(t, "acme", "frontwiki")
	framed := h.addFrontApp(t, "acme", "framed")
	noFrame := h.addFrontApp(t, "acme", "noframe")
	ctx := context.Background()
	tid := h.fx["acme"].tenant.ID
	row, err := h.store.GetAppByEntityID(ctx, tid, noFrame.entityID)
	if err != nil {
		t.Fatal(err)
	}
	row.NoFrameLogout = true
	if err := h.store.UpdateApp(ctx, row); err != nil {
		t.Fatal(err)
	}
	b := h.browser()
	ai := b.signIn(t, "acme", initiator.testApp)
	b.signIn(t, "acme", framed.testApp)
	b.signIn(t, "acme", noFrame.testApp)

	page := b.get(initiator.logoutURL(t, ai, "_out3")).location
	p := b.get(page)
	frames := iframeRE.FindAllStringSubmatch(p.body, -1)
	if len(frames) != 1 || !strings.Contains(p.body, "noframe") {
		t.Fatalf("want one iframe (framed) and noframe listed:\n%s", p.body)
	}
	// The framed app answers in its iframe.
	leg := b.get(frames[0][1])
	back := b.get(leg.location)
	b.get(back.location)
	// The page moves on: a step to the app that refuses framing.
	step := b.get(page)
	if step.status != http.StatusFound || !strings.HasPrefix(step.location, noFrame.srv.URL+"/slo?") {
		t.Fatalf("step: %d %s\n%s", step.status, step.location, step.body)
	}
	answer := b.get(step.location) // the app ends its session and sends the browser back
	ret := b.get(answer.location)  // the broker records it and returns to the logout page
	if ret.status != http.StatusFound || ret.location != page {
		t.Fatalf("after the step: %d %s %s", ret.status, ret.location, ret.body)
	}
	fin := b.get(page)
	if fin.status != http.StatusFound || !strings.HasPrefix(fin.location, initiator.srv.URL+"/slo?") {
		t.Fatalf("final: %d %s", fin.status, fin.location)
	}
	los, _ := h.store.ListLogouts(ctx, tid, db.LogoutFilter{})
	_, legs, _ := h.store.GetLogout(ctx, tid, los[0].ID)
	for _, l := range legs {
		switch l.TargetName {
		case "framed":
			if l.Channel != "iframe" || l.ErrorClass != "" {
				t.Errorf("framed leg %+v", l)
			}
		case "noframe":
			if l.Channel != "redirect" || l.ErrorClass != "" || l.State != db.LegDone {
				t.Errorf("noframe leg %+v", l)
			}
		}
	}
	noFrame.mu.Lock()
	if len(noFrame.ended) != 1 {
		t.Errorf("noframe app got %d LogoutRequests", len(noFrame.ended))
	}
	noFrame.mu.Unlock()
}
