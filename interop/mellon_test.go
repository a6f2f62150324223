package interop

// A third app stack: Apache + mod_auth_mellon 0.18 (lasso) as an SP of the broker, next to the
// SimpleSAMLphp and pysaml2 SPs. mellon's quirks (peers/README.md): it takes logout by Redirect
// and SOAP only (no POST), and over SOAP it finds the session by NameID alone — harmless here,
// since the broker gives each app its own transient NameID per session (the SimpleSAMLphp IdP
// issues a transient one).

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mellonStatus is mellon's /status (and /loggedout): the session of the cookie sent.
type mellonStatus struct {
	Authenticated bool   `json:"authenticated"`
	NameID        string `json:"name_id"`
	SessionIndex  string `json:"session_index"`
	IdP           string `json:"idp"`
}

// mellonStack is the acme stack plus mellon as the tenant's third app, "mellon-app".
type mellonStack struct {
	*acme
}

// signedInThree is the state after one browser signed in at mellon, the SimpleSAMLphp SP and the
// pysaml2 SP through the broker.
type signedInThree struct {
	*signedIn
	mellon mellonStatus
}

func setupMellon(t *testing.T) *mellonStack {
	t.Helper()
	requireMellon(t)
	a := setupAcme(t)
	a.startMellon(a.tenantURL("/idp/metadata"))
	mellonMD := a.mellonURL + "/mellon/metadata"
	_, raw := a.fetchMetadata(mellonMD, "metadata-mellon.xml")
	// mellon advertises SOAP logout (first) and Redirect, at /mellon/logout: the broker should
	// prefer the back channel.
	if !hasSOAPSLO(raw, a.mellonURL+"/mellon/logout") {
		t.Fatalf("mellon's metadata %s has no SOAP SingleLogoutService at %s:\n%s", mellonMD, a.mellonURL+"/mellon/logout", raw)
	}
	a.create("/api/v1/tenants/"+tenantSlug+"/apps", map[string]any{"name": "mellon-app", "metadata_url": mellonMD})
	return &mellonStack{acme: a}
}

