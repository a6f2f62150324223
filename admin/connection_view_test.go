package admin_test

import (
	"strings"
	"testing"
)

// The connection's API view says what the connection can do and what the admin should know.
func TestConnectionViewCapabilitiesAndWarnings(t *testing.T) {
	a := newAPI(t, false)
	a.do("POST", "/api/v1/tenants", map[string]string{"slug": "acme"})
	path := "/api/v1/tenants/acme/connections"
	md := strings.Replace(idpMetadata("https://idp.example/sso", true), "</md:IDPSSODescriptor>",
		`<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/slo"/></md:IDPSSODescriptor>`, 1)

	r := a.do("POST", path, map[string]any{"provider": "generic", "name": "plain", "config": map[string]any{"metadata_xml": md}})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	caps, _ := r.body["capabilities"].(map[string]any)
	if caps["slo"] != true || caps["idp_initiated_slo"] != true || caps["logout_signature_algorithm"] != "rsa-sha256" {
		t.Errorf("capabilities %v", caps)
	}
	if w, ok := r.body["warnings"].([]any); !ok || len(w) != 0 {
		t.Errorf("warnings %v; want an empty list", r.body["warnings"])
	}
	a.do("DELETE", path+"/"+r.body["id"].(string), nil)

	r = a.do("POST", path, map[string]any{"provider": "generic", "name": "lax", "config": map[string]any{
		"metadata_xml": md, "slo": false, "allow_unsigned_logout_request": true,
	}})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	// The same view on create, get and list.
	for _, v := range []map[string]any{r.body, a.do("GET", path+"/"+id, nil).body, a.do("GET", path, nil).body["connections"].([]any)[0].(map[string]any)} {
		caps, _ := v["capabilities"].(map[string]any)
		if caps["slo"] != false || caps["back_channel_slo"] != false {
			t.Errorf("capabilities %v; want slo false", caps)
		}
		w, _ := v["warnings"].([]any)
		joined := ""
		for _, s := range w {
			joined += s.(string) + "\n"
		}
		for _, says := range []string{"unsigned IdP LogoutRequests are accepted", "does not support SAML Single Logout"} {
			if !strings.Contains(joined, says) {
				t.Errorf("warnings %q do not say %q", joined, says)
			}
		}
	}
}
