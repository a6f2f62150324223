package providers_test

import (
	"testing"

	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/auth0"
	"github.com/sloworks/broker/providers/generic"
	"github.com/sloworks/broker/providers/providertest"
	"github.com/sloworks/broker/providers/salesforce"
)

// catalogue is the provider map cmd/broker registers (keep the two in step: catalogue() in
// cmd/broker/main.go). Every provider in it must pass the contract suite with its fixtures.
func catalogue() map[string]providers.Provider {
	return map[string]providers.Provider{
		"generic":    generic.New(),
		"okta":       generic.Okta(),
		"entra":      generic.Entra(),
		"adfs":       generic.ADFS(),
		"google":     generic.Google(),
		"keycloak":   generic.Keycloak(),
		"salesforce": salesforce.New(),
		"auth0":      auth0.New(),
	}
}

// fixtureDirs says where each provider's fixtures are: its package's testdata.
var fixtureDirs = map[string]string{
	"generic": "generic/testdata", "okta": "generic/testdata", "entra": "generic/testdata", "adfs": "generic/testdata",
	"google": "generic/testdata", "keycloak": "generic/testdata", "salesforce": "salesforce/testdata", "auth0": "auth0/testdata",
}

func TestCatalogue(t *testing.T) {
	fixtures := map[string]providertest.Fixtures{}
	for name := range catalogue() {
		if dir, ok := fixtureDirs[name]; ok {
			fixtures[name] = providertest.Load(t, dir, name)
		}
	}
	providertest.RunCatalogue(t, catalogue(), fixtures)
}
