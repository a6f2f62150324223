package generic_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sloworks/broker/providers"
)

// FuzzConfigure feeds every provider of this package arbitrary configs: it never panics, never
// touches the network beyond refusing a metadata URL, and every refusal is a ConfigError that
// names a field.
func FuzzConfigure(f *testing.F) {
	files, _ := filepath.Glob("testdata/contract-*.json")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var fx struct {
			Valid, Invalid []struct {
				Config json.RawMessage `json:"config"`
			}
		}
		if err := json.Unmarshal(raw, &fx); err != nil {
			f.Fatal(err)
		}
		for _, c := range append(fx.Valid, fx.Invalid...) {
			f.Add([]byte(c.Config))
		}
	}
	f.Add([]byte(`{"metadata_xml":"<x/>","slo":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for name, p := range presets {
			up, err := p().Configure(context.Background(), raw, env)
			if err != nil {
				ce, ok := providers.IsConfigError(err)
				if !ok || ce.Field == "" || ce.Message == "" {
					t.Fatalf("%s: %v is not a ConfigError naming a field", name, err)
				}
				continue
			}
			_ = up.Capabilities()
			_ = up.Warnings()
		}
	})
}
