package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sloworks/broker/db"
)

// TestSessionsAndLogouts: an operator lists a tenant's sessions, ends one, and reads the logout
// log (list with filters, detail with legs); another tenant sees none of it.
func TestSessionsAndLogouts(t *testing.T) {
	a := newAPI(t, false)
	a.do("POST", "/api/v1/tenants", map[string]string{"slug": "acme"})
	a.do("POST", "/api/v1/tenants", map[string]string{"slug": "beta"})
	r := a.do("POST", "/api/v1/tenants/acme/connections", map[string]any{"provider": "generic", "name": "idp", "config": map[string]string{"metadata_xml": idpMetadata("https://idp.example/sso", true)}})
	if r.status != 201 {
		t.Fatalf("connection: %s", r.raw)
	}
	connID := r.body["id"].(string)
	r = a.do("POST", "/api/v1/tenants/acme/apps", map[string]any{"name": "wiki", "metadata_xml": spMetadata("https://wiki.example", "https://wiki.example/acs")})
	appID := r.body["id"].(string)

	// A session as a sign-in leaves it (the sign-in flow itself is tested in sso).
	ctx := context.Background()
	tn, err := a.store.GetTenantBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	s := &db.Session{TenantID: tn.ID, ConnectionID: connID, CookieHash: "h1", NameID: "alice@acme.example", UpstreamSessionIndex: "_idp1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.store.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := a.store.AddParticipant(ctx, &db.Participant{TenantID: tn.ID, SessionID: s.ID, AppID: appID, NameID: "alice@acme.example", SessionIndex: "_p1"}); err != nil {
		t.Fatal(err)
	}

	r = a.do("GET", "/api/v1/tenants/acme/sessions", nil)
	list := r.body["sessions"].([]any)
	if r.status != 200 || len(list) != 1 || list[0].(map[string]any)["user"] != "alice@acme.example" || len(list[0].(map[string]any)["apps"].([]any)) != 1 {
		t.Fatalf("sessions: %s", r.raw)
	}
	if n := count(t, a, "/api/v1/tenants/beta/sessions", "sessions"); n != 0 {
		t.Fatalf("beta sees %d of acme's sessions", n)
	}
	wantError(t, a.do("DELETE", "/api/v1/tenants/beta/sessions/"+s.ID, nil), 404, "not_found", "", "not found")

	r = a.do("DELETE", "/api/v1/tenants/acme/sessions/"+s.ID, nil)
	if r.status != 200 || r.body["trigger"] != "admin" || r.body["outcome"] != "failed" || r.body["state"] != "finished" {
		t.Fatalf("end session: %d %s", r.status, r.raw)
	}
	legs := r.body["legs"].([]any)
	if len(legs) != 2 {
		t.Fatalf("legs: %s", r.raw)
	}
	for _, l := range legs {
		l := l.(map[string]any)
		if l["error_class"] != "not_supported" || !strings.Contains(l["diagnosis"].(string), "Single Logout") {
			t.Errorf("leg %v", l)
		}
	}
	logoutID := r.body["id"].(string)
	wantError(t, a.do("DELETE", "/api/v1/tenants/acme/sessions/"+s.ID, nil), 409, "conflict", "", "already ended")
	if n := count(t, a, "/api/v1/tenants/acme/sessions", "sessions"); n != 0 {
		t.Errorf("ended session still listed as live")
	}

	for _, tc := range []struct {
		query string
		n     int
	}{{"", 1}, {"?user=alice@acme.example", 1}, {"?user=bob", 0}, {"?outcome=failed", 1}, {"?outcome=success", 0}, {"?app=" + appID, 1},
		{"?since=" + now.Add(-time.Minute).Format(time.RFC3339), 1}, {"?until=" + now.Add(-time.Minute).Format(time.RFC3339), 0}} {
		if got := count(t, a, "/api/v1/tenants/acme/logouts"+tc.query, "logouts"); got != tc.n {
			t.Errorf("logouts%s: %d; want %d", tc.query, got, tc.n)
		}
	}
	wantError(t, a.do("GET", "/api/v1/tenants/acme/logouts?outcome=meh", nil), 400, "invalid_request", "outcome", "success, partial or failed")
	wantError(t, a.do("GET", "/api/v1/tenants/acme/logouts?since=yesterday", nil), 400, "invalid_request", "since", "RFC 3339")
	wantError(t, a.do("GET", "/api/v1/tenants/acme/logouts?limit=0", nil), 400, "invalid_request", "limit", "from 1")
	if r := a.do("GET", "/api/v1/tenants/acme/logouts/"+logoutID, nil); r.status != 200 || len(r.body["legs"].([]any)) != 2 {
		t.Fatalf("logout detail: %s", r.raw)
	}
	if n := count(t, a, "/api/v1/tenants/beta/logouts", "logouts"); n != 0 {
		t.Errorf("beta sees acme's logouts")
	}
	wantError(t, a.do("GET", "/api/v1/tenants/beta/logouts/"+logoutID, nil), 404, "not_found", "", "not found")
}
