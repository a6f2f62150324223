package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func keyStates(t *testing.T, r reply) []string {
	t.Helper()
	ks, ok := r.body["keys"].([]any)
	if !ok {
		t.Fatalf("no keys list: %s", r.raw)
	}
	var out []string
	for _, k := range ks {
		m := k.(map[string]any)
		if fp, _ := m["sha256_fingerprint"].(string); len(fp) != 64 {
			t.Errorf("sha256 fingerprint %q", fp)
		}
		if m["backend"] != "local" || m["version"] == nil || m["activates_at"] == nil {
			t.Errorf("key view %v", m)
		}
		out = append(out, m["state"].(string))
	}
	return out
}

func TestKeysListAndRotate(t *testing.T) {
	a := newAPI(t, true)
	for _, slug := range []string{"acme", "beta"} {
		if r := a.do("POST", "/api/v1/tenants", map[string]string{"slug": slug, "name": slug}); r.status != http.StatusCreated {
			t.Fatalf("create tenant: %d %s", r.status, r.raw)
		}
	}
	r := a.do("GET", "/api/v1/tenants/acme/keys", nil)
	if r.status != http.StatusOK {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	if got := strings.Join(keyStates(t, r), ","); got != "current" {
		t.Errorf("states %s; want current", got)
	}
	r = a.do("POST", "/api/v1/tenants/acme/keys/rotate", nil)
	if r.status != http.StatusCreated {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	if got := strings.Join(keyStates(t, r), ","); got != "current,next" {
		t.Errorf("states after rotation %s; want current,next", got)
	}
	for _, word := range []string{"PRIVATE", "private_key", "BEGIN"} {
		if strings.Contains(r.raw, word) {
			t.Errorf("key list shows %q: %s", word, r.raw)
		}
	}
	rec := a.do("POST", "/api/v1/tenants/acme/keys/rotate", nil)
	wantError(t, rec, http.StatusConflict, "conflict", "", "a rotation is already pending (the next key signs from ")
	if strings.Contains(rec.raw, "tenant ") {
		t.Errorf("the 409 names the tenant by its internal ID: %s", rec.raw)
	}
	// Another tenant is not rotated.
	if got := strings.Join(keyStates(t, a.do("GET", "/api/v1/tenants/beta/keys", nil)), ","); got != "current" {
		t.Errorf("beta's states %s; want current", got)
	}
	wantError(t, a.do("POST", "/api/v1/tenants/nope/keys/rotate", nil), http.StatusNotFound, "not_found", "", "")
	if r := a.call("GET", "/api/v1/tenants/acme/keys", nil, ""); r.status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", r.status)
	}
	// Deleting the tenant deletes its key rows.
	acme, err := a.store.GetTenantBySlug(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if r := a.do("DELETE", "/api/v1/tenants/acme", nil); r.status/100 != 2 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if rows, err := a.store.ListSigningKeys(context.Background(), acme.ID); err != nil || len(rows) != 0 {
		t.Errorf("key rows after tenant deletion: %v, %v", rows, err)
	}
}
