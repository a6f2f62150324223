package interop

// Vendor emulators (peers/pysaml2/vendors.py): pysaml2 serving a product's own paths and enforcing
// its documented logout rules. Each test signs in and out through the broker with the quirk on
// and, where an admin can get it wrong, off, and checks what a user would: each side's own
// session, the messages that crossed the browser, and the broker's logout log.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	sigRSASHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	// auth0ClientID is the emulated Auth0 application's client ID (32 letters and digits).
	auth0ClientID = "Emul8orClient0000000000000000001"
)

// startVendor starts peers/pysaml2/vendors.py VENDOR as NAME on a free port and waits until
// readyPath answers; it returns the base URL.
func (e *env) startVendor(vendor, name, readyPath string, extra ...string) string {
	e.t.Helper()
	port := freePorts(e.t, 1)[0]
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	argv := append([]string{pythonBin, filepath.Join(e.peers, "pysaml2", "vendors.py"), vendor,
		"--port", fmt.Sprint(port), "--name", name}, extra...)
	p := e.start(name, e.childEnv, argv...)
	e.waitHTTP(p, base+readyPath, 40*time.Second)
	return base
}

// vendorSessions is an emulated IdP's /_emulator/status: its sessions, each with the SPs it
// signed in to.
func (e *env) vendorSessions(base string) map[string]pyIdPSession {
	e.t.Helper()
	var s map[string]pyIdPSession
	e.getJSON(base+"/_emulator/status", &s)
	return s
}

// userSessions counts the emulated IdP's sessions of user.
func (e *env) userSessions(base, user string) int {
	n := 0
	for _, s := range e.vendorSessions(base) {
		if s.User == user {
			n++
		}
	}
	return n
}

