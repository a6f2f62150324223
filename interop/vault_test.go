package interop

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// signMark is how many Transit sign requests Vault has seen so far (0 with local keys): pass it
// to requireSignedBy after a flow.
func (e *env) signMark() int {
	e.t.Helper()
	if e.vault == nil {
		return 0
	}
	return len(e.vault.Signs(e.t))
}

// requireSignedBy checks, when the broker's keys are in Vault, that since mark the broker signed
// at least min times, every time with tenant slug's own Transit key (the key name is the
// configured prefix + the tenant's ID) and with SHA-256, and that Vault answered every one. It
// is a no-op with local keys.
func (e *env) requireSignedBy(mark int, slug string, min int) {
	e.t.Helper()
	if e.vault == nil {
		return
	}
	status, body := e.api(http.MethodGet, "/api/v1/tenants/"+slug, nil)
	var tenant struct {
		ID string `json:"id"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &tenant) != nil || tenant.ID == "" {
		e.t.Fatalf("GET tenant %s: %d %s", slug, status, body)
	}
	want := "broker-" + tenant.ID
	signs := e.vault.Signs(e.t)[mark:]
	if len(signs) < min {
		e.t.Errorf("tenant %s: %d Transit signatures since the mark, want at least %d", slug, len(signs), min)
	}
	var keys []string
	for _, s := range signs {
		keys = append(keys, s.Key+"/"+s.HashAlgorithm)
		if s.Key != want || !s.OK || s.HashAlgorithm != "sha2-256" {
			e.t.Errorf("tenant %s: a Transit signature with key %q, %s (answered: %v); want key %q, sha2-256",
				slug, s.Key, s.HashAlgorithm, s.OK, want)
		}
	}
	e.t.Logf("tenant %s: %d signatures through Vault Transit: %s", slug, len(signs), strings.Join(keys, " "))
}

// TestVaultOutage: the broker keeps its keys in a Vault server with file storage, and Vault goes
// away twice mid-run: first sealed, then stopped (the process killed) and started again. While it
// is away, /readyz says signing is unavailable; a new browser trying to sign in gets the broker's
// 503 page with an error ID that the broker's log carries; the operator ending a live session
// still gets a complete logout record, whose app legs say signing_unavailable and whose outcome is
// failed (no app was told, and the broker says so). Once Vault is back, the same broker process —
// never restarted — signs again with the same key: /readyz is ready, the new browser signs in,
// and both logout records are still there.
func TestVaultOutage(t *testing.T) {
	a := setupAcmeKeys(t, vaultFileKeys)
	pyLogin := flowStepArg{"pysaml2-sp", a.pySPURL + "/login", a.pySPURL + "/status"}
	certsBefore := a.idpSigningCerts("before")
	var records []string
	for _, away := range []struct {
		name       string
		stop, back func(testing.TB)
		says       string // in the diagnosis of a leg that could not be signed
	}{
		{"sealed", a.vault.Seal, a.vault.Unseal, "Vault answered HTTP 503: Vault is sealed"},
		{"stopped", a.vault.Stop, a.vault.Restart, "cannot reach Vault"},
	} {
		t.Logf("---- Vault %s", away.name)
		// A live session at both apps, from a new browser each round.
		os.Remove(filepath.Join(a.state, "browser-cookies.json"))
		a.signInBoth()
		var sessions struct {
			Sessions []apiSession `json:"sessions"`
		}
		a.apiJSON(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/sessions", http.StatusOK, &sessions)
		if len(sessions.Sessions) != 1 || len(sessions.Sessions[0].Apps) != 2 {
			t.Fatalf("want one live session with both apps, got %+v", sessions.Sessions)
		}
		sess := sessions.Sessions[0]

		away.stop(t)
		a.requireReadyz(http.StatusServiceUnavailable, "signing keys unavailable")

		// ---- 1. a new browser cannot sign in: the 503 page with an error ID
		res := a.browse("student", "studentpass", pyLogin)
		s := &res.Steps[0]
		page := s.finalPage()
		id := errorIDRE.FindStringSubmatch(page)
		if s.finalStatus() != http.StatusServiceUnavailable || id == nil || !strings.Contains(page, "Signing is unavailable") {
			t.Fatalf("sign-in while Vault is %s: want the broker's 503 page with an error ID, got %d at %s:\n%s",
				away.name, s.finalStatus(), s.finalURL(), truncate(page, 1500))
		}
		if !strings.HasPrefix(s.finalURL(), a.tenantURL("")) {
			t.Errorf("the 503 came from %s, want the broker", s.finalURL())
		}
		log, err := os.ReadFile(filepath.Join(a.state, "logs", "broker.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), id[1]) {
			t.Errorf("the error ID %s the user sees is not in the broker's log", id[1])
		}
		var py pyAppStatus
		stepStatus(t, s, &py)
		if py.Authenticated {
			t.Errorf("the pysaml2 SP says signed in while Vault is %s: %s", away.name, s.Status.Body)
		}

		// ---- 2. the operator ends the live session: a complete record, the legs say why
		var lo apiLogout
		a.apiJSON(http.MethodDelete, "/api/v1/tenants/"+tenantSlug+"/sessions/"+url.PathEscape(sess.ID), http.StatusOK, &lo)
		if lo.ID == "" || lo.State != "finished" || lo.Outcome != "failed" {
			t.Errorf("logout record: want an id, state finished, outcome failed; got %q %q %q", lo.ID, lo.State, lo.Outcome)
		}
		appLegs := 0
		for _, l := range lo.Legs {
			t.Logf("leg %s (%s): channel %s state %s error_class %q diagnosis %q", l.Target, l.Kind, l.Channel, l.State, l.ErrorClass, l.Diagnosis)
			if l.Kind != "app" {
				continue
			}
			appLegs++
			if l.ErrorClass != "signing_unavailable" || l.State != "done" || !strings.Contains(l.Diagnosis, away.says) || strings.Contains(l.Diagnosis, "\n") {
				t.Errorf("leg %s: error_class %q state %q diagnosis %q; want signing_unavailable, done, one line saying %q",
					l.Target, l.ErrorClass, l.State, l.Diagnosis, away.says)
			}
		}
		if appLegs != 2 {
			t.Errorf("want a leg for each of the 2 apps, got %d", appLegs)
		}
		records = append(records, lo.ID)
		// The broker session is over all the same.
		a.apiJSON(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/sessions", http.StatusOK, &sessions)
		for _, live := range sessions.Sessions {
			if live.ID == sess.ID {
				t.Errorf("session %s still live after DELETE while Vault is %s", sess.ID, away.name)
			}
		}

		// ---- 3. Vault is back: the same broker process signs again, no restart
		away.back(t)
		a.requireReadyz(http.StatusOK, "")
		mark := a.signMark()
		res = a.browse("student", "studentpass", pyLogin)
		stepStatus(t, &res.Steps[0], &py)
		if !py.Authenticated || py.Session == nil || py.Session.IdP != a.brokerIdP.EntityID {
			t.Fatalf("sign-in after Vault came back: want authenticated by the broker, got %s\nlast page: %s",
				res.Steps[0].statusBody(), res.Steps[0].finalPage())
		}
		a.requireSignedBy(mark, tenantSlug, 1)
		// Tidy up: end that session (Vault is back, so its legs are signed and sent).
		a.apiJSON(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/sessions", http.StatusOK, &sessions)
		for _, live := range sessions.Sessions {
			a.apiJSON(http.MethodDelete, "/api/v1/tenants/"+tenantSlug+"/sessions/"+url.PathEscape(live.ID), http.StatusOK, &apiLogout{})
		}
	}

	// Vault kept the key across the restart: the published certificate never changed.
	if after := a.idpSigningCerts("after"); after != certsBefore || after == "" {
		t.Errorf("the broker's IdP metadata certificates changed across the outages:\nbefore %s\nafter %s", certsBefore, after)
	}
	// No record lost: both outage logouts are still in the log, as recorded.
	for _, id := range records {
		var got apiLogout
		a.apiJSON(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/logouts/"+url.PathEscape(id), http.StatusOK, &got)
		if got.ID != id || got.Outcome != "failed" || len(got.Legs) != 3 {
			t.Errorf("logout %s read back: outcome %q, %d legs; want failed with 3 legs", id, got.Outcome, len(got.Legs))
		}
	}
}

// idpSigningCerts is the signing certificates in the broker's IdP metadata, PEM, one string.
func (a *acme) idpSigningCerts(label string) string {
	a.t.Helper()
	md, _ := a.fetchMetadata(a.tenantURL("/idp/metadata"), "broker-idp-metadata-"+label+".xml")
	if len(md.IDPSSO) == 0 {
		a.t.Fatal("the broker's IdP metadata has no IDPSSODescriptor")
	}
	certs, err := md.IDPSSO[0].signingCertsPEM()
	if err != nil {
		a.t.Fatal(err)
	}
	return string(bytes.Join(certs, nil))
}

var errorIDRE = regexp.MustCompile(`error ID to your administrator: <code>([0-9a-f]{16})</code>`)

// requireReadyz polls /readyz for up to 15 s until it answers status with body containing want.
func (e *env) requireReadyz(status int, want string) {
	e.t.Helper()
	var got int
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := e.client.Get(e.brokerURL + "/readyz")
		if err != nil {
			e.t.Fatalf("GET /readyz: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got, body = resp.StatusCode, string(b)
		if got == status && strings.Contains(body, want) {
			return
		}
	}
	e.t.Fatalf("/readyz: %d %q, want %d with %q", got, body, status, want)
}
