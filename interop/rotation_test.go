package interop

// Key rotation across the overlap, end to end: the broker (BROKER_KEY_ROTATION_OVERLAP=1m) rotates
// acme's signing key through the admin API; the peers refresh the broker's metadata the way real
// deployments do; the old key keeps signing until the activation time, the new one signs from then
// on, and the apps and the upstream IdP, having refreshed, accept both.

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rotationOverlap is the broker's BROKER_KEY_ROTATION_OVERLAP in TestKeyRotation (the minimum).
const rotationOverlap = time.Minute

// switchSlack is how late the switch (and the retirement) may be seen by the test: the broker
// computes key states on each request, so any lateness is the test's polling and the machine.
const switchSlack = 10 * time.Second

// apiKey is one entry of GET /api/v1/tenants/{slug}/keys (keys.KeyInfo).
type apiKey struct {
	Backend     string     `json:"backend"`
	Version     int        `json:"version"`
	State       string     `json:"state"`
	SHA256      string     `json:"sha256_fingerprint"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiresAt   *time.Time `json:"retires_at"`
}

func (k apiKey) String() string {
	s := fmt.Sprintf("%s v%d %s %.12s activates %s", k.Backend, k.Version, k.State, k.SHA256, k.ActivatesAt.Format(time.RFC3339Nano))
	if k.RetiresAt != nil {
		s += " retires " + k.RetiresAt.Format(time.RFC3339Nano)
	}
	return s
}

// listKeys is GET .../keys, without logging (it is polled).
func (a *acme) listKeys() []apiKey {
	a.t.Helper()
	code, b := a.api(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/keys", nil)
	var out struct {
		Keys []apiKey `json:"keys"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		a.t.Fatalf("GET keys: HTTP %d %s", code, b)
	}
	return out.Keys
}

// keyStates is "v1 current, v2 next" for a failure message or the log.
func keyStates(ks []apiKey) string {
	var parts []string
	for _, k := range ks {
		parts = append(parts, k.String())
	}
	return strings.Join(parts, "; ")
}

// publishedCerts fetches both of the broker's metadata documents and returns the signing
// certificates each publishes, in order (DER), by document ("idp", "sp"); they must be the same.
func (a *acme) publishedCerts(label string) [][]byte {
	t := a.t
	t.Helper()
	var docs [2][][]byte
	for i, d := range []struct{ kind, url string }{{"idp", a.tenantURL("/idp/metadata")}, {"sp", a.tenantURL("/sp/metadata")}} {
		md, _ := a.fetchMetadata(d.url, fmt.Sprintf("broker-%s-metadata-%s.xml", d.kind, label))
		roles := md.IDPSSO
		if d.kind == "sp" {
			roles = md.SPSSO
		}
		if len(roles) != 1 {
			t.Fatalf("%s: %d %s role descriptors, want 1", d.url, len(roles), d.kind)
		}
		pems, err := roles[0].signingCertsPEM()
		if err != nil {
			t.Fatalf("%s: %v", d.url, err)
		}
		for _, p := range pems {
			b, _ := pem.Decode(p)
			docs[i] = append(docs[i], b.Bytes)
		}
	}
	if fps(docs[0]) != fps(docs[1]) {
		t.Errorf("%s: the IdP metadata lists signing certificates %s, the SP metadata %s: want the same", label, fps(docs[0]), fps(docs[1]))
	}
	return docs[0]
}

func fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// fps is the certificates' SHA-256 fingerprints, shortened, in order.
func fps(certs [][]byte) string {
	var out []string
	for _, c := range certs {
		out = append(out, fingerprint(c)[:12])
	}
	return "[" + strings.Join(out, " ") + "]"
}

// requirePublished: both metadata documents list exactly the keys want, in this order.
func (a *acme) requirePublished(label string, want ...apiKey) [][]byte {
	a.t.Helper()
	got := a.publishedCerts(label)
	var wantFPs []string
	for _, k := range want {
		wantFPs = append(wantFPs, k.SHA256[:12])
	}
	if fps(got) != "["+strings.Join(wantFPs, " ")+"]" {
		a.t.Errorf("%s: both metadata documents list signing certificates %s, want %v (%s)", label, fps(got), wantFPs, keyStates(want))
	} else {
		a.t.Logf("%s: both metadata documents list %s", label, fps(got))
	}
	return got
}

