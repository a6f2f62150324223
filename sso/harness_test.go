package sso_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/local"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/generic"
	"github.com/sloworks/broker/providers/salesforce"
	"github.com/sloworks/broker/sso"
	"github.com/sloworks/broker/tenants"
)

// peerKey is an RSA key and certificate of a test IdP or app. Keys are made once per process:
// RSA generation is slow.
type peerKey struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

var (
	peerKeysMu sync.Mutex
	peerKeys   = map[string]*peerKey{}
)

func testKey(t testing.TB, name string) *peerKey {
	peerKeysMu.Lock()
	defer peerKeysMu.Unlock()
	if k, ok := peerKeys[name]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keys.SelfSignedCertificate(k, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	peerKeys[name] = &peerKey{k, cert}
	return peerKeys[name]
}

// testIdP is a tenant's upstream IdP, played by the test: it makes signed Responses.
type testIdP struct {
	entityID string
	ssoURL   string
	*peerKey
}

// testApp is a downstream SP, played by the test.
type testApp struct {
	entityID string
	acs      string
	signs    bool
	*peerKey
}

type tenantFixture struct {
	tenant *db.Tenant
	idp    *testIdP
	apps   []*testApp
}

// harness is a broker on an httptest server with real SQLite and local keys, and test IdPs and
// apps for two tenants, acme and beta.
type harness struct {
	t       testing.TB
	srv     *httptest.Server
	handler http.Handler
	store   *sqlite.Store
	tenants *tenants.Service
	sso     *sso.Handler
	keys    keys.Source
	logs    *bytes.Buffer
	// brokerSigs and idpSigs count RSA signatures made by the broker and by the test IdPs.
	brokerSigs, idpSigs atomic.Int64
	fx                  map[string]*tenantFixture
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with the key source keySource makes (local keys when nil).
func newHarnessWith(t testing.TB, keySource func(store *sqlite.Store, dir string) keys.Source) *harness {
	t.Helper()
	h := &harness{t: t, fx: map[string]*tenantFixture{}, logs: &bytes.Buffer{}}
	var handler http.Handler
	h.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) })
	h.srv = httptest.NewServer(h.handler)
	t.Cleanup(h.srv.Close)
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h.store = store
	var ks keys.Source
	if keySource != nil {
		ks = keySource(store, dir)
	} else if ks, err = local.New(filepath.Join(dir, "keys"), nil); err != nil {
		t.Fatal(err)
	}
	h.keys = countingSource{Source: ks, n: &h.brokerSigs}
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.tenants = tenants.New(store, h.keys, map[string]providers.Provider{"generic": generic.New(), "google": generic.Google()}, providers.Env{HTTPClient: http.DefaultClient, AllowHTTP: true}, logger).
		WithAppProviders(map[string]providers.AppProvider{"salesforce": salesforce.App})
	base, _ := url.Parse(h.srv.URL)
	h.sso = sso.New(sso.Config{BaseURL: base}, h.tenants, store, h.keys, logger, nil)
	e := echo.New()
	e.HTTPErrorHandler = sso.HTTPErrorHandler(logger)
	h.sso.Register(e)
	handler = e

	for _, slug := range []string{"acme", "beta"} {
		h.addTenant(slug)
	}
	return h
}

// countingSigner counts the signatures made through it.
type countingSigner struct {
	crypto.Signer
	n *atomic.Int64
}

func (c countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Signer.Sign(r, digest, opts)
}

// countingSource hands out counting signers.
type countingSource struct {
	keys.Source
	n *atomic.Int64
}