// vendorEvents is an emulator's event log, as text (for assertions on what it refused and why).
func (e *env) vendorEvents(u string) string {
	e.t.Helper()
	resp, err := e.client.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// brokerTenant creates a tenant whose connection is provider with config, and whose one app is a
// pysaml2 SP (peer.py) trusting the tenant's IdP metadata; the IdP emulator named idpName trusts
// the tenant's SP metadata. It returns the SP's base URL.
func (e *env) brokerTenant(slug, idpName, provider string, config map[string]any) string {
	e.t.Helper()
	e.create("/api/v1/tenants", map[string]any{"slug": slug, "name": slug})
	e.create("/api/v1/tenants/"+slug+"/connections", map[string]any{"provider": provider, "name": "idp", "config": config})
	e.trustAtPySAML2(idpName, slug+".xml", e.tenantURLIn(slug, "/sp/metadata"))
	sp := e.startPySAML2SPAt("app-"+slug, e.tenantURLIn(slug, "/idp/metadata"))
	e.create("/api/v1/tenants/"+slug+"/apps", map[string]any{"name": "pysaml2-app", "metadata_url": sp + "/metadata"})
	return sp
}

// logoutPageOf is the broker's logout page the step went through (the user's "back" target).
func logoutPageOf(t *testing.T, s *flowStep, prefix string) string {
	t.Helper()
	for _, r := range s.Requests {
		if strings.HasPrefix(r.URL, prefix) {
			u, _ := url.Parse(r.URL)
			u.RawQuery = ""
			return u.String()
		}
	}
	t.Fatalf("step %q never reached the logout page %s…:\n%s", s.Name, prefix, s.describe())
	return ""
}

// logoutByRef waits for the finished logout of user started by triggerRef in the tenant slug.
func (e *env) logoutByRef(slug, user, triggerRef string) *apiLogout {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list struct {
			Logouts []apiLogout `json:"logouts"`
		}
		e.apiJSON(http.MethodGet, "/api/v1/tenants/"+slug+"/logouts?user="+url.QueryEscape(user), http.StatusOK, &list)
		for _, l := range list.Logouts {
			if l.TriggerRef != triggerRef {
				continue
			}
			var lo apiLogout
			e.apiJSON(http.MethodGet, "/api/v1/tenants/"+slug+"/logouts/"+url.PathEscape(l.ID), http.StatusOK, &lo)
			if lo.State == "finished" {
				return &lo
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no finished logout of %s started by %s in %s: %+v", user, triggerRef, slug, list.Logouts)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// signInAndOut signs a fresh browser in at the pysaml2 SP sp (password at the IdP) and has it
// sign out there (Redirect); it returns both steps and the cookie jar.
func (e *env) signInAndOut(name, sp, user, password string) (*flowStep, *flowStep, string) {
	e.t.Helper()
	jar := filepath.Join(e.state, "jar-"+name+".json")
	res := e.browseWithCookies(jar, user, password,
		flowStepArg{name + "-sign-in", sp + "/login", sp + "/status"},
		flowStepArg{name + "-logout", sp + "/logout?binding=redirect", sp + "/status"})
	if len(res.Steps) != 2 {
		e.t.Fatalf("browse.py returned %d steps, want 2", len(res.Steps))
	}
	var in pyAppStatus
	stepStatus(e.t, &res.Steps[0], &in)
	if !in.Authenticated {
		e.t.Fatalf("%s: not signed in at %s: %s", name, sp, res.Steps[0].Status.Body)
	}
	return &res.Steps[0], &res.Steps[1], jar
}

// pyAnswer is the pysaml2 SP's verdict on the broker's LogoutResponse (its /slo JSON page).
func pyAnswer(t *testing.T, s *flowStep) pyLoggedOut {
	t.Helper()
	var out pyLoggedOut
	if s.Final == nil || json.Unmarshal([]byte(s.Final.Body), &out) != nil || out.Logout == "" {
		t.Fatalf("step %q did not end at the pysaml2 SP's /slo with its JSON:\n%s", s.Name, s.finalPage())
	}
	return out
}

// upstreamLeg is the logout's one leg to the IdP.
func upstreamLeg(t *testing.T, lo *apiLogout) *apiLeg {
	t.Helper()
	_, up := legsByTarget(t, lo)
	if len(up) != 1 {
		t.Fatalf("logout %s: %d upstream legs, want 1: %+v", lo.ID, len(up), lo.Legs)
	}
	return up[0]
}

// TestSalesforceIdPEmulator: tenants whose IdP is an emulated Salesforce org (its paths; its rule
// that a LogoutRequest must be signed with the org's logout algorithm and carry the SessionIndex
// it issued, else "We are unable to log you out."). The org expects RSA-SHA1 at first:
//   - sf-sha1 (the default connection, RSA-SHA1): the org logs the user out; every party's session
//     ends and the app gets plain Success;
//   - sf-sso (slo_use_sso_signature_method: the connection signs logout RSA-SHA256) against that
//     org: the org shows "We are unable to log you out.", keeps its session; the user goes back to
//     the broker's logout page, the log's Salesforce leg is no_answer with the Salesforce
//     diagnosis, and the app gets PartialLogout;
//   - the org's admin turns on "Use Selected Request Signature Method for Single Logout": now
//     sf-sso matches, and the org logs the user out.
func TestSalesforceIdPEmulator(t *testing.T) {
	e := newEnv(t)
	sf := e.startVendor("salesforce-idp", "sf-org", "/.well-known/samlidp.xml")
	sfSLO := sf + "/services/auth/idp/saml2/logout"
	md := map[string]any{"metadata_url": sf + "/.well-known/samlidp.xml", "my_domain": "acme"}
	spSHA1 := e.brokerTenant("sf-sha1", "sf-org", "salesforce", md)
	sso := map[string]any{"slo_use_sso_signature_method": true}
	for k, v := range md {
		sso[k] = v
	}
	spSSO := e.brokerTenant("sf-sso", "sf-org", "salesforce", sso)

	t.Run("rsa-sha1 as the org expects", func(t *testing.T) {
		in, out, _ := e.signInAndOut("sha1", spSHA1, "student", "studentpass")
		in.requireHops(t, hop{"GET", sf + "/idp/endpoint/HttpRedirect?"}, hop{"POST", sf + "/login"})
		req := findSAML(out, "SAMLRequest", "LogoutRequest", sfSLO)
		if req == nil {
			t.Fatalf("no LogoutRequest to %s in the trace:\n%s", sfSLO, out.describe())
		}
		if req.SigAlg != sigRSASHA1 {
			t.Errorf("LogoutRequest to the org signed with %q, want RSA-SHA1", req.SigAlg)
		}
		ans := pyAnswer(t, out)
		checkPlainSuccess(t, "pysaml2 SP", ans.Status, ans.SubStatus)
		if ans.Logout != "success" || ans.SessionsEnded != 1 {
			t.Errorf("pysaml2 SP: %+v", ans)
		}
		if n := e.userSessions(sf, "student"); n != 0 {
			t.Errorf("the org still has %d session(s) of student", n)
		}
		lo := e.logoutByRef("sf-sha1", "student", e.appIDsIn("sf-sha1")["pysaml2-app"])
		checkLeg(t, "salesforce", upstreamLeg(t, lo), "redirect")
		if lo.Outcome != "success" {
			t.Errorf("outcome %q, want success", lo.Outcome)
		}
	})

	t.Run("rsa-sha256 where the org expects rsa-sha1", func(t *testing.T) {
		_, out, jar := e.signInAndOut("mismatch", spSSO, "student", "studentpass")
		req := findSAML(out, "SAMLRequest", "LogoutRequest", sfSLO)
		if req == nil || req.SigAlg != sigRSASHA256 {
			t.Fatalf("want an RSA-SHA256 LogoutRequest to %s: %+v", sfSLO, req)
		}
		if out.Final == nil || !strings.Contains(out.Final.Body, "We are unable to log you out.") || !strings.HasPrefix(out.Final.URL, sfSLO) {
			t.Fatalf("the org did not show its error page:\n%s", out.finalPage())
		}
		if !strings.Contains(e.vendorEvents(sf+"/_emulator/events"), "this org expects rsa-sha1") {
			t.Errorf("the org's log does not say why it refused")
		}
		if n := e.userSessions(sf, "student"); n != 1 {
			t.Errorf("the org has %d session(s) of student, want 1 (it did not log out)", n)
		}
		// The user goes back to the broker's logout page.
		page := logoutPageOf(t, out, e.tenantURLIn("sf-sso", "/logout/"))
		back := e.browseWithCookies(jar, "student", "studentpass", flowStepArg{"back", page, spSSO + "/status"})
		ans := pyAnswer(t, &back.Steps[0])
		if ans.Status != statusSuccess || ans.SubStatus != statusPartialLogout {
			t.Errorf("the app got %q / %q, want Success / PartialLogout", ans.Status, ans.SubStatus)
		}
		lo := e.logoutByRef("sf-sso", "student", e.appIDsIn("sf-sso")["pysaml2-app"])
		l := upstreamLeg(t, lo)
		if l.ErrorClass != "no_answer" || !strings.Contains(l.Diagnosis, "We are unable to log you out.") || !strings.Contains(l.Diagnosis, "slo_use_sso_signature_method") {
			t.Errorf("Salesforce leg: error_class %q diagnosis %q; want no_answer with the Salesforce diagnosis", l.ErrorClass, l.Diagnosis)
		}
		if lo.Outcome == "success" {
			t.Errorf("outcome success for a logout the org refused")
		}
	})

	t.Run("the org uses the selected request signature method", func(t *testing.T) {
		var cfg map[string]string
		e.getJSON(sf+"/_emulator/config?slo_sig_alg=rsa-sha256", &cfg)
		_, out, _ := e.signInAndOut("selected", spSSO, "alice", "alicepass")
		if req := findSAML(out, "SAMLRequest", "LogoutRequest", sfSLO); req == nil || req.SigAlg != sigRSASHA256 {
			t.Fatalf("want an RSA-SHA256 LogoutRequest to %s: %+v", sfSLO, req)
		}
		ans := pyAnswer(t, out)
		checkPlainSuccess(t, "pysaml2 SP", ans.Status, ans.SubStatus)
		if n := e.userSessions(sf, "alice"); n != 0 {
			t.Errorf("the org still has %d session(s) of alice", n)
		}
		lo := e.logoutByRef("sf-sso", "alice", e.appIDsIn("sf-sso")["pysaml2-app"])
		checkLeg(t, "salesforce", upstreamLeg(t, lo), "redirect")
	})
}

// TestAuth0IdPEmulator: tenants whose IdP is an emulated Auth0 application (SSO /samlp/{client_id},
// metadata /samlp/metadata/{client_id}, SLO /samlp/{client_id}/logout, "Not found" anywhere else;
// NameID "auth0|USER" of the unspecified format, which must come back exactly so).
//   - a0 (the auth0 provider, from domain and client ID): sign-in and logout through the derived
//     paths; the LogoutRequest goes by POST, RSA-SHA256, NameID as issued; every session ends.
//   - a0-generic (generic provider with metadata naming another logout URL, Auth0's /v2/logout):
//     Auth0 answers 404 "Not found", keeps its session; back at the broker, the leg is no_answer
//     and the app gets PartialLogout.
func TestAuth0IdPEmulator(t *testing.T) {
	e := newEnv(t)
	a0 := e.startVendor("auth0-idp", "auth0", "/samlp/metadata/"+auth0ClientID, "--client-id", auth0ClientID)
	a0SLO := a0 + "/samlp/" + auth0ClientID + "/logout"
	for _, p := range []string{"/logout", "/v2/logout", "/samlp/logout", "/"} {
		resp, err := e.client.Get(a0 + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.TrimSpace(string(b)) != "Not found" {
			t.Errorf("GET %s: %d %q, want 404 Not found", p, resp.StatusCode, b)
		}
	}
	host := strings.TrimPrefix(a0, "http://")
	spOn := e.brokerTenant("a0", "auth0", "auth0", map[string]any{"domain": host, "client_id": auth0ClientID})
	_, raw := e.fetchMetadata(a0+"/samlp/metadata/"+auth0ClientID, "auth0-metadata.xml")
	wrong := strings.ReplaceAll(string(raw), `Location="`+a0SLO+`"`, `Location="`+a0+`/v2/logout"`)
	if wrong == string(raw) {
		t.Fatalf("the emulator's metadata has no SingleLogoutService at %s:\n%s", a0SLO, raw)
	}
	spOff := e.brokerTenant("a0-generic", "auth0", "generic", map[string]any{"metadata_xml": wrong})

	t.Run("auth0 provider", func(t *testing.T) {
		in, out, _ := e.signInAndOut("auth0", spOn, "student", "studentpass")
		in.requireHops(t, hop{"GET", a0 + "/samlp/" + auth0ClientID + "?"}, hop{"POST", a0 + "/u/login"})
		req := findSAML(out, "SAMLRequest", "LogoutRequest", a0SLO)
		if req == nil {
			t.Fatalf("no LogoutRequest to %s in the trace:\n%s", a0SLO, out.describe())
		}
		if req.Binding != "post" || !strings.Contains(req.XML, "auth0|student") || !strings.Contains(req.XML, "nameid-format:unspecified") ||
			!strings.Contains(req.XML, sigRSASHA256) || !strings.Contains(req.XML, "SessionIndex") {
			t.Errorf("LogoutRequest to Auth0: want POST, signed RSA-SHA256, NameID auth0|student (unspecified) and a SessionIndex:\n%s", req.XML)
		}
		ans := pyAnswer(t, out)
		checkPlainSuccess(t, "pysaml2 SP", ans.Status, ans.SubStatus)
		if n := e.userSessions(a0, "student"); n != 0 {
			t.Errorf("Auth0 still has %d session(s) of student", n)
		}
		lo := e.logoutByRef("a0", "auth0|student", e.appIDsIn("a0")["pysaml2-app"])
		checkLeg(t, "auth0", upstreamLeg(t, lo), "post")
	})

	t.Run("generic provider with another logout URL", func(t *testing.T) {
		_, out, jar := e.signInAndOut("generic", spOff, "alice", "alicepass")
		if out.Final == nil || out.Final.Status != http.StatusNotFound || !strings.Contains(out.Final.Body, "Not found") {
			t.Fatalf("want Auth0's 404 Not found at the end of the logout:\n%s", out.finalPage())
		}
		if n := e.userSessions(a0, "alice"); n != 1 {
			t.Errorf("Auth0 has %d session(s) of alice, want 1 (it was never asked)", n)
		}
		page := logoutPageOf(t, out, e.tenantURLIn("a0-generic", "/logout/"))
		back := e.browseWithCookies(jar, "alice", "alicepass", flowStepArg{"back", page, spOff + "/status"})
		ans := pyAnswer(t, &back.Steps[0])
		if ans.Status != statusSuccess || ans.SubStatus != statusPartialLogout {
			t.Errorf("the app got %q / %q, want Success / PartialLogout", ans.Status, ans.SubStatus)
		}
		lo := e.logoutByRef("a0-generic", "auth0|alice", e.appIDsIn("a0-generic")["pysaml2-app"])
		if l := upstreamLeg(t, lo); l.ErrorClass != "no_answer" {
			t.Errorf("upstream leg: %+v, want no_answer", l)
		}
	})
}

// sfAppEvent is one entry of the Salesforce-like app's /events.
type sfAppEvent struct {
	Dir            string `json:"dir"`
	Msg            string `json:"msg"`
	SigAlg         string `json:"sig_alg"`
	SessionIndexes []int  `json:"session_indexes"`
	SessionsEnded  int    `json:"sessions_ended"`
	Logout         string `json:"logout"`
	Status         string `json:"status"`
}

// TestSalesforceAppEmulator: an emulated Salesforce as an app behind the broker (keeps only the
// first SessionIndex, refuses one over 512 characters, signs its logout messages RSA-SHA1), with
// the pysaml2 IdP upstream.
//   - sfapp, the app registered with "provider": "salesforce", next to a pysaml2 SP: (1) the
//     pysaml2 SP signs out; the Salesforce app is reached in an iframe with an RSA-SHA1
//     LogoutRequest carrying exactly one short SessionIndex and confirms with its RSA-SHA1
//     LogoutResponse, which the broker accepts; (2) the Salesforce app signs out with its
//     RSA-SHA1 LogoutRequest, which the broker accepts, and gets an RSA-SHA1 answer.
//   - sfgen, the same product registered as a generic app: its RSA-SHA1 LogoutRequest is refused
//     and nobody is logged out.
func TestSalesforceAppEmulator(t *testing.T) {
	e := newEnv(t)
	e.startPySAML2IdP("pysaml2-idp")
	tenant := func(slug, provider string) (sfApp, pySP string) {
		e.create("/api/v1/tenants", map[string]any{"slug": slug, "name": slug})
		e.create("/api/v1/tenants/"+slug+"/connections", map[string]any{"provider": "generic", "name": "idp",
			"config": map[string]any{"metadata_url": e.pyIdPURL + "/metadata"}})
		e.trustAtPySAML2("pysaml2-idp", slug+".xml", e.tenantURLIn(slug, "/sp/metadata"))
		idpMD := e.tenantURLIn(slug, "/idp/metadata")
		sfApp = e.startVendor("salesforce-app", "sf-app-"+slug, "/metadata", "--fetch-metadata", idpMD)
		app := e.create("/api/v1/tenants/"+slug+"/apps", map[string]any{"name": "salesforce", "provider": provider, "metadata_url": sfApp + "/metadata"})
		if provider == "salesforce" && (app["logout_signature_algorithm"] != "rsa-sha1" || app["front_channel_logout_only"] != true) {
			t.Fatalf("the salesforce app's view: %v", app)
		}
		if provider == "salesforce" {
			pySP = e.startPySAML2SPAt("py-"+slug, idpMD)
			e.create("/api/v1/tenants/"+slug+"/apps", map[string]any{"name": "pysaml2-app", "metadata_url": pySP + "/metadata"})
		}
		return sfApp, pySP
	}
	sfApp, pySP := tenant("sfapp", "salesforce")
	sfGen, _ := tenant("sfgen", "generic")
	sfSLO := sfApp + "/services/auth/sp/saml2/logout"
	events := func(base string) []sfAppEvent {
		var ev []sfAppEvent
		e.getJSON(base+"/events", &ev)
		return ev
	}
	sfStatus := func(jar, base string) pyAppStatus {
		res := e.browseWithCookies(jar, "", "", flowStepArg{"status", base + "/status", ""})
		var st pyAppStatus
		if res.Steps[0].Final == nil || json.Unmarshal([]byte(res.Steps[0].Final.Body), &st) != nil {
			t.Fatalf("status of %s: %s", base, res.Steps[0].finalPage())
		}
		return st
	}

	t.Run("another app signs out", func(t *testing.T) {
		jar := filepath.Join(e.state, "jar-sfapp-1.json")
		res := e.browseWithCookies(jar, "student", "studentpass",
			flowStepArg{"sf-sign-in", sfApp + "/login", sfApp + "/status"},
			flowStepArg{"py-sign-in", pySP + "/login", pySP + "/status"},
			flowStepArg{"py-logout", pySP + "/logout?binding=redirect", pySP + "/status"})
		var st pyAppStatus
		stepStatus(t, &res.Steps[0], &st)
		if !st.Authenticated || len(st.Session.SessionIndex) == 0 {
			t.Fatalf("not signed in at the Salesforce app: %s", res.Steps[0].Status.Body)
		}
		out := &res.Steps[2]
		if len(out.Frames) == 0 || !strings.HasPrefix(out.Frames[0].FinalURL, e.tenantURLIn("sfapp", "/idp/slo")) {
			t.Errorf("the Salesforce app was not reached in an iframe:\n%s", out.describe())
		}
		req := findSAML(out, "SAMLRequest", "LogoutRequest", sfSLO)
		if req == nil || req.SigAlg != sigRSASHA1 || strings.Count(req.XML, "SessionIndex>") != 2 {
			t.Errorf("LogoutRequest to the Salesforce app: want RSA-SHA1 with exactly one SessionIndex: %+v", req)
		}
		if resp := findSAML(out, "SAMLResponse", "LogoutResponse", e.tenantURLIn("sfapp", "/idp/slo")); resp == nil || resp.SigAlg != sigRSASHA1 {
			t.Errorf("the Salesforce app's LogoutResponse: want RSA-SHA1: %+v", resp)
		}
		checkPlainSuccess(t, "pysaml2 SP", pyAnswer(t, out).Status, pyAnswer(t, out).SubStatus)
		if st := sfStatus(jar, sfApp); st.Authenticated {
			t.Errorf("still signed in at the Salesforce app")
		}
		var got *sfAppEvent
		for _, ev := range events(sfApp) {
			if ev.Msg == "SAMLRequest (as received)" {
				ev := ev
				got = &ev
			}
		}
		if got == nil || got.SigAlg != sigRSASHA1 || len(got.SessionIndexes) != 1 || got.SessionIndexes[0] > 512 {
			t.Errorf("the Salesforce app received %+v; want one RSA-SHA1 request with one SessionIndex of at most 512 characters", got)
		}
		apps := e.appIDsIn("sfapp")
		lo := e.logoutByRef("sfapp", "student", apps["pysaml2-app"])
		legs, _ := legsByTarget(t, lo)
		checkLeg(t, "salesforce app", legs[apps["salesforce"]], "iframe")
		// The pysaml2 IdP offers SOAP: its leg runs over the back channel, last.
		checkLeg(t, "pysaml2 IdP", upstreamLeg(t, lo), "soap")
		var idpSessions map[string]pyIdPSession
		e.getJSON(e.pyIdPURL+"/status", &idpSessions)
		for sid, s := range idpSessions {
			if s.User == "student" {
				t.Errorf("the pysaml2 IdP still has student's session %s: %+v", sid, s)
			}
		}
		if lo.Outcome != "success" {
			t.Errorf("outcome %q, want success", lo.Outcome)
		}
	})

	t.Run("the salesforce app signs out", func(t *testing.T) {
		jar := filepath.Join(e.state, "jar-sfapp-2.json")
		res := e.browseWithCookies(jar, "alice", "alicepass",
			flowStepArg{"sf-sign-in", sfApp + "/login", sfApp + "/status"},
			flowStepArg{"py-sign-in", pySP + "/login", pySP + "/status"},
			flowStepArg{"sf-logout", sfApp + "/logout?binding=redirect", sfApp + "/status"})
		out := &res.Steps[2]
		if req := findSAML(out, "SAMLRequest", "LogoutRequest", e.tenantURLIn("sfapp", "/idp/slo")); req == nil || req.SigAlg != sigRSASHA1 {
			t.Fatalf("want the Salesforce app's RSA-SHA1 LogoutRequest to the broker: %+v\n%s", req, out.describe())
		}
		answer := findSAML(out, "SAMLResponse", "LogoutResponse", sfSLO)
		if answer == nil || answer.SigAlg != sigRSASHA1 {
			t.Errorf("the broker's answer to the Salesforce app: want RSA-SHA1: %+v", answer)
		}
		ans := pyAnswer(t, out)
		checkPlainSuccess(t, "Salesforce app", ans.Status, ans.SubStatus)
		if ans.Logout != "success" || ans.SessionsEnded != 1 {
			t.Errorf("Salesforce app: %+v", ans)
		}
		apps := e.appIDsIn("sfapp")
		lo := e.logoutByRef("sfapp", "alice", apps["salesforce"])
		legs, _ := legsByTarget(t, lo)
		checkLeg(t, "pysaml2 app", legs[apps["pysaml2-app"]], "soap")
		if lo.Outcome != "success" {
			t.Errorf("outcome %q, want success", lo.Outcome)
		}
	})

	t.Run("registered as a generic app", func(t *testing.T) {
		jar := filepath.Join(e.state, "jar-sfgen.json")
		res := e.browseWithCookies(jar, "student", "studentpass",
			flowStepArg{"sf-sign-in", sfGen + "/login", sfGen + "/status"},
			flowStepArg{"sf-logout", sfGen + "/logout?binding=redirect", sfGen + "/status"})
		out := &res.Steps[1]
		if out.Final == nil || out.Final.Status != http.StatusBadRequest || !strings.HasPrefix(out.Final.URL, e.tenantURLIn("sfgen", "/idp/slo")) {
			t.Errorf("want the broker to refuse the RSA-SHA1 LogoutRequest (400):\n%s", out.finalPage())
		}
		var st pyAppStatus
		stepStatus(t, out, &st)
		if !st.Authenticated {
			t.Errorf("the app's session ended although its logout was refused")
		}
		var sessions struct {
			Sessions []apiSession `json:"sessions"`
		}
		e.apiJSON(http.MethodGet, "/api/v1/tenants/sfgen/sessions", http.StatusOK, &sessions)
		if len(sessions.Sessions) != 1 || sessions.Sessions[0].EndedAt != "" {
			t.Errorf("the broker session must stay: %+v", sessions.Sessions)
		}
	})
}
