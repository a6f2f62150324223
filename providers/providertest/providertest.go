// Package providertest is the contract suite every provider plugin passes: Run it from the
// provider's package test with the provider's fixtures (testdata/contract-<name>.json).
//
// For each valid config it checks that the connection opens from metadata given as XML with no
// network access, that Load reopens the same Upstream from the stored config and metadata, that
// unknown keys and mistyped values are refused with a *providers.ConfigError naming the field,
// and that the provider's diagnoses are well formed and each explains a fixture's observation.
// Each invalid config must be refused with a ConfigError on the field the fixture names. A
// provider without fixtures fails the suite.
package providertest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/slo"
)

// Fixtures are the configs and observations a provider is checked with.
type Fixtures struct {
	// Valid configs open a connection.
	Valid []Case `json:"valid"`
	// Invalid configs are refused with a ConfigError on Case.Field.
	Invalid []Case `json:"invalid"`
	// Diagnoses are observations of failed legs and the diagnosis each must get.
	Diagnoses []DiagnosisCase `json:"diagnoses"`
}

// Case is one config. In a fixture file, "metadata" names a testdata file whose content is put
// into the config as metadata_xml.
type Case struct {
	Name     string          `json:"name"`
	Metadata string          `json:"metadata,omitempty"`
	Config   json.RawMessage `json:"config"`
	// Field and Message (a part of it) are what an invalid config's ConfigError says.
	Field   string `json:"field,omitempty"`
	Message string `json:"message,omitempty"`
}

// DiagnosisCase is what the logout engine saw of a failed leg, and a part of the diagnosis the
// provider must give for it.
type DiagnosisCase struct {
	ErrorClass string   `json:"error_class,omitempty"`
	Status     []string `json:"status,omitempty"`
	Answer     string   `json:"answer,omitempty"`
	Want       string   `json:"want"`
}

// Observation is the case as the engine would pass it to Quirks.Diagnose.
func (d DiagnosisCase) Observation() providers.Observation {
	return providers.Observation{ErrorClass: d.ErrorClass, Status: d.Status, Answer: d.Answer}
}

