package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/internal/syncbuf"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/local"
	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/generic"
	"github.com/sloworks/broker/slo"
	"github.com/sloworks/broker/sso"
	"github.com/sloworks/broker/tenants"
)

// The harness: the broker (real SQLite, local keys, the real logout engine) on an httptest
// server, a test IdP and test apps, each on an httptest server of its own (a port of its own:
// an origin of its own). It is a small copy of the sso package's test harness, which is not
// importable; everything here is test code.

const (
	slug = "acme"
	user = "alice@acme.example"
)

// peerKey is an RSA key and certificate of the test IdP or an app, made once per process.
type peerKey struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

var (
	peerKeysMu sync.Mutex
	peerKeys   = map[string]*peerKey{}
)

// testKeys makes (or reuses) the keys of names, in parallel: RSA generation is slow under -race.
func testKeys(t testing.TB, names ...string) map[string]*peerKey {
	t.Helper()
	out := map[string]*peerKey{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, name := range names {
		peerKeysMu.Lock()
		k, ok := peerKeys[name]
		peerKeysMu.Unlock()
		if ok {
			out[name] = k
			continue
		}
		wg.Go(func() {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			var cert *x509.Certificate
			if err == nil {
				cert, err = keys.SelfSignedCertificate(k, name, time.Now())
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			out[name] = &peerKey{k, cert}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	peerKeysMu.Lock()
	defer peerKeysMu.Unlock()
	for name, k := range out {
		if old, ok := peerKeys[name]; ok {
			out[name] = old
		} else {
			peerKeys[name] = k
		}
	}
	return out
}

func randHex() string {
	b := make([]byte, 10)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// world is the broker with its tenant, the tenant's IdP and apps.
type world struct {
	t       *testing.T
	srv     *httptest.Server
	store   *sqlite.Store
	tenants *tenants.Service
	sso     *sso.Handler
	engine  *slo.Engine
	tenant  *db.Tenant
	logs    *syncbuf.Buffer
	idp     *testIdP
	apps    []*app
	// brokerIdPCert and brokerSPCert are the tenant's signing certificates as the broker's IdP
	// metadata (for apps) and SP metadata (for the IdP) publish them.
	brokerIdPCert, brokerSPCert *x509.Certificate
}

// appSpec is an app to register: its name and how long it takes to answer a LogoutRequest.
type appSpec struct {
	name  string
	delay time.Duration
}

// newWorld starts the broker with the logout engine's leg timeout, the tenant "acme" with a
// test IdP that has a Redirect SingleLogoutService, and the apps.
func newWorld(t *testing.T, legTimeout time.Duration, specs ...appSpec) *world {
	t.Helper()
	names := []string{"idp"}
	for _, s := range specs {
		names = append(names, "app-"+s.name)
	}
	ks := testKeys(t, names...)

	w := &world{t: t, logs: &syncbuf.Buffer{}}
	var handler http.Handler
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { handler.ServeHTTP(rw, r) }))
	t.Cleanup(w.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", w.logs)
		}
	})
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w.store = store
	keySource, err := local.New(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.tenants = tenants.New(store, keySource, map[string]providers.Provider{"generic": generic.New()}, providers.Env{HTTPClient: http.DefaultClient, AllowHTTP: true}, logger)
	base, _ := url.Parse(w.srv.URL)
	w.sso = sso.New(sso.Config{BaseURL: base}, w.tenants, store, keySource, logger, nil)
	w.engine = &slo.Engine{Store: store, Peers: w.sso.Peers(), Signers: w.sso.Signers(), SOAP: &binding.SOAPClient{HTTP: &http.Client{}},
		LegTimeout: legTimeout, Logger: logger, Now: time.Now, NewID: sso.RandomID}
	w.sso.SetLogout(w.engine)
	e := echo.New()
	e.HTTPErrorHandler = sso.HTTPErrorHandler(logger)
	w.sso.Register(e)
	handler = e

	ctx := context.Background()
	if w.tenant, err = w.tenants.CreateTenant(ctx, slug, "ACME"); err != nil {
		t.Fatal(err)
	}
	w.brokerIdPCert = w.brokerCert("/idp/metadata", func(doc []byte) ([]*x509.Certificate, error) {
		md, err := metadata.ParseIdP(doc, true)
		if err != nil {
			return nil, err
		}
		return md.SigningCerts, nil
	})
	w.brokerSPCert = w.brokerCert("/sp/metadata", func(doc []byte) ([]*x509.Certificate, error) {
		md, err := metadata.ParseSP(doc, true)
		if err != nil {
			return nil, err
		}
		return md.SigningCerts, nil
	})

	w.idp = newTestIdP(t, w, ks["idp"])
	cfg, _ := json.Marshal(map[string]string{"metadata_xml": string(w.idp.metadata(t))})
	if _, _, err := w.tenants.CreateConnection(ctx, w.tenant, "generic", "idp", cfg); err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		w.apps = append(w.apps, newApp(t, w, s, ks["app-"+s.name]))
	}
	return w
}

func (w *world) url(path string) string { return w.srv.URL + "/t/" + slug + path }

// brokerCert reads the tenant's signing certificate from one of the broker's metadata documents.
func (w *world) brokerCert(path string, parse func([]byte) ([]*x509.Certificate, error)) *x509.Certificate {
	w.t.Helper()
	resp, err := http.Get(w.url(path))
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	certs, err := parse(doc)
	if err != nil || len(certs) == 0 {
		w.t.Fatalf("%s: %v (%d certificates)\n%s", path, err, len(certs), doc)
	}
	return certs[0]
}

func certData(c *x509.Certificate) []saml.KeyDescriptor {
	return []saml.KeyDescriptor{{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.Raw)}}}}}}
}

