package sso_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/slo"
	"github.com/sloworks/broker/tenants"
)

// soapSP is an app with a SOAP SingleLogoutService that checks the broker's signature and ends
// its own session for the NameID and SessionIndex the broker names.
type soapSP struct {
	*testApp
	srv        *httptest.Server
	brokerCert func() *x509.Certificate
	mu         sync.Mutex
	ended      []*slo.LogoutRequest
}

func (h *harness) addSOAPApp(t *testing.T, slug, name string) *soapSP {
	return h.addSOAPAppB(t, slug, name)
}

func (h *harness) addSOAPAppB(t testing.TB, slug, name string) *soapSP {
	a := &soapSP{brokerCert: func() *x509.Certificate { return h.brokerCert(slug) }}
	a.testApp, a.srv = h.registerApp(t, slug, name, a.serve, saml.SOAPBinding, "/slo/soap")
	return a
}

// registerApp starts an app's server with handler and registers it with the tenant: an HTTP-POST
// ACS at /acs and one SingleLogoutService of the binding at sloPath.
func (h *harness) registerApp(t testing.TB, slug, name string, handler http.HandlerFunc, sloBinding, sloPath string) (*testApp, *httptest.Server) {
	return h.registerAppWith(t, slug, tenants.AppInput{Name: name}, handler, sloBinding, sloPath)
}

// registerAppWith is registerApp with the app's settings (in.Name names it; the metadata is made
// here).
func (h *harness) registerAppWith(t testing.TB, slug string, in tenants.AppInput, handler http.HandlerFunc, sloBinding, sloPath string) (*testApp, *httptest.Server) {
	name := in.Name
	app := &testApp{entityID: "https://" + name + ".example/metadata", peerKey: testKey(t, "app-"+name)}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	app.acs = srv.URL + "/acs"
	signs := false
	ed := saml.EntityDescriptor{EntityID: app.entityID, SPSSODescriptors: []saml.SPSSODescriptor{{
		SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol", KeyDescriptors: certData(app.cert)},
			SingleLogoutServices: []saml.Endpoint{{Binding: sloBinding, Location: srv.URL + sloPath}}},
		AuthnRequestsSigned:       &signs,
		AssertionConsumerServices: []saml.IndexedEndpoint{{Binding: saml.HTTPPostBinding, Location: app.acs, Index: 0}},
	}}}
	md, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	in.MetadataXML = string(md)
	if _, _, err := h.tenants.CreateApp(context.Background(), h.fx[slug].tenant, in); err != nil {
		t.Fatal(err)
	}
	return app, srv
}

func (a *soapSP) serve(w http.ResponseWriter, r *http.Request) {
	el, err := binding.ReadSOAPRequest(r)
	if err != nil {
		binding.WriteSOAPFault(w, binding.SOAPFaultClient, err.Error())
		return
	}
	rcv := slo.ReadSOAP(el)
	if err := rcv.Verify([]*x509.Certificate{a.brokerCert()}, false); err != nil {
		binding.WriteSOAPFault(w, binding.SOAPFaultClient, "signature: "+err.Error())
		return
	}
	req, err := slo.ParseLogoutRequest(rcv.Element)
	if err != nil {
		binding.WriteSOAPFault(w, binding.SOAPFaultClient, err.Error())
		return
	}
	a.mu.Lock()
	a.ended = append(a.ended, req)
	a.mu.Unlock()
	resp := &slo.LogoutResponse{ID: "_r" + randHex(), InResponseTo: req.ID, IssueInstant: time.Now(), Issuer: a.entityID, Status: slo.Status{Codes: []string{slo.StatusSuccess}}}
	b, _ := slo.SignedXML(resp, &slo.Signer{Key: a.key, Cert: a.cert})
	binding.WriteSOAP(w, b)
}

func (h *harness) engine() *slo.Engine {
	return &slo.Engine{Store: h.store, Peers: h.sso.Peers(), Signers: h.sso.Signers(), SOAP: &binding.SOAPClient{HTTP: &http.Client{}},
		LegTimeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(&syncWriter{w: h.logs}, nil)), Now: time.Now, NewID: func() string { return "_lo" + randHex() }}
}

// signIn signs the browser in to app (a fresh IdP sign-in for the first app, the session for the
// others) and returns the Response's assertion.
func (b *browser) signIn(t *testing.T, slug string, app *testApp) *saml.Assertion {
	r := b.startLogin(slug, app, "")
	if r.status == http.StatusFound {
		req := b.h.upstreamRequest(r)
		doc := b.h.defaultResponse(slug, req.ID).build(b.h, b.h.fx[slug].idp)
		r = b.post(b.h.url(slug, "/sp/acs"), url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}})
	}
	return verifyAppResponse(t, b.h, slug, app, r, "")
}