// Load reads dir/contract-<name>.json and puts each case's metadata file into its config as
// metadata_xml. A missing file gives empty fixtures (which fail Run).
func Load(t testing.TB, dir, name string) Fixtures {
	t.Helper()
	var fx Fixtures
	raw, err := os.ReadFile(filepath.Join(dir, "contract-"+name+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return fx
	}
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fx); err != nil {
		t.Fatalf("fixtures %s: %v", name, err)
	}
	for _, cases := range [][]Case{fx.Valid, fx.Invalid} {
		for i := range cases {
			c := &cases[i]
			if c.Metadata == "" {
				continue
			}
			md, err := os.ReadFile(filepath.Join(dir, c.Metadata))
			if err != nil {
				t.Fatalf("fixtures %s, case %q: %v", name, c.Name, err)
			}
			cfg := map[string]any{}
			if len(c.Config) > 0 {
				if err := json.Unmarshal(c.Config, &cfg); err != nil {
					t.Fatalf("fixtures %s, case %q: config: %v", name, c.Name, err)
				}
			}
			if _, ok := cfg["metadata_xml"]; !ok {
				cfg["metadata_xml"] = string(md)
			}
			if c.Config, err = json.Marshal(cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	return fx
}

// noNetwork fails every request and counts them: Configure with metadata given as XML, and Load,
// must not touch the network.
type noNetwork struct{ calls atomic.Int32 }

func (n *noNetwork) RoundTrip(r *http.Request) (*http.Response, error) {
	n.calls.Add(1)
	return nil, fmt.Errorf("providertest: no network: %s %s", r.Method, r.URL)
}

// certsEqual compares certificates by their DER bytes.
var certsEqual = cmp.Comparer(func(a, b *x509.Certificate) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.Raw, b.Raw)
})

// Run checks provider p, registered as name, against the contract with its fixtures.
func Run(t *testing.T, name string, p providers.Provider, fx Fixtures) {
	t.Helper()
	if len(fx.Valid) == 0 {
		t.Errorf("provider %q has no fixtures: add testdata/contract-%s.json with at least one valid config to its package and run providertest.Run with it", name, name)
		return
	}
	net := &noNetwork{}
	env := providers.Env{HTTPClient: &http.Client{Transport: net}}
	ctx := context.Background()
	var first *providers.Upstream

	for _, c := range fx.Valid {
		t.Run("valid/"+c.Name, func(t *testing.T) {
			up, err := p.Configure(ctx, c.Config, env)
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			checkUpstream(t, up)
			if first == nil {
				first = up
			}
			again, err := p.Load(c.Config, up.Metadata, env)
			if err != nil {
				t.Fatalf("Load of what Configure returned: %v", err)
			}
			if d := cmp.Diff(up, again, certsEqual); d != "" {
				t.Errorf("Load does not reopen the Upstream Configure returned (-configure +load):\n%s", d)
			}
			refusesUnknownKey(t, p, env, c.Config, up.Metadata)
			refusesMistypedValues(t, p, env, c.Config, up.Metadata)
		})
	}
	t.Run("no config", func(t *testing.T) {
		for _, raw := range []string{"", "null", "[]", `"metadata"`, "{} {}"} {
			_, err := p.Configure(ctx, []byte(raw), env)
			wantConfigError(t, fmt.Sprintf("Configure(%q)", raw), err, "config", "")
		}
	})
	for _, c := range fx.Invalid {
		t.Run("invalid/"+c.Name, func(t *testing.T) {
			if c.Field == "" {
				t.Fatal("fixture error: an invalid case names the field its ConfigError must have")
			}
			_, err := p.Configure(ctx, c.Config, env)
			wantConfigError(t, "Configure", err, c.Field, c.Message)
		})
	}
	t.Run("diagnoses", func(t *testing.T) {
		if first == nil {
			t.Skip("no valid config opened")
		}
		checkDiagnoses(t, &first.Quirks, fx.Diagnoses)
	})
	if n := net.calls.Load(); n != 0 {
		t.Errorf("provider %q made %d network requests with metadata given as XML or on Load", name, n)
	}
}

// RunCatalogue runs the suite over every provider of a catalogue; a registered provider without
// fixtures fails, and so do fixtures for a provider that is not registered.
func RunCatalogue(t *testing.T, catalogue map[string]providers.Provider, fixtures map[string]Fixtures) {
	t.Helper()
	names := make([]string, 0, len(catalogue))
	for n := range catalogue {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) { Run(t, n, catalogue[n], fixtures[n]) })
	}
	for n := range fixtures {
		if _, ok := catalogue[n]; !ok {
			t.Errorf("fixtures for %q, which is not a registered provider", n)
		}
	}
}

func checkUpstream(t *testing.T, up *providers.Upstream) {
	t.Helper()
	if up.EntityID == "" {
		t.Error("Upstream has no EntityID")
	}
	if len(up.SigningCerts) == 0 {
		t.Error("Upstream has no signing certificate")
	}
	if len(up.Metadata) == 0 {
		t.Error("Upstream keeps no metadata for Load")
	}
	if _, err := up.SSOEndpoint(); err != nil {
		t.Errorf("SSOEndpoint: %v", err)
	}
	for _, e := range append(append([]providers.Endpoint{}, up.SSO...), up.SLO...) {
		if !strings.HasPrefix(e.Location, "https://") {
			t.Errorf("endpoint %s %q is not https", e.Binding, e.Location)
		}
	}
	caps := up.Capabilities()
	if caps.SLO != (len(caps.SLOBindings) > 0) {
		t.Errorf("capabilities: slo %v with bindings %v", caps.SLO, caps.SLOBindings)
	}
	if w := up.Warnings(); w == nil {
		t.Error("Warnings is nil; want an empty list when there is nothing to warn about")
	}
}

func withKey(t *testing.T, raw json.RawMessage, key string, value any) []byte {
	t.Helper()
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("valid config is not a JSON object: %v", err)
	}
	v, _ := json.Marshal(value)
	m[key] = v
	out, _ := json.Marshal(m)
	return out
}

