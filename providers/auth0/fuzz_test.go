package auth0_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers/auth0"
)

// FuzzDomain: a domain that is accepted derives https URLs on that host alone, with the client ID
// as the only path segment after /samlp/.
func FuzzDomain(f *testing.F) {
	for _, s := range []string{"acme.us.auth0.com", "login.acme.example", "acme", "https://acme.auth0.com/", "acme.auth0.com:8443", "a..b", "evil.example/x", "user@acme.auth0.com", "ACME.auth0.com."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, domain string) {
		base, err := auth0.BaseURL(domain, false)
		if err != nil {
			return
		}
		ep := auth0.Derive(base, clientID)
		for _, loc := range []string{ep.Metadata, ep.SSO, ep.SLO} {
			if err := metadata.CheckURL(loc, false); err != nil {
				t.Fatalf("%q derives %q: %v", domain, loc, err)
			}
			u, err := url.Parse(loc)
			if err != nil || u.Host != strings.ToLower(strings.TrimSuffix(domain, ".")) || u.User != nil || u.RawQuery != "" || !strings.Contains(u.Path, "/"+clientID) {
				t.Fatalf("%q derives %q", domain, loc)
			}
		}
	})
}
