package interop

// A second tenant, "beta", next to acme in the same broker, whose upstream IdP is a pysaml2 IdP
// (peers/pysaml2/idp.py): unlike the SimpleSAMLphp IdP it sends and takes logout over SOAP, and it
// issues a persistent NameID (the user name). Its apps are a SimpleSAMLphp SP and a pysaml2 SP of
// their own, whose IdP is the broker's beta IdP.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const betaSlug = "beta"

// pyIdPSLO is the pysaml2 IdP's answer to /initslo?binding=soap: the broker's LogoutResponse as the
// IdP checked it.
type pyIdPSLO struct {
	Logout        string   `json:"logout"`
	HTTPStatus    int      `json:"http_status"`
	ContentType   string   `json:"content_type"`
	RequestID     string   `json:"request_id"`
	Destination   string   `json:"destination"`
	Issuer        string   `json:"issuer"`
	InResponseTo  string   `json:"in_response_to"`
	Status        string   `json:"status"`
	SubStatus     string   `json:"sub_status"`
	StatusMessage string   `json:"status_message"`
	Signed        bool     `json:"signed"`
	SignatureOK   bool     `json:"signature_ok"`
	Detail        string   `json:"detail"`
	Problems      []string `json:"problems"`
	SessionsEnded int      `json:"sessions_ended"`
	Error         string   `json:"error"`
	Body          string   `json:"body"`
}

// pyIdPSession is one session of the pysaml2 IdP's /status: the user and the SPs it signed in to.
type pyIdPSession struct {
	User string `json:"user"`
	SPs  map[string]struct {
		NameID       string `json:"name_id"`
		SessionIndex string `json:"session_index"`
	} `json:"sps"`
}

// getJSON GETs url without cookies and decodes its JSON answer (fatal unless 200 and JSON).
func (e *env) getJSON(u string, out any) []byte {
	e.t.Helper()
	resp, err := e.client.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, out) != nil {
		e.t.Fatalf("GET %s: HTTP %d, want 200 with JSON:\n%s", u, resp.StatusCode, truncate(string(b), 3000))
	}
	return b
}

// TestPySAML2IdPInitiatedSOAP: tenant beta signs in through a pysaml2 IdP. One browser signs in at
// acme's SimpleSAMLphp SP (password at acme's SimpleSAMLphp IdP), then at beta's SimpleSAMLphp SP
// (password form at the pysaml2 IdP) and at beta's pysaml2 SP (beta's broker session reused).
// Then the IdP starts a logout over SOAP, without any browser
// (/initslo?binding=soap&user=student): it POSTs a signed LogoutRequest to the broker's
// /t/beta/sp/slo/soap. The broker must end its session, log the user out of both apps over SOAP
// (both advertise it) and answer the IdP with a signed LogoutResponse, Success, which the IdP
// checks (xmlsec1 on the raw envelope against the broker's SP metadata, InResponseTo, Issuer).
// Both apps' own sessions must be gone, and the broker's record says trigger idp with two SOAP
// legs and no upstream leg. acme's session, and the user's session at acme's app, are untouched.
func TestPySAML2IdPInitiatedSOAP(t *testing.T) { withKeyBackends(t, testPySAML2IdPInitiatedSOAP) }

