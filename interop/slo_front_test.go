package interop

// Front-channel Single Logout through the browser: started at an app (SimpleSAMLphp SP over
// Redirect, pysaml2 SP over POST) or at the upstream SimpleSAMLphp IdP (initSLO.php). The
// browser (peers/lib/browser.py) runs no JavaScript: on the broker's logout page it loads every
// iframe and follows the meta refresh, as a browser without JavaScript would. Every test checks
// each party's OWN session state (the apps' status pages, the IdP's /app/idpstatus and a new
// sign-in that must show the IdP's password form again) and the broker's logout record.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// idpAppStatus is the SimpleSAMLphp IdP's /app/idpstatus: the browser's IdP session.
type idpAppStatus struct {
	Authenticated   bool `json:"authenticated"`
	AuthSourceValid bool `json:"auth_source_valid"`
	Associations    []struct {
		ID string `json:"id"`
		SP string `json:"sp"`
	} `json:"associations"`
}

// sspLoggedOut is the SimpleSAMLphp SP's /app/loggedout: the LogoutResponse status it received.
type sspLoggedOut struct {
	LogoutReturned bool `json:"logout_returned"`
	Success        bool `json:"success"`
	LogoutStatus   *struct {
		Code    string `json:"Code"`
		SubCode string `json:"SubCode"`
		Message string `json:"Message"`
	} `json:"logout_status"`
	Authenticated bool `json:"authenticated"`
}

// pyLoggedOut is the pysaml2 SP's answer at /slo to the IdP's (the broker's) LogoutResponse.
type pyLoggedOut struct {
	Logout        string   `json:"logout"`
	Binding       string   `json:"binding"`
	Status        string   `json:"status"`
	SubStatus     string   `json:"sub_status"`
	StatusMessage string   `json:"status_message"`
	Issuer        string   `json:"issuer"`
	InResponseTo  string   `json:"in_response_to"`
	Destination   string   `json:"destination"`
	SignatureOK   bool     `json:"signature_ok"`
	Detail        string   `json:"detail"`
	Problems      []string `json:"problems"`
	SessionsEnded int      `json:"sessions_ended"`
	Error         string   `json:"error"`
}

const statusPartialLogout = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"

// checkPlainSuccess: a logout initiator got Success without a second-level code. Success with a
// nested PartialLogout would mean the broker could not confirm some leg (see its record).
func checkPlainSuccess(t *testing.T, who, code, sub string) {
	t.Helper()
	switch {
	case code == statusSuccess && sub == "":
	case code == statusSuccess && sub == statusPartialLogout:
		t.Errorf("%s got Success/PartialLogout from the broker: some leg was not confirmed (see the logout record's legs), want plain Success", who)
	default:
		t.Errorf("%s got status %q / %q from the broker, want plain Success", who, code, sub)
	}
}

// signedIn is the state after one browser signed in at both apps through the broker.
type signedIn struct {
	jar  string // the browser's cookie jar (file)
	ssp  sspAppStatus
	py   pyAppStatus
	sess apiSession // the broker's session
	apps map[string]string
	// upNameID and upSessionIndex are what the IdP issued to the broker (its Response).
	upNameID       map[string]string
	upSessionIndex string
}

