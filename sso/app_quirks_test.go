package sso_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/slo"
	"github.com/sloworks/broker/tenants"
)

// addFrontAppWith is addFrontApp with the app's settings; the app signs its logout messages with
// sigAlg ("" = RSA-SHA256).
func (h *harness) addFrontAppWith(t *testing.T, slug string, in tenants.AppInput, sigAlg string) *frontSP {
	a := &frontSP{h: h, slug: slug, sigAlg: sigAlg}
	a.testApp, a.srv = h.registerAppWith(t, slug, in, a.serve, saml.HTTPRedirectBinding, "/slo")
	return a
}

// followLogoutPage drives the logout page like a browser: every iframe's request to its app and
// the app's answer back, then the page again once no leg is pending; it returns that last answer
// (the redirect to the initiator, with the broker's LogoutResponse).
func followLogoutPage(t *testing.T, b *browser, page string) result {
	t.Helper()
	p := b.get(page)
	for _, f := range iframeRE.FindAllStringSubmatch(p.body, -1) {
		leg := b.get(f[1])
		if leg.status != http.StatusFound {
			t.Fatalf("iframe %s: %d %s", f[1], leg.status, leg.body)
		}
		if back := b.get(leg.location); back.status == http.StatusFound {
			b.get(back.location)
		}
	}
	var st struct {
		Pending int `json:"pending"`
	}
	for i := 0; i < 100; i++ {
		json.Unmarshal([]byte(b.get(page+"/status").body), &st)
		if st.Pending == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b.get(page)
}

func (h *harness) legsOfLatestLogout(t *testing.T, slug string) (db.Logout, map[string]db.LogoutLeg) {
	t.Helper()
	tid := h.fx[slug].tenant.ID
	los, err := h.store.ListLogouts(context.Background(), tid, db.LogoutFilter{})
	if err != nil || len(los) == 0 {
		t.Fatalf("logouts: %v %v", los, err)
	}
	_, legs, err := h.store.GetLogout(context.Background(), tid, los[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]db.LogoutLeg{}
	for _, l := range legs {
		by[l.TargetName] = l
	}
	return los[0], by
}

// TestSalesforceAppLogout: an app registered with "provider": "salesforce" (Salesforce as SP)
// starts a logout with an RSA-SHA1-signed LogoutRequest, which the broker accepts from it, and
// gets its answer signed RSA-SHA1; when another app starts, the Salesforce app's leg is a front
// channel one, signed RSA-SHA1, with exactly one SessionIndex, and its RSA-SHA1 answer confirms
// it. A generic app's RSA-SHA1-signed LogoutRequest is still refused, and nobody is logged out.
func TestSalesforceAppLogout(t *testing.T) {
	h := newHarness(t)
	h.sso.SetLogout(h.engine())
	crm := h.addFrontAppWith(t, "acme", tenants.AppInput{Name: "sfcrm", Provider: "salesforce"}, binding.SigAlgRSASHA1)
	wiki := h.addFrontApp(t, "acme", "intranet")

	t.Run("the salesforce app starts", func(t *testing.T) {
		b := h.browser()
		ac := b.signIn(t, "acme", crm.testApp)
		b.signIn(t, "acme", wiki.testApp)
		r := b.get(crm.logoutURL(t, ac, "_sf1"))
		if r.status != http.StatusFound || !strings.Contains(r.location, "/t/acme/logout/") {
			t.Fatalf("RSA-SHA1 LogoutRequest from the salesforce app: %d %s\n%s", r.status, r.body, h.logs)
		}
		fin := followLogoutPage(t, b, r.location)
		if fin.status != http.StatusFound || !strings.HasPrefix(fin.location, crm.srv.URL+"/slo?") {
			t.Fatalf("answer to the salesforce app: %d %s", fin.status, fin.location)
		}
		u, _ := url.Parse(fin.location)
		if got := u.Query().Get("SigAlg"); got != binding.SigAlgRSASHA1 {
			t.Errorf("answer to the salesforce app signed with %q; want RSA-SHA1", got)
		}
		b.get(fin.location)
		crm.mu.Lock()
		if len(crm.answers) != 1 || crm.answerErrs[0] != nil || crm.answers[0].InResponseTo != "_sf1" {
			t.Errorf("salesforce app's answer: %+v %v", crm.answers, crm.answerErrs)
		}
		crm.mu.Unlock()
		if _, legs := h.legsOfLatestLogout(t, "acme"); legs["intranet"].ErrorClass != "" || legs["intranet"].Channel != "iframe" {
			t.Errorf("wiki's leg: %+v", legs["intranet"])
		}
	})

	t.Run("another app starts", func(t *testing.T) {
		b := h.browser()
		aw := b.signIn(t, "acme", wiki.testApp)
		ac := b.signIn(t, "acme", crm.testApp)
		r := b.get(wiki.logoutURL(t, aw, "_w1"))
		if r.status != http.StatusFound {
			t.Fatalf("logout from wiki: %d %s", r.status, r.body)
		}
		followLogoutPage(t, b, r.location)
		crm.mu.Lock()
		defer crm.mu.Unlock()
		if len(crm.ended) != 1 {
			t.Fatalf("salesforce app got %d LogoutRequests", len(crm.ended))
		}
		if got := crm.ended[0].SessionIndexes; len(got) != 1 || got[0] != ac.AuthnStatements[0].SessionIndex {
			t.Errorf("salesforce app got SessionIndexes %v; want exactly %q", got, ac.AuthnStatements[0].SessionIndex)
		}
		if got := crm.sigAlgs[len(crm.sigAlgs)-1]; got != binding.SigAlgRSASHA1 {
			t.Errorf("LogoutRequest to the salesforce app signed with %q; want RSA-SHA1", got)
		}
		_, legs := h.legsOfLatestLogout(t, "acme")
		if l := legs["sfcrm"]; l.Channel != "iframe" || l.ErrorClass != "" || l.Status != slo.StatusSuccess {
			t.Errorf("salesforce app's leg (its RSA-SHA1 answer must confirm it): %+v", l)
		}
	})

	t.Run("a generic app's RSA-SHA1 is refused", func(t *testing.T) {
		b := h.browser()
		aw := b.signIn(t, "acme", wiki.testApp)
		b.signIn(t, "acme", crm.testApp)
		live := len(h.liveSessions("acme"))
		wiki.sigAlg = binding.SigAlgRSASHA1
		defer func() { wiki.sigAlg = "" }()
		r := b.get(wiki.logoutURL(t, aw, "_w2"))
		if r.status != http.StatusBadRequest {
			t.Fatalf("RSA-SHA1 LogoutRequest from a generic app: %d %s", r.status, r.location)
		}
		if n := len(h.liveSessions("acme")); n != live {
			t.Errorf("live sessions %d -> %d: a refused request logged someone out", live, n)
		}
		if !strings.Contains(h.logs.String(), "RSA-SHA1 signatures are not accepted from this peer") {
			t.Errorf("the log does not say why:\n%s", h.logs)
		}
	})
}

// TestAppLogoutSignatureAlgorithm: a generic app whose logout_signature_algorithm is "rsa-sha1"
// may sign with RSA-SHA1 (and is sent RSA-SHA1); its neighbour may not.
func TestAppLogoutSignatureAlgorithm(t *testing.T) {
	h := newHarness(t)
	h.sso.SetLogout(h.engine())
	old := h.addFrontAppWith(t, "acme", tenants.AppInput{Name: "legacy", LogoutSignatureAlgorithm: "rsa-sha1"}, binding.SigAlgRSASHA1)
	h.addFrontApp(t, "acme", "intranet")
	b := h.browser()
	as := b.signIn(t, "acme", old.testApp)
	r := b.get(old.logoutURL(t, as, "_l1"))
	if r.status != http.StatusFound || !strings.Contains(r.location, "/t/acme/logout/") {
		t.Fatalf("RSA-SHA1 LogoutRequest from an app set to rsa-sha1: %d %s", r.status, r.body)
	}
	if n := len(h.liveSessions("acme")); n != 0 {
		t.Errorf("%d sessions still live", n)
	}
}

// TestCreateAppProviderValidation: unknown providers and algorithms are refused with the field
// named, and nothing is stored.
func TestCreateAppProviderValidation(t *testing.T) {
	h := newHarness(t)
	for _, in := range []tenants.AppInput{
		{Name: "x", Provider: "workday", MetadataXML: "<x/>"},
		{Name: "y", LogoutSignatureAlgorithm: "sha1", MetadataXML: "<x/>"},
	} {
		_, _, err := h.tenants.CreateApp(context.Background(), h.fx["acme"].tenant, in)
		var ie *tenants.InputError
		if !errors.As(err, &ie) || ie.Kind != tenants.KindInvalid {
			t.Errorf("%+v: %v", in, err)
			continue
		}
		if in.Provider != "" && (ie.Field != "provider" || !strings.Contains(ie.Message, "salesforce")) {
			t.Errorf("provider error %+v", ie)
		}
		if in.LogoutSignatureAlgorithm != "" && (ie.Field != "logout_signature_algorithm" || !strings.Contains(ie.Message, "rsa-sha1")) {
			t.Errorf("algorithm error %+v", ie)
		}
	}
	apps, _ := h.store.ListApps(context.Background(), h.fx["acme"].tenant.ID)
	for _, a := range apps {
		if a.Name == "x" || a.Name == "y" {
			t.Errorf("stored %q despite the error", a.Name)
		}
	}
}

// TestSalesforceAppNoAnswerDiagnosis: a Salesforce app whose iframe never answers is settled as
// no answer with what Salesforce as an app is known to need (one SessionIndex, none over 512
// characters, its Single Logout settings), after the engine's own account.
func TestSalesforceAppNoAnswerDiagnosis(t *testing.T) {
	h := newHarness(t)
	e := h.engine()
	e.LegTimeout = 300 * time.Millisecond
	h.sso.SetLogout(e)
	initiator := h.addFrontApp(t, "acme", "intranet")
	crm := h.addFrontAppWith(t, "acme", tenants.AppInput{Name: "sfcrm", Provider: "salesforce"}, binding.SigAlgRSASHA1)
	b := h.browser()
	ai := b.signIn(t, "acme", initiator.testApp)
	b.signIn(t, "acme", crm.testApp)
	r := b.get(initiator.logoutURL(t, ai, "_nd1"))
	if r.status != http.StatusFound {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	b.get(r.location)
	time.Sleep(400 * time.Millisecond) // the browser never loads the iframe
	b.get(r.location)
	_, legs := h.legsOfLatestLogout(t, "acme")
	l := legs["sfcrm"]
	if l.ErrorClass != slo.ClassNoAnswer || !strings.Contains(l.Diagnosis, "did not answer in the browser") || !strings.Contains(l.Diagnosis, "over 512 characters") {
		t.Errorf("Salesforce app leg: %q %q; want no_answer with the engine's and Salesforce's diagnoses", l.ErrorClass, l.Diagnosis)
	}
}