// writeCert writes a DER certificate as PEM into the state directory.
func (a *acme) writeCert(name string, der []byte) string {
	a.t.Helper()
	f := filepath.Join(a.state, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		a.t.Fatal(err)
	}
	return f
}

// certOf returns the published certificate of key k among certs.
func certOf(t *testing.T, certs [][]byte, k apiKey) []byte {
	t.Helper()
	for _, c := range certs {
		if fingerprint(c) == k.SHA256 {
			return c
		}
	}
	t.Fatalf("no published certificate for key %s among %s", k, fps(certs))
	return nil
}

// signInFresh signs a new browser (cookie jar jar) in at the SimpleSAMLphp SP (password at the
// IdP), then at the pysaml2 SP (broker session reused); both apps must say signed in by the broker.
func (a *acme) signInFresh(label, jar string) (*flowResult, sspAppStatus) {
	t := a.t
	t.Helper()
	res := a.browseWithCookies(jar, "student", "studentpass",
		flowStepArg{label + "-ssp-sp", a.sspSPURL + "/app/login", a.sspSPURL + "/app/status"},
		flowStepArg{label + "-pysaml2-sp", a.pySPURL + "/login", a.pySPURL + "/status"},
	)
	if len(res.Steps) != 2 {
		t.Fatalf("browse.py returned %d steps, want 2", len(res.Steps))
	}
	var ssp sspAppStatus
	stepStatus(t, &res.Steps[0], &ssp)
	if !ssp.Authenticated || ssp.IdP != a.brokerIdP.EntityID {
		t.Fatalf("%s: the SimpleSAMLphp SP does not say signed in by the broker: %s\nlast page: %s",
			label, res.Steps[0].statusBody(), res.Steps[0].finalPage())
	}
	var py pyAppStatus
	stepStatus(t, &res.Steps[1], &py)
	if !py.Authenticated || py.Session == nil || py.Session.IdP != a.brokerIdP.EntityID {
		t.Fatalf("%s: the pysaml2 SP does not say signed in by the broker: %s\nlast page: %s",
			label, res.Steps[1].statusBody(), res.Steps[1].finalPage())
	}
	if n := len(res.Steps[0].PasswordForms); n != 1 {
		t.Errorf("%s: %d password forms at the SimpleSAMLphp SP's sign-in, want 1 (a new browser)", label, n)
	}
	t.Logf("%s: a new browser is signed in at both apps", label)
	return res, ssp
}

// staleSignIn signs a new browser in at the pysaml2 SP at base (one that never refreshed the
// broker's metadata): whether it says signed in, and what happened (its /status, or the error it
// recorded for the Response).
func (a *acme) staleSignIn(base string) (bool, string) {
	t := a.t
	t.Helper()
	res := a.browse("student", "studentpass", flowStepArg{"stale-pysaml2-sp", base + "/login", base + "/status"})
	s := &res.Steps[0]
	var py pyAppStatus
	if s.Status == nil || json.Unmarshal(s.Status.JSON, &py) != nil {
		t.Fatalf("the stale pysaml2 SP: no /status answer:\n%s", s.describe())
	}
	if py.Authenticated {
		return true, s.statusBody()
	}
	resp, err := a.client.Get(base + "/events")
	if err != nil {
		t.Fatalf("GET %s/events: %v", base, err)
	}
	defer resp.Body.Close()
	var events []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&events); err != nil {
		t.Fatalf("GET %s/events: %v", base, err)
	}
	detail := fmt.Sprintf("final page %d %s", s.finalStatus(), s.finalURL())
	for _, e := range events {
		if e["dir"] == "error" {
			detail = fmt.Sprintf("%s; the app's error at %v: %v", detail, e["path"], e["error"])
		}
	}
	return false, detail
}

