package salesforce_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers/salesforce"
)

// FuzzMyDomain: a My Domain name that is accepted derives an https logout URL on its own
// *.my.salesforce.com host, and nothing else.
func FuzzMyDomain(f *testing.F) {
	for _, s := range []string{"acme", "acme--uat", "-acme", "acme.my.salesforce.com", "https://acme.my.salesforce.com", "a b", "ácme", "acme/evil", "acme@evil.example", "acme?x=1", "acme#x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if salesforce.CheckMyDomain(name) != nil {
			return
		}
		loc := salesforce.SLOURL(name)
		if err := metadata.CheckURL(loc, false); err != nil {
			t.Fatalf("%q derives %q: %v", name, loc, err)
		}
		u, err := url.Parse(loc)
		if err != nil || u.Host != strings.ToLower(name)+".my.salesforce.com" || u.Path != "/services/auth/idp/saml2/logout" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("%q derives %q", name, loc)
		}
	})
}