func serialize(el *etree.Element) []byte {
	d := etree.NewDocument()
	d.SetRoot(el)
	b, err := d.WriteToBytes()
	if err != nil {
		panic(err)
	}
	return b
}

// autoPost is a form that posts a SAML message on, by itself with JavaScript, with a button
// without. The test IdP's and nothing else's.
var autoPost = template.Must(template.New("post").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Test IdP</title></head><body>
<p>Test IdP: signed in as {{.User}}.</p>
<form method="post" action="{{.Action}}"><input type="hidden" name="SAMLResponse" value="{{.Message}}">
<button type="submit">Continue</button></form>
<script>document.forms[0].submit();</script>
</body></html>`))

// testIdP is the tenant's IdP: it signs the user in without asking (no login form) and answers the
// broker's LogoutRequest at its Redirect SingleLogoutService.
type testIdP struct {
	w        *world
	srv      *httptest.Server
	entityID string
	*peerKey

	mu sync.Mutex
	// sessionIndexes are the IdP sessions it issued, in order.
	sessionIndexes []string
	// logouts are the broker's LogoutRequests it received (verified), and when.
	logouts    []*slo.LogoutRequest
	receivedAt []time.Time
	// errs are problems it saw in what the broker sent (the test fails on any).
	errs []string
}

func newTestIdP(t *testing.T, w *world, k *peerKey) *testIdP {
	i := &testIdP{w: w, peerKey: k}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sso", i.sso)
	mux.HandleFunc("GET /slo", i.slo)
	i.srv = httptest.NewServer(mux)
	t.Cleanup(i.srv.Close)
	i.entityID = i.srv.URL + "/metadata"
	return i
}

func (i *testIdP) metadata(t *testing.T) []byte {
	ed := saml.EntityDescriptor{EntityID: i.entityID, IDPSSODescriptors: []saml.IDPSSODescriptor{{
		SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol", KeyDescriptors: certData(i.cert)},
			SingleLogoutServices: []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: i.srv.URL + "/slo"}}},
		SingleSignOnServices: []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: i.srv.URL + "/sso"}},
	}}}
	b, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (i *testIdP) fail(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	i.mu.Lock()
	i.errs = append(i.errs, msg)
	i.mu.Unlock()
	http.Error(w, "test IdP: "+msg, http.StatusBadRequest)
}

// sso answers the broker's AuthnRequest with a signed Response for the user, in a form that
// posts itself to the broker's ACS.
func (i *testIdP) sso(w http.ResponseWriter, r *http.Request) {
	rd, err := binding.DecodeRedirect(r.URL.RawQuery)
	if err != nil {
		i.fail(w, "AuthnRequest: %v", err)
		return
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(rd.XML, &req); err != nil || req.Issuer == nil {
		i.fail(w, "AuthnRequest: %v", err)
		return
	}
	si := "_idpsession" + randHex()
	doc, err := i.response(&req, si)
	if err != nil {
		i.fail(w, "Response: %v", err)
		return
	}
	i.mu.Lock()
	i.sessionIndexes = append(i.sessionIndexes, si)
	i.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	autoPost.Execute(w, map[string]string{"User": user, "Action": req.AssertionConsumerServiceURL, "Message": base64.StdEncoding.EncodeToString(doc)})
}

// response is a Response to req with an assertion signed by the IdP.
func (i *testIdP) response(req *saml.AuthnRequest, sessionIndex string) ([]byte, error) {
	now := time.Now().UTC()
	notAfter := now.Add(5 * time.Minute)
	acs := req.AssertionConsumerServiceURL
	a := &saml.Assertion{
		ID: "_a" + randHex(), IssueInstant: now, Version: "2.0",
		Issuer: saml.Issuer{Value: i.entityID},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: string(saml.PersistentNameIDFormat), Value: user},
			SubjectConfirmations: []saml.SubjectConfirmation{{Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer", SubjectConfirmationData: &saml.SubjectConfirmationData{
				InResponseTo: req.ID, NotOnOrAfter: notAfter, Recipient: acs,
			}}},
		},
		Conditions: &saml.Conditions{NotBefore: now.Add(-time.Minute), NotOnOrAfter: notAfter,
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: req.Issuer.Value}}}},
		AuthnStatements: []saml.AuthnStatement{{AuthnInstant: now, SessionIndex: sessionIndex,
			AuthnContext: saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}}}},
		AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{{Name: "mail", Values: []saml.AttributeValue{{Type: "xs:string", Value: user}}}}}},
	}
	ael := a.Element()
	if err := binding.SignEnveloped(ael, i.key, i.cert, ""); err != nil {
		return nil, err
	}
	resp := &saml.Response{ID: "_r" + randHex(), InResponseTo: req.ID, Version: "2.0", IssueInstant: now, Destination: acs,
		Issuer: &saml.Issuer{Value: i.entityID}, Status: saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}}}
	rel := resp.Element()
	rel.AddChild(ael)
	return serialize(rel), nil
}

// slo answers the broker's LogoutRequest (the upstream leg, through the browser): it checks the
// broker's signature and that the request names the session it issued, and sends the browser
// back to the broker's SP-side SLO endpoint with its signed LogoutResponse.
func (i *testIdP) slo(w http.ResponseWriter, r *http.Request) {
	rcv, err := slo.ReadRedirect(r.URL.RawQuery)
	if err != nil {
		i.fail(w, "logout message: %v", err)
		return
	}
	if err := rcv.Verify([]*x509.Certificate{i.w.brokerSPCert}, false); err != nil {
		i.fail(w, "broker's signature: %v", err)
		return
	}
	if rcv.Kind() != "LogoutRequest" {
		i.fail(w, "got a %s", rcv.Kind())
		return
	}
	req, err := slo.ParseLogoutRequest(rcv.Element)
	if err != nil {
		i.fail(w, "LogoutRequest: %v", err)
		return
	}
	i.mu.Lock()
	i.logouts = append(i.logouts, req)
	i.receivedAt = append(i.receivedAt, time.Now())
	known := false
	for _, si := range i.sessionIndexes {
		known = known || (len(req.SessionIndexes) == 1 && req.SessionIndexes[0] == si)
	}
	i.mu.Unlock()
	status := slo.Status{Codes: []string{slo.StatusSuccess}}
	switch {
	case req.Issuer != i.w.url("/sp/metadata"):
		status = slo.Status{Codes: []string{slo.StatusRequester, slo.StatusRequestDenied}, Message: "issuer " + req.Issuer}
	case req.NameID.Value != user || req.NameID.Format != string(saml.PersistentNameIDFormat) || !known:
		status = slo.Status{Codes: []string{slo.StatusResponder, slo.StatusUnknownPrincipal}, Message: "no such session"}
	}
	dest := i.w.url("/sp/slo")
	resp := &slo.LogoutResponse{ID: "_lr" + randHex(), InResponseTo: req.ID, IssueInstant: time.Now(), Destination: dest, Issuer: i.entityID, Status: status}
	u, err := slo.RedirectURL(dest, resp, rcv.RelayState, &slo.Signer{Key: i.key, Cert: i.cert})
	if err != nil {
		i.fail(w, "sign LogoutResponse: %v", err)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// app is an SP with an HTTP-Redirect SingleLogoutService: it receives the broker's assertion at
// its ACS (POST), verifies the broker's signed LogoutRequest, records that its session ended, and
// sends the browser (inside the logout page's iframe) back with its signed LogoutResponse; it also
// receives the broker's answer to a logout it started.
type app struct {
	w        *world
	name     string
	entityID string
	srv      *httptest.Server
	acs      string
	delay    time.Duration
	*peerKey

	mu sync.Mutex
	// assertion is the broker's (verified) assertion of the last sign-in.
	assertion *saml.Assertion
	signedIn  chan struct{}
	// logouts are the broker's LogoutRequests to end the app's session; answeredAt, when the app
	// sent the browser back with each answer.
	logouts    []*slo.LogoutRequest
	answeredAt []time.Time
	// answers are the broker's LogoutResponses to the app's own LogoutRequest.
	answers  []*slo.LogoutResponse
	answered chan struct{}
	errs     []string
}

func newApp(t *testing.T, w *world, s appSpec, k *peerKey) *app {
	a := &app{w: w, name: s.name, delay: s.delay, peerKey: k, signedIn: make(chan struct{}, 8), answered: make(chan struct{}, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /acs", a.serveACS)
	mux.HandleFunc("GET /slo", a.serveSLO)
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.entityID = a.srv.URL + "/metadata"
	a.acs = a.srv.URL + "/acs"
	signs := false
	ed := saml.EntityDescriptor{EntityID: a.entityID, SPSSODescriptors: []saml.SPSSODescriptor{{
		SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol", KeyDescriptors: certData(a.cert)},
			SingleLogoutServices: []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: a.srv.URL + "/slo"}}},
		AuthnRequestsSigned:       &signs,
		AssertionConsumerServices: []saml.IndexedEndpoint{{Binding: saml.HTTPPostBinding, Location: a.acs, Index: 0}},
	}}}
	md, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.tenants.CreateApp(context.Background(), w.tenant, tenants.AppInput{Name: s.name, MetadataXML: string(md)}); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *app) fail(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.mu.Lock()
	a.errs = append(a.errs, msg)
	a.mu.Unlock()
	http.Error(w, a.name+": "+msg, http.StatusBadRequest)
}

var appPage = template.Must(template.New("app").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.App}}</title></head>
<body><h1 id="app">{{.App}}</h1><p id="msg">{{.Msg}}</p></body></html>`))