// sessionUser is the broker's user of the live session that issued nameID to an app.
func (a *acme) sessionUser(nameID string) string {
	a.t.Helper()
	var sessions struct {
		Sessions []apiSession `json:"sessions"`
	}
	a.apiJSON(http.MethodGet, "/api/v1/tenants/"+tenantSlug+"/sessions", http.StatusOK, &sessions)
	for _, s := range sessions.Sessions {
		for _, app := range s.Apps {
			if app.NameID == nameID {
				return s.User
			}
		}
	}
	a.t.Fatalf("no live broker session issued NameID %s", nameID)
	return ""
}

// requireResponsesSignedBy checks every Response the broker posted to an app in res (at least one
// per app): xmlsec1 verifies it with the certificate file good and rejects it with bad.
func (a *acme) requireResponsesSignedBy(label string, res *flowResult, good, bad string) {
	t := a.t
	t.Helper()
	dir := filepath.Join(a.state, "responses-"+label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	perApp := map[string]int{}
	for _, s := range res.Steps {
		for _, m := range s.SAML {
			if m.Binding != "post" || m.Param != "SAMLResponse" || !strings.HasPrefix(m.From, a.tenantURL("/")) {
				continue
			}
			app := "pysaml2-sp"
			if strings.HasPrefix(m.URL, a.sspSPURL+"/") {
				app = "ssp-sp"
			}
			perApp[app]++
			xmlBytes, err := base64.StdEncoding.DecodeString(m.Raw)
			if err != nil {
				t.Fatalf("SAMLResponse to %s is not base64: %v", m.URL, err)
			}
			f := filepath.Join(dir, fmt.Sprintf("%s-%d.xml", app, perApp[app]))
			if err := os.WriteFile(f, xmlBytes, 0o644); err != nil {
				t.Fatal(err)
			}
			if ok, out := a.xmlsecVerify(good, f); !ok {
				t.Errorf("%s: the Response to %s does not verify with %s:\n%s", label, app, filepath.Base(good), out)
			}
			if ok, _ := a.xmlsecVerify(bad, f); ok {
				t.Errorf("%s: the Response to %s verifies with %s too: signed by the wrong key?", label, app, filepath.Base(bad))
			}
		}
	}
	if perApp["ssp-sp"] == 0 || perApp["pysaml2-sp"] == 0 {
		t.Errorf("%s: want a broker Response to each app in the browser trace, got %v", label, perApp)
	}
	t.Logf("%s: xmlsec1: the broker's Responses %v verify with %s only (not %s)", label, perApp, filepath.Base(good), filepath.Base(bad))
}

// requireKeyVersion checks, with keys in Vault, that every Transit signature since mark (at least
// min) named key_version v, besides requireSignedBy's checks (the tenant's key, SHA-256).
func (a *acme) requireKeyVersion(label string, mark, min, v int) {
	t := a.t
	t.Helper()
	if a.vault == nil {
		return
	}
	a.requireSignedBy(mark, tenantSlug, min)
	var got []int
	for _, s := range a.vault.Signs(t)[mark:] {
		got = append(got, s.KeyVersion)
		if s.KeyVersion != v {
			t.Errorf("%s: a Transit signature with key_version %d, want %d", label, s.KeyVersion, v)
		}
	}
	t.Logf("%s: Vault's audit log: %d signatures, key_version %v", label, len(got), got)
}

// verifyRedirectSignature checks the query signature (RSA-SHA256) of a Redirect-binding message
// the browser carried to a URL starting with prefix, over the raw query octets (SAMLRequest or
// SAMLResponse, RelayState, SigAlg as sent), with the certificate der.
func verifyRedirectSignature(s *flowStep, prefix string, der []byte) error {
	for _, r := range s.Requests {
		if !strings.HasPrefix(r.URL, prefix+"?") {
			continue
		}
		raw := map[string]string{}
		for _, kv := range strings.Split(r.URL[len(prefix)+1:], "&") {
			k, _, _ := strings.Cut(kv, "=")
			raw[k] = kv
		}
		msg := raw["SAMLRequest"]
		if msg == "" {
			msg = raw["SAMLResponse"]
		}
		signed := msg
		if raw["RelayState"] != "" {
			signed += "&" + raw["RelayState"]
		}
		signed += "&" + raw["SigAlg"]
		sigB64, err := url.QueryUnescape(strings.TrimPrefix(raw["Signature"], "Signature="))
		if err != nil {
			return err
		}
		sig, err := base64.StdEncoding.DecodeString(sigB64)
		if err != nil {
			return fmt.Errorf("Signature is not base64: %w", err)
		}
		if alg, _ := url.QueryUnescape(strings.TrimPrefix(raw["SigAlg"], "SigAlg=")); alg != sigRSASHA256 {
			return fmt.Errorf("SigAlg %q, want RSA-SHA256", alg)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("certificate key is %T, want RSA", cert.PublicKey)
		}
		h := sha256.Sum256([]byte(signed))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
	}
	return fmt.Errorf("the browser sent nothing to %s", prefix)
}

// waitForState polls GET keys until the key of version v (on backend) is in state, and returns
// when it was seen so and the keys then. Fatal when it is not so by deadline.
func (a *acme) waitForState(backend string, v int, state string, deadline time.Time) (time.Time, []apiKey) {
	t := a.t
	t.Helper()
	var ks []apiKey
	for {
		ks = a.listKeys()
		now := time.Now()
		for _, k := range ks {
			if k.Backend == backend && k.Version == v && k.State == state {
				return now, ks
			}
		}
		if now.After(deadline) {
			t.Fatalf("key v%d not %s by %s (now %s): %s", v, state, deadline.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), keyStates(ks))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKeyRotation: the broker (overlap 1m) rotates acme's signing key through the admin API while
// two apps (SimpleSAMLphp SP, pysaml2 SP) and the upstream SimpleSAMLphp IdP are in use.
//  1. A browser signs in at both apps; both metadata documents list one certificate (current).
//  2. POST .../keys/rotate: both metadata documents list the old (first) and the next certificate;
//     GET keys says current + next, the next one activating at the rotation + 1m, the old one
//     retiring at + 2m.
//  3. The peers refresh the broker's metadata: the SimpleSAMLphp IdP and SP re-fetch it into their
//     metadata files, the pysaml2 SP re-fetches and reloads it (POST /refresh-metadata).
//  4. Before the switch, a new browser signs in at both apps: the assertions are signed by the
//     old key (xmlsec1 with the old certificate, not with the new one; Vault: key_version old).
//  5. GET keys is polled until the next key is current: on time (not before its activates_at,
//     at most 10 s after). Metadata lists new (first), old. A new browser signs in at both apps
//     (which accept the new key, having refreshed): signed by the new key only. Logout at the
//     SimpleSAMLphp SP (Redirect) ends every session: the IdP accepts the broker's LogoutRequest
//     signed by the new key (it refreshed the broker's SP metadata), the pysaml2 SP the SOAP one;
//     outcome success, plain Success to the SP. The old certificate is still published (retiring).
//  6. At the old key's retires_at (rotation + 2m) it leaves both metadata documents.
//
// A third app (another pysaml2 SP) never refreshes: it accepts a sign-in before the switch and
// rejects the Response after it (pysaml2 SignatureError), as docs/keys.md warns.
//
// Both key backends run in parallel: the scenario is mostly waiting for the clock (about 2 min).
func TestKeyRotation(t *testing.T) {
	withKeyBackends(t, func(t *testing.T, kb keyBackend) {
		t.Parallel()
		testKeyRotation(t, kb)
	})
}

func testKeyRotation(t *testing.T, kb keyBackend) {
	start := time.Now()
	a := setupAcmeKeysEnv(t, kb, []string{"BROKER_KEY_ROTATION_OVERLAP=" + rotationOverlap.String()})
	// A third app that never refreshes the broker's metadata: another pysaml2 SP.
	staleURL := a.startPySAML2SPAt("pysaml2-stale", a.tenantURL("/idp/metadata"))
	a.create("/api/v1/tenants/"+tenantSlug+"/apps", map[string]any{"name": "pysaml2-stale-app", "metadata_url": staleURL + "/metadata"})
	sspApp := a.appIDs()["ssp-app"]

	// ---- 1. signed in at both apps; one key, published in both documents
	a.signInBoth()
	ks := a.listKeys()
	if len(ks) != 1 || ks[0].State != "current" {
		t.Fatalf("before the rotation: want one current key, got %s", keyStates(ks))
	}
	old := ks[0]
	oldCert := a.writeCert("broker-old.crt", certOf(t, a.requirePublished("before the rotation", old), old))
	t.Logf("setup and first sign-in: %v; the current key: %s", time.Since(start).Round(time.Millisecond), old)

	// ---- 2. rotation through the API
	var rotated struct {
		Keys []apiKey `json:"keys"`
	}
	before := time.Now()
	a.apiJSON(http.MethodPost, "/api/v1/tenants/"+tenantSlug+"/keys/rotate", http.StatusCreated, &rotated)
	after := time.Now()
	ks = a.listKeys()
	if len(ks) != 2 || ks[0].SHA256 != old.SHA256 || ks[0].State != "current" || ks[1].State != "next" {
		t.Fatalf("after the rotation: want the old key current and a next key, got %s", keyStates(ks))
	}
	if keyStates(rotated.Keys) != keyStates(ks) {
		t.Errorf("the rotation answered keys %s, GET keys then %s", keyStates(rotated.Keys), keyStates(ks))
	}
	next := ks[1]
	if next.Backend != old.Backend || next.Version <= old.Version {
		t.Errorf("the next key is %s, want a later version on the backend of %s", next, old)
	}
	if kb == vaultKeys && (next.Backend != "vault" || next.Version != old.Version+1) {
		t.Errorf("keys in Vault: the next key is %s, want Transit version %d", next, old.Version+1)
	}
	act := next.ActivatesAt
	if act.Before(before.Add(rotationOverlap).Add(-time.Second)) || act.After(after.Add(rotationOverlap).Add(time.Second)) {
		t.Errorf("the next key activates at %s, want the rotation (%s..%s) + %v", act.Format(time.RFC3339Nano),
			before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano), rotationOverlap)
	}
	retires := ks[0].RetiresAt
	if retires == nil || !retires.Equal(act.Add(rotationOverlap)) {
		t.Fatalf("the old key retires at %v, want its successor's activation %s + %v", retires, act.Format(time.RFC3339Nano), rotationOverlap)
	}
	t.Logf("rotated: %s", keyStates(ks))
	certs := a.requirePublished("after the rotation", old, next)
	newCert := a.writeCert("broker-new.crt", certOf(t, certs, next))

	// ---- 3. the peers refresh the broker's metadata
	a.trustAtSSP("ssp-idp", "broker.xml", a.tenantURL("/sp/metadata"))
	a.trustAtSSP("ssp-sp", "idp.xml", a.tenantURL("/idp/metadata"))
	resp, err := a.client.Post(a.pySPURL+"/refresh-metadata", "", nil)
	if err != nil {
		t.Fatalf("pysaml2 SP refresh: %v", err)
	}
	var refreshed struct {
		IdPSigningCerts map[string][]string `json:"idp_signing_certs"`
	}
	err = json.NewDecoder(resp.Body).Decode(&refreshed)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pysaml2 SP refresh: HTTP %d %v", resp.StatusCode, err)
	}
	if got := refreshed.IdPSigningCerts[a.brokerIdP.EntityID]; len(got) != 2 {
		t.Fatalf("the pysaml2 SP has %d signing certificates for the broker after its refresh, want 2: %v", len(got), refreshed.IdPSigningCerts)
	}
	t.Logf("peers refreshed the broker's metadata %v after the rotation", time.Since(after).Round(time.Millisecond))

	// ---- 4. before the switch: the old key signs
	mark := a.signMark()
	res, _ := a.signInFresh("before-switch", filepath.Join(a.state, "browser-before-switch.json"))
	if done := time.Now(); !done.Before(act) {
		t.Fatalf("the sign-in before the switch ended at %s, after the activation %s: the test ran too slowly to check the old key",
			done.Format(time.RFC3339Nano), act.Format(time.RFC3339Nano))
	}
	a.requireResponsesSignedBy("before-switch", res, oldCert, newCert)
	a.requireKeyVersion("before the switch", mark, 2, old.Version)
	if ok, detail := a.staleSignIn(staleURL); !ok {
		t.Errorf("before the switch, the app that did not refresh must still accept the broker (old key): %s", detail)
	}
	if ks = a.listKeys(); ks[1].State != "next" {
		t.Errorf("before the activation time: %s, want the new key still next", keyStates(ks))
	}

	// ---- 5. the switch, on time
	t.Logf("waiting %v for the activation at %s", time.Until(act).Round(time.Millisecond), act.Format(time.RFC3339Nano))
	seen, ks := a.waitForState(next.Backend, next.Version, "current", act.Add(switchSlack))
	if seen.Before(act) {
		t.Errorf("the new key was current at %s, before its activation %s", seen.Format(time.RFC3339Nano), act.Format(time.RFC3339Nano))
	}
	t.Logf("switch seen %v after the activation time: %s", seen.Sub(act).Round(time.Millisecond), keyStates(ks))
	if len(ks) != 2 || ks[0].SHA256 != old.SHA256 || ks[0].State != "retiring" {
		t.Errorf("after the switch: want the old key retiring, got %s", keyStates(ks))
	}
	a.requirePublished("after the switch", next, old)

	mark = a.signMark()
	jar := filepath.Join(a.state, "browser-after-switch.json")
	res, ssp := a.signInFresh("after-switch", jar)
	user := a.sessionUser(ssp.NameID)
	a.requireResponsesSignedBy("after-switch", res, newCert, oldCert)
	a.requireKeyVersion("after the switch, sign-in", mark, 2, next.Version)

	// SP-initiated logout at the SimpleSAMLphp SP, every message signed by the new key.
	mark = a.signMark()
	logs := a.markLogs()
	idpSLO := a.idpURL + "/saml2/idp/SingleLogoutService.php"
	sspSLO := a.sspSPURL + "/module.php/saml/sp/saml2-logout.php/default-sp"
	res = a.browseWithCookies(jar, "student", "studentpass",
		flowStepArg{"after-switch-ssp-sp-logout", a.sspSPURL + "/app/logout", a.sspSPURL + "/app/status"})
	s := &res.Steps[0]
	if s.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s.Name, s.Error, s.finalPage())
	}
	s.requireHops(t,
		hop{"GET", a.sspSPURL + "/app/logout"},
		hop{"GET", a.tenantURL("/idp/slo?")},
		hop{"GET", idpSLO + "?"},
		hop{"GET", a.tenantURL("/sp/slo?")},
		hop{"GET", sspSLO + "?"},
		hop{"GET", a.sspSPURL + "/app/loggedout"},
	)
	for _, m := range []struct{ what, prefix string }{
		{"the broker's LogoutRequest to the IdP", idpSLO},
		{"the broker's LogoutResponse to the SimpleSAMLphp SP", sspSLO},
	} {
		if err := verifyRedirectSignature(s, m.prefix, certOf(t, certs, next)); err != nil {
			t.Errorf("%s: the Redirect signature does not verify with the new certificate: %v", m.what, err)
		}
		if err := verifyRedirectSignature(s, m.prefix, certOf(t, certs, old)); err == nil {
			t.Errorf("%s: the Redirect signature verifies with the old certificate", m.what)
		}
	}
	if upResp := findSAML(s, "SAMLResponse", "LogoutResponse", a.tenantURL("/sp/slo")); upResp == nil {
		t.Errorf("no LogoutResponse from the IdP in the browser trace:\n%s", s.describe())
	} else if codes := statusCodes(upResp.XML); len(codes) == 0 || codes[0] != statusSuccess {
		t.Errorf("the IdP answered the broker's LogoutRequest (new key) with status %v, want Success:\n%s", codes, upResp.XML)
	}
	var out sspLoggedOut
	if s.Final == nil || json.Unmarshal([]byte(s.Final.Body), &out) != nil || !out.LogoutReturned || out.LogoutStatus == nil {
		t.Fatalf("the browser did not end at the SimpleSAMLphp SP's /app/loggedout with a LogoutResponse status:\n%s", s.finalPage())
	}
	checkPlainSuccess(t, "SimpleSAMLphp SP", out.LogoutStatus.Code, out.LogoutStatus.SubCode)
	// Both SimpleSAMLphp peers fetched the metadata before the switch (old certificate first):
	// they try the old key, then the new one, which verifies.
	a.reportLogs(logs, "Validation with key #0 failed with exception: Unable to validate signature")
	lo := a.logoutRecord(user, "app", sspApp)
	if lo.Outcome != "success" {
		t.Errorf("logout after the switch: outcome %q, want success", lo.Outcome)
	}
	legs, up := legsByTarget(t, lo)
	pyLeg := legs[a.appIDs()["pysaml2-app"]]
	checkLeg(t, "pysaml2-app", pyLeg, "soap")
	if len(up) != 1 {
		t.Errorf("want one upstream leg, got %d", len(up))
	} else {
		checkLeg(t, "upstream IdP", up[0], "redirect")
	}
	if pyLeg != nil && pyLeg.Sent != "" {
		f := filepath.Join(a.state, "after-switch-pysaml2-logoutrequest.xml")
		_ = os.WriteFile(f, []byte(pyLeg.Sent), 0o644)
		if ok, xo := a.xmlsecVerify(newCert, f); !ok {
			t.Errorf("the SOAP LogoutRequest to the pysaml2 SP does not verify with the new certificate:\n%s", xo)
		}
		if ok, _ := a.xmlsecVerify(oldCert, f); ok {
			t.Errorf("the SOAP LogoutRequest to the pysaml2 SP verifies with the old certificate")
		}
	}
	a.requireKeyVersion("after the switch, logout", mark, 3, next.Version)
	a.appSessionsAfter(jar)

	if now := time.Now(); now.Before(*retires) {
		a.requirePublished("after the logout, before the retirement", next, old)
		if ks = a.listKeys(); ks[0].State != "retiring" {
			t.Errorf("before its retirement: %s, want the old key retiring", keyStates(ks))
		}
	} else {
		t.Errorf("the flows after the switch ended at %s, after the old key's retirement %s: cannot check it is still published",
			now.Format(time.RFC3339Nano), retires.Format(time.RFC3339Nano))
	}

	// The app that did not refresh rejects the new key's signature.
	if ok, detail := a.staleSignIn(staleURL); ok {
		t.Errorf("after the switch, the app that did not refresh the broker's metadata accepted a sign-in (new key): %s", detail)
	} else if !strings.Contains(detail, "SignatureError") {
		t.Errorf("after the switch, the app that did not refresh fails, but not on the signature: %s", detail)
	} else {
		t.Logf("after the switch, the app that did not refresh fails, as expected: %s", detail)
	}

	// ---- 6. the old certificate leaves the metadata at retires_at
	t.Logf("waiting %v for the old key's retirement at %s", time.Until(*retires).Round(time.Millisecond), retires.Format(time.RFC3339Nano))
	seen, ks = a.waitForState(old.Backend, old.Version, "retired", retires.Add(switchSlack))
	if seen.Before(*retires) {
		t.Errorf("the old key was retired at %s, before its retires_at %s", seen.Format(time.RFC3339Nano), retires.Format(time.RFC3339Nano))
	}
	t.Logf("retirement seen %v after retires_at: %s", seen.Sub(*retires).Round(time.Millisecond), keyStates(ks))
	a.requirePublished("after the retirement", next)
	t.Logf("TestKeyRotation/%s: %v in all", kb, time.Since(start).Round(time.Millisecond))
}
