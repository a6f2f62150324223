package admin_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/admin"
	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/local"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/generic"
	"github.com/sloworks/broker/providers/salesforce"
	"github.com/sloworks/broker/slo"
	"github.com/sloworks/broker/sso"
	"github.com/sloworks/broker/tenants"
)

const token = "operator-token-for-tests"

type api struct {
	t     *testing.T
	srv   *httptest.Server
	store *sqlite.Store
}

func newAPI(t *testing.T, allowHTTP bool) *api {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ls, err := local.New(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.NewRing(keys.RingOptions{Store: store, Primary: ls})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	ts := tenants.New(store, ks, map[string]providers.Provider{"generic": generic.New()}, providers.Env{HTTPClient: &http.Client{Timeout: 3 * time.Second}, AllowHTTP: allowHTTP}, logger).
		WithAppProviders(map[string]providers.AppProvider{"salesforce": salesforce.App})
	base, _ := url.Parse("https://broker.example")
	h := sso.New(sso.Config{BaseURL: base}, ts, store, ks, logger, nil)
	e := echo.New()
	e.HTTPErrorHandler = sso.HTTPErrorHandler(logger)
	engine := &slo.Engine{Store: store, Peers: h.Peers(), Signers: h.Signers(), SOAP: &binding.SOAPClient{HTTP: &http.Client{}},
		LegTimeout: time.Second, Logger: logger, Now: time.Now, NewID: sso.RandomID}
	admin.New(ts, h, sha256.Sum256([]byte(token)), logger).WithSessions(store, engine).WithKeys(ks).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &api{t: t, srv: srv, store: store}
}

type reply struct {
	status int
	body   map[string]any
	raw    string
}

func (a *api) call(method, path string, body any, tok string) reply {
	a.t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, a.srv.URL+path, r)
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := reply{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func (a *api) do(method, path string, body any) reply { return a.call(method, path, body, token) }

// wantError checks the contract's error shape.
func wantError(t *testing.T, r reply, status int, code, field, msgPart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d; want %d: %s", r.status, status, r.raw)
	}
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %s", r.raw)
	}
	if e["code"] != code {
		t.Errorf("code %v; want %s", e["code"], code)
	}
	if field != "" && e["field"] != field {
		t.Errorf("field %v; want %s", e["field"], field)
	}
	if !strings.Contains(fmt.Sprint(e["message"]), msgPart) {
		t.Errorf("message %q does not say %q", e["message"], msgPart)
	}
}

func count(t *testing.T, a *api, path, key string) int {
	t.Helper()
	r := a.do("GET", path, nil)
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
	}
	return len(r.body[key].([]any))
}

var certB64 = func() string {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	c, _ := keys.SelfSignedCertificate(k, "idp", time.Now())
	return base64.StdEncoding.EncodeToString(c.Raw)
}()

