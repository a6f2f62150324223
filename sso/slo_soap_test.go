package sso_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/slo"
)

// sloFixture is tenant acme with a browser signed in to two SOAP apps and one app without SLO,
// and the logout engine wired into the SOAP endpoints.
type sloFixture struct {
	h         *harness
	wiki, crm *soapSP
	front     *testApp
	b         *browser
	// aw and ac are the assertions the broker issued to wiki and crm.
	aw, ac   *saml.Assertion
	tenantID string
	session  db.Session
}

func newSLOFixture(t *testing.T) *sloFixture {
	h := newHarness(t)
	h.sso.SetLogout(h.engine())
	f := &sloFixture{h: h, wiki: h.addSOAPApp(t, "acme", "soapwiki"), crm: h.addSOAPApp(t, "acme", "soapcrm"), front: h.fx["acme"].apps[0], b: h.browser()}
	f.aw = f.b.signIn(t, "acme", f.wiki.testApp)
	f.ac = f.b.signIn(t, "acme", f.crm.testApp)
	f.b.signIn(t, "acme", f.front)
	ss := h.sessions("acme")
	if len(ss) != 1 {
		t.Fatalf("%d sessions", len(ss))
	}
	f.session, f.tenantID = ss[0], ss[0].TenantID
	return f
}

// issuedNameID is the NameID exactly as the broker issued it in the assertion.
func issuedNameID(a *saml.Assertion) slo.NameID {
	n := a.Subject.NameID
	return slo.NameID{Value: n.Value, Format: n.Format, NameQualifier: n.NameQualifier, SPNameQualifier: n.SPNameQualifier}
}

func sessionIndex(a *saml.Assertion) string { return a.AuthnStatements[0].SessionIndex }

// logoutRequest is a fresh LogoutRequest as a peer sends it over SOAP.
func logoutRequest(issuer, dest string, nameID slo.NameID, sis ...string) *slo.LogoutRequest {
	now := time.Now().UTC()
	return &slo.LogoutRequest{ID: "_lr" + randHex(), Version: "2.0", IssueInstant: now, Destination: dest, Issuer: issuer,
		NotOnOrAfter: now.Add(2 * time.Minute), Reason: slo.ReasonUser, NameID: nameID, SessionIndexes: sis}
}

