package salesforce_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/providertest"
	"github.com/sloworks/broker/providers/salesforce"
)

func TestContract(t *testing.T) {
	providertest.Run(t, "salesforce", salesforce.New(), providertest.Load(t, "testdata", "salesforce"))
}

func configure(t *testing.T, mdFile string, kv map[string]any) *providers.Upstream {
	t.Helper()
	md, err := os.ReadFile("testdata/" + mdFile)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"metadata_xml": string(md)}
	for k, v := range kv {
		m[k] = v
	}
	raw, _ := json.Marshal(m)
	up, err := salesforce.New().Configure(context.Background(), raw, providers.Env{HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return up
}

func TestIdPQuirks(t *testing.T) {
	up := configure(t, "salesforce-idp-metadata.xml", map[string]any{"my_domain": "acme"})
	q := up.Quirks
	if q.SessionIndex != providers.SessionIndexFirstOnly || q.MaxSessionIndexLen != 512 || !q.RequireSessionIndex || !q.FrontChannelOnly {
		t.Errorf("session index and channel quirks: %+v", q)
	}
	if q.LogoutSigAlg != providers.SigAlgRSASHA1 {
		t.Errorf("logout algorithm %q; want RSA-SHA1 by default", q.LogoutSigAlg)
	}
	if q.LogoutBindings != nil {
		t.Errorf("logout bindings %v; want what the metadata says", q.LogoutBindings)
	}
	c := up.Capabilities()
	if c.BackChannelSLO || c.LogoutSigAlg != "rsa-sha1" || !c.SLO {
		t.Errorf("capabilities %+v", c)
	}
	if w := up.Warnings(); len(w) != 1 || !strings.Contains(w[0], "RSA-SHA1") {
		t.Errorf("warnings %q; want the RSA-SHA1 one", w)
	}

	up = configure(t, "salesforce-idp-metadata.xml", map[string]any{"slo_use_sso_signature_method": true, "slo_binding": "post"})
	if up.Quirks.LogoutSigAlg != providers.SigAlgRSASHA256 || up.Quirks.AuthnRequestSigAlg != "" {
		t.Errorf("with the SSO signature method: logout %q, authn %q", up.Quirks.LogoutSigAlg, up.Quirks.AuthnRequestSigAlg)
	}
	if d := cmp.Diff([]string{"post", "redirect"}, up.Capabilities().SLOBindings); d != "" {
		t.Errorf("slo bindings with slo_binding post: %s", d)
	}
	if w := up.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q; want none", w)
	}
}

func TestSLODerivedFromMyDomain(t *testing.T) {
	up := configure(t, "salesforce-idp-metadata-no-slo.xml", map[string]any{"my_domain": "Acme"})
	want := []providers.Endpoint{
		{Binding: providers.BindingRedirect, Location: "https://acme.my.salesforce.com/services/auth/idp/saml2/logout"},
		{Binding: providers.BindingPOST, Location: "https://acme.my.salesforce.com/services/auth/idp/saml2/logout"},
	}
	if d := cmp.Diff(want, up.SLO); d != "" {
		t.Errorf("derived SLO (-want +got):\n%s", d)
	}
	if len(up.Notes) != 1 || !strings.Contains(up.Notes[0], "derived from my_domain") {
		t.Errorf("notes %q", up.Notes)
	}
	// With SLO in the metadata, nothing is derived.
	up = configure(t, "salesforce-idp-metadata.xml", map[string]any{"my_domain": "acme"})
	if len(up.Notes) != 0 || len(up.SLO) != 2 || up.SLO[0].Binding != providers.BindingPOST {
		t.Errorf("metadata SLO replaced: %v %q", up.SLO, up.Notes)
	}
}

func TestCheckMyDomain(t *testing.T) {
	for _, name := range []string{"acme", "Acme-Corp", "acme--uat", "a", "a1b2", strings.Repeat("a", 63)} {
		if err := salesforce.CheckMyDomain(name); err != nil {
			t.Errorf("CheckMyDomain(%q): %v", name, err)
		}
	}
	for name, says := range map[string]string{
		"":                               "empty",
		"https://acme.my.salesforce.com": "is a URL",
		"acme.my.salesforce.com":         "without .my.salesforce.com",
		"acme.lightning.force.com":       "only letters, digits and hyphens",
		"acme corp":                      "has ' '",
		"acme-":                          "hyphen",
		"ácme":                           "only letters, digits and hyphens",
		strings.Repeat("a", 64):          "at most 63",
	} {
		err := salesforce.CheckMyDomain(name)
		ce, ok := providers.IsConfigError(err)
		if !ok || ce.Field != "config.my_domain" || !strings.Contains(ce.Message, says) {
			t.Errorf("CheckMyDomain(%q) = %v; want a ConfigError on config.my_domain saying %q", name, err, says)
		}
	}
}

func TestAppQuirks(t *testing.T) {
	q := salesforce.AppQuirks(false)
	if q.SessionIndex != providers.SessionIndexFirstOnly || q.MaxSessionIndexLen != 512 || q.LogoutSigAlg != providers.SigAlgRSASHA1 || !q.FrontChannelOnly {
		t.Errorf("app quirks %+v", q)
	}
	if q := salesforce.AppQuirks(true); q.LogoutSigAlg != providers.SigAlgRSASHA256 {
		t.Errorf("app quirks with the selected signature method: %q", q.LogoutSigAlg)
	}
	if q := salesforce.App(providers.AppSettings{}); q.LogoutSigAlg != providers.SigAlgRSASHA1 || !q.FrontChannelOnly || q.MaxSessionIndexLen != 512 {
		t.Errorf("App with the default setting: %+v", q)
	}
	if q := salesforce.App(providers.AppSettings{LogoutSigAlg: providers.SigAlgRSASHA256}); q.LogoutSigAlg != providers.SigAlgRSASHA256 || !q.FrontChannelOnly {
		t.Errorf("App with rsa-sha256: %+v", q)
	}
	for _, d := range q.Diagnoses {
		if d.Text == "" || d.Source == "" || (d.ErrorClass == "" && d.Status == "" && d.Contains == "") {
			t.Errorf("malformed app diagnosis %+v", d)
		}
	}
	if got := q.Diagnose(providers.Observation{ErrorClass: "no_answer"}); !strings.Contains(got, "512") {
		t.Errorf("app diagnosis %q", got)
	}
}