// signInThree signs one browser (cookie jar in the state folder, kept between rounds) in at mellon
// (the password form at the upstream IdP), then at the SimpleSAMLphp SP and the pysaml2 SP (the
// broker session reused, no password form), and returns what the apps and the broker hold.
func (m *mellonStack) signInThree(round string) *signedInThree {
	t := m.t
	t.Helper()
	broker := m.tenantURL("")
	si := &signedInThree{signedIn: &signedIn{jar: filepath.Join(m.state, "browser-cookies.json"), apps: m.appIDs()}}
	for _, n := range []string{"ssp-app", "pysaml2-app", "mellon-app"} {
		if si.apps[n] == "" {
			t.Fatalf("apps of tenant %s: %v, want ssp-app, pysaml2-app and mellon-app", tenantSlug, si.apps)
		}
	}
	res := m.browseWithCookies(si.jar, "student", "studentpass",
		flowStepArg{"mellon-" + round, m.mellonURL + "/protected/", m.mellonURL + "/status"},
		flowStepArg{"ssp-sp-" + round, m.sspSPURL + "/app/login", m.sspSPURL + "/app/status"},
		flowStepArg{"pysaml2-sp-" + round, m.pySPURL + "/login", m.pySPURL + "/status"},
	)
	if len(res.Steps) != 3 {
		t.Fatalf("browse.py returned %d steps, want 3", len(res.Steps))
	}

	// ---- mellon: its AuthnRequest to the broker, the IdP's password form, the broker's Response
	s := &res.Steps[0]
	if s.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s.Name, s.Error, s.finalPage())
	}
	s.requireHops(t,
		hop{"GET", m.mellonURL + "/protected/"},
		hop{"GET", m.mellonURL + "/mellon/login"},
		hop{"", broker + "/idp/sso"},
		hop{"GET", m.idpURL + "/saml2/idp/SSOService.php"},
		hop{"POST", m.idpURL + "/module.php/core/loginuserpass.php"},
		hop{"POST", broker + "/sp/acs"},
		hop{"POST", m.mellonURL + "/mellon/postResponse"},
		hop{"GET", m.mellonURL + "/protected/"},
	)
	if n := len(s.PasswordForms); n != 1 || !strings.HasPrefix(s.PasswordForms[0].URL, m.idpURL+"/") {
		t.Errorf("step %q: want exactly one password form, at the IdP %s; got %d:\n%s", s.Name, m.idpURL, n, s.describe())
	}
	if s.Final == nil || s.Final.Status != http.StatusOK || !strings.Contains(s.Final.Body, "protected page") {
		t.Errorf("step %q: mellon did not show its protected page after the sign-in:\n%s", s.Name, s.finalPage())
	}
	if up := findSAML(s, "SAMLResponse", "Response", broker+"/sp/acs"); up != nil {
		si.upNameID = nameIDParts(up.XML)
		si.upSessionIndex = firstAttr(attrRe("SessionIndex"), up.XML)
	}
	if si.upNameID == nil || si.upSessionIndex == "" {
		t.Fatalf("step %q: no NameID and SessionIndex in the IdP's Response to the broker:\n%s", s.Name, s.describe())
	}
	if r := findSAML(s, "SAMLResponse", "Response", m.mellonURL+"/mellon/postResponse"); r == nil {
		t.Errorf("step %q: no Response from the broker to mellon's ACS in the trace", s.Name)
	} else if nid := nameIDParts(r.XML); nid["Format"] != "urn:oasis:names:tc:SAML:2.0:nameid-format:transient" ||
		nid["SPNameQualifier"] != m.mellonURL+"/mellon/metadata" || nid["value"] == si.upNameID["value"] {
		t.Errorf("step %q: the broker should issue mellon its own transient NameID (SPNameQualifier mellon), got %v (the IdP's: %v)",
			s.Name, nid, si.upNameID)
	}
	stepStatus(t, s, &si.mellon)
	if !si.mellon.Authenticated || si.mellon.NameID == "" || si.mellon.IdP != m.brokerIdP.EntityID {
		t.Fatalf("mellon /status after sign-in: want authenticated by the broker %s, got %s", m.brokerIdP.EntityID, s.Status.Body)
	}

	// ---- the SimpleSAMLphp SP and the pysaml2 SP: no password form
	stepStatus(t, &res.Steps[1], &si.ssp)
	if !si.ssp.Authenticated || si.ssp.IdP != m.brokerIdP.EntityID {
		t.Fatalf("SimpleSAMLphp SP /app/status after sign-in: want authenticated by the broker %s, got %s",
			m.brokerIdP.EntityID, res.Steps[1].Status.Body)
	}
	stepStatus(t, &res.Steps[2], &si.py)
	if !si.py.Authenticated || si.py.Session == nil || si.py.Session.IdP != m.brokerIdP.EntityID {
		t.Fatalf("pysaml2 SP /status after sign-in: want authenticated by the broker %s, got %s",
			m.brokerIdP.EntityID, res.Steps[2].Status.Body)
	}
	for _, st := range res.Steps[1:] {
		if n := len(st.PasswordForms); n != 0 {
			t.Errorf("step %q: %d password form(s); the broker session should have been reused:\n%s", st.Name, n, st.describe())
		}
	}

	// ---- the broker: one live session with the three apps, each with its own NameID
	var sessions struct {
		Sessions []apiSession `json:"sessions"`
	}
	m.apiJSON(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/sessions", http.StatusOK, &sessions)
	if len(sessions.Sessions) != 1 || len(sessions.Sessions[0].Apps) != 3 || sessions.Sessions[0].User == "" {
		t.Fatalf("want exactly one live broker session with a user and the three apps, got %+v", sessions.Sessions)
	}
	si.sess = sessions.Sessions[0]
	issued := map[string][2]string{}
	for _, p := range si.sess.Apps {
		issued[p.AppID] = [2]string{p.NameID, p.SessionIndex}
	}
	seen := map[string]string{}
	for _, c := range []struct {
		app          string
		nameID, sidx string
	}{
		{"mellon-app", si.mellon.NameID, si.mellon.SessionIndex},
		{"ssp-app", si.ssp.NameID, si.ssp.SessionIndex},
		{"pysaml2-app", si.py.Session.NameID, si.py.Session.SessionIndex},
	} {
		got := issued[si.apps[c.app]]
		if got[0] != c.nameID || got[1] != c.sidx {
			t.Errorf("%s: the broker recorded NameID %q SessionIndex %q, the app holds %q %q", c.app, got[0], got[1], c.nameID, c.sidx)
		}
		if other, dup := seen[got[0]]; dup {
			t.Errorf("%s and %s got the same NameID %q: want a transient NameID per app", c.app, other, got[0])
		}
		seen[got[0]] = c.app
	}
	t.Logf("signed in (%s): broker session %s user %s; mellon NameID %s SessionIndex %s; SimpleSAMLphp SP NameID %s; pysaml2 SP NameID %s",
		round, si.sess.ID, si.sess.User, si.mellon.NameID, si.mellon.SessionIndex, si.ssp.NameID, si.py.Session.NameID)
	if idp := m.idpSession(si.jar); !idp.Authenticated || len(idp.Associations) != 1 {
		t.Fatalf("SimpleSAMLphp IdP /app/idpstatus after sign-in: want a session with one SP (the broker), got %+v", idp)
	}
	return si
}