// signInBoth signs one browser in at the SimpleSAMLphp SP (password at the upstream IdP), then at
// the pysaml2 SP (broker session reused), and returns what the apps and the broker hold.
func (a *acme) signInBoth() *signedIn {
	t := a.t
	t.Helper()
	si := &signedIn{jar: filepath.Join(a.state, "browser-cookies.json"), apps: a.appIDs()}
	if si.apps["ssp-app"] == "" || si.apps["pysaml2-app"] == "" {
		t.Fatalf("apps of tenant %s: %v, want ssp-app and pysaml2-app", tenantSlug, si.apps)
	}
	res := a.browseWithCookies(si.jar, "student", "studentpass",
		flowStepArg{"ssp-sp", a.sspSPURL + "/app/login", a.sspSPURL + "/app/status"},
		flowStepArg{"pysaml2-sp", a.pySPURL + "/login", a.pySPURL + "/status"},
	)
	if len(res.Steps) != 2 {
		t.Fatalf("browse.py returned %d steps, want 2", len(res.Steps))
	}
	if m := findSAML(&res.Steps[0], "SAMLResponse", "Response", a.tenantURL("/sp/acs")); m != nil {
		si.upNameID = nameIDParts(m.XML)
		si.upSessionIndex = firstAttr(attrRe("SessionIndex"), m.XML)
	}
	if si.upNameID == nil || si.upSessionIndex == "" {
		t.Fatalf("step %q: no NameID and SessionIndex in the IdP's Response to the broker:\n%s", res.Steps[0].Name, res.Steps[0].describe())
	}
	stepStatus(t, &res.Steps[0], &si.ssp)
	if !si.ssp.Authenticated || si.ssp.IdP != a.brokerIdP.EntityID {
		t.Fatalf("SimpleSAMLphp SP /app/status after sign-in: want authenticated by the broker %s, got %s",
			a.brokerIdP.EntityID, res.Steps[0].Status.Body)
	}
	stepStatus(t, &res.Steps[1], &si.py)
	if !si.py.Authenticated || si.py.Session == nil || si.py.Session.IdP != a.brokerIdP.EntityID {
		t.Fatalf("pysaml2 SP /status after sign-in: want authenticated by the broker %s, got %s",
			a.brokerIdP.EntityID, res.Steps[1].Status.Body)
	}
	if n := len(res.Steps[1].PasswordForms); n != 0 {
		t.Fatalf("step %q: %d password forms; the broker session should have been reused", res.Steps[1].Name, n)
	}
	var sessions struct {
		Sessions []apiSession `json:"sessions"`
	}
	a.apiJSON(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/sessions", http.StatusOK, &sessions)
	if len(sessions.Sessions) != 1 || len(sessions.Sessions[0].Apps) != 2 || sessions.Sessions[0].User == "" {
		t.Fatalf("want exactly one live broker session with a user and both apps, got %+v", sessions.Sessions)
	}
	si.sess = sessions.Sessions[0]
	t.Logf("signed in: broker session %s user %s; SimpleSAMLphp SP NameID %s SessionIndex %s; pysaml2 SP NameID %s SessionIndex %s",
		si.sess.ID, si.sess.User, si.ssp.NameID, si.ssp.SessionIndex, si.py.Session.NameID, si.py.Session.SessionIndex)
	// The IdP session exists, with the broker as its one SP.
	idp := a.idpSession(si.jar)
	if !idp.Authenticated || len(idp.Associations) != 1 {
		t.Fatalf("SimpleSAMLphp IdP /app/idpstatus after sign-in: want a session with one SP (the broker), got %+v", idp)
	}
	return si
}

// idpSession reads the SimpleSAMLphp IdP's session state with the browser's cookies.
func (a *acme) idpSession(jar string) idpAppStatus {
	a.t.Helper()
	u := a.idpURL + "/app/idpstatus"
	res := a.browseWithCookies(jar, "student", "studentpass", flowStepArg{"idp-status", u, u})
	var st idpAppStatus
	stepStatus(a.t, &res.Steps[0], &st)
	return st
}

// appSessionsAfter checks, with the browser's cookies, that neither app nor the IdP still has a
// session: /app/status, /status and /app/idpstatus.
func (a *acme) appSessionsAfter(jar string) {
	t := a.t
	t.Helper()
	idpStatus := a.idpURL + "/app/idpstatus"
	res := a.browseWithCookies(jar, "student", "studentpass",
		flowStepArg{"ssp-sp-status", a.sspSPURL + "/app/status", a.sspSPURL + "/app/status"},
		flowStepArg{"pysaml2-sp-status", a.pySPURL + "/status", a.pySPURL + "/status"},
		flowStepArg{"idp-status", idpStatus, idpStatus},
	)
	if len(res.Steps) != 3 {
		t.Fatalf("browse.py returned %d steps, want 3", len(res.Steps))
	}
	var ssp sspAppStatus
	stepStatus(t, &res.Steps[0], &ssp)
	if ssp.Authenticated {
		t.Errorf("SimpleSAMLphp SP still has a session after the logout: %s", res.Steps[0].Status.Body)
	}
	var py pyAppStatus
	stepStatus(t, &res.Steps[1], &py)
	if py.Authenticated {
		t.Errorf("pysaml2 SP still has a session after the logout: %s", res.Steps[1].Status.Body)
	}
	var idp idpAppStatus
	stepStatus(t, &res.Steps[2], &idp)
	if idp.Authenticated || len(idp.Associations) != 0 {
		t.Errorf("SimpleSAMLphp IdP still has a session (or SP associations) after the logout: %s", res.Steps[2].Status.Body)
	}
}

// signInAgainShowsIdPLogin: a new sign-in at the SimpleSAMLphp SP must take the browser to the
// IdP's password form again (the IdP session is gone), and work.
func (a *acme) signInAgainShowsIdPLogin(jar string) {
	t := a.t
	t.Helper()
	res := a.browseWithCookies(jar, "student", "studentpass",
		flowStepArg{"ssp-sp-login-again", a.sspSPURL + "/app/login", a.sspSPURL + "/app/status"})
	s := &res.Steps[0]
	s.requireHops(t,
		hop{"GET", a.sspSPURL + "/app/login"},
		hop{"", a.tenantURL("/idp/sso")},
		hop{"GET", a.idpURL + "/saml2/idp/SSOService.php"},
	)
	if n := len(s.PasswordForms); n != 1 || !strings.HasPrefix(s.PasswordForms[0].URL, a.idpURL+"/") {
		t.Errorf("sign-in after the logout: want the IdP's password form again (its session ended), got %d password form(s):\n%s",
			n, s.describe())
	}
	var st sspAppStatus
	stepStatus(t, s, &st)
	if !st.Authenticated {
		t.Errorf("sign-in after the logout did not succeed: %s\nlast page: %s", s.Status.Body, s.finalPage())
	}
}

// logoutRecord finds the user's logout of this trigger in the logout log (GET logouts?user=) and
// returns it with its legs (GET logouts/{id}), once finished.
func (a *acme) logoutRecord(user, trigger, triggerRef string) *apiLogout {
	a.t.Helper()
	return a.logoutRecordIn(tenantSlug, user, trigger, triggerRef)
}

// logoutRecordIn is logoutRecord for the tenant slug.
func (a *env) logoutRecordIn(slug, user, trigger, triggerRef string) *apiLogout {
	t := a.t
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list struct {
			Logouts []apiLogout `json:"logouts"`
		}
		a.apiJSON(http.MethodGet, "/api/v1/tenants/"+slug+"/logouts?user="+url.QueryEscape(user), http.StatusOK, &list)
		var found *apiLogout
		for i := range list.Logouts {
			if l := &list.Logouts[i]; l.Trigger == trigger {
				if found != nil {
					t.Fatalf("the logout log lists more than one %s-triggered logout of %s: %+v", trigger, user, list.Logouts)
				}
				found = l
			}
		}
		if found == nil {
			t.Fatalf("GET logouts?user=%s lists no logout with trigger %s: %+v", user, trigger, list.Logouts)
		}
		if found.User != user || found.TriggerRef != triggerRef {
			t.Errorf("logout %s in the list: user %q trigger_ref %q, want %q %q", found.ID, found.User, found.TriggerRef, user, triggerRef)
		}
		var lo apiLogout
		a.apiJSON(http.MethodGet, "/api/v1/tenants/"+slug+"/logouts/"+url.PathEscape(found.ID), http.StatusOK, &lo)
		if lo.State == "finished" {
			if found.Outcome != lo.Outcome {
				t.Errorf("logout %s: outcome %q in the list, %q in the record", lo.ID, found.Outcome, lo.Outcome)
			}
			for _, l := range lo.Legs {
				t.Logf("leg %s (%s %s): channel %s state %s status %s %s error_class %q latency %d ms diagnosis %q",
					l.Target, l.Kind, l.TargetID, l.Channel, l.State, l.Status, l.SubStatus, l.ErrorClass, l.LatencyMS, l.Diagnosis)
			}
			return &lo
		}
		if time.Now().After(deadline) {
			t.Fatalf("logout %s still %q after the browser came back (want finished): %+v", lo.ID, lo.State, lo)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// checkLeg requires a leg that confirmed the logout: channel, state done, Success, no error.
func checkLeg(t *testing.T, what string, l *apiLeg, channel string) {
	t.Helper()
	if l == nil {
		t.Errorf("no leg for %s", what)
		return
	}
	var bad []string
	if l.Channel != channel {
		bad = append(bad, fmt.Sprintf("channel %q, want %s", l.Channel, channel))
	}
	if l.State != "done" {
		bad = append(bad, fmt.Sprintf("state %q, want done", l.State))
	}
	if l.ErrorClass != "" {
		bad = append(bad, fmt.Sprintf("error_class %q (%s), want none", l.ErrorClass, l.Diagnosis))
	}
	if l.Status != statusSuccess || l.SubStatus != "" {
		bad = append(bad, fmt.Sprintf("status %q / %q, want Success", l.Status, l.SubStatus))
	}
	if l.Sent == "" || l.Received == "" {
		bad = append(bad, fmt.Sprintf("sent %d bytes, received %d bytes: want both", len(l.Sent), len(l.Received)))
	}
	if l.Received != "" && (!strings.Contains(l.Received, "LogoutResponse") ||
		(l.RequestID != "" && !strings.Contains(l.Received, `InResponseTo="`+l.RequestID+`"`))) {
		bad = append(bad, "received is not a LogoutResponse to "+l.RequestID)
	}
	if len(bad) > 0 {
		t.Errorf("leg %s: %s\nsent: %s\nreceived: %s", what, strings.Join(bad, "; "), l.Sent, l.Received)
	}
}

// legsByTarget indexes a logout's legs: apps by app ID, the upstream leg(s) under "upstream".
func legsByTarget(t *testing.T, lo *apiLogout) (map[string]*apiLeg, []*apiLeg) {
	t.Helper()
	apps := map[string]*apiLeg{}
	var up []*apiLeg
	for i := range lo.Legs {
		l := &lo.Legs[i]
		switch l.Kind {
		case "app":
			apps[l.TargetID] = l
		case "upstream":
			up = append(up, l)
		default:
			t.Errorf("leg %s has kind %q, want app or upstream", l.Target, l.Kind)
		}
	}
	return apps, up
}

// findSAML returns the first front-channel message of the step: parameter (SAMLRequest or
// SAMLResponse), root element, sent to a URL with this prefix.
func findSAML(s *flowStep, param, root, urlPrefix string) *samlMsg {
	for i := range s.SAML {
		m := &s.SAML[i]
		if m.Param == param && strings.HasPrefix(m.URL, urlPrefix) && strings.Contains(m.XML[:min(len(m.XML), 400)], root) {
			return m
		}
	}
	return nil
}

var (
	statusCodeRe = regexp.MustCompile(`<(?:[A-Za-z_][\w.-]*:)?StatusCode\b[^>]*\bValue="([^"]+)"`)
	attrRe       = func(name string) *regexp.Regexp { return regexp.MustCompile(`\b` + name + `="([^"]*)"`) }
	idAttrRe     = attrRe("ID")
	inRespRe     = attrRe("InResponseTo")
	destRe       = attrRe("Destination")
)

// statusCodes are the StatusCode values of a LogoutResponse, outermost first.
func statusCodes(xml string) []string {
	var out []string
	for _, m := range statusCodeRe.FindAllStringSubmatch(xml, -1) {
		out = append(out, m[1])
	}
	return out
}

func firstAttr(re *regexp.Regexp, xml string) string {
	if m := re.FindStringSubmatch(xml); m != nil {
		return m[1]
	}
	return ""
}

// nameIDParts is the first NameID of a SAML message: its value and its Format, NameQualifier and
// SPNameQualifier ("" when absent).
func nameIDParts(xml string) map[string]string {
	m := nameIDRe.FindStringSubmatch(xml)
	if m == nil {
		return nil
	}
	out := map[string]string{"value": m[2]}
	for _, a := range []string{"Format", "NameQualifier", "SPNameQualifier"} {
		out[a] = firstAttr(attrRe(a), m[1])
	}
	return out
}

// checkUpstreamRequest checks the broker's LogoutRequest to the IdP as the browser carried it: the
// NameID exactly as the IdP issued it (value, Format, qualifiers), the IdP's SessionIndex, the
// IdP's SingleLogoutService as Destination, and a Redirect signature (RSA-SHA256).
func checkUpstreamRequest(t *testing.T, si *signedIn, m *samlMsg, idpSLO string) {
	t.Helper()
	got := nameIDParts(m.XML)
	for _, k := range []string{"value", "Format", "NameQualifier", "SPNameQualifier"} {
		if got[k] != si.upNameID[k] {
			t.Errorf("the broker's LogoutRequest to the IdP: NameID %s %q, but the IdP issued %q (NameID issued %v, sent %v)",
				k, got[k], si.upNameID[k], si.upNameID, got)
		}
	}
	if !strings.Contains(m.XML, ">"+si.upSessionIndex+"</") {
		t.Errorf("the broker's LogoutRequest to the IdP does not carry the IdP's SessionIndex %q:\n%s", si.upSessionIndex, m.XML)
	}
	if d := firstAttr(destRe, m.XML); d != idpSLO {
		t.Errorf("the broker's LogoutRequest to the IdP has Destination %q, want %s", d, idpSLO)
	}
	requireSignedRedirect(t, "the broker's LogoutRequest to the IdP", m)
}

const sigRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

// requireSignedRedirect: a Redirect-binding message from the broker carries SigAlg RSA-SHA256 and a
// Signature (the receiving SimpleSAMLphp or pysaml2 peer verifies it).
func requireSignedRedirect(t *testing.T, what string, m *samlMsg) {
	t.Helper()
	if m.Binding != "redirect" {
		return
	}
	if m.Signature == "" || m.SigAlg != sigRSASHA256 {
		t.Errorf("%s: SigAlg %q, Signature %d chars: want an RSA-SHA256 query signature", what, m.SigAlg, len(m.Signature))
	}
}

// logoutPageRe matches the broker's logout page URL (not its leg or status sub-resources).
var logoutPageRe = regexp.MustCompile(`/t/` + tenantSlug + `/logout/([^/?#]+)$`)

// checkLogoutPages checks what a browser without JavaScript saw of the broker's logout page: each
// visit had a meta refresh back to the page itself (else such a browser would be stuck there) and
// exactly one iframe per front-channel app leg (wantFrames on the first visit). It returns the
// logout IDs of the pages.
func checkLogoutPages(t *testing.T, s *flowStep, wantFrames int) []string {
	t.Helper()
	ids := map[string]bool{}
	var order []string
	for _, r := range s.Requests {
		if m := logoutPageRe.FindStringSubmatch(r.URL); m != nil && !ids[m[1]] {
			ids[m[1]] = true
			order = append(order, m[1])
		}
	}
	first := true
	for _, p := range s.Pages {
		if !logoutPageRe.MatchString(p.URL) {
			continue
		}
		if p.Refresh == nil || p.Refresh.URL != p.URL {
			t.Errorf("logout page %s (%q) has no meta refresh to itself (a browser without JavaScript would stay there): %+v", p.URL, p.Title, p.Refresh)
		}
		if first && len(p.IFrames) != wantFrames {
			t.Errorf("logout page %s: %d iframe(s) %v, want %d (one per front-channel app leg)", p.URL, len(p.IFrames), p.IFrames, wantFrames)
		}
		first = false
	}
	if wantFrames > 0 && first {
		t.Errorf("the browser never saw a logout page waiting for its %d iframe(s)", wantFrames)
	}
	for _, f := range s.Frames {
		if f.Error != "" || f.Status != http.StatusOK {
			t.Errorf("iframe %s: ended %d %s %s", f.Src, f.Status, f.FinalURL, f.Error)
		}
	}
	if len(order) != 1 {
		t.Errorf("the browser visited %d different logout pages %v, want one", len(order), order)
	}
	return order
}

// sspLog returns the SimpleSAMLphp instance's log.
func (a *env) sspLog(instance string) string {
	b, err := os.ReadFile(filepath.Join(a.state, "ssp", instance, "log", "simplesamlphp.log"))
	if err != nil {
		a.t.Errorf("SimpleSAMLphp %s log: %v", instance, err)
	}
	return string(b)
}

// logLines returns the log lines containing any of subs (SimpleSAMLphp's XML dumps excluded).
func logLines(log string, subs ...string) []string {
	var out []string
	for _, ln := range strings.Split(log, "\n") {
		if strings.Contains(ln, "] <") || strings.HasPrefix(strings.TrimSpace(ln), "<") {
			continue // SimpleSAMLphp's DEBUG dump of a message
		}
		for _, s := range subs {
			if strings.Contains(ln, s) {
				out = append(out, truncate(ln, 400))
				break
			}
		}
	}
	return out
}

// sspLogoutTrouble lists the lines of a SimpleSAMLphp log that say a logout went wrong.
func sspLogoutTrouble(log string) []string {
	return logLines(log, "Error received from", "Unsuccessful logout", "Unable to initialize logout", "RelayState lost",
		"Exception", "Error #", "ERROR", "Backtrace", "Unable to", "Could not", "not match", "Invalid")
}

// TestSPInitiatedLogoutRedirect: one browser signs in at the SimpleSAMLphp SP and the pysaml2 SP
// through the broker, then signs out at the SimpleSAMLphp SP (/app/logout: a signed LogoutRequest
// by Redirect to the broker's /idp/slo). The broker ends its session and shows its logout page;
// the pysaml2 SP is told over SOAP (its metadata has a SOAP SingleLogoutService, which the broker
// prefers), so the page has no iframe; then the browser goes on to the upstream SimpleSAMLphp IdP
// with the broker's LogoutRequest (Redirect: the IdP has front-channel logout only), comes back
// with the IdP's LogoutResponse, and the broker sends it back to the SimpleSAMLphp SP with its own
// LogoutResponse. Every leg confirms, so the answer must be plain Success (no PartialLogout), and
// every party's own session must be gone.
func TestSPInitiatedLogoutRedirect(t *testing.T) { withKeyBackends(t, testSPInitiatedLogoutRedirect) }

func testSPInitiatedLogoutRedirect(t *testing.T, kb keyBackend) {
	a := setupAcmeKeys(t, kb)
	signs := a.signMark()
	broker := a.tenantURL("")
	si := a.signInBoth()
	sspApp, pyApp := si.apps["ssp-app"], si.apps["pysaml2-app"]
	sspSLO := a.sspSPURL + "/module.php/saml/sp/saml2-logout.php/default-sp"
	idpSLO := a.idpURL + "/saml2/idp/SingleLogoutService.php"

	// ---- 1. sign out at the SimpleSAMLphp SP
	mark := a.markLogs()
	res := a.browseWithCookies(si.jar, "student", "studentpass",
		flowStepArg{"ssp-sp-logout", a.sspSPURL + "/app/logout", a.sspSPURL + "/app/status"})
	s := &res.Steps[0]
	if s.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s.Name, s.Error, s.finalPage())
	}
	s.requireHops(t,
		hop{"GET", a.sspSPURL + "/app/logout"},
		hop{"GET", broker + "/idp/slo?"},
		hop{"GET", broker + "/logout/"},
		hop{"GET", idpSLO + "?"},
		hop{"GET", broker + "/sp/slo?"},
		hop{"GET", broker + "/logout/"},
		hop{"GET", sspSLO + "?"},
		hop{"GET", a.sspSPURL + "/app/loggedout"},
	)
	checkLogoutPages(t, s, 0) // pysaml2 goes over SOAP: no iframe

	// The messages that crossed the browser.
	spReq := findSAML(s, "SAMLRequest", "LogoutRequest", broker+"/idp/slo")
	upReq := findSAML(s, "SAMLRequest", "LogoutRequest", idpSLO)
	upResp := findSAML(s, "SAMLResponse", "LogoutResponse", broker+"/sp/slo")
	answer := findSAML(s, "SAMLResponse", "LogoutResponse", sspSLO)
	for _, m := range []struct {
		what string
		msg  *samlMsg
	}{{"SimpleSAMLphp SP's LogoutRequest to the broker", spReq}, {"broker's LogoutRequest to the IdP", upReq},
		{"IdP's LogoutResponse to the broker", upResp}, {"broker's LogoutResponse to the SimpleSAMLphp SP", answer}} {
		if m.msg == nil {
			t.Fatalf("no %s in the browser trace:\n%s", m.what, s.describe())
		}
		if m.msg.Binding != "redirect" {
			t.Errorf("%s: binding %s, want redirect", m.what, m.msg.Binding)
		}
		t.Logf("%s:\n%s", m.what, m.msg.XML)
	}
	checkUpstreamRequest(t, si, upReq, idpSLO)
	requireSignedRedirect(t, "the broker's LogoutResponse to the SimpleSAMLphp SP", answer)
	if upReq.RelayState == "" || upResp.RelayState != upReq.RelayState {
		t.Errorf("RelayState to the IdP %q, back from it %q: want the same, not empty", upReq.RelayState, upResp.RelayState)
	}
	if got := firstAttr(inRespRe, answer.XML); got != firstAttr(idAttrRe, spReq.XML) {
		t.Errorf("the broker's LogoutResponse answers %q, want the SimpleSAMLphp SP's request %q", got, firstAttr(idAttrRe, spReq.XML))
	}
	if got := firstAttr(destRe, answer.XML); got != sspSLO {
		t.Errorf("the broker's LogoutResponse has Destination %q, want the SimpleSAMLphp SP's SingleLogoutService %s", got, sspSLO)
	}
	if answer.RelayState != spReq.RelayState {
		t.Errorf("the broker's LogoutResponse carries RelayState %q, want the SimpleSAMLphp SP's %q", answer.RelayState, spReq.RelayState)
	}

	// ---- 2. the SimpleSAMLphp SP's verdict on the broker's answer. Expected: plain Success. The
	// only other party besides the initiator, the pysaml2 SP, confirms over SOAP, and the upstream
	// SimpleSAMLphp IdP leg is front channel (Redirect) in this browser logout, so the IdP can
	// answer too (unlike a broker-started logout, where it is not_supported): every leg confirmed
	// -> outcome success -> Success without a nested PartialLogout.
	var out sspLoggedOut
	if s.Final == nil || json.Unmarshal([]byte(s.Final.Body), &out) != nil || !out.LogoutReturned {
		t.Fatalf("the browser did not end at the SimpleSAMLphp SP's /app/loggedout with its JSON:\n%s", s.finalPage())
	}
	t.Logf("SimpleSAMLphp SP /app/loggedout: %s", strings.TrimSpace(s.Final.Body))
	if out.LogoutStatus == nil {
		t.Errorf("SimpleSAMLphp SP /app/loggedout has no LogoutResponse status; codes in the message: %v", statusCodes(answer.XML))
	} else {
		checkPlainSuccess(t, "SimpleSAMLphp SP", out.LogoutStatus.Code, out.LogoutStatus.SubCode)
	}
	if codes := statusCodes(upResp.XML); len(codes) == 0 || codes[0] != statusSuccess {
		t.Errorf("the IdP answered the broker with status %v, want Success", codes)
	}

	// ---- 3. every party's own session
	var sspAfter sspAppStatus
	stepStatus(t, s, &sspAfter)
	if sspAfter.Authenticated {
		t.Errorf("SimpleSAMLphp SP still signed in after its logout: %s", s.Status.Body)
	}
	a.appSessionsAfter(si.jar)
	a.checkPySAML2LogoutEvents()

	// ---- 4. the broker's record
	lo := a.logoutRecord(si.sess.User, "app", sspApp)
	legs, up := legsByTarget(t, lo)
	if legs[sspApp] != nil {
		t.Errorf("the initiating app ssp-app has a leg: %+v", legs[sspApp])
	}
	checkLeg(t, "pysaml2-app", legs[pyApp], "soap")
	if len(up) != 1 {
		t.Errorf("want one upstream leg (the SimpleSAMLphp IdP), got %d", len(up))
	} else {
		checkLeg(t, "upstream IdP", up[0], "redirect")
		if up[0].TargetID != si.sess.ConnectionID {
			t.Errorf("upstream leg: target_id %q, want the session's connection %q", up[0].TargetID, si.sess.ConnectionID)
		}
		if id := firstAttr(idAttrRe, upReq.XML); up[0].RequestID != id {
			t.Errorf("upstream leg: request_id %q, but the browser carried LogoutRequest %q to the IdP", up[0].RequestID, id)
		}
	}
	if len(lo.Legs) != 2 {
		t.Errorf("want 2 legs (pysaml2-app, the IdP), got %d", len(lo.Legs))
	}
	if lo.Outcome != "success" {
		t.Errorf("outcome %q, want success", lo.Outcome)
	}
	a.reportLogs(mark)

	// ---- 5. the IdP session is gone: a new sign-in shows its password form again
	a.signInAgainShowsIdPLogin(si.jar)
	a.requireSignedBy(signs, tenantSlug, 5)
}

// TestSPInitiatedLogoutPOST: as TestSPInitiatedLogoutRedirect, but the logout starts at the
// pysaml2 SP with a LogoutRequest by POST (/logout?binding=post); the broker must answer by POST
// too (pysaml2's metadata has a POST SingleLogoutService), the SimpleSAMLphp SP is told over SOAP
// and the IdP through the browser (Redirect).
func TestSPInitiatedLogoutPOST(t *testing.T) { withKeyBackends(t, testSPInitiatedLogoutPOST) }

func testSPInitiatedLogoutPOST(t *testing.T, kb keyBackend) {
	a := setupAcmeKeys(t, kb)
	signs := a.signMark()
	broker := a.tenantURL("")
	si := a.signInBoth()
	sspApp, pyApp := si.apps["ssp-app"], si.apps["pysaml2-app"]
	pySLO := a.pySPURL + "/slo"
	idpSLO := a.idpURL + "/saml2/idp/SingleLogoutService.php"

	mark := a.markLogs()
	res := a.browseWithCookies(si.jar, "student", "studentpass",
		flowStepArg{"pysaml2-sp-logout", a.pySPURL + "/logout?binding=post", a.pySPURL + "/status"})
	s := &res.Steps[0]
	if s.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s.Name, s.Error, s.finalPage())
	}
	s.requireHops(t,
		hop{"GET", a.pySPURL + "/logout"},
		hop{"POST", broker + "/idp/slo"},
		hop{"GET", broker + "/logout/"},
		hop{"GET", idpSLO + "?"},
		hop{"GET", broker + "/sp/slo?"},
		hop{"GET", broker + "/logout/"},
		hop{"POST", pySLO},
	)
	checkLogoutPages(t, s, 0) // the SimpleSAMLphp SP goes over SOAP: no iframe

	pyReq := findSAML(s, "SAMLRequest", "LogoutRequest", broker+"/idp/slo")
	answer := findSAML(s, "SAMLResponse", "LogoutResponse", pySLO)
	if pyReq == nil || answer == nil {
		t.Fatalf("want the pysaml2 SP's LogoutRequest to the broker and the broker's LogoutResponse to %s in the trace:\n%s", pySLO, s.describe())
	}
	if upReq := findSAML(s, "SAMLRequest", "LogoutRequest", idpSLO); upReq == nil {
		t.Errorf("no LogoutRequest from the broker to the IdP in the trace:\n%s", s.describe())
	} else {
		checkUpstreamRequest(t, si, upReq, idpSLO)
	}
	if pyReq.Binding != "post" {
		t.Errorf("pysaml2 SP's LogoutRequest: binding %s, want post", pyReq.Binding)
	}
	if answer.Binding != "post" {
		t.Errorf("the broker answered the pysaml2 SP by %s, want post (the binding of its request, which its metadata offers)", answer.Binding)
	}
	t.Logf("broker's LogoutResponse to the pysaml2 SP:\n%s", answer.XML)

	// The pysaml2 SP's verdict: signature (xmlsec1 on the raw XML), InResponseTo, RelayState,
	// Issuer, Destination, status. Expected plain Success, for the reasons of the Redirect test.
	var out pyLoggedOut
	if s.Final == nil || json.Unmarshal([]byte(s.Final.Body), &out) != nil || out.Logout == "" {
		t.Fatalf("the browser did not end at the pysaml2 SP's /slo with its JSON:\n%s", s.finalPage())
	}
	t.Logf("pysaml2 SP /slo: %s", strings.TrimSpace(s.Final.Body))
	checkPlainSuccess(t, "pysaml2 SP", out.Status, out.SubStatus)
	if out.Logout != "success" || !out.SignatureOK || out.SessionsEnded != 1 {
		t.Errorf("pysaml2 SP: want the broker's LogoutResponse accepted with Success (no second-level code), signature valid, "+
			"its session ended; got logout %q status %q / %q (%q) signature_ok %v (%s) sessions_ended %d problems %v error %q",
			out.Logout, out.Status, out.SubStatus, out.StatusMessage, out.SignatureOK, out.Detail, out.SessionsEnded, out.Problems, out.Error)
	}
	if out.Destination != pySLO {
		t.Errorf("the broker's LogoutResponse has Destination %q, want %s", out.Destination, pySLO)
	}
	var pyAfter pyAppStatus
	stepStatus(t, s, &pyAfter)
	if pyAfter.Authenticated {
		t.Errorf("pysaml2 SP still signed in after its logout: %s", s.Status.Body)
	}

	a.appSessionsAfter(si.jar)
	a.checkSSPLogoutLog("ssp-sp")

	lo := a.logoutRecord(si.sess.User, "app", pyApp)
	legs, up := legsByTarget(t, lo)
	if legs[pyApp] != nil {
		t.Errorf("the initiating app pysaml2-app has a leg: %+v", legs[pyApp])
	}
	checkLeg(t, "ssp-app", legs[sspApp], "soap")
	if len(up) != 1 {
		t.Errorf("want one upstream leg (the SimpleSAMLphp IdP), got %d", len(up))
	} else {
		checkLeg(t, "upstream IdP", up[0], "redirect")
	}
	if len(lo.Legs) != 2 {
		t.Errorf("want 2 legs (ssp-app, the IdP), got %d", len(lo.Legs))
	}
	if lo.Outcome != "success" {
		t.Errorf("outcome %q, want success", lo.Outcome)
	}
	a.reportLogs(mark)
	a.signInAgainShowsIdPLogin(si.jar)
	a.requireSignedBy(signs, tenantSlug, 5)
}