func (c countingSource) KeyPair(ctx context.Context, tenantID string) (*keys.KeyPair, error) {
	kp, err := c.Source.KeyPair(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return &keys.KeyPair{Signer: countingSigner{kp.Signer, c.n}, Certificate: kp.Certificate, Published: kp.Published}, nil
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (h *harness) addTenant(slug string) *tenantFixture { return h.addTenantWith(slug, nil) }

// addTenantWith adds a tenant whose generic connection config has the extra keys.
func (h *harness) addTenantWith(slug string, extra map[string]any) *tenantFixture {
	return h.addTenantProvider(slug, "generic", extra)
}

// addTenantProvider adds a tenant whose connection is of the provider (generic or a preset),
// with the extra config keys.
func (h *harness) addTenantProvider(slug, provider string, extra map[string]any) *tenantFixture {
	ctx := context.Background()
	tn, err := h.tenants.CreateTenant(ctx, slug, strings.ToUpper(slug))
	if err != nil {
		h.t.Fatal(err)
	}
	idp := &testIdP{entityID: "https://idp." + slug + ".example/metadata", ssoURL: "https://idp." + slug + ".example/sso", peerKey: testKey(h.t, "idp-"+slug)}
	conf := map[string]any{"metadata_xml": string(idp.metadata(h.t))}
	for k, v := range extra {
		conf[k] = v
	}
	cfg, _ := json.Marshal(conf)
	if _, _, err := h.tenants.CreateConnection(ctx, tn, provider, "idp", cfg); err != nil {
		h.t.Fatal(err)
	}
	fx := &tenantFixture{tenant: tn, idp: idp}
	for _, name := range []string{"wiki", "crm"} {
		app := &testApp{entityID: "https://" + name + "." + slug + ".example/metadata", acs: "https://" + name + "." + slug + ".example/acs", peerKey: testKey(h.t, "app-"+name)}
		if _, _, err := h.tenants.CreateApp(ctx, tn, tenants.AppInput{Name: name, MetadataXML: string(app.metadata(h.t))}); err != nil {
			h.t.Fatal(err)
		}
		fx.apps = append(fx.apps, app)
	}
	h.fx[slug] = fx
	return fx
}

func certData(c *x509.Certificate) []saml.KeyDescriptor {
	return []saml.KeyDescriptor{{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.Raw)}}}}}}
}

func (i *testIdP) metadata(t testing.TB) []byte {
	ed := saml.EntityDescriptor{EntityID: i.entityID, IDPSSODescriptors: []saml.IDPSSODescriptor{{
		SSODescriptor:        saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol", KeyDescriptors: certData(i.cert)}},
		SingleSignOnServices: []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: i.ssoURL}},
	}}}
	b, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (a *testApp) metadata(t testing.TB) []byte {
	signs := a.signs
	ed := saml.EntityDescriptor{EntityID: a.entityID, SPSSODescriptors: []saml.SPSSODescriptor{{
		SSODescriptor:             saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol", KeyDescriptors: certData(a.cert)}},
		AuthnRequestsSigned:       &signs,
		AssertionConsumerServices: []saml.IndexedEndpoint{{Binding: saml.HTTPPostBinding, Location: a.acs, Index: 0}},
	}}}
	b, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// browser is one user agent: a cookie jar, redirects not followed.
type browser struct {
	h *harness
	c *http.Client
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// inProcessBrowser is a browser whose requests go straight to the broker's handler, without
// the loopback network (for benchmarks of the broker's own work).
func (h *harness) inProcessBrowser() *browser {
	b := h.browser()
	b.c.Transport = inProcess{h.handler}
	return b
}

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

type result struct {
	status   int
	location string
	body     string
}

func (b *browser) do(req *http.Request) result {
	b.h.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body)}
}

func (b *browser) get(u string) result {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) result {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// authnRequest is an app's AuthnRequest, as XML.
func (a *testApp) authnRequest(dest, id, acs string) []byte {
	req := saml.AuthnRequest{ID: id, Version: "2.0", IssueInstant: time.Now().UTC(), Destination: dest, AssertionConsumerServiceURL: acs,
		Issuer: &saml.Issuer{Value: a.entityID}}
	d := etree.NewDocument()
	d.SetRoot(req.Element())
	b, _ := d.WriteToBytes()
	return b
}

var deflaters = sync.Pool{New: func() any { w, _ := flate.NewWriter(nil, flate.BestSpeed); return w }}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&buf)
	w.Write(b)
	w.Close()
	deflaters.Put(w)
	return buf.Bytes()
}

func (h *harness) url(slug, path string) string { return h.srv.URL + "/t/" + slug + path }

// startLogin sends the app's AuthnRequest over Redirect and returns the broker's answer.
func (b *browser) startLogin(slug string, app *testApp, relayState string) result {
	msg := app.authnRequest(b.h.url(slug, "/idp/sso"), "_req"+randHex(), "")
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflate(msg)))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	return b.get(b.h.url(slug, "/idp/sso") + "?" + q)
}

