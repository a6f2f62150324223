package providers_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/providers"
)

func eps(bs ...providers.Binding) []providers.Endpoint {
	var out []providers.Endpoint
	for _, b := range bs {
		out = append(out, providers.Endpoint{Binding: b, Location: "https://idp.example/slo"})
	}
	return out
}

func TestCapabilities(t *testing.T) {
	R, P, S := providers.BindingRedirect, providers.BindingPOST, providers.BindingSOAP
	base := providers.Capabilities{SignedAuthnRequests: true, AuthnRequestSigAlg: "rsa-sha256", LogoutSigAlg: "rsa-sha256"}
	with := func(f func(c *providers.Capabilities)) providers.Capabilities {
		c := base
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		up   providers.Upstream
		want providers.Capabilities
	}{
		{"no SLO endpoint", providers.Upstream{}, with(func(c *providers.Capabilities) { c.SLOBindings = []string{} })},
		{"SAML default", providers.Upstream{SLO: eps(P, S, R)}, with(func(c *providers.Capabilities) {
			c.SLO, c.SLOBindings, c.BackChannelSLO, c.IdPInitiatedSLO, c.IdPLogoutChannel = true, []string{"soap", "redirect", "post"}, true, true, "front"
		})},
		{"front channel only, POST preferred", providers.Upstream{SLO: eps(R, P, S), Quirks: providers.Quirks{FrontChannelOnly: true, LogoutBindings: []providers.Binding{P}}}, with(func(c *providers.Capabilities) {
			c.SLO, c.SLOBindings, c.IdPInitiatedSLO, c.IdPLogoutChannel = true, []string{"post", "redirect"}, true, "front"
		})},
		{"no SLO", providers.Upstream{SLO: eps(R), Quirks: providers.Quirks{NoSLO: true, ForceAuthnAfterLogout: true}}, with(func(c *providers.Capabilities) {
			c.SLOBindings, c.ForceAuthnAfterLogout = []string{}, true
		})},
		{"sp-initiated only, back channel from IdP ignored", providers.Upstream{SLO: eps(R), Quirks: providers.Quirks{SPInitiatedSLOOnly: true}}, with(func(c *providers.Capabilities) {
			c.SLO, c.SLOBindings = true, []string{"redirect"}
		})},
		{"IdP logs out server to server", providers.Upstream{SLO: eps(R), Quirks: providers.Quirks{IdPLogoutBackChannel: true}}, with(func(c *providers.Capabilities) {
			c.SLO, c.SLOBindings, c.IdPInitiatedSLO, c.IdPLogoutChannel = true, []string{"redirect"}, true, "back"
		})},
		{"unsigned requests, unless the IdP wants them signed", providers.Upstream{WantAuthnRequestsSigned: true, Quirks: providers.Quirks{DontSignAuthnRequests: true, AuthnRequestSigAlg: providers.SigAlgRSASHA1}}, with(func(c *providers.Capabilities) {
			c.SLOBindings, c.AuthnRequestSigAlg = []string{}, "rsa-sha1"
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, tc.up.Capabilities()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	up := providers.Upstream{EntityID: "https://idp.example", SLO: eps(providers.BindingRedirect)}
	if w := up.Warnings(); w == nil || len(w) != 0 {
		t.Fatalf("plain SAML: %q; want an empty list", w)
	}
	up.Quirks = providers.Quirks{AllowUnsignedLogoutRequest: true, DontSignAuthnRequests: true, LogoutSigAlg: providers.SigAlgRSASHA1, IdPLogoutBackChannel: true}
	w := strings.Join(up.Warnings(), "\n")
	for _, says := range []string{"unsigned IdP LogoutRequests are accepted", "AuthnRequests are sent unsigned", "RSA-SHA1", "server to server"} {
		if !strings.Contains(w, says) {
			t.Errorf("warnings %q do not say %q", w, says)
		}
	}
	up = providers.Upstream{EntityID: "https://idp.example"}
	if w := up.Warnings(); len(w) != 1 || !strings.Contains(w[0], "no SingleLogoutService") {
		t.Errorf("no SLO endpoint: %q", w)
	}
}