func (a *app) page(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	appPage.Execute(w, map[string]string{"App": a.name, "Msg": msg})
}

// serveACS takes the broker's Response: the assertion must be signed by the broker's published
// certificate, for this app.
func (a *app) serveACS(w http.ResponseWriter, r *http.Request) {
	doc, err := base64.StdEncoding.DecodeString(r.PostFormValue("SAMLResponse"))
	if err != nil {
		a.fail(w, "SAMLResponse: %v", err)
		return
	}
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil || d.Root() == nil || d.Root().SelectElement("Assertion") == nil {
		a.fail(w, "Response without an assertion (%v): %s", err, doc)
		return
	}
	verified, err := binding.VerifyEnveloped(d.Root().SelectElement("Assertion"), []*x509.Certificate{a.w.brokerIdPCert}, false)
	if err != nil {
		a.fail(w, "assertion signature: %v", err)
		return
	}
	var as saml.Assertion
	if err := xml.Unmarshal(serialize(verified), &as); err != nil {
		a.fail(w, "assertion: %v", err)
		return
	}
	if as.Subject == nil || as.Subject.NameID == nil || len(as.AuthnStatements) != 1 || as.Conditions == nil ||
		len(as.Conditions.AudienceRestrictions) != 1 || as.Conditions.AudienceRestrictions[0].Audience.Value != a.entityID {
		a.fail(w, "assertion is not for %s: %s", a.entityID, serialize(verified))
		return
	}
	a.mu.Lock()
	a.assertion = &as
	a.mu.Unlock()
	a.page(w, "Signed in as "+as.Subject.NameID.Value)
	a.signedIn <- struct{}{}
}

