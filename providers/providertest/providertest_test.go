package providertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/generic"
	"github.com/sloworks/broker/providers/providertest"
)

// The suite must fail broken providers. Each scenario runs the suite in a child test process
// (TestScenario) and must fail it with the message given.
func TestSuiteCatchesBrokenProviders(t *testing.T) {
	for scenario, says := range map[string]string{
		"no fixtures":                `provider "bare" has no fixtures`,
		"unfixtured in catalogue":    `provider "unlisted" has no fixtures`,
		"lenient decoding":           "Configure with an unknown key",
		"mistyped accepted":          "Configure with metadata_xml: 12345",
		"fetches anyway":             "network requests",
		"load differs":               "Load does not reopen the Upstream",
		"unexercised diagnosis":      "is the answer to no fixture observation",
		"diagnosis of another class": "the logout log's classes are",
		"wrong field":                `; want "config.slo"`,
	} {
		t.Run(scenario, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestScenario$", "-test.v")
			cmd.Env = append(os.Environ(), "PROVIDERTEST_SCENARIO="+scenario)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed a broken provider (%v):\n%s", err, out)
			}
			if !strings.Contains(string(out), says) {
				t.Fatalf("the suite failed without saying %q:\n%s", says, out)
			}
		})
	}
}

// broken wraps the generic provider and breaks one rule of the contract.
type broken struct {
	scenario string
	inner    *generic.Provider
}

func (b *broken) Configure(ctx context.Context, raw []byte, env providers.Env) (*providers.Upstream, error) {
	switch b.scenario {
	case "lenient decoding", "mistyped accepted":
		var c struct {
			MetadataXML any `json:"metadata_xml"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, &providers.ConfigError{Field: "config", Message: err.Error()}
		}
		s, _ := c.MetadataXML.(string)
		if s == "" {
			return nil, &providers.ConfigError{Field: "config", Message: "no metadata"}
		}
		return generic.Open([]byte(s), providers.Quirks{}, env)
	case "fetches anyway":
		if resp, err := env.HTTPClient.Get("https://idp.acme.example/saml/metadata"); err == nil {
			resp.Body.Close()
		}
	}
	up, err := b.inner.Configure(ctx, raw, env)
	if err == nil && b.scenario == "load differs" {
		up.EntityID += "/configured"
	}
	if err == nil && b.scenario == "unexercised diagnosis" {
		up.Quirks.Diagnoses = []providers.Diagnosis{{ErrorClass: "timeout", Text: "slow", Source: "here"}}
	}
	if err == nil && b.scenario == "diagnosis of another class" {
		up.Quirks.Diagnoses = []providers.Diagnosis{{ErrorClass: "tea_time", Text: "later", Source: "here"}}
	}
	return up, err
}

func (b *broken) Load(raw, doc []byte, env providers.Env) (*providers.Upstream, error) {
	if b.scenario == "lenient decoding" || b.scenario == "mistyped accepted" {
		return b.Configure(context.Background(), raw, env)
	}
	return b.inner.Load(raw, doc, env)
}

func TestScenario(t *testing.T) {
	scenario := os.Getenv("PROVIDERTEST_SCENARIO")
	if scenario == "" {
		t.Skip("run by TestSuiteCatchesBrokenProviders")
	}
	md, err := os.ReadFile("../generic/testdata/generic-metadata.xml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]string{"metadata_xml": string(md)})
	fx := providertest.Fixtures{Valid: []providertest.Case{{Name: "metadata", Config: cfg}}}
	p := &broken{scenario: scenario, inner: generic.New()}
	switch scenario {
	case "no fixtures":
		providertest.Run(t, "bare", p, providertest.Fixtures{})
	case "unfixtured in catalogue":
		providertest.RunCatalogue(t, map[string]providers.Provider{"listed": p, "unlisted": p}, map[string]providertest.Fixtures{"listed": fx})
	case "wrong field":
		bad, _ := json.Marshal(map[string]any{"metadata_xml": string(md), "signature_algorithm": "md5"})
		fx.Invalid = []providertest.Case{{Name: "bad algorithm", Config: bad, Field: "config.slo"}}
		providertest.Run(t, "generic", p, fx)
	default:
		providertest.Run(t, "generic", p, fx)
	}
}
