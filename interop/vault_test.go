package interop

import (
	"encoding/json"
	"net/http"
	"strings"
)

// signMark is how many Transit sign requests Vault has seen so far (0 with local keys): pass it
// to requireSignedBy after a flow.
func (e *env) signMark() int {
	e.t.Helper()
	if e.vault == nil {
		return 0
	}
	return len(e.vault.Signs(e.t))
}

// requireSignedBy checks, when the broker's keys are in Vault, that since mark the broker signed
// at least min times, every time with tenant slug's own Transit key (the key name is the
// configured prefix + the tenant's ID) and with SHA-256, and that Vault answered every one. It
// is a no-op with local keys.
func (e *env) requireSignedBy(mark int, slug string, min int) {
	e.t.Helper()
	if e.vault == nil {
		return
	}
	status, body := e.api(http.MethodGet, "/api/v1/tenants/"+slug, nil)
	var tenant struct {
		ID string `json:"id"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &tenant) != nil || tenant.ID == "" {
		e.t.Fatalf("GET tenant %s: %d %s", slug, status, body)
	}
	want := "broker-" + tenant.ID
	signs := e.vault.Signs(e.t)[mark:]
	if len(signs) < min {
		e.t.Errorf("tenant %s: %d Transit signatures since the mark, want at least %d", slug, len(signs), min)
	}
	var keys []string
	for _, s := range signs {
		keys = append(keys, s.Key+"/"+s.HashAlgorithm)
		if s.Key != want || !s.OK || s.HashAlgorithm != "sha2-256" {
			e.t.Errorf("tenant %s: a Transit signature with key %q, %s (answered: %v); want key %q, sha2-256",
				slug, s.Key, s.HashAlgorithm, s.OK, want)
		}
	}
	e.t.Logf("tenant %s: %d signatures through Vault Transit: %s", slug, len(signs), strings.Join(keys, " "))
}