// TestIdPInitiatedLogoutSSP: the user signs out at the upstream SimpleSAMLphp IdP
// (/saml2/idp/initSLO.php with the browser's cookies). The IdP sends its LogoutRequest through the
// browser to the broker's /sp/slo; the broker ends its session, tells both apps (SOAP: both
// advertise it) on its logout page, and sends the browser back to the IdP with its LogoutResponse
// (the IdP's RelayState echoed), after which the IdP finishes and goes to the RelayState URL.
func TestIdPInitiatedLogoutSSP(t *testing.T) {
	a := setupAcme(t)
	broker := a.tenantURL("")
	si := a.signInBoth()
	sspApp, pyApp := si.apps["ssp-app"], si.apps["pysaml2-app"]
	idpSLO := a.idpURL + "/saml2/idp/SingleLogoutService.php"
	done := a.idpURL + "/app/idpstatus" // where the IdP sends the browser when its logout is complete

	mark := a.markLogs()
	res := a.browseWithCookies(si.jar, "student", "studentpass",
		flowStepArg{"idp-init-slo", a.idpURL + "/saml2/idp/initSLO.php?RelayState=" + url.QueryEscape(done), ""})
	s := &res.Steps[0]
	if s.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s.Name, s.Error, s.finalPage())
	}
	s.requireHops(t,
		hop{"GET", a.idpURL + "/saml2/idp/initSLO.php"},
		hop{"GET", broker + "/sp/slo?"},
		hop{"GET", broker + "/logout/"},
		hop{"GET", idpSLO + "?"},
		hop{"GET", done},
	)
	checkLogoutPages(t, s, 0) // both apps over SOAP: no iframe

	idpReq := findSAML(s, "SAMLRequest", "LogoutRequest", broker+"/sp/slo")
	answer := findSAML(s, "SAMLResponse", "LogoutResponse", idpSLO)
	if idpReq == nil || answer == nil {
		t.Fatalf("want the IdP's LogoutRequest to the broker and the broker's LogoutResponse to %s in the trace:\n%s", idpSLO, s.describe())
	}
	t.Logf("IdP's LogoutRequest to the broker:\n%s\nbroker's LogoutResponse to the IdP:\n%s", idpReq.XML, answer.XML)
	if got := firstAttr(inRespRe, answer.XML); got != firstAttr(idAttrRe, idpReq.XML) {
		t.Errorf("the broker's LogoutResponse answers %q, want the IdP's request %q", got, firstAttr(idAttrRe, idpReq.XML))
	}
	if answer.RelayState != idpReq.RelayState {
		t.Errorf("the broker's LogoutResponse carries RelayState %q, want the IdP's %q (the IdP needs it to resume its logout)",
			answer.RelayState, idpReq.RelayState)
	}
	if got := firstAttr(destRe, answer.XML); got != idpSLO {
		t.Errorf("the broker's LogoutResponse has Destination %q, want the IdP's SingleLogoutService %s", got, idpSLO)
	}
	requireSignedRedirect(t, "the broker's LogoutResponse to the IdP", answer)
	// Both apps confirm over SOAP: plain Success expected (the IdP itself gets no leg).
	codes := append(statusCodes(answer.XML), "", "")
	checkPlainSuccess(t, "SimpleSAMLphp IdP", codes[0], codes[1])

	// The IdP finished its logout and sent the browser to the RelayState URL: its own session view.
	var idp idpAppStatus
	if s.Final == nil || !strings.HasPrefix(s.Final.URL, done) || json.Unmarshal([]byte(s.Final.Body), &idp) != nil {
		t.Fatalf("the IdP did not complete its logout (the browser should end at the RelayState %s):\n%s", done, s.finalPage())
	}
	if idp.Authenticated || len(idp.Associations) != 0 {
		t.Errorf("SimpleSAMLphp IdP after its logout: %s, want no session and no SP associations", s.Final.Body)
	}
	idpLog := a.sspLog("ssp-idp")
	brokerSP, _ := a.fetchMetadata(a.tenantURL("/sp/metadata"), "broker-sp-metadata.xml")
	if want := "Logged out of 'saml:" + brokerSP.EntityID + "'"; !strings.Contains(idpLog, want) {
		t.Errorf("SimpleSAMLphp IdP log: no %q (the IdP did not take the broker's LogoutResponse as a completed logout); logout lines:\n%s",
			want, strings.Join(logLines(idpLog, "ogout", "Error", "rror"), "\n"))
	}

	a.appSessionsAfter(si.jar)
	a.checkSSPLogoutLog("ssp-sp")
	a.checkPySAML2LogoutEvents()

	lo := a.logoutRecord(si.sess.User, "idp", si.sess.ConnectionID)
	legs, up := legsByTarget(t, lo)
	checkLeg(t, "ssp-app", legs[sspApp], "soap")
	checkLeg(t, "pysaml2-app", legs[pyApp], "soap")
	if len(up) != 0 {
		t.Errorf("the IdP started the logout: want no upstream leg, got %+v", up)
	}
	if len(lo.Legs) != 2 {
		t.Errorf("want 2 legs (the two apps), got %d", len(lo.Legs))
	}
	if lo.Outcome != "success" {
		t.Errorf("outcome %q, want success", lo.Outcome)
	}
	a.reportLogs(mark)
	a.signInAgainShowsIdPLogin(si.jar)
}