// serveSLO takes the broker's LogoutRequest (a leg) or LogoutResponse (the answer to the app's
// own logout), both signed by the broker over the Redirect query.
func (a *app) serveSLO(w http.ResponseWriter, r *http.Request) {
	rcv, err := slo.ReadRedirect(r.URL.RawQuery)
	if err != nil {
		a.fail(w, "logout message: %v", err)
		return
	}
	if err := rcv.Verify([]*x509.Certificate{a.w.brokerIdPCert}, false); err != nil {
		a.fail(w, "broker's signature: %v", err)
		return
	}
	if rcv.Kind() == "LogoutResponse" {
		resp, err := slo.ParseLogoutResponse(rcv.Element)
		if err != nil {
			a.fail(w, "LogoutResponse: %v", err)
			return
		}
		a.mu.Lock()
		a.answers = append(a.answers, resp)
		a.mu.Unlock()
		a.page(w, "Signed out: "+resp.Status.String())
		a.answered <- struct{}{}
		return
	}
	req, err := slo.ParseLogoutRequest(rcv.Element)
	if err != nil {
		a.fail(w, "LogoutRequest: %v", err)
		return
	}
	a.mu.Lock()
	a.logouts = append(a.logouts, req)
	as := a.assertion
	a.mu.Unlock()
	status := slo.Status{Codes: []string{slo.StatusSuccess}}
	if as == nil || req.NameID.Value != as.Subject.NameID.Value || len(req.SessionIndexes) != 1 || req.SessionIndexes[0] != as.AuthnStatements[0].SessionIndex {
		status = slo.Status{Codes: []string{slo.StatusResponder, slo.StatusUnknownPrincipal}, Message: "no such session"}
	}
	if a.delay > 0 {
		select {
		case <-time.After(a.delay):
		case <-r.Context().Done():
			return
		}
	}
	dest := a.w.url("/idp/slo")
	resp := &slo.LogoutResponse{ID: "_lr" + randHex(), InResponseTo: req.ID, IssueInstant: time.Now(), Destination: dest, Issuer: a.entityID, Status: status}
	u, err := slo.RedirectURL(dest, resp, rcv.RelayState, &slo.Signer{Key: a.key, Cert: a.cert})
	if err != nil {
		a.fail(w, "sign LogoutResponse: %v", err)
		return
	}
	a.mu.Lock()
	a.answeredAt = append(a.answeredAt, time.Now())
	a.mu.Unlock()
	http.Redirect(w, r, u, http.StatusFound)
}