// mellonSession reads mellon's /status with the browser's cookies.
func (m *mellonStack) mellonSession(jar, name string) (mellonStatus, *flowStep) {
	m.t.Helper()
	res := m.browseWithCookies(jar, "student", "studentpass", flowStepArg{name, m.mellonURL + "/status", m.mellonURL + "/status"})
	var st mellonStatus
	stepStatus(m.t, &res.Steps[0], &st)
	return st, &res.Steps[0]
}

// mellonLog is mellon's Apache error log (auth_mellon at debug level) from byte offset from on.
func (m *mellonStack) mellonLog(from int) string {
	b, err := os.ReadFile(filepath.Join(m.mellonDir, "logs", "error.log"))
	if err != nil {
		m.t.Errorf("mellon error log: %v", err)
	}
	if from <= len(b) {
		b = b[from:]
	}
	return string(b)
}

// mellonMark is where mellon's logs stood before a logout.
type mellonMark struct{ errorLog, diagnostics int }

func (m *mellonStack) markMellon() mellonMark {
	d, _ := os.ReadFile(filepath.Join(m.mellonDir, "logs", "mellon_diagnostics.log"))
	return mellonMark{errorLog: len(m.mellonLog(0)), diagnostics: len(d)}
}

// mellonRequests summarises mellon's diagnostics log from byte offset from on: one line per
// request it served on its SAML endpoints (method, path, the SAML message kind, the status).
func (m *mellonStack) mellonRequests(from int) []string {
	b, _ := os.ReadFile(filepath.Join(m.mellonDir, "logs", "mellon_diagnostics.log"))
	if from <= len(b) {
		b = b[from:]
	}
	var out []string
	for _, block := range strings.Split(string(b), "---------------------------------- New Request ---------------------------------") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if len(lines) == 0 || !strings.Contains(lines[0], "/mellon/") || strings.Contains(lines[0], "/mellon/metadata") {
			continue
		}
		sum := lines[0]
		for _, ln := range lines {
			ln = strings.TrimSpace(ln)
			switch {
			case strings.HasPrefix(ln, "Status:"), strings.HasPrefix(ln, "SAML "), strings.Contains(ln, "Lasso error"):
				sum += " | " + truncate(ln, 200)
			}
		}
		out = append(out, sum)
	}
	return out
}

// reportMellonLog logs mellon's error-log lines about logout and the SAML requests it served since
// mark, and fails on the lines that say it refused or could not process a logout message.
func (m *mellonStack) reportMellonLog(mark mellonMark, what string) {
	t := m.t
	t.Helper()
	log := m.mellonLog(mark.errorLog)
	t.Logf("mellon error log during %s:\n%s", what, strings.Join(logLines(log, "ogout", "Lasso", "lasso", ":error]", ":warn]"), "\n"))
	t.Logf("mellon's SAML requests during %s (logs/mellon_diagnostics.log):\n%s", what, strings.Join(m.mellonRequests(mark.diagnostics), "\n"))
	if bad := logLines(log, ":error]", "Lasso error", "Unable to", "No session found", "Error processing", "Error building",
		"Error validating", "Invalid target domain"); len(bad) > 0 {
		t.Errorf("mellon error log reports trouble during %s:\n%s", what, strings.Join(bad, "\n"))
	}
}