func idpMetadata(ssoURL string, withCert bool) string {
	kd := ""
	if withCert {
		kd = `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` + certB64 + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`
	}
	return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/metadata">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` + kd + `
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + ssoURL + `"/>
</md:IDPSSODescriptor></md:EntityDescriptor>`
}

func spMetadata(entityID, acs string) string {
	return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="` + entityID + `">
<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + acs + `" index="0"/>
</md:SPSSODescriptor></md:EntityDescriptor>`
}

func TestAuth(t *testing.T) {
	a := newAPI(t, false)
	wantError(t, a.call("GET", "/api/v1/tenants", nil, ""), 401, "unauthorized", "", "missing bearer token")
	wantError(t, a.call("GET", "/api/v1/tenants", nil, "wrong-token-xxxxxxxx"), 401, "unauthorized", "", "not valid")
	wantError(t, a.call("POST", "/api/v1/tenants", map[string]string{"slug": "acme"}, "wrong"), 401, "unauthorized", "", "not valid")
	if n := count(t, a, "/api/v1/tenants", "tenants"); n != 0 {
		t.Fatalf("%d tenants after unauthenticated create", n)
	}
}

func TestTenants(t *testing.T) {
	a := newAPI(t, false)
	r := a.do("POST", "/api/v1/tenants", map[string]string{"slug": "acme", "name": "Acme"})
	if r.status != 201 || r.body["slug"] != "acme" || r.body["sp_metadata_url"] != "https://broker.example/t/acme/sp/metadata" || r.body["acs_url"] != "https://broker.example/t/acme/sp/acs" {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	wantError(t, a.do("POST", "/api/v1/tenants", map[string]string{"slug": "acme"}), 409, "conflict", "slug", "already exists")
	for _, bad := range []string{"", "Acme", "-acme", "acme-", "ac me", "a/b", strings.Repeat("a", 64), "../x"} {
		wantError(t, a.do("POST", "/api/v1/tenants", map[string]string{"slug": bad}), 400, "invalid_request", "slug", "not valid")
	}
	wantError(t, a.do("POST", "/api/v1/tenants", `{"slug":"beta","colour":"red"}`), 400, "invalid_request", "colour", "unknown field")
	wantError(t, a.do("POST", "/api/v1/tenants", `{"slug":`), 400, "invalid_request", "", "not valid JSON")
	if n := count(t, a, "/api/v1/tenants", "tenants"); n != 1 {
		t.Fatalf("%d tenants; bad input must store nothing", n)
	}
	if r := a.do("GET", "/api/v1/tenants/acme", nil); r.status != 200 || r.body["name"] != "Acme" {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	wantError(t, a.do("GET", "/api/v1/tenants/nope", nil), 404, "not_found", "", "no tenant")
	if r := a.do("DELETE", "/api/v1/tenants/acme", nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	wantError(t, a.do("GET", "/api/v1/tenants/acme", nil), 404, "not_found", "", "no tenant")
}

func TestConnections(t *testing.T) {
	a := newAPI(t, true)
	mdSrv := http.NewServeMux()
	mdSrv.HandleFunc("/good", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, idpMetadata("https://idp.example/sso", true))
	})
	mdSrv.HandleFunc("/nocert", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, idpMetadata("https://idp.example/sso", false))
	})
	mdSrv.HandleFunc("/js", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, idpMetadata("javascript:alert(1)", true))
	})
	mdSrv.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html><body>login</body></html>") })
	mdSrv.HandleFunc("/garbage", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "not xml at all <<") })
	md := httptest.NewServer(mdSrv)
	defer md.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String() + "/metadata"
	ln.Close()

	a.do("POST", "/api/v1/tenants", map[string]string{"slug": "acme"})
	a.do("POST", "/api/v1/tenants", map[string]string{"slug": "beta"})
	conn := func(provider string, cfg any) map[string]any {
		return map[string]any{"provider": provider, "name": "okta-prod", "config": cfg}
	}
	path := "/api/v1/tenants/acme/connections"
	for _, tc := range []struct {
		name                 string
		body                 any
		status               int
		code, field, message string
	}{
		{"unknown provider", conn("shibbolethish", map[string]string{"metadata_url": md.URL + "/good"}), 400, "invalid_request", "provider", "unknown provider"},
		{"no config", conn("generic", nil), 400, "invalid_request", "config", "config"},
		{"unknown config key", conn("generic", map[string]string{"metadata_uri": md.URL + "/good"}), 400, "invalid_request", "config", "unknown field"},
		{"both url and xml", conn("generic", map[string]string{"metadata_url": md.URL + "/good", "metadata_xml": "<x/>"}), 400, "invalid_request", "config.metadata_url", "not both"},
		{"unreachable", conn("generic", map[string]string{"metadata_url": closed}), 422, "unprocessable", "config.metadata_url", "could not be fetched"},
		{"404 metadata", conn("generic", map[string]string{"metadata_url": md.URL + "/missing"}), 422, "unprocessable", "config.metadata_url", "HTTP 404"},
		{"not metadata", conn("generic", map[string]string{"metadata_url": md.URL + "/html"}), 400, "invalid_request", "config.metadata_url", "want a SAML 2.0 EntityDescriptor"},
		{"not xml", conn("generic", map[string]string{"metadata_url": md.URL + "/garbage"}), 400, "invalid_request", "config.metadata_url", "XML"},
		{"no signing certificate", conn("generic", map[string]string{"metadata_url": md.URL + "/nocert"}), 400, "invalid_request", "config.metadata_url", "no signing certificate"},
		{"javascript: endpoint", conn("generic", map[string]string{"metadata_xml": idpMetadata("javascript:alert(1)", true)}), 400, "invalid_request", "config.metadata_xml", "scheme \"javascript\""},
		{"javascript: metadata url", conn("generic", map[string]string{"metadata_url": "javascript:alert(1)"}), 400, "invalid_request", "config.metadata_url", "not an absolute URL"},
		{"sp metadata given as idp", conn("generic", map[string]string{"metadata_xml": spMetadata("https://sp.example", "https://sp.example/acs")}), 400, "invalid_request", "config.metadata_xml", "no IDPSSODescriptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, a.do("POST", path, tc.body), tc.status, tc.code, tc.field, tc.message)
			if n := count(t, a, path, "connections"); n != 0 {
				t.Fatalf("%d connections stored after bad input", n)
			}
		})
	}

	r := a.do("POST", path, conn("generic", map[string]string{"metadata_url": md.URL + "/good"}))
	if r.status != 201 || r.body["entity_id"] != "https://idp.example/metadata" || len(r.body["signing_certificates"].([]any)) != 1 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	wantError(t, a.do("POST", path, conn("generic", map[string]string{"metadata_url": md.URL + "/good"})), 409, "conflict", "name", "already has")
	if r := a.do("GET", path+"/"+id, nil); r.status != 200 || r.body["name"] != "okta-prod" {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	// Tenant beta can neither see nor delete acme's connection.
	wantError(t, a.do("GET", "/api/v1/tenants/beta/connections/"+id, nil), 404, "not_found", "", "not found")
	wantError(t, a.do("DELETE", "/api/v1/tenants/beta/connections/"+id, nil), 404, "not_found", "", "not found")
	if n := count(t, a, path, "connections"); n != 1 {
		t.Fatalf("acme's connection gone after beta's delete")
	}
	if r := a.do("DELETE", path+"/"+id, nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if n := count(t, a, path, "connections"); n != 0 {
		t.Fatalf("connection still listed after delete")
	}
}

func TestHTTPRefusedWithoutAllowHTTP(t *testing.T) {
	a := newAPI(t, false)
	a.do("POST", "/api/v1/tenants", map[string]string{"slug": "acme"})
	wantError(t, a.do("POST", "/api/v1/tenants/acme/connections", map[string]any{"provider": "generic", "name": "x", "config": map[string]string{"metadata_url": "http://idp.example/metadata"}}),
		400, "invalid_request", "config.metadata_url", "BROKER_ALLOW_HTTP")
	wantError(t, a.do("POST", "/api/v1/tenants/acme/connections", map[string]any{"provider": "generic", "name": "x", "config": map[string]string{"metadata_xml": idpMetadata("http://idp.example/sso", true)}}),
		400, "invalid_request", "config.metadata_xml", "BROKER_ALLOW_HTTP")
	wantError(t, a.do("POST", "/api/v1/tenants/acme/apps", map[string]any{"name": "wiki", "metadata_xml": spMetadata("https://wiki.example", "http://wiki.example/acs")}),
		400, "invalid_request", "metadata_xml", "BROKER_ALLOW_HTTP")
}

func TestApps(t *testing.T) {
	a := newAPI(t, false)
	a.do("POST", "/api/v1/tenants", map[string]string{"slug": "acme"})
	a.do("POST", "/api/v1/tenants", map[string]string{"slug": "beta"})
	path := "/api/v1/tenants/acme/apps"
	for _, tc := range []struct {
		name       string
		body       any
		field, msg string
	}{
		{"no metadata", map[string]any{"name": "wiki"}, "metadata_url", "give the app's metadata_url"},
		{"no name", map[string]any{"metadata_xml": spMetadata("https://wiki.example", "https://wiki.example/acs")}, "name", "required"},
		{"javascript: ACS", map[string]any{"name": "wiki", "metadata_xml": spMetadata("https://wiki.example", "javascript:alert(document.cookie)")}, "metadata_xml", "scheme \"javascript\""},
		{"data: ACS", map[string]any{"name": "wiki", "metadata_xml": spMetadata("https://wiki.example", "data:text/html,hi")}, "metadata_xml", "scheme \"data\""},
		{"idp metadata given as app", map[string]any{"name": "wiki", "metadata_xml": idpMetadata("https://idp.example/sso", true)}, "metadata_xml", "no SPSSODescriptor"},
		{"unknown provider", map[string]any{"name": "wiki", "provider": "workday", "metadata_xml": spMetadata("https://wiki.example", "https://wiki.example/acs")}, "provider", "known app providers: generic, salesforce"},
		{"provider not a string", map[string]any{"name": "wiki", "provider": true, "metadata_xml": spMetadata("https://wiki.example", "https://wiki.example/acs")}, "provider", ""},
		{"unknown algorithm", map[string]any{"name": "wiki", "logout_signature_algorithm": "sha1", "metadata_xml": spMetadata("https://wiki.example", "https://wiki.example/acs")}, "logout_signature_algorithm", `use "rsa-sha256" or "rsa-sha1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, a.do("POST", path, tc.body), 400, "invalid_request", tc.field, tc.msg)
			if n := count(t, a, path, "apps"); n != 0 {
				t.Fatalf("%d apps stored after bad input", n)
			}
		})
	}
	r := a.do("POST", path, map[string]any{"name": "wiki", "metadata_xml": spMetadata("https://wiki.example", "https://wiki.example/acs"), "sign_response": true})
	if r.status != 201 || r.body["entity_id"] != "https://wiki.example" || r.body["sign_response"] != true {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	wantError(t, a.do("POST", path, map[string]any{"name": "wiki2", "metadata_xml": spMetadata("https://wiki.example", "https://wiki.example/acs")}), 409, "conflict", "name", "already has")
	// The same app may be registered in another tenant.
	if r := a.do("POST", "/api/v1/tenants/beta/apps", map[string]any{"name": "wiki", "metadata_xml": spMetadata("https://wiki.example", "https://wiki.example/acs")}); r.status != 201 {
		t.Fatalf("same app in beta: %d %s", r.status, r.raw)
	}
	wantError(t, a.do("GET", "/api/v1/tenants/beta/apps/"+id, nil), 404, "not_found", "", "not found")
	wantError(t, a.do("DELETE", "/api/v1/tenants/beta/apps/"+id, nil), 404, "not_found", "", "not found")
	if r := a.do("GET", path+"/"+id, nil); r.status != 200 || r.body["acs_endpoints"].([]any)[0].(map[string]any)["location"] != "https://wiki.example/acs" {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	if r := a.do("DELETE", path+"/"+id, nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	wantError(t, a.do("GET", path+"/"+id, nil), 404, "not_found", "", "not found")
}

// TestAppProviders: an app's provider and logout algorithm show in create, get and list; a
// Salesforce app logs out with RSA-SHA1 by default (with a warning), front channel only.
func TestAppProviders(t *testing.T) {
	a := newAPI(t, false)
	a.do("POST", "/api/v1/tenants", map[string]string{"slug": "acme"})
	path := "/api/v1/tenants/acme/apps"
	for _, tc := range []struct {
		name, provider, alg string
		wantProvider        string
		wantAlg             string
		frontOnly, warning  bool
	}{
		{"wiki", "", "", "generic", "rsa-sha256", false, false},
		{"legacy", "generic", "rsa-sha1", "generic", "rsa-sha1", false, true},
		{"crm", "salesforce", "", "salesforce", "rsa-sha1", true, true},
		{"crm2", "salesforce", "rsa-sha256", "salesforce", "rsa-sha256", true, false},
	} {
		body := map[string]any{"name": tc.name, "metadata_xml": spMetadata("https://"+tc.name+".example", "https://"+tc.name+".example/acs")}
		if tc.provider != "" {
			body["provider"] = tc.provider
		}
		if tc.alg != "" {
			body["logout_signature_algorithm"] = tc.alg
		}
		r := a.do("POST", path, body)
		if r.status != 201 {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.raw)
		}
		for _, got := range []reply{r, a.do("GET", path+"/"+r.body["id"].(string), nil)} {
			if got.body["provider"] != tc.wantProvider || got.body["logout_signature_algorithm"] != tc.wantAlg || got.body["front_channel_logout_only"] != tc.frontOnly ||
				(len(got.body["warnings"].([]any)) > 0) != tc.warning {
				t.Errorf("%s: %s", tc.name, got.raw)
			}
		}
	}
	list := a.do("GET", path, nil)
	seen := map[string]any{}
	for _, v := range list.body["apps"].([]any) {
		app := v.(map[string]any)
		seen[app["name"].(string)] = app["provider"]
	}
	if seen["crm"] != "salesforce" || seen["wiki"] != "generic" {
		t.Errorf("list: %v", seen)
	}
}