// loginURL is the app's AuthnRequest to the broker over HTTP-Redirect (unsigned: the app's
// metadata says so).
func (a *app) loginURL(t *testing.T) string {
	dest := a.w.url("/idp/sso")
	req := saml.AuthnRequest{ID: "_req" + randHex(), Version: "2.0", IssueInstant: time.Now().UTC(), Destination: dest, Issuer: &saml.Issuer{Value: a.entityID}}
	u, err := binding.EncodeRedirect(dest, "SAMLRequest", serialize(req.Element()), "/home", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// logoutURL is the app's signed LogoutRequest (HTTP-Redirect) for the session the broker
// signed it in to.
func (a *app) logoutURL(t *testing.T, id, relayState string) string {
	a.mu.Lock()
	as := a.assertion
	a.mu.Unlock()
	if as == nil {
		t.Fatalf("%s is not signed in", a.name)
	}
	dest := a.w.url("/idp/slo")
	nid := as.Subject.NameID
	req := &slo.LogoutRequest{ID: id, IssueInstant: time.Now(), Destination: dest, Issuer: a.entityID,
		NameID:         slo.NameID{Value: nid.Value, Format: nid.Format, NameQualifier: nid.NameQualifier, SPNameQualifier: nid.SPNameQualifier},
		SessionIndexes: []string{as.AuthnStatements[0].SessionIndex}}
	u, err := slo.RedirectURL(dest, req, relayState, &slo.Signer{Key: a.key, Cert: a.cert})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// problems reports what the IdP and the apps found wrong in what the broker sent them.
func (w *world) problems(t *testing.T) {
	t.Helper()
	w.idp.mu.Lock()
	for _, e := range w.idp.errs {
		t.Errorf("test IdP: %s", e)
	}
	w.idp.mu.Unlock()
	for _, a := range w.apps {
		a.mu.Lock()
		for _, e := range a.errs {
			t.Errorf("%s: %s", a.name, e)
		}
		a.mu.Unlock()
	}
}