// sign renders the request with an enveloped signature by k (unsigned when k is nil).
func sign(t *testing.T, req *slo.LogoutRequest, k *peerKey) []byte {
	t.Helper()
	var s *slo.Signer
	if k != nil {
		s = &slo.Signer{Key: k.key, Cert: k.cert}
	}
	b, err := slo.SignedXML(req, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// callSOAP sends msg in a SOAP envelope, as an app's or IdP's back channel does.
func callSOAP(url string, msg []byte) (*etree.Element, error) {
	return (&binding.SOAPClient{}).Call(context.Background(), url, msg)
}

// postEnvelope posts a hand-made SOAP envelope and returns the SAML answer or the fault.
func postEnvelope(t *testing.T, url string, envelope []byte) (*etree.Element, error) {
	t.Helper()
	resp, err := http.Post(url, "text/xml; charset=utf-8", bytes.NewReader(envelope))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	el, err := binding.DecodeSOAP(body)
	if err == nil && resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d with a SAML answer", resp.StatusCode)
	}
	return el, err
}

// brokerAnswer checks that the answer is a LogoutResponse signed by cert, in response to req,
// from issuer, with no Destination (SOAP), and returns it.
func brokerAnswer(t *testing.T, el *etree.Element, err error, cert *x509.Certificate, req *slo.LogoutRequest, issuer string) *slo.LogoutResponse {
	t.Helper()
	if err != nil {
		t.Fatalf("LogoutRequest %s: %v", req.ID, err)
	}
	rcv := slo.ReadSOAP(el)
	if rcv.Kind() != "LogoutResponse" {
		t.Fatalf("answer is a %s", rcv.Kind())
	}
	if err := rcv.Verify([]*x509.Certificate{cert}, false); err != nil {
		t.Fatalf("answer does not verify against the broker's metadata certificate: %v", err)
	}
	resp, err := slo.ParseLogoutResponse(rcv.Element)
	if err != nil {
		t.Fatal(err)
	}
	if resp.InResponseTo != req.ID || resp.Issuer != issuer || resp.Destination != "" {
		t.Fatalf("answer InResponseTo %q Issuer %q Destination %q; want %q, %q, none", resp.InResponseTo, resp.Issuer, resp.Destination, req.ID, issuer)
	}
	return resp
}

func wantStatus(t *testing.T, resp *slo.LogoutResponse, codes ...string) {
	t.Helper()
	if strings.Join(resp.Status.Codes, " ") != strings.Join(codes, " ") {
		t.Fatalf("status %s; want %v", resp.Status, codes)
	}
}

// wantFault checks that the broker answered with a SOAP Client fault that mentions what.
func wantFault(t *testing.T, el *etree.Element, err error, what string) {
	t.Helper()
	var fault *binding.SOAPFault
	if !errors.As(err, &fault) {
		t.Fatalf("want a SOAP fault, got %v (answer %v)", err, el != nil)
	}
	if fault.Code != binding.SOAPFaultClient || !strings.Contains(fault.String, what) || !strings.Contains(fault.String, "error ID") {
		t.Fatalf("fault %s %q; want Client mentioning %q and an error ID", fault.Code, fault.String, what)
	}
	t.Logf("fault: %s", fault.String)
}

func (f *sloFixture) logouts(t *testing.T) []db.Logout {
	t.Helper()
	los, err := f.h.store.ListLogouts(context.Background(), f.tenantID, db.LogoutFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return los
}

func (f *sloFixture) received(sp *soapSP) []*slo.LogoutRequest {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return append([]*slo.LogoutRequest(nil), sp.ended...)
}

// untouched checks that the session is live, no app was sent anything and no logout recorded
// since there were nLogouts.
func (f *sloFixture) untouched(t *testing.T, nLogouts int) {
	t.Helper()
	s, err := f.h.store.GetSession(context.Background(), f.tenantID, f.session.ID)
	if err != nil || s.EndedAt != nil {
		t.Fatalf("session ended (%v, %v)", s, err)
	}
	if n, m := len(f.received(f.wiki)), len(f.received(f.crm)); n+m != 0 {
		t.Fatalf("apps were sent %d and %d LogoutRequests", n, m)
	}
	if n := len(f.logouts(t)); n != nLogouts {
		t.Fatalf("%d logouts recorded; want %d", n, nLogouts)
	}
}

// wrapped builds the classic signature-wrapping attack on a signed LogoutRequest: a new root
// with another ID and SessionIndex carries the original signature, and the signed original
// hides inside its Extensions.
func wrapped(t *testing.T, signed []byte, evilIndex string) []byte {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(signed); err != nil {
		t.Fatal(err)
	}
	orig := d.Root()
	sig := orig.SelectElement("Signature")
	orig.RemoveChild(sig)
	evil := orig.Copy()
	evil.CreateAttr("ID", "_evil"+randHex())
	evil.SelectElement("SessionIndex").SetText(evilIndex)
	evil.InsertChildAt(evil.SelectElement("Issuer").Index()+1, sig)
	ext := etree.NewElement("samlp:Extensions")
	ext.AddChild(orig)
	evil.InsertChildAt(sig.Index()+1, ext)
	out := etree.NewDocument()
	out.SetRoot(evil)
	b, err := out.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func envelope(header string, body ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString(`<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">`)
	if header != "" {
		b.WriteString(`<soap-env:Header>` + header + `</soap-env:Header>`)
	}
	b.WriteString(`<soap-env:Body>`)
	for _, m := range body {
		b.Write(m)
	}
	b.WriteString(`</soap-env:Body></soap-env:Envelope>`)
	return b.Bytes()
}

// TestAppLogoutSOAP: an app logs the user out over the back channel. Every hostile request is
// answered with a SOAP fault and ends nothing; the genuine one ends the session, tells the other
// SOAP app (and not the initiator), records the legs, and gets a signed Success/PartialLogout;
// a request for a session already gone gets a signed Success.
func TestAppLogoutSOAP(t *testing.T) {
	f := newSLOFixture(t)
	h := f.h
	endpoint := h.url("acme", "/idp/slo/soap")
	idpIssuer := h.url("acme", "/idp/metadata")
	nameID, si := issuedNameID(f.aw), sessionIndex(f.aw)
	genuine := func() *slo.LogoutRequest { return logoutRequest(f.wiki.entityID, endpoint, nameID, si) }
	beta := h.fx["beta"].apps[0]

	hostile := []struct {
		name string
		send func(t *testing.T) (*etree.Element, error)
		want string
	}{
		{"unsigned", func(t *testing.T) (*etree.Element, error) { return callSOAP(endpoint, sign(t, genuine(), nil)) }, "not signed"},
		{"signed by another key", func(t *testing.T) (*etree.Element, error) {
			return callSOAP(endpoint, sign(t, genuine(), testKey(t, "intruder")))
		}, "not signed by a key in the metadata"},
		{"an app of tenant beta", func(t *testing.T) (*etree.Element, error) {
			return callSOAP(endpoint, sign(t, logoutRequest(beta.entityID, endpoint, nameID, si), beta.peerKey))
		}, "not an app of this organisation"},
		{"signed Issuer differs from the claimed one", func(t *testing.T) (*etree.Element, error) {
			// The crm app's key signs a request claiming to be crm, then the Issuer is
			// swapped to wiki's after signing: the signature no longer holds.
			b := sign(t, logoutRequest(f.crm.entityID, endpoint, issuedNameID(f.ac), sessionIndex(f.ac)), f.crm.peerKey)
			b = bytes.Replace(b, []byte(f.crm.entityID), []byte(f.wiki.entityID), 1)
			return callSOAP(endpoint, b)
		}, "not signed by a key in the metadata"},
		{"NameID of another user", func(t *testing.T) (*etree.Element, error) {
			other := nameID
			other.Value = "bob@acme.example"
			return callSOAP(endpoint, sign(t, logoutRequest(f.wiki.entityID, endpoint, other, si), f.wiki.peerKey))
		}, "another user"},
		{"another endpoint's Destination", func(t *testing.T) (*etree.Element, error) {
			return callSOAP(endpoint, sign(t, logoutRequest(f.wiki.entityID, h.url("beta", "/idp/slo/soap"), nameID, si), f.wiki.peerKey))
		}, "Destination"},
		{"expired NotOnOrAfter", func(t *testing.T) (*etree.Element, error) {
			req := genuine()
			req.IssueInstant = time.Now().UTC().Add(-time.Minute)
			req.NotOnOrAfter = time.Now().UTC().Add(-10 * time.Minute)
			return callSOAP(endpoint, sign(t, req, f.wiki.peerKey))
		}, "NotOnOrAfter"},
		{"issued long ago", func(t *testing.T) (*etree.Element, error) {
			req := genuine()
			req.IssueInstant = time.Now().UTC().Add(-time.Hour)
			req.NotOnOrAfter = time.Time{}
			return callSOAP(endpoint, sign(t, req, f.wiki.peerKey))
		}, "ago"},
		{"a second, unsigned LogoutRequest in the SOAP Header", func(t *testing.T) (*etree.Element, error) {
			evil := sign(t, logoutRequest(f.wiki.entityID, endpoint, issuedNameID(f.ac), sessionIndex(f.ac)), nil)
			return postEnvelope(t, endpoint, envelope(string(evil), sign(t, genuine(), f.wiki.peerKey)))
		}, "SOAP Header holds a SAML element"},
		{"an extra element in the SOAP Body", func(t *testing.T) (*etree.Element, error) {
			evil := sign(t, logoutRequest(f.wiki.entityID, endpoint, issuedNameID(f.ac), sessionIndex(f.ac)), nil)
			return postEnvelope(t, endpoint, envelope("", sign(t, genuine(), f.wiki.peerKey), evil))
		}, "SOAP Body holds 2 elements"},
		{"the signed request wrapped in an unsigned one", func(t *testing.T) (*etree.Element, error) {
			return callSOAP(endpoint, wrapped(t, sign(t, genuine(), f.wiki.peerKey), sessionIndex(f.ac)))
		}, "signature"},
		{"a LogoutResponse", func(t *testing.T) (*etree.Element, error) {
			resp := &slo.LogoutResponse{ID: "_r" + randHex(), InResponseTo: "_x", IssueInstant: time.Now(), Issuer: f.wiki.entityID, Status: slo.Status{Codes: []string{slo.StatusSuccess}}}
			b, _ := slo.SignedXML(resp, &slo.Signer{Key: f.wiki.key, Cert: f.wiki.cert})
			return callSOAP(endpoint, b)
		}, "takes a LogoutRequest"},
	}
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			el, err := tc.send(t)
			wantFault(t, el, err, tc.want)
			f.untouched(t, 0)
		})
	}

	t.Run("replayed request ID", func(t *testing.T) {
		// A genuine request for a session the broker does not know: answered, nothing ended.
		req := logoutRequest(f.wiki.entityID, endpoint, nameID, "_no-such-session")
		msg := sign(t, req, f.wiki.peerKey)
		el, err := callSOAP(endpoint, msg)
		wantStatus(t, brokerAnswer(t, el, err, h.brokerCert("acme"), req, idpIssuer), slo.StatusSuccess)
		f.untouched(t, 1)
		el, err = callSOAP(endpoint, msg)
		wantFault(t, el, err, "already received")
		f.untouched(t, 1)
	})

	t.Run("SessionIndex of another tenant's participant", func(t *testing.T) {
		// The same app is registered with beta too, and the user signed in there. Tenants are
		// invisible to each other: in acme, beta's SessionIndex is simply unknown, so the
		// answer is the one for an unknown session (Success, a logout without legs), and
		// nothing ends in either tenant.
		betaWiki := h.addSOAPApp(t, "beta", "soapwiki")
		ab := h.browser().signIn(t, "beta", betaWiki.testApp)
		before := len(f.logouts(t))
		req := logoutRequest(f.wiki.entityID, endpoint, issuedNameID(ab), sessionIndex(ab))
		el, err := callSOAP(endpoint, sign(t, req, f.wiki.peerKey))
		wantStatus(t, brokerAnswer(t, el, err, h.brokerCert("acme"), req, idpIssuer), slo.StatusSuccess)
		f.untouched(t, before+1)
		los := f.logouts(t)
		if _, legs, err := h.store.GetLogout(context.Background(), f.tenantID, los[0].ID); err != nil || len(legs) != 0 || len(los[0].SessionIDs) != 0 {
			t.Fatalf("logout %+v with %d legs (%v)", los[0], len(legs), err)
		}
		for _, s := range h.sessions("beta") {
			if s.EndedAt != nil {
				t.Fatalf("beta session %s ended", s.ID)
			}
		}
		if n := len(f.received(betaWiki)); n != 0 {
			t.Fatalf("beta's app was sent %d LogoutRequests", n)
		}
	})

	t.Run("genuine", func(t *testing.T) {
		before := len(f.logouts(t))
		req := genuine()
		el, err := callSOAP(endpoint, sign(t, req, f.wiki.peerKey))
		// The app without SLO cannot be reached and the test IdP has no SLO: partial.
		resp := brokerAnswer(t, el, err, h.brokerCert("acme"), req, idpIssuer)
		wantStatus(t, resp, slo.StatusSuccess, slo.StatusPartialLogout)

		if got := f.received(f.wiki); len(got) != 0 {
			t.Errorf("the initiating app was sent %d LogoutRequests", len(got))
		}
		got := f.received(f.crm)
		if len(got) != 1 || got[0].NameID != issuedNameID(f.ac) || len(got[0].SessionIndexes) != 1 || got[0].SessionIndexes[0] != sessionIndex(f.ac) ||
			got[0].Issuer != idpIssuer || got[0].Reason != slo.ReasonUser {
			t.Fatalf("crm received %+v", got)
		}
		s, err := h.store.GetSession(context.Background(), f.tenantID, f.session.ID)
		if err != nil || s.EndedAt == nil {
			t.Fatalf("session not ended (%v)", err)
		}
		if r := f.b.startLogin("acme", f.wiki.testApp, ""); r.status != http.StatusFound {
			t.Errorf("ended session still signs in: %d", r.status)
		}

		los := f.logouts(t)
		if len(los) != before+1 {
			t.Fatalf("%d logouts; want %d", len(los), before+1)
		}
		lo, legs, err := h.store.GetLogout(context.Background(), f.tenantID, los[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		wikiApp, _, _ := h.tenants.AppByEntityID(context.Background(), f.tenantID, f.wiki.entityID)
		if lo.Trigger != slo.TriggerApp || lo.TriggerRef != wikiApp.ID || lo.Outcome != slo.OutcomePartial || lo.State != db.LogoutFinished ||
			lo.User != f.session.NameID || len(lo.SessionIDs) != 1 || lo.SessionIDs[0] != f.session.ID {
			t.Fatalf("logout %+v", lo)
		}
		byName := map[string]db.LogoutLeg{}
		for _, l := range legs {
			byName[l.TargetName] = l
		}
		if len(legs) != 3 {
			t.Fatalf("%d legs: %+v", len(legs), legs)
		}
		if l := byName["soapcrm"]; l.Channel != "soap" || l.ErrorClass != "" || l.Status != slo.StatusSuccess || len(l.Sent) == 0 || len(l.Received) == 0 {
			t.Errorf("crm leg %+v", l)
		}
		if l := byName["wiki"]; l.Channel != "none" || l.ErrorClass != slo.ClassNotSupported {
			t.Errorf("app without SLO: %+v", l)
		}
		if l := byName["idp"]; l.Target != "upstream" || l.ErrorClass != slo.ClassNotSupported {
			t.Errorf("upstream leg %+v", l)
		}
		if _, ok := byName["soapwiki"]; ok {
			t.Errorf("a leg to the initiating app")
		}

		// The same request again is a replay; a new one for the session now gone is answered
		// Success, with a logout of no legs.
		el, err = callSOAP(endpoint, sign(t, req, f.wiki.peerKey))
		wantFault(t, el, err, "already received")
		again := genuine()
		el, err = callSOAP(endpoint, sign(t, again, f.wiki.peerKey))
		wantStatus(t, brokerAnswer(t, el, err, h.brokerCert("acme"), again, idpIssuer), slo.StatusSuccess)
		los = f.logouts(t)
		if _, legs, err := h.store.GetLogout(context.Background(), f.tenantID, los[0].ID); err != nil || len(legs) != 0 || los[0].Outcome != slo.OutcomeSuccess {
			t.Fatalf("logout of a session gone: %+v, %d legs, %v", los[0], len(legs), err)
		}
		if n := len(f.received(f.crm)); n != 1 {
			t.Errorf("crm was sent %d LogoutRequests; want still 1", n)
		}
	})
}

// TestIdPLogoutSOAP: the tenant's IdP logs the user out over the back channel. Hostile requests
// get a fault and end nothing; the genuine one ends the session and reaches every app of it, and
// the IdP gets a Success/PartialLogout signed by the broker as SP; a request for the session gone
// gets Success; without a SessionIndex every session of the NameID ends.
func TestIdPLogoutSOAP(t *testing.T) {
	f := newSLOFixture(t)
	h := f.h
	idp := h.fx["acme"].idp
	endpoint := h.url("acme", "/sp/slo/soap")
	spIssuer := h.url("acme", "/sp/metadata")
	s := f.session
	nameID := slo.NameID{Value: s.NameID, Format: s.NameIDFormat}
	genuine := func() *slo.LogoutRequest {
		return logoutRequest(idp.entityID, endpoint, nameID, s.UpstreamSessionIndex)
	}
	conns, err := h.store.ListConnections(context.Background(), f.tenantID)
	if err != nil || len(conns) != 1 || conns[0].EntityID != idp.entityID {
		t.Fatalf("connections %+v (%v)", conns, err)
	}

	hostile := []struct {
		name string
		msg  func(t *testing.T) []byte
		want string
	}{
		{"unsigned", func(t *testing.T) []byte { return sign(t, genuine(), nil) }, "not signed"},
		{"signed by another key", func(t *testing.T) []byte { return sign(t, genuine(), testKey(t, "intruder")) }, "not signed by a key in the metadata"},
		{"beta's IdP", func(t *testing.T) []byte {
			return sign(t, logoutRequest(h.fx["beta"].idp.entityID, endpoint, nameID, s.UpstreamSessionIndex), h.fx["beta"].idp.peerKey)
		}, "not an identity provider connected"},
		{"an app as the IdP", func(t *testing.T) []byte {
			return sign(t, logoutRequest(f.wiki.entityID, endpoint, nameID, s.UpstreamSessionIndex), f.wiki.peerKey)
		}, "not an identity provider connected"},
		{"NameID of another user", func(t *testing.T) []byte {
			return sign(t, logoutRequest(idp.entityID, endpoint, slo.NameID{Value: "bob@acme.example", Format: s.NameIDFormat}, s.UpstreamSessionIndex), idp.peerKey)
		}, "another user"},
		{"expired NotOnOrAfter", func(t *testing.T) []byte {
			req := genuine()
			req.NotOnOrAfter = time.Now().UTC().Add(-10 * time.Minute)
			return sign(t, req, idp.peerKey)
		}, "NotOnOrAfter"},
	}
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			el, err := callSOAP(endpoint, tc.msg(t))
			wantFault(t, el, err, tc.want)
			f.untouched(t, 0)
		})
	}

	t.Run("genuine", func(t *testing.T) {
		req := genuine()
		el, err := callSOAP(endpoint, sign(t, req, idp.peerKey))
		resp := brokerAnswer(t, el, err, h.spCert("acme"), req, spIssuer)
		wantStatus(t, resp, slo.StatusSuccess, slo.StatusPartialLogout) // the app without SLO

		for _, c := range []struct {
			sp *soapSP
			a  *saml.Assertion
		}{{f.wiki, f.aw}, {f.crm, f.ac}} {
			got := f.received(c.sp)
			if len(got) != 1 || got[0].NameID != issuedNameID(c.a) || len(got[0].SessionIndexes) != 1 || got[0].SessionIndexes[0] != sessionIndex(c.a) {
				t.Errorf("%s received %+v", c.sp.entityID, got)
			}
		}
		got, err := h.store.GetSession(context.Background(), f.tenantID, s.ID)
		if err != nil || got.EndedAt == nil {
			t.Fatalf("session not ended (%v)", err)
		}
		if dead, err := h.store.Seen(context.Background(), f.tenantID, slo.TombstoneKey(conns[0].ID, s.UpstreamSessionIndex), time.Now()); err != nil || !dead {
			t.Errorf("IdP session index not tombstoned (%v)", err)
		}
		los := f.logouts(t)
		lo, legs, err := h.store.GetLogout(context.Background(), f.tenantID, los[0].ID)
		if err != nil || lo.Trigger != slo.TriggerIdP || lo.TriggerRef != conns[0].ID || lo.Outcome != slo.OutcomePartial || lo.User != s.NameID {
			t.Fatalf("logout %+v (%v)", lo, err)
		}
		if len(legs) != 3 {
			t.Fatalf("%d legs; want one per app and none to the IdP: %+v", len(legs), legs)
		}
		for _, l := range legs {
			if l.Target == "upstream" {
				t.Errorf("a leg to the IdP that started the logout: %+v", l)
			}
			if (l.TargetName == "soapwiki" || l.TargetName == "soapcrm") && (l.Channel != "soap" || l.ErrorClass != "") {
				t.Errorf("leg %+v", l)
			}
		}

		// The session is gone now: a new request for it still gets a signed Success.
		again := genuine()
		el, err = callSOAP(endpoint, sign(t, again, idp.peerKey))
		wantStatus(t, brokerAnswer(t, el, err, h.spCert("acme"), again, spIssuer), slo.StatusSuccess)
	})

	t.Run("no SessionIndex: every session of the NameID", func(t *testing.T) {
		b1, b2 := h.browser(), h.browser()
		a1 := b1.signIn(t, "acme", f.wiki.testApp)
		a2 := b2.signIn(t, "acme", f.wiki.testApp)
		live := 0
		for _, s := range h.sessions("acme") {
			if s.EndedAt == nil {
				live++
			}
		}
		if live != 2 {
			t.Fatalf("%d live sessions", live)
		}
		n := len(f.received(f.wiki))
		req := logoutRequest(idp.entityID, endpoint, nameID)
		el, err := callSOAP(endpoint, sign(t, req, idp.peerKey))
		wantStatus(t, brokerAnswer(t, el, err, h.spCert("acme"), req, spIssuer), slo.StatusSuccess)
		for _, s := range h.sessions("acme") {
			if s.EndedAt == nil {
				t.Errorf("session %s still live", s.ID)
			}
		}
		got := f.received(f.wiki)[n:]
		want := map[string]bool{sessionIndex(a1): true, sessionIndex(a2): true}
		if len(got) != 2 || !want[got[0].SessionIndexes[0]] || !want[got[1].SessionIndexes[0]] || got[0].SessionIndexes[0] == got[1].SessionIndexes[0] {
			t.Errorf("wiki received %+v", got)
		}
	})
}