func testPySAML2IdPInitiatedSOAP(t *testing.T, kb keyBackend) {
	a := setupAcmeKeys(t, kb)
	e := a.env
	e.startPySAML2IdP("pysaml2-idp")

	// ---- tenant beta: the pysaml2 IdP as its connection, which trusts the broker's SP metadata
	e.create("/api/v1/tenants", map[string]any{"slug": betaSlug, "name": "Beta"})
	conn := e.create("/api/v1/tenants/"+betaSlug+"/connections", map[string]any{
		"provider": "generic", "name": "pysaml2-idp",
		"config": map[string]any{"metadata_url": e.pyIdPURL + "/metadata"},
	})
	connID, _ := conn["id"].(string)
	if connID == "" {
		t.Fatalf("connection without an id: %v", conn)
	}
	brokerSPMD := e.tenantURLIn(betaSlug, "/sp/metadata")
	brokerSP, rawSP := e.fetchMetadata(brokerSPMD, "broker-beta-sp-metadata.xml")
	spSOAP := e.tenantURLIn(betaSlug, "/sp/slo/soap")
	if !hasSOAPSLO(rawSP, spSOAP) || len(brokerSP.SPSSO) == 0 {
		t.Fatalf("the broker's SP metadata %s has no SOAP SingleLogoutService at %s:\n%s", brokerSPMD, spSOAP, rawSP)
	}
	e.trustAtPySAML2("pysaml2-idp", "broker.xml", brokerSPMD)

	idpMD := e.tenantURLIn(betaSlug, "/idp/metadata")
	brokerIdP, _ := e.fetchMetadata(idpMD, "broker-beta-idp-metadata.xml")
	if len(brokerIdP.IDPSSO) == 0 {
		t.Fatalf("%s has no IDPSSODescriptor", idpMD)
	}
	sspURL := e.startSSPSPAt("ssp-sp-beta", idpMD)
	pyURL := e.startPySAML2SPAt("pysaml2-sp-beta", idpMD)
	e.create("/api/v1/tenants/"+betaSlug+"/apps", map[string]any{"name": "ssp-app", "metadata_url": sspURL + "/module.php/saml/sp/metadata.php/default-sp"})
	e.create("/api/v1/tenants/"+betaSlug+"/apps", map[string]any{"name": "pysaml2-app", "metadata_url": pyURL + "/metadata"})
	apps := e.appIDsIn(betaSlug)
	sspApp, pyApp := apps["ssp-app"], apps["pysaml2-app"]
	if sspApp == "" || pyApp == "" {
		t.Fatalf("apps of tenant %s: %v, want ssp-app and pysaml2-app", betaSlug, apps)
	}
	broker := e.tenantURLIn(betaSlug, "")
	sspSOAP := sspURL + "/module.php/saml/sp/saml2-logout.php/default-sp"
	pySOAP := pyURL + "/slo/soap"

	// ---- 1. one browser signs in at acme's SimpleSAMLphp SP, then at both of beta's apps
	jar := filepath.Join(e.state, "browser-cookies.json")
	res := e.browseWithCookies(jar, "student", "studentpass",
		flowStepArg{"acme-ssp-sp", a.sspSPURL + "/app/login", a.sspSPURL + "/app/status"},
		flowStepArg{"beta-ssp-sp", sspURL + "/app/login", sspURL + "/app/status"},
		flowStepArg{"beta-pysaml2-sp", pyURL + "/login", pyURL + "/status"},
	)
	if len(res.Steps) != 3 {
		t.Fatalf("browse.py returned %d steps, want 3", len(res.Steps))
	}
	var acmeSSP sspAppStatus
	stepStatus(t, &res.Steps[0], &acmeSSP)
	if !acmeSSP.Authenticated || acmeSSP.IdP != a.brokerIdP.EntityID {
		t.Fatalf("acme's SimpleSAMLphp SP /app/status after sign-in: want authenticated by the broker %s, got %s",
			a.brokerIdP.EntityID, res.Steps[0].Status.Body)
	}
	var acmeBefore struct {
		Sessions []apiSession `json:"sessions"`
	}
	e.apiJSON(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/sessions", http.StatusOK, &acmeBefore)
	if len(acmeBefore.Sessions) != 1 {
		t.Fatalf("want one live broker session in %s, got %+v", tenantSlug, acmeBefore.Sessions)
	}
	s1 := &res.Steps[1]
	if s1.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s1.Name, s1.Error, s1.finalPage())
	}
	s1.requireHops(t,
		hop{"GET", sspURL + "/app/login"},
		hop{"", broker + "/idp/sso"},
		hop{"GET", e.pyIdPURL + "/sso"},
		hop{"POST", e.pyIdPURL + "/login"},
		hop{"POST", broker + "/sp/acs"},
		hop{"POST", sspURL + "/module.php/saml/sp/saml2-acs.php/default-sp"},
	)
	if n := len(s1.PasswordForms); n != 1 || !strings.HasPrefix(s1.PasswordForms[0].URL, e.pyIdPURL+"/") {
		t.Errorf("step %q: want exactly one password form, at the pysaml2 IdP %s; got %d:\n%s", s1.Name, e.pyIdPURL, n, s1.describe())
	}
	var upNameID map[string]string
	if up := findSAML(s1, "SAMLResponse", "Response", broker+"/sp/acs"); up != nil {
		upNameID = nameIDParts(up.XML)
	}
	t.Logf("the pysaml2 IdP issued the broker the NameID %v", upNameID)
	var ssp sspAppStatus
	stepStatus(t, s1, &ssp)
	if !ssp.Authenticated || ssp.IdP != brokerIdP.EntityID {
		t.Fatalf("SimpleSAMLphp SP /app/status after sign-in: want authenticated by the broker %s, got %s", brokerIdP.EntityID, s1.Status.Body)
	}
	s2 := &res.Steps[2]
	var py pyAppStatus
	stepStatus(t, s2, &py)
	if !py.Authenticated || py.Session == nil || py.Session.IdP != brokerIdP.EntityID {
		t.Fatalf("pysaml2 SP /status after sign-in: want authenticated by the broker %s, got %s", brokerIdP.EntityID, s2.Status.Body)
	}
	if n := len(s2.PasswordForms); n != 0 {
		t.Errorf("step %q: %d password form(s); the broker session should have been reused:\n%s", s2.Name, n, s2.describe())
	}

	var sessions struct {
		Sessions []apiSession `json:"sessions"`
	}
	e.apiJSON(http.MethodGet, "/api/v1/tenants/"+betaSlug+"/sessions", http.StatusOK, &sessions)
	if len(sessions.Sessions) != 1 || len(sessions.Sessions[0].Apps) != 2 {
		t.Fatalf("want exactly one live broker session in %s with both apps, got %+v", betaSlug, sessions.Sessions)
	}
	sess := sessions.Sessions[0]
	if sess.User != "student" || sess.ConnectionID != connID {
		t.Errorf("broker session %s: user %q connection %q, want student (the pysaml2 IdP's persistent NameID) and %s",
			sess.ID, sess.User, sess.ConnectionID, connID)
	}
	issued := map[string][2]string{}
	for _, p := range sess.Apps {
		issued[p.AppID] = [2]string{p.NameID, p.SessionIndex}
	}
	if issued[sspApp] != [2]string{ssp.NameID, ssp.SessionIndex} || issued[pyApp] != [2]string{py.Session.NameID, py.Session.SessionIndex} {
		t.Errorf("the broker recorded %v, the apps hold ssp-app %q %q, pysaml2-app %q %q",
			issued, ssp.NameID, ssp.SessionIndex, py.Session.NameID, py.Session.SessionIndex)
	}
	var idpSessions map[string]pyIdPSession
	e.getJSON(e.pyIdPURL+"/status", &idpSessions)
	if len(idpSessions) != 1 {
		t.Fatalf("pysaml2 IdP /status: want one session (student, signed in to the broker), got %+v", idpSessions)
	}
	for _, is := range idpSessions {
		if is.User != "student" || len(is.SPs) != 1 {
			t.Fatalf("pysaml2 IdP session: want user student with one SP (the broker), got %+v", is)
		}
		if _, ok := is.SPs[brokerSP.EntityID]; !ok {
			t.Fatalf("pysaml2 IdP session: the broker %s is not among its SPs %+v", brokerSP.EntityID, is.SPs)
		}
	}

	// ---- 2. the IdP logs the user out over SOAP, no browser involved
	brokerMark := fileSize(filepath.Join(e.state, "logs", "broker.log"))
	var out pyIdPSLO
	signs := e.signMark() // from here on only beta signs: its apps' requests, its answer to the IdP
	raw := e.getJSON(e.pyIdPURL+"/initslo?binding=soap&user=student", &out)
	t.Logf("pysaml2 IdP /initslo?binding=soap: %s", raw)
	if out.Destination != spSOAP {
		t.Errorf("the IdP sent its LogoutRequest to %q, want the broker's %s", out.Destination, spSOAP)
	}
	if out.Error != "" || out.HTTPStatus != http.StatusOK {
		t.Errorf("the broker's answer to the IdP: HTTP %d %s, error %q:\n%s", out.HTTPStatus, out.ContentType, out.Error, out.Body)
	}
	if !out.Signed || !out.SignatureOK {
		t.Errorf("the IdP did not find the broker's LogoutResponse validly signed: signed %v signature_ok %v (%s)", out.Signed, out.SignatureOK, out.Detail)
	}
	if out.InResponseTo != out.RequestID || out.RequestID == "" {
		t.Errorf("the broker's LogoutResponse answers %q, want the IdP's request %q", out.InResponseTo, out.RequestID)
	}
	if out.Issuer != brokerSP.EntityID {
		t.Errorf("the broker's LogoutResponse has Issuer %q, want its SP entity ID %s", out.Issuer, brokerSP.EntityID)
	}
	checkPlainSuccess(t, "pysaml2 IdP", out.Status, out.SubStatus)
	if out.Logout != "success" || len(out.Problems) != 0 || out.SessionsEnded != 1 {
		t.Errorf("pysaml2 IdP: want the broker's LogoutResponse accepted and its own session ended; got logout %q problems %v sessions_ended %d",
			out.Logout, out.Problems, out.SessionsEnded)
	}
	// An independent check of the signature on the bytes the IdP received (SOAP envelope).
	respFile := filepath.Join(e.state, "pysaml2", "pysaml2-idp", "last_soap_response.xml")
	if body, err := os.ReadFile(respFile); err != nil {
		t.Errorf("the broker's SOAP answer as the IdP received it: %v", err)
	} else {
		t.Logf("the broker's SOAP answer to the IdP:\n%s", body)
		certs, err := brokerSP.SPSSO[0].signingCertsPEM()
		if err != nil {
			t.Fatalf("broker SP metadata: %v", err)
		}
		ok := false
		var why string
		for i, c := range certs {
			f := filepath.Join(e.state, fmt.Sprintf("broker-beta-sp-signing-%d.crt", i))
			if err := os.WriteFile(f, c, 0o644); err != nil {
				t.Fatal(err)
			}
			if ok, why = e.xmlsecVerify(f, respFile); ok {
				break
			}
		}
		if !ok {
			t.Errorf("xmlsec1 rejects the broker's LogoutResponse with its SP metadata certificate:\n%s", why)
		} else {
			t.Logf("xmlsec1: the broker's SOAP LogoutResponse verifies with its SP metadata certificate")
		}
	}
	idpSessions = nil // a fresh map: Unmarshal would merge into the old one
	e.getJSON(e.pyIdPURL+"/status", &idpSessions)
	if len(idpSessions) != 0 {
		t.Errorf("pysaml2 IdP still has sessions after its logout: %+v", idpSessions)
	}

	// ---- 3. both apps' own sessions, with the browser's cookies
	after := e.browseWithCookies(jar, "student", "studentpass",
		flowStepArg{"beta-ssp-sp-status", sspURL + "/app/status", sspURL + "/app/status"},
		flowStepArg{"beta-pysaml2-sp-status", pyURL + "/status", pyURL + "/status"},
		flowStepArg{"acme-ssp-sp-status", a.sspSPURL + "/app/status", a.sspSPURL + "/app/status"},
	)
	if len(after.Steps) != 3 {
		t.Fatalf("browse.py returned %d steps, want 3", len(after.Steps))
	}
	var sspAfter sspAppStatus
	stepStatus(t, &after.Steps[0], &sspAfter)
	if sspAfter.Authenticated {
		t.Errorf("SimpleSAMLphp SP still signed in after the IdP's SOAP logout: %s", after.Steps[0].Status.Body)
	}
	var pyAfter pyAppStatus
	stepStatus(t, &after.Steps[1], &pyAfter)
	if pyAfter.Authenticated || pyAfter.AllSessions != 0 {
		t.Errorf("pysaml2 SP still has a session after the IdP's SOAP logout: %s", after.Steps[1].Status.Body)
	}
	e.checkSSPLogoutLog("ssp-sp-beta")
	e.checkPySAML2LogoutEventsAt(pyURL, 1)
	// acme is another tenant: its session and its app's session stay.
	var acmeAfter sspAppStatus
	stepStatus(t, &after.Steps[2], &acmeAfter)
	if !acmeAfter.Authenticated || acmeAfter.NameID != acmeSSP.NameID {
		t.Errorf("acme's SimpleSAMLphp SP lost its session in beta's logout: %s", after.Steps[2].Status.Body)
	}
	var acmeSessions struct {
		Sessions []apiSession `json:"sessions"`
	}
	e.apiJSON(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/sessions", http.StatusOK, &acmeSessions)
	if len(acmeSessions.Sessions) != 1 || acmeSessions.Sessions[0].ID != acmeBefore.Sessions[0].ID {
		t.Errorf("acme's broker sessions after beta's logout: %+v, want its one session %s still live", acmeSessions.Sessions, acmeBefore.Sessions[0].ID)
	}
	if strings.Contains(a.sspLog("ssp-sp"), "saml.LogoutStore: Logging out of session") {
		t.Errorf("acme's SimpleSAMLphp SP was sent a logout in beta's logout (its log has saml.LogoutStore: Logging out of session)")
	}

	// ---- 4. the broker's record: trigger idp (the connection), two SOAP legs, no upstream leg
	lo := e.logoutRecordIn(betaSlug, "student", "idp", connID)
	legs, up := legsByTarget(t, lo)
	certFiles := e.certFiles(brokerIdP.IDPSSO[0], "broker-beta-idp-signing")
	for _, c := range []struct{ app, id, endpoint string }{
		{"ssp-app", sspApp, sspSOAP},
		{"pysaml2-app", pyApp, pySOAP},
	} {
		checkLeg(t, c.app, legs[c.id], "soap")
		if l := legs[c.id]; l != nil && l.Sent != "" {
			e.checkSentLogoutRequest(c.app, l, c.endpoint, issued[c.id][0], issued[c.id][1], certFiles)
		}
	}
	if len(up) != 0 {
		t.Errorf("the IdP started the logout: want no upstream leg, got %+v", up)
	}
	if len(lo.Legs) != 2 {
		t.Errorf("want 2 legs (the two apps), got %d", len(lo.Legs))
	}
	if lo.Outcome != "success" {
		t.Errorf("outcome %q, want success", lo.Outcome)
	}
	var ended struct {
		Sessions []apiSession `json:"sessions"`
	}
	e.apiJSON(http.MethodGet, "/api/v1/tenants/"+betaSlug+"/sessions", http.StatusOK, &ended)
	if len(ended.Sessions) != 0 {
		t.Errorf("live sessions in %s after the IdP's logout: %+v, want none", betaSlug, ended.Sessions)
	}
	b, _ := os.ReadFile(filepath.Join(e.state, "logs", "broker.log"))
	if brokerMark <= len(b) {
		b = b[brokerMark:]
	}
	t.Logf("broker log during the logout:\n%s", strings.Join(logLines(string(b), "logout", "slo", "level=WARN", "level=ERROR"), "\n"))
	t.Logf("pysaml2 IdP events: %s", e.pyIdPEvents())
	e.requireSignedBy(signs, betaSlug, 3)
}

// pyIdPEvents is the pysaml2 IdP's /events (for the test log).
func (e *env) pyIdPEvents() string {
	resp, err := e.client.Get(e.pyIdPURL + "/events")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return truncate(string(b), 6000)
}

// certFiles writes the role's signing certificates (from metadata) to files named prefix-N.crt.
func (e *env) certFiles(role mdRole, prefix string) []string {
	e.t.Helper()
	certs, err := role.signingCertsPEM()
	if err != nil {
		e.t.Fatalf("metadata: %v", err)
	}
	var files []string
	for i, c := range certs {
		f := filepath.Join(e.state, fmt.Sprintf("%s-%d.crt", prefix, i))
		if err := os.WriteFile(f, c, 0o644); err != nil {
			e.t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

func fileSize(path string) int {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return int(st.Size())
}