// upstreamRequest decodes the broker's AuthnRequest from its redirect to the IdP.
func (h *harness) upstreamRequest(r result) *saml.AuthnRequest {
	h.t.Helper()
	if r.status != http.StatusFound {
		h.t.Fatalf("want a redirect to the IdP, got %d: %s", r.status, r.body)
	}
	u, err := url.Parse(r.location)
	if err != nil {
		h.t.Fatal(err)
	}
	rd, err := binding.DecodeRedirect(u.RawQuery)
	if err != nil {
		h.t.Fatal(err)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(rd.XML, &req); err != nil {
		h.t.Fatal(err)
	}
	return &req
}

func randHex() string {
	b := make([]byte, 10)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var formRE = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)".*?name="(SAMLResponse|SAMLRequest)" value="([^"]*)"(?:.*?name="RelayState" value="([^"]*)")?`)

// postedForm is an auto-submitting form the broker rendered.
type postedForm struct {
	action, param, relayState string
	xml                       []byte
}

func parseForm(t testing.TB, body string) *postedForm {
	t.Helper()
	// The message value is long: cut it out before the regexp looks at the rest.
	const marker = `" value="`
	var m []string
	if i := strings.Index(body, `name="SAMLResponse`+marker); i >= 0 {
		j := i + len(`name="SAMLResponse`+marker)
		k := strings.IndexByte(body[j:], '"')
		m = formRE.FindStringSubmatch(body[:j] + body[j+k:])
		if m != nil {
			m[3] = body[j : j+k]
		}
	} else {
		m = formRE.FindStringSubmatch(body)
	}
	if m == nil {
		t.Fatalf("no SAML POST form in: %s", body)
	}
	b, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[3]))
	if err != nil {
		t.Fatal(err)
	}
	return &postedForm{action: html.UnescapeString(m[1]), param: m[2], relayState: html.UnescapeString(m[4]), xml: b}
}

func (h *harness) sessions(slug string) []db.Session {
	h.t.Helper()
	ss, err := h.store.ListSessions(context.Background(), h.fx[slug].tenant.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return ss
}

// brokerCert is the tenant's signing certificate as its IdP metadata publishes it.
func (h *harness) brokerCert(slug string) *x509.Certificate {
	h.t.Helper()
	return h.metadataCert(slug, "/idp/metadata", func(ed *saml.EntityDescriptor) []saml.KeyDescriptor {
		return ed.IDPSSODescriptors[0].KeyDescriptors
	})
}

// spCert is the tenant's signing certificate as its SP metadata publishes it.
func (h *harness) spCert(slug string) *x509.Certificate {
	h.t.Helper()
	return h.metadataCert(slug, "/sp/metadata", func(ed *saml.EntityDescriptor) []saml.KeyDescriptor {
		return ed.SPSSODescriptors[0].KeyDescriptors
	})
}

// metadataCert fetches one of the tenant's metadata documents and returns its first certificate.
func (h *harness) metadataCert(slug, path string, kds func(*saml.EntityDescriptor) []saml.KeyDescriptor) *x509.Certificate {
	h.t.Helper()
	return h.metadataCerts(slug, path, kds)[0]
}

// metadataCerts fetches one of the tenant's metadata documents and returns its signing
// certificates, in order.
func (h *harness) metadataCerts(slug, path string, kds func(*saml.EntityDescriptor) []saml.KeyDescriptor) []*x509.Certificate {
	h.t.Helper()
	resp, err := http.Get(h.url(slug, path))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ed saml.EntityDescriptor
	if err := xml.NewDecoder(resp.Body).Decode(&ed); err != nil {
		h.t.Fatal(err)
	}
	var out []*x509.Certificate
	for _, kd := range kds(&ed) {
		if kd.Use != "signing" {
			h.t.Fatalf("%s: key descriptor of use %q", path, kd.Use)
		}
		der, _ := base64.StdEncoding.DecodeString(kd.KeyInfo.X509Data.X509Certificates[0].Data)
		c, err := x509.ParseCertificate(der)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		h.t.Fatalf("%s: no signing certificate", path)
	}
	return out
}
