package generic_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/generic"
	"github.com/sloworks/broker/providers/providertest"
)

// presets are the providers this package registers, by catalogue name.
var presets = map[string]func() *generic.Provider{
	"generic":  generic.New,
	"okta":     generic.Okta,
	"entra":    generic.Entra,
	"adfs":     generic.ADFS,
	"google":   generic.Google,
	"keycloak": generic.Keycloak,
}

func TestContract(t *testing.T) {
	for name, p := range presets {
		t.Run(name, func(t *testing.T) {
			providertest.Run(t, name, p(), providertest.Load(t, "testdata", name))
		})
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func config(t *testing.T, mdFile string, kv map[string]any) []byte {
	t.Helper()
	m := map[string]any{"metadata_xml": readFile(t, mdFile)}
	for k, v := range kv {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

var env = providers.Env{HTTPClient: &http.Client{Transport: refuse{}}}

type refuse struct{}

func (refuse) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, &providers.ConfigError{Message: "no network in this test: " + r.URL.String()}
}

func open(t *testing.T, p *generic.Provider, raw []byte) *providers.Upstream {
	t.Helper()
	up, err := p.Configure(context.Background(), raw, env)
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return up
}

func TestOverrides(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   map[string]any
		want providers.Capabilities
		warn []string
	}{
		{"defaults", nil, providers.Capabilities{
			SLO: true, SLOBindings: []string{"soap", "redirect", "post"}, BackChannelSLO: true, IdPInitiatedSLO: true, IdPLogoutChannel: "front",
			SignedAuthnRequests: true, AuthnRequestSigAlg: "rsa-sha256", LogoutSigAlg: "rsa-sha256",
		}, nil},
		{"post preferred, sha1, unsigned requests", map[string]any{"sso_binding": "post", "slo_binding": "post", "signature_algorithm": "rsa-sha1", "sign_authn_requests": false}, providers.Capabilities{
			SLO: true, SLOBindings: []string{"soap", "post", "redirect"}, BackChannelSLO: true, IdPInitiatedSLO: true, IdPLogoutChannel: "front",
			AuthnRequestSigAlg: "rsa-sha1", LogoutSigAlg: "rsa-sha1",
		}, []string{"AuthnRequests are sent unsigned", "RSA-SHA1"}},
		{"slo off", map[string]any{"slo": false}, providers.Capabilities{
			SLOBindings: []string{}, SignedAuthnRequests: true, AuthnRequestSigAlg: "rsa-sha256", LogoutSigAlg: "rsa-sha256",
		}, []string{"does not support SAML Single Logout"}},
		{"unsigned logout requests allowed", map[string]any{"allow_unsigned_logout_request": true}, providers.Capabilities{
			SLO: true, SLOBindings: []string{"soap", "redirect", "post"}, BackChannelSLO: true, IdPInitiatedSLO: true, IdPLogoutChannel: "front",
			SignedAuthnRequests: true, AuthnRequestSigAlg: "rsa-sha256", LogoutSigAlg: "rsa-sha256",
		}, []string{"unsigned IdP LogoutRequests are accepted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := open(t, generic.New(), config(t, "generic-metadata.xml", tc.kv))
			if d := cmp.Diff(tc.want, up.Capabilities()); d != "" {
				t.Errorf("capabilities (-want +got):\n%s", d)
			}
			warnings := up.Warnings()
			if len(warnings) != len(tc.warn) {
				t.Errorf("warnings %q; want %d", warnings, len(tc.warn))
			}
			for i, w := range tc.warn {
				if i < len(warnings) && !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d %q does not say %q", i, warnings[i], w)
				}
			}
		})
	}
	// The quirks the engines read, for the fullest override.
	up := open(t, generic.New(), config(t, "generic-metadata.xml", map[string]any{
		"sign_authn_requests": false, "signature_algorithm": "rsa-sha1", "sso_binding": "post", "slo_binding": "post", "allow_unsigned_logout_request": true,
	}))
	want := providers.Quirks{
		DontSignAuthnRequests: true, AuthnRequestSigAlg: providers.SigAlgRSASHA1, LogoutSigAlg: providers.SigAlgRSASHA1,
		SSOBindings:                []providers.Binding{providers.BindingPOST, providers.BindingRedirect},
		LogoutBindings:             []providers.Binding{providers.BindingPOST, providers.BindingRedirect},
		AllowUnsignedLogoutRequest: true,
	}
	if d := cmp.Diff(want, up.Quirks); d != "" {
		t.Errorf("quirks (-want +got):\n%s", d)
	}
	if ep, _ := up.SSOEndpoint(); ep.Binding != providers.BindingPOST {
		t.Errorf("SSO endpoint %v; want the POST one", ep)
	}
}

func TestPresetQuirks(t *testing.T) {
	t.Run("okta", func(t *testing.T) {
		up := open(t, generic.Okta(), config(t, "okta-metadata.xml", nil))
		c := up.Capabilities()
		if !c.SLO || c.IdPInitiatedSLO || c.IdPLogoutChannel != "" {
			t.Errorf("okta capabilities %+v: want SLO, SP-initiated only", c)
		}
		up = open(t, generic.Okta(), config(t, "okta-metadata-no-slo.xml", nil))
		if up.Capabilities().SLO || len(up.Notes) != 1 || !strings.Contains(up.Notes[0], "Allow application to initiate Single Logout") {
			t.Errorf("okta without SLO: capabilities %+v, notes %q", up.Capabilities(), up.Notes)
		}
	})
	t.Run("entra keeps Redirect logout only", func(t *testing.T) {
		md := readFile(t, "entra-metadata.xml")
		withPost := strings.Replace(md, `<SingleLogoutService `, `<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://login.microsoftonline.com/post/saml2"/><SingleLogoutService `, 1)
		raw, _ := json.Marshal(map[string]string{"metadata_xml": withPost})
		up := open(t, generic.Entra(), raw)
		if len(up.SLO) != 1 || up.SLO[0].Binding != providers.BindingRedirect {
			t.Errorf("entra SLO %v; want the Redirect endpoint only", up.SLO)
		}
		if len(up.Notes) != 1 || !strings.Contains(up.Notes[0], "redirect only") {
			t.Errorf("notes %q; want one saying Redirect only", up.Notes)
		}
		if d := cmp.Diff([]string{"redirect"}, up.Capabilities().SLOBindings); d != "" {
			t.Errorf("slo bindings: %s", d)
		}
	})
	t.Run("adfs requires SessionIndex", func(t *testing.T) {
		up := open(t, generic.ADFS(), config(t, "adfs-metadata.xml", nil))
		if !up.Quirks.RequireSessionIndex {
			t.Error("adfs: RequireSessionIndex not set")
		}
		if len(up.SigningCerts) != 1 {
			t.Errorf("adfs: %d signing certificates; the encryption key is not one", len(up.SigningCerts))
		}
	})
	t.Run("google has no SLO", func(t *testing.T) {
		up := open(t, generic.Google(), config(t, "google-metadata.xml", nil))
		c := up.Capabilities()
		if c.SLO || c.IdPInitiatedSLO || !c.ForceAuthnAfterLogout {
			t.Errorf("google capabilities %+v", c)
		}
		if w := up.Warnings(); len(w) != 1 || !strings.Contains(w[0], "does not support SAML Single Logout") {
			t.Errorf("google warnings %q", w)
		}
	})
	t.Run("keycloak", func(t *testing.T) {
		up := open(t, generic.Keycloak(), config(t, "keycloak-metadata.xml", nil))
		c := up.Capabilities()
		if c.BackChannelSLO || c.IdPLogoutChannel != "front" || !strings.HasPrefix(strings.Join(c.SLOBindings, ","), "redirect") {
			t.Errorf("keycloak capabilities %+v: its SOAP SingleLogoutService must not be planned", c)
		}
		up = open(t, generic.Keycloak(), config(t, "keycloak-metadata.xml", map[string]any{"front_channel_logout": false}))
		c = up.Capabilities()
		if c.BackChannelSLO || c.IdPLogoutChannel != "back" || !up.Quirks.IdPLogoutBackChannel {
			t.Errorf("keycloak, front channel logout off: %+v", c)
		}
		if w := up.Warnings(); len(w) != 1 || !strings.Contains(w[0], "server to server") {
			t.Errorf("keycloak warnings %q", w)
		}
	})
}

// An Upstream never shares a preset's slices: changing one connection's quirks changes no other.
func TestPresetsAreNotShared(t *testing.T) {
	p := generic.Entra()
	a := open(t, p, config(t, "entra-metadata.xml", nil))
	a.Quirks.LogoutBindings[0] = providers.BindingSOAP
	a.Quirks.Diagnoses[0].Text = "changed"
	b := open(t, p, config(t, "entra-metadata.xml", nil))
	if b.Quirks.LogoutBindings[0] != providers.BindingRedirect || b.Quirks.Diagnoses[0].Text == "changed" {
		t.Fatal("a connection's quirks are shared with the preset")
	}
}

func TestMetadataByURL(t *testing.T) {
	md := readFile(t, "okta-metadata.xml")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/app/exk1fcia6d6EMsf0P0h8/sso/saml/metadata" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(md))
	}))
	defer srv.Close()
	e := providers.Env{HTTPClient: srv.Client()}
	raw, _ := json.Marshal(map[string]string{"metadata_url": srv.URL + "/app/exk1fcia6d6EMsf0P0h8/sso/saml/metadata"})
	up, err := generic.Okta().Configure(context.Background(), raw, e)
	if err != nil {
		t.Fatal(err)
	}
	if string(up.Metadata) != md {
		t.Error("the fetched document is not what the connection keeps")
	}
	// Load never fetches.
	again, err := generic.Okta().Load(raw, up.Metadata, env)
	if err != nil || again.EntityID != up.EntityID {
		t.Fatalf("Load: %v", err)
	}
	raw, _ = json.Marshal(map[string]string{"metadata_url": srv.URL + "/wrong"})
	_, err = generic.Okta().Configure(context.Background(), raw, e)
	ce, ok := providers.IsConfigError(err)
	if !ok || ce.Field != "config.metadata_url" || !ce.Unreachable || !strings.Contains(ce.Message, "HTTP 404") {
		t.Fatalf("404 metadata: %v", err)
	}
}