// TestUnsignedIdPLogoutWhenAllowed: a connection configured with allow_unsigned_logout_request
// acts on its IdP's unsigned LogoutRequest; other connections still refuse it.
func TestUnsignedIdPLogoutWhenAllowed(t *testing.T) {
	h := newHarness(t)
	h.sso.SetLogout(h.engine())
	h.addTenantWith("gamma", map[string]any{"allow_unsigned_logout_request": true})
	b := h.browser()
	b.signIn(t, "gamma", h.fx["gamma"].apps[0])
	s := h.sessions("gamma")[0]
	req := logoutRequest(h.fx["gamma"].idp.entityID, h.url("gamma", "/sp/slo/soap"), slo.NameID{Value: s.NameID, Format: s.NameIDFormat}, s.UpstreamSessionIndex)
	el, err := callSOAP(h.url("gamma", "/sp/slo/soap"), sign(t, req, nil))
	resp := brokerAnswer(t, el, err, h.spCert("gamma"), req, h.url("gamma", "/sp/metadata"))
	// The app has no SLO, so its leg cannot be confirmed: Success with PartialLogout.
	wantStatus(t, resp, slo.StatusSuccess, slo.StatusPartialLogout)
	if live := h.liveSessions("gamma"); len(live) != 0 {
		t.Errorf("session not ended by the allowed unsigned request")
	}
	// acme's connection does not allow it.
	b.signIn(t, "acme", h.fx["acme"].apps[0])
	as := h.sessions("acme")[0]
	areq := logoutRequest(h.fx["acme"].idp.entityID, h.url("acme", "/sp/slo/soap"), slo.NameID{Value: as.NameID, Format: as.NameIDFormat}, as.UpstreamSessionIndex)
	el, err = callSOAP(h.url("acme", "/sp/slo/soap"), sign(t, areq, nil))
	wantFault(t, el, err, "not signed")
	if live := h.liveSessions("acme"); len(live) != 1 {
		t.Errorf("acme's session ended by an unsigned request")
	}
}