// TestAdminEndsSession: the broker ends a session from its side; both SOAP apps get a signed
// LogoutRequest naming what the broker issued to them and confirm; the app without a back
// channel and the IdP without SLO are recorded as not reachable; the outcome is partial; a late
// assertion for the same IdP session cannot open it again.
func TestAdminEndsSession(t *testing.T) {
	h := newHarness(t)
	wiki := h.addSOAPApp(t, "acme", "soapwiki")
	crm := h.addSOAPApp(t, "acme", "soapcrm")
	front := h.fx["acme"].apps[0] // metadata without SLO
	b := h.browser()
	aw := b.signIn(t, "acme", wiki.testApp)
	ac := b.signIn(t, "acme", crm.testApp)
	b.signIn(t, "acme", front)
	ss := h.sessions("acme")
	if len(ss) != 1 {
		t.Fatalf("%d sessions", len(ss))
	}
	tenantID := ss[0].TenantID

	lo, legs, err := h.engine().EndSession(context.Background(), tenantID, ss[0].ID, slo.TriggerAdmin, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if lo.State != db.LogoutFinished || lo.Outcome != slo.OutcomePartial || lo.User != ss[0].NameID {
		t.Fatalf("logout %+v", lo)
	}
	byName := map[string]db.LogoutLeg{}
	for _, l := range legs {
		byName[l.TargetName] = l
	}
	for _, name := range []string{"soapwiki", "soapcrm"} {
		l := byName[name]
		if l.Channel != "soap" || l.ErrorClass != "" || l.Status != slo.StatusSuccess || len(l.Sent) == 0 || len(l.Received) == 0 || l.RequestID == "" {
			t.Errorf("%s leg: %+v", name, l)
		}
	}
	if l := byName["wiki"]; l.Channel != "none" || l.ErrorClass != slo.ClassNotSupported || !strings.Contains(l.Diagnosis, "no SAML Single Logout") {
		t.Errorf("app without SLO: %+v", l)
	}
	if l := byName["idp"]; l.Target != "upstream" || l.ErrorClass != slo.ClassNotSupported {
		t.Errorf("upstream leg: %+v", l)
	}
	// Each app was told exactly what it was issued.
	for _, c := range []struct {
		sp *soapSP
		a  *saml.Assertion
	}{{wiki, aw}, {crm, ac}} {
		c.sp.mu.Lock()
		got := c.sp.ended
		c.sp.mu.Unlock()
		if len(got) != 1 || got[0].NameID.Value != c.a.Subject.NameID.Value || got[0].NameID.Format != c.a.Subject.NameID.Format ||
			len(got[0].SessionIndexes) != 1 || got[0].SessionIndexes[0] != c.a.AuthnStatements[0].SessionIndex || got[0].Reason != slo.ReasonAdmin {
			t.Errorf("%s received %+v", c.sp.entityID, got)
		}
	}
	// The session is over: the browser's cookie signs no one in.
	if r := b.startLogin("acme", wiki.testApp, ""); r.status != http.StatusFound {
		t.Errorf("ended session still signs in: %d", r.status)
	}
	// A late assertion of the same IdP session is refused.
	r := b.startLogin("acme", wiki.testApp, "")
	req := h.upstreamRequest(r)
	late := h.defaultResponse("acme", req.ID)
	late.sessionIndex = ss[0].UpstreamSessionIndex
	res := b.post(h.url("acme", "/sp/acs"), url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(late.build(h, h.fx["acme"].idp))}})
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "signed out") {
		t.Errorf("late assertion: %d %s", res.status, res.body)
	}
	// Ending it again is an error, not a second logout.
	if _, _, err := h.engine().EndSession(context.Background(), tenantID, ss[0].ID, slo.TriggerAdmin, "operator"); err != slo.ErrSessionGone {
		t.Errorf("second end: %v", err)
	}
	// The log has it.
	got, gotLegs, err := h.store.GetLogout(context.Background(), tenantID, lo.ID)
	if err != nil || got.Outcome != slo.OutcomePartial || len(gotLegs) != 4 {
		t.Fatalf("stored logout %+v %d legs %v", got, len(gotLegs), err)
	}
}

// TestExpiredSessionLoggedOut: a session that expires is logged out of its apps like one an
// operator ends, recorded with trigger "expiry".
func TestExpiredSessionLoggedOut(t *testing.T) {
	h := newHarness(t)
	app := h.addSOAPApp(t, "acme", "soapwiki")
	b := h.browser()
	b.signIn(t, "acme", app.testApp)
	ss := h.sessions("acme")
	s := ss[0]
	s.ExpiresAt = time.Now().Add(-time.Minute).UTC()
	if err := h.store.UpdateSession(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	e := h.engine()
	n, err := e.EndExpired(context.Background(), time.Now(), 10)
	if err != nil || n != 1 {
		t.Fatalf("EndExpired = %d, %v; want 1", n, err)
	}
	los, err := h.store.ListLogouts(context.Background(), s.TenantID, db.LogoutFilter{})
	if err != nil || len(los) != 1 || los[0].Trigger != slo.TriggerExpiry {
		t.Fatalf("logouts %+v %v", los, err)
	}
	app.mu.Lock()
	got := len(app.ended)
	app.mu.Unlock()
	if got != 1 {
		t.Errorf("app received %d LogoutRequests; want 1", got)
	}
	if n, _ := e.EndExpired(context.Background(), time.Now(), 10); n != 0 {
		t.Errorf("second sweep ended %d sessions again", n)
	}
}