// TestMellonApp: one browser signs in at mellon (/protected/, the password at the upstream
// SimpleSAMLphp IdP), at the SimpleSAMLphp SP and at the pysaml2 SP through the broker (no
// password form again). Then:
//
// (a) the user signs out at mellon (/mellon/logout?ReturnTo=..., its signed LogoutRequest by
// Redirect): the broker tells the other two apps over SOAP, the IdP through the browser, and sends
// mellon its signed LogoutResponse (Redirect) with plain Success, after which mellon sends the
// browser to the ReturnTo. mellon's, both apps' and the IdP's own sessions must be gone, and the
// broker's record says trigger app (mellon) with the three legs.
//
// (b) after a second sign-in at the three apps, the user signs out at the SimpleSAMLphp SP: the
// broker must reach mellon over SOAP (its metadata offers it), mellon must end its session (by
// NameID) and confirm; mellon's leg is channel soap without error.
func TestMellonApp(t *testing.T) {
	m := setupMellon(t)
	broker := m.tenantURL("")
	idpSLO := m.idpURL + "/saml2/idp/SingleLogoutService.php"
	mellonSLO := m.mellonURL + "/mellon/logout"
	sspSLO := m.sspSPURL + "/module.php/saml/sp/saml2-logout.php/default-sp"
	certFiles := m.brokerIdPCertFiles()

	// ======== (a) SP-initiated logout at mellon
	si := m.signInThree("round1")
	mellonApp, sspApp, pyApp := si.apps["mellon-app"], si.apps["ssp-app"], si.apps["pysaml2-app"]
	mark := m.markLogs()
	mmark := m.markMellon()
	returnTo := m.mellonURL + "/loggedout"
	res := m.browseWithCookies(si.jar, "student", "studentpass",
		flowStepArg{"mellon-logout", mellonSLO + "?ReturnTo=" + url.QueryEscape(returnTo), m.mellonURL + "/status"})
	s := &res.Steps[0]
	if s.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s.Name, s.Error, s.finalPage())
	}
	s.requireHops(t,
		hop{"GET", mellonSLO + "?ReturnTo="},
		hop{"GET", broker + "/idp/slo?"},
		hop{"GET", broker + "/logout/"},
		hop{"GET", idpSLO + "?"},
		hop{"GET", broker + "/sp/slo?"},
		hop{"GET", broker + "/logout/"},
		hop{"GET", mellonSLO + "?SAMLResponse="},
		hop{"GET", returnTo},
	)
	checkLogoutPages(t, s, 0) // both other apps over SOAP: no iframe

	melReq := findSAML(s, "SAMLRequest", "LogoutRequest", broker+"/idp/slo")
	upReq := findSAML(s, "SAMLRequest", "LogoutRequest", idpSLO)
	upResp := findSAML(s, "SAMLResponse", "LogoutResponse", broker+"/sp/slo")
	answer := findSAML(s, "SAMLResponse", "LogoutResponse", mellonSLO)
	for _, x := range []struct {
		what string
		msg  *samlMsg
	}{{"mellon's LogoutRequest to the broker", melReq}, {"broker's LogoutRequest to the IdP", upReq},
		{"IdP's LogoutResponse to the broker", upResp}, {"broker's LogoutResponse to mellon", answer}} {
		if x.msg == nil {
			t.Fatalf("no %s in the browser trace:\n%s", x.what, s.describe())
		}
		if x.msg.Binding != "redirect" {
			t.Errorf("%s: binding %s, want redirect", x.what, x.msg.Binding)
		}
		t.Logf("%s:\n%s", x.what, x.msg.XML)
	}
	if got := nameIDParts(melReq.XML); got["value"] != si.mellon.NameID || !strings.Contains(melReq.XML, ">"+si.mellon.SessionIndex+"</") {
		t.Errorf("mellon's LogoutRequest names %v, want its NameID %q and SessionIndex %q", got, si.mellon.NameID, si.mellon.SessionIndex)
	}
	if melReq.Signature == "" {
		t.Errorf("mellon's LogoutRequest is not signed (SigAlg %q)", melReq.SigAlg)
	}
	checkUpstreamRequest(t, si.signedIn, upReq, idpSLO)
	if codes := statusCodes(upResp.XML); len(codes) == 0 || codes[0] != statusSuccess {
		t.Errorf("the IdP answered the broker with status %v, want Success", codes)
	}
	// The broker's answer to mellon: to its request, at its SingleLogoutService, its RelayState
	// echoed, signed, plain Success (both SOAP legs and the IdP confirmed).
	if got := firstAttr(inRespRe, answer.XML); got != firstAttr(idAttrRe, melReq.XML) {
		t.Errorf("the broker's LogoutResponse answers %q, want mellon's request %q", got, firstAttr(idAttrRe, melReq.XML))
	}
	if got := firstAttr(destRe, answer.XML); got != mellonSLO {
		t.Errorf("the broker's LogoutResponse has Destination %q, want mellon's SingleLogoutService %s", got, mellonSLO)
	}
	if answer.RelayState != melReq.RelayState {
		t.Errorf("the broker's LogoutResponse carries RelayState %q, want mellon's %q (mellon needs it for the ReturnTo)",
			answer.RelayState, melReq.RelayState)
	}
	requireSignedRedirect(t, "the broker's LogoutResponse to mellon", answer)
	codes := append(statusCodes(answer.XML), "", "")
	checkPlainSuccess(t, "mellon", codes[0], codes[1])
	// mellon accepted it: it sent the browser on to the ReturnTo, where it has no session.
	var loggedOut mellonStatus
	if s.Final == nil || !strings.HasPrefix(s.Final.URL, returnTo) || json.Unmarshal([]byte(s.Final.Body), &loggedOut) != nil {
		t.Errorf("mellon did not send the browser to its ReturnTo %s after the broker's LogoutResponse (it refuses a LogoutResponse it cannot process):\n%s",
			returnTo, s.finalPage())
	} else if loggedOut.Authenticated {
		t.Errorf("mellon's ReturnTo %s: still authenticated: %s", returnTo, s.Final.Body)
	}
	var melAfter mellonStatus
	stepStatus(t, s, &melAfter)
	if melAfter.Authenticated {
		t.Errorf("mellon /status still authenticated after its logout: %s", s.Status.Body)
	}
	m.reportMellonLog(mmark, "the logout it started")

	// Every other party's own session: SimpleSAMLphp SP, pysaml2 SP, the upstream IdP.
	m.appSessionsAfter(si.jar)
	m.checkSSPLogoutLog("ssp-sp")
	m.checkPySAML2LogoutEvents()

	lo := m.logoutRecord(si.sess.User, "app", mellonApp)
	legs, up := legsByTarget(t, lo)
	if legs[mellonApp] != nil {
		t.Errorf("the initiating app mellon-app has a leg: %+v", legs[mellonApp])
	}
	issuedTo := map[string][2]string{}
	for _, p := range si.sess.Apps {
		issuedTo[p.AppID] = [2]string{p.NameID, p.SessionIndex}
	}
	for _, c := range []struct{ app, id, endpoint string }{
		{"ssp-app", sspApp, sspSLO},
		{"pysaml2-app", pyApp, m.pySPURL + "/slo/soap"},
	} {
		checkLeg(t, c.app, legs[c.id], "soap")
		if l := legs[c.id]; l != nil && l.Sent != "" {
			m.checkSentLogoutRequest(c.app, l, c.endpoint, issuedTo[c.id][0], issuedTo[c.id][1], certFiles)
		}
	}
	if len(up) != 1 {
		t.Errorf("want one upstream leg (the SimpleSAMLphp IdP), got %d", len(up))
	} else {
		checkLeg(t, "upstream IdP", up[0], "redirect")
		if id := firstAttr(idAttrRe, upReq.XML); up[0].RequestID != id {
			t.Errorf("upstream leg: request_id %q, but the browser carried LogoutRequest %q to the IdP", up[0].RequestID, id)
		}
	}
	if len(lo.Legs) != 3 {
		t.Errorf("want 3 legs (ssp-app, pysaml2-app, the IdP), got %d", len(lo.Legs))
	}
	if lo.Outcome != "success" {
		t.Errorf("outcome %q, want success", lo.Outcome)
	}
	m.reportLogs(mark)
	if t.Failed() {
		t.Fatalf("(a) logout started at mellon failed; not going on to (b)")
	}

	// ======== (b) a second sign-in (the IdP's password form again: its session ended in (a)),
	// then a logout started at the SimpleSAMLphp SP must reach mellon over SOAP.
	si2 := m.signInThree("round2")
	mark = m.markLogs()
	mmark = m.markMellon()
	res = m.browseWithCookies(si2.jar, "student", "studentpass",
		flowStepArg{"ssp-sp-logout", m.sspSPURL + "/app/logout", m.sspSPURL + "/app/status"})
	s = &res.Steps[0]
	if s.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s.Name, s.Error, s.finalPage())
	}
	s.requireHops(t,
		hop{"GET", m.sspSPURL + "/app/logout"},
		hop{"GET", broker + "/idp/slo?"},
		hop{"GET", broker + "/logout/"},
		hop{"GET", idpSLO + "?"},
		hop{"GET", broker + "/sp/slo?"},
		hop{"GET", broker + "/logout/"},
		hop{"GET", sspSLO + "?"},
		hop{"GET", m.sspSPURL + "/app/loggedout"},
	)
	checkLogoutPages(t, s, 0) // mellon and pysaml2 over SOAP: no iframe
	for _, r := range s.Requests {
		if strings.HasPrefix(r.URL, m.mellonURL+"/") {
			t.Errorf("the browser went to mellon (%s %s) during a logout that should reach it over SOAP", r.Method, r.URL)
		}
	}
	var out sspLoggedOut
	if s.Final == nil || json.Unmarshal([]byte(s.Final.Body), &out) != nil || !out.LogoutReturned {
		t.Fatalf("the browser did not end at the SimpleSAMLphp SP's /app/loggedout with its JSON:\n%s", s.finalPage())
	}
	if out.LogoutStatus == nil {
		t.Errorf("SimpleSAMLphp SP /app/loggedout has no LogoutResponse status")
	} else {
		checkPlainSuccess(t, "SimpleSAMLphp SP", out.LogoutStatus.Code, out.LogoutStatus.SubCode)
	}
	mel2, _ := m.mellonSession(si2.jar, "mellon-status-after-soap")
	if mel2.Authenticated {
		t.Errorf("mellon still has a session after the broker's SOAP LogoutRequest: %+v", mel2)
	}
	m.reportMellonLog(mmark, "the SOAP logout")
	m.appSessionsAfter(si2.jar)
	m.checkPySAML2LogoutEventsN(2)

	lo2 := m.logoutRecord(si2.sess.User, "app", sspApp)
	legs2, up2 := legsByTarget(t, lo2)
	if legs2[sspApp] != nil {
		t.Errorf("the initiating app ssp-app has a leg: %+v", legs2[sspApp])
	}
	issuedTo = map[string][2]string{}
	for _, p := range si2.sess.Apps {
		issuedTo[p.AppID] = [2]string{p.NameID, p.SessionIndex}
	}
	for _, c := range []struct{ app, id, endpoint string }{
		{"mellon-app", mellonApp, mellonSLO},
		{"pysaml2-app", pyApp, m.pySPURL + "/slo/soap"},
	} {
		checkLeg(t, c.app, legs2[c.id], "soap")
		if l := legs2[c.id]; l != nil && l.Sent != "" {
			m.checkSentLogoutRequest(c.app, l, c.endpoint, issuedTo[c.id][0], issuedTo[c.id][1], certFiles)
		}
	}
	if l := legs2[mellonApp]; l != nil && l.Received != "" {
		t.Logf("mellon's SOAP answer:\n%s", l.Received)
	}
	if len(up2) != 1 {
		t.Errorf("want one upstream leg (the SimpleSAMLphp IdP), got %d", len(up2))
	} else {
		checkLeg(t, "upstream IdP", up2[0], "redirect")
	}
	if len(lo2.Legs) != 3 {
		t.Errorf("want 3 legs (mellon-app, pysaml2-app, the IdP), got %d", len(lo2.Legs))
	}
	if lo2.Outcome != "success" {
		t.Errorf("outcome %q, want success", lo2.Outcome)
	}
	m.reportLogs(mark)
}
