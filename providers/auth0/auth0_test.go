package auth0_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/auth0"
	"github.com/sloworks/broker/providers/providertest"
)

const clientID = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"

func TestContract(t *testing.T) {
	providertest.Run(t, "auth0", auth0.New(), providertest.Load(t, "testdata", "auth0"))
}

func metadataXML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/auth0-metadata.xml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The derived endpoints replace the metadata's, whatever host it names.
func TestEndpointsDerived(t *testing.T) {
	raw, _ := json.Marshal(map[string]string{"domain": "login.acme.example", "client_id": clientID, "metadata_xml": metadataXML(t)})
	up, err := auth0.New().Configure(context.Background(), raw, providers.Env{HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	sso := "https://login.acme.example/samlp/" + clientID
	wantSSO := []providers.Endpoint{{Binding: providers.BindingRedirect, Location: sso}, {Binding: providers.BindingPOST, Location: sso}}
	wantSLO := []providers.Endpoint{{Binding: providers.BindingPOST, Location: sso + "/logout"}, {Binding: providers.BindingRedirect, Location: sso + "/logout"}}
	if d := cmp.Diff(wantSSO, up.SSO); d != "" {
		t.Errorf("SSO (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantSLO, up.SLO); d != "" {
		t.Errorf("SLO (-want +got):\n%s", d)
	}
	if up.EntityID != "urn:acme.us.auth0.com" {
		t.Errorf("entity ID %q", up.EntityID)
	}
	q := up.Quirks
	if q.LogoutSigAlg != providers.SigAlgRSASHA256 || q.AuthnRequestSigAlg != providers.SigAlgRSASHA256 || q.FrontChannelOnly || q.NoSLO {
		t.Errorf("quirks %+v", q)
	}
	if d := cmp.Diff([]string{"post", "redirect"}, up.Capabilities().SLOBindings); d != "" {
		t.Errorf("slo bindings: %s", d)
	}
	if w := up.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q", w)
	}
}

// With no metadata_xml the metadata is fetched from https://{domain}/samlp/metadata/{client_id}.
func TestMetadataFetchedFromDerivedURL(t *testing.T) {
	md := metadataXML(t)
	var asked string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.Host + r.URL.Path
		if r.URL.Path != "/samlp/metadata/"+clientID {
			http.Error(w, "Not found", http.StatusNotFound)
			return
		}
		w.Write([]byte(md))
	}))
	defer srv.Close()
	// Every host resolves to the test server, which answers for example.com's certificate.
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: "example.com"}
	env := providers.Env{HTTPClient: &http.Client{Transport: tr}}

	raw, _ := json.Marshal(map[string]string{"domain": "acme.us.auth0.com", "client_id": clientID})
	up, err := auth0.New().Configure(context.Background(), raw, env)
	if err != nil {
		t.Fatal(err)
	}
	if asked != "acme.us.auth0.com/samlp/metadata/"+clientID || string(up.Metadata) != md {
		t.Errorf("fetched %q", asked)
	}
	// A client ID Auth0 does not know: its 404 is reported on client_id, as unreachable (422).
	raw, _ = json.Marshal(map[string]string{"domain": "acme.us.auth0.com", "client_id": strings.Repeat("Z", 32)})
	_, err = auth0.New().Configure(context.Background(), raw, env)
	ce, ok := providers.IsConfigError(err)
	if !ok || ce.Field != "config.client_id" || !ce.Unreachable || !strings.Contains(ce.Message, "HTTP 404") {
		t.Fatalf("unknown client ID: %v", err)
	}
}

// A local test IdP on loopback (BROKER_ALLOW_HTTP) is reached over http with its port.
func TestLoopbackWithAllowHTTP(t *testing.T) {
	md := metadataXML(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(md)) }))
	defer srv.Close()
	domain := strings.TrimPrefix(srv.URL, "http://")
	raw, _ := json.Marshal(map[string]string{"domain": domain, "client_id": clientID})
	up, err := auth0.New().Configure(context.Background(), raw, providers.Env{HTTPClient: srv.Client(), AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := srv.URL + "/samlp/" + clientID + "/logout"; up.SLO[0].Location != want {
		t.Errorf("SLO %q; want %q", up.SLO[0].Location, want)
	}
	// Without the flag a port is refused, and never on a host that is not loopback.
	for _, e := range []providers.Env{{HTTPClient: srv.Client()}, {HTTPClient: srv.Client(), AllowHTTP: true}} {
		d := domain
		if e.AllowHTTP {
			d = "acme.us.auth0.com:8443"
		}
		raw, _ := json.Marshal(map[string]string{"domain": d, "client_id": clientID, "metadata_xml": md})
		_, err := auth0.New().Configure(context.Background(), raw, e)
		if ce, ok := providers.IsConfigError(err); !ok || ce.Field != "config.domain" || !strings.Contains(ce.Message, "port") {
			t.Errorf("domain %q, allow http %v: %v", d, e.AllowHTTP, err)
		}
	}
}

func TestCheckClientID(t *testing.T) {
	if err := auth0.CheckClientID(clientID); err != nil {
		t.Fatal(err)
	}
	for id, says := range map[string]string{
		"":                           "required",
		clientID[:20]:                "20 characters",
		clientID + "x":               "33 characters",
		clientID[:31] + "_":          "only letters and digits",
		"https://acme.us.auth0.com/": "only letters and digits",
	} {
		ce, ok := providers.IsConfigError(auth0.CheckClientID(id))
		if !ok || ce.Field != "config.client_id" || !strings.Contains(ce.Message, says) {
			t.Errorf("CheckClientID(%q) = %v; want it to say %q", id, ce, says)
		}
	}
}