// TestSPInitiatedLogoutIframe: as TestSPInitiatedLogoutRedirect, but the pysaml2 SP advertises
// only front-channel logout (--slo-bindings redirect,post), so the broker must reach it through
// an iframe of its logout page. The browser, without JavaScript, loads the iframe: the broker's
// signed LogoutRequest goes by Redirect to the pysaml2 SP's /slo, which checks it, ends its
// session and answers by Redirect to the broker's /idp/slo (the frame ends on "Signed out of ...").
func TestSPInitiatedLogoutIframe(t *testing.T) {
	a := setupAcmeWith(t, "--slo-bindings", "redirect,post")
	broker := a.tenantURL("")
	si := a.signInBoth()
	sspApp, pyApp := si.apps["ssp-app"], si.apps["pysaml2-app"]
	sspSLO := a.sspSPURL + "/module.php/saml/sp/saml2-logout.php/default-sp"
	idpSLO := a.idpURL + "/saml2/idp/SingleLogoutService.php"
	pySLO := a.pySPURL + "/slo"

	mark := a.markLogs()
	res := a.browseWithCookies(si.jar, "student", "studentpass",
		flowStepArg{"ssp-sp-logout", a.sspSPURL + "/app/logout", a.sspSPURL + "/app/status"})
	s := &res.Steps[0]
	if s.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s.Name, s.Error, s.finalPage())
	}
	s.requireHops(t,
		hop{"GET", a.sspSPURL + "/app/logout"},
		hop{"GET", broker + "/idp/slo?"},
		hop{"GET", broker + "/logout/"},
		hop{"GET", pySLO + "?"}, // inside the iframe
		hop{"GET", broker + "/idp/slo?"},
		hop{"GET", idpSLO + "?"},
		hop{"GET", broker + "/sp/slo?"},
		hop{"GET", sspSLO + "?"},
		hop{"GET", a.sspSPURL + "/app/loggedout"},
	)
	ids := checkLogoutPages(t, s, 1) // one iframe: the pysaml2 SP's leg
	if len(s.Frames) != 1 {
		t.Fatalf("the browser loaded %d iframes, want 1:\n%s", len(s.Frames), s.describe())
	}
	f := s.Frames[0]
	if len(ids) == 1 && !strings.HasPrefix(f.Src, broker+"/logout/"+ids[0]+"/leg/") {
		t.Errorf("iframe src %s, want a leg of the logout page %s", f.Src, broker+"/logout/"+ids[0])
	}
	if !strings.HasPrefix(f.FinalURL, broker+"/idp/slo") || !strings.Contains(f.Body, "Signed out of pysaml2-app") {
		t.Errorf("the iframe should end at the broker's /idp/slo with the pysaml2 SP's LogoutResponse and say %q; it ended %d %s:\n%s",
			"Signed out of pysaml2-app", f.Status, f.FinalURL, f.Body)
	}
	legReq := findSAML(s, "SAMLRequest", "LogoutRequest", pySLO)
	legResp := findSAML(s, "SAMLResponse", "LogoutResponse", broker+"/idp/slo")
	if legReq == nil || legResp == nil {
		t.Fatalf("want the broker's LogoutRequest to %s and the pysaml2 SP's LogoutResponse in the trace:\n%s", pySLO, s.describe())
	}
	t.Logf("broker's LogoutRequest to the pysaml2 SP (iframe):\n%s\npysaml2 SP's LogoutResponse:\n%s", legReq.XML, legResp.XML)
	requireSignedRedirect(t, "the broker's LogoutRequest to the pysaml2 SP", legReq)
	if got := nameIDParts(legReq.XML); got["value"] != si.py.Session.NameID {
		t.Errorf("the broker's LogoutRequest to the pysaml2 SP names %v, want the NameID issued to it %q", got, si.py.Session.NameID)
	}
	if codes := statusCodes(legResp.XML); len(codes) == 0 || codes[0] != statusSuccess {
		t.Errorf("the pysaml2 SP answered the iframe leg with %v, want Success", codes)
	}
	if upReq := findSAML(s, "SAMLRequest", "LogoutRequest", idpSLO); upReq != nil {
		checkUpstreamRequest(t, si, upReq, idpSLO)
	} else {
		t.Errorf("no LogoutRequest from the broker to the IdP in the trace")
	}

	// Every leg confirmed: plain Success for the SimpleSAMLphp SP.
	var out sspLoggedOut
	if s.Final == nil || json.Unmarshal([]byte(s.Final.Body), &out) != nil || !out.LogoutReturned {
		t.Fatalf("the browser did not end at the SimpleSAMLphp SP's /app/loggedout with its JSON:\n%s", s.finalPage())
	}
	if out.LogoutStatus == nil {
		t.Errorf("SimpleSAMLphp SP /app/loggedout has no LogoutResponse status")
	} else {
		checkPlainSuccess(t, "SimpleSAMLphp SP", out.LogoutStatus.Code, out.LogoutStatus.SubCode)
	}
	a.appSessionsAfter(si.jar)
	a.checkPySAML2LogoutEvents()

	lo := a.logoutRecord(si.sess.User, "app", sspApp)
	legs, up := legsByTarget(t, lo)
	checkLeg(t, "pysaml2-app", legs[pyApp], "iframe")
	if len(up) != 1 {
		t.Errorf("want one upstream leg (the SimpleSAMLphp IdP), got %d", len(up))
	} else {
		checkLeg(t, "upstream IdP", up[0], "redirect")
	}
	if len(lo.Legs) != 2 || lo.Outcome != "success" {
		t.Errorf("want 2 legs (pysaml2-app, the IdP) and outcome success, got %d legs, outcome %q", len(lo.Legs), lo.Outcome)
	}
	a.reportLogs(mark)
	a.signInAgainShowsIdPLogin(si.jar)
}