func refusesUnknownKey(t *testing.T, p providers.Provider, env providers.Env, raw json.RawMessage, doc []byte) {
	t.Helper()
	const key = "x_not_a_config_key"
	bad := withKey(t, raw, key, true)
	_, err := p.Configure(context.Background(), bad, env)
	wantConfigError(t, "Configure with an unknown key", err, "config", key)
	_, err = p.Load(bad, doc, env)
	wantConfigError(t, "Load with an unknown key", err, "config", key)
}

// refusesMistypedValues gives each key of a valid config a number (every config value is a
// string or a bool): the ConfigError must name that key's field.
func refusesMistypedValues(t *testing.T, p providers.Provider, env providers.Env, raw json.RawMessage, doc []byte) {
	t.Helper()
	m := map[string]json.RawMessage{}
	_ = json.Unmarshal(raw, &m)
	for key := range m {
		_, err := p.Configure(context.Background(), withKey(t, raw, key, 12345), env)
		wantConfigError(t, fmt.Sprintf("Configure with %s: 12345", key), err, "config."+key, "")
	}
}

func wantConfigError(t *testing.T, what string, err error, field, msgPart string) {
	t.Helper()
	ce, ok := providers.IsConfigError(err)
	if !ok {
		t.Errorf("%s: got %v; want a *providers.ConfigError on %s", what, err, field)
		return
	}
	if ce.Field != field {
		t.Errorf("%s: ConfigError on %q (%s); want %q", what, ce.Field, ce.Message, field)
	}
	if ce.Message == "" {
		t.Errorf("%s: ConfigError without a message", what)
	}
	if msgPart != "" && !strings.Contains(ce.Message, msgPart) {
		t.Errorf("%s: message %q does not say %q", what, ce.Message, msgPart)
	}
}

// Classes are the logout log's error classes a diagnosis may be keyed by.
var Classes = []string{slo.ClassTimeout, slo.ClassBadSignature, slo.ClassStatus, slo.ClassUnreachable, slo.ClassNoAnswer,
	slo.ClassNotSupported, slo.ClassSigningUnavailable, slo.ClassRefused}

var statusKey = regexp.MustCompile(`^(urn:oasis:names:tc:SAML:2\.0:status:[A-Za-z]+|[1-5][0-9][0-9])$`)

func checkDiagnoses(t *testing.T, q *providers.Quirks, cases []DiagnosisCase) {
	t.Helper()
	for i, d := range q.Diagnoses {
		if d.ErrorClass == "" && d.Status == "" && d.Contains == "" {
			t.Errorf("diagnosis %d is keyed by nothing", i)
		}
		if d.ErrorClass != "" && !contains(Classes, d.ErrorClass) {
			t.Errorf("diagnosis %d is keyed by error class %q; the logout log's classes are %v", i, d.ErrorClass, Classes)
		}
		if d.Status != "" && !statusKey.MatchString(d.Status) {
			t.Errorf("diagnosis %d is keyed by status %q; want a SAML status URN or an HTTP status code", i, d.Status)
		}
		if strings.TrimSpace(d.Text) == "" || strings.TrimSpace(d.Source) == "" {
			t.Errorf("diagnosis %d needs a text and a source", i)
		}
	}
	hit := make([]bool, len(q.Diagnoses))
	for _, c := range cases {
		o := c.Observation()
		got := q.Diagnose(o)
		if !strings.Contains(got, c.Want) {
			t.Errorf("Diagnose(%+v) = %q; want it to say %q", o, got, c.Want)
		}
		for i := range q.Diagnoses {
			if q.Diagnoses[i].Matches(o) {
				hit[i] = true
				break
			}
		}
	}
	for i, h := range hit {
		if !h {
			t.Errorf("diagnosis %d (%q) is the answer to no fixture observation; add one to the fixtures", i, q.Diagnoses[i].Text)
		}
	}
	if got := q.Diagnose(providers.Observation{ErrorClass: "x_no_such_class"}); got != "" {
		t.Errorf("an observation no diagnosis is keyed by got %q", got)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