// logMark is where each log stood before a logout, so that only what the logout wrote is checked.
type logMark map[string]int

func (a *acme) markLogs() logMark {
	m := logMark{}
	for _, inst := range []string{"ssp-idp", "ssp-sp"} {
		m[inst] = len(a.sspLog(inst))
	}
	b, _ := os.ReadFile(filepath.Join(a.state, "logs", "broker.log"))
	m["broker"] = len(b)
	return m
}

// reportLogs logs the logout-related lines both SimpleSAMLphp instances and the broker wrote since
// mark, and fails on SimpleSAMLphp lines that say something went wrong, except lines containing one
// of expected (logged as expected).
func (a *acme) reportLogs(mark logMark, expected ...string) {
	t := a.t
	t.Helper()
	for _, inst := range []string{"ssp-idp", "ssp-sp"} {
		log := a.sspLog(inst)
		if n := mark[inst]; n <= len(log) {
			log = log[n:]
		}
		t.Logf("SimpleSAMLphp %s log during the logout:\n%s", inst, strings.Join(logLines(log, "ogout", "SLO", "Logged out", "LogoutStore"), "\n"))
		var bad, known []string
	lines:
		for _, l := range sspLogoutTrouble(log) {
			for _, x := range expected {
				if strings.Contains(l, x) {
					known = append(known, l)
					continue lines
				}
			}
			bad = append(bad, l)
		}
		if len(known) > 0 {
			t.Logf("SimpleSAMLphp %s log, expected during the logout:\n%s", inst, strings.Join(known, "\n"))
		}
		if len(bad) > 0 {
			t.Errorf("SimpleSAMLphp %s log reports trouble during the logout:\n%s", inst, strings.Join(bad, "\n"))
		}
	}
	b, _ := os.ReadFile(filepath.Join(a.state, "logs", "broker.log"))
	if n := mark["broker"]; n <= len(b) {
		b = b[n:]
	}
	t.Logf("broker log during the logout:\n%s", strings.Join(logLines(string(b), "logout", "slo", "level=WARN", "level=ERROR"), "\n"))
}
