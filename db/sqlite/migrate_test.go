package sqlite

import (
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gorm.io/gorm"

	"github.com/sloworks/broker/db"
)

var testNow = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

// openAt opens the file's write pool and applies only the first n migrations, as a build of
// that schema version would have.
func openAt(t *testing.T, path string, n int) *gorm.DB {
	t.Helper()
	g, err := openPool("", path, url.Values{"_busy_timeout": {"5000"}, "_foreign_keys": {"on"}},
		url.Values{"_journal_mode": {"WAL"}, "_txlock": {"immediate"}}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), g, func() time.Time { return testNow }, migrations[:n]); err != nil {
		closePool(g)
		t.Fatalf("migrate to %d: %v", n, err)
	}
	return g
}

func versions(t *testing.T, g *gorm.DB) []int64 {
	t.Helper()
	var v []int64
	if err := g.Model(&schemaMigration{}).Order("version").Pluck("version", &v).Error; err != nil {
		t.Fatal(err)
	}
	return v
}

func indexes(t *testing.T, g *gorm.DB) []string {
	t.Helper()
	var names []string
	if err := g.Raw("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").Scan(&names).Error; err != nil {
		t.Fatal(err)
	}
	return names
}

// v1Data writes a row of every kind of migration 1 through its frozen structs: a tenant with a
// connection, an app, a live and an ended session with a participant each, a pending request
// and a replay entry.
func v1Data(t *testing.T, g *gorm.DB) {
	t.Helper()
	us := func(d time.Duration) int64 { return micros(testNow.Add(d)) }
	ended := us(-time.Minute)
	for _, row := range []any{
		&v1Tenant{ID: "t1", Slug: "acme", Name: "Acme", CreatedAt: us(0)},
		&v1Connection{ID: "c1", TenantID: "t1", Name: "okta", Provider: "generic", Config: []byte(`{}`), EntityID: "https://idp", Metadata: []byte("<md/>"), CreatedAt: us(0)},
		&v1App{ID: "a1", TenantID: "t1", Name: "wiki", EntityID: "https://sp", MetadataURL: "https://sp/md", Metadata: []byte("<md/>"), SignResponse: true, CreatedAt: us(0)},
		&v1Session{ID: "s1", TenantID: "t1", ConnectionID: "c1", CookieHash: "h1", NameID: "alice", NameIDFormat: "f", UpstreamSessionIndex: "up1", Attributes: []byte("[]"), CreatedAt: us(time.Second), ExpiresAt: us(time.Hour)},
		&v1Session{ID: "s2", TenantID: "t1", ConnectionID: "c1", CookieHash: "h2", NameID: "alice", NameIDFormat: "f", UpstreamSessionIndex: "up2", Attributes: []byte("[]"), CreatedAt: us(2 * time.Second), ExpiresAt: us(time.Hour), EndedAt: &ended},
		&v1Participant{ID: "p1", TenantID: "t1", SessionID: "s1", AppID: "a1", NameID: "pw-alice", SessionIndex: "b1", CreatedAt: us(time.Second)},
		&v1Participant{ID: "p2", TenantID: "t1", SessionID: "s2", AppID: "a1", NameID: "pw-alice", SessionIndex: "b2", CreatedAt: us(2 * time.Second)},
		&v1PendingRequest{ID: "r1", TenantID: "t1", ConnectionID: "c1", AppID: "a1", AppRequestID: "_q", ACSURL: "https://sp/acs", CreatedAt: us(0), ExpiresAt: us(time.Hour)},
		&v1Replay{TenantID: "t1", MessageID: "_m", ExpiresAt: us(time.Hour)},
	} {
		if err := g.Create(row).Error; err != nil {
			t.Fatalf("insert %T: %v", row, err)
		}
	}
}

// A database made by a build that knew only migration 1 is upgraded by Open: migration 2 is
// applied, every old row survives, and the new lookups find the old rows.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	g := openAt(t, path, 1)
	v1Data(t, g)
	if diff := cmp.Diff([]int64{1}, versions(t, g)); diff != "" {
		t.Fatalf("schema_migrations before the upgrade (-want +got):\n%s", diff)
	}
	before := indexes(t, g)
	closePool(g)

	s, err := Open(path, WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5}, versions(t, s.w)); diff != "" {
		t.Errorf("schema_migrations after the upgrade (-want +got):\n%s", diff)
	}
	after := indexes(t, s.w)
	for _, name := range before {
		if !slices.Contains(after, name) {
			t.Errorf("index %s of migration 1 is gone", name)
		}
	}
	for _, name := range []string{
		"logouts_tenant_id_key", "logouts_tenant_started", "logouts_tenant_name_id", "logouts_tenant_outcome",
		"logouts_state_deadline", "logouts_started_at", "logout_legs_tenant_logout", "logout_legs_tenant_request_key",
		"logout_legs_tenant_target", "sessions_tenant_connection_name_id", "sessions_tenant_connection_upstream_index",
		"participants_tenant_app_session_index", "participants_tenant_app_name_id",
	} {
		if !slices.Contains(after, name) {
			t.Errorf("index %s of migration 2 is missing", name)
		}
	}

	ctx := context.Background()
	at := func(d time.Duration) time.Time { return testNow.Add(d) }
	endedAt := at(-time.Minute)
	opts := cmpopts.EquateEmpty()
	want1 := db.Session{ID: "s1", TenantID: "t1", ConnectionID: "c1", CookieHash: "h1", NameID: "alice", NameIDFormat: "f",
		UpstreamSessionIndex: "up1", Attributes: []byte("[]"), CreatedAt: at(time.Second), ExpiresAt: at(time.Hour)}
	want2 := want1
	want2.ID, want2.CookieHash, want2.UpstreamSessionIndex, want2.CreatedAt, want2.EndedAt = "s2", "h2", "up2", at(2*time.Second), &endedAt
	wantP1 := db.Participant{ID: "p1", TenantID: "t1", SessionID: "s1", AppID: "a1", NameID: "pw-alice", SessionIndex: "b1", CreatedAt: at(time.Second)}

	// The old rows, through the old methods.
	tn, err := s.GetTenantBySlug(ctx, "acme")
	if err != nil || tn.ID != "t1" {
		t.Errorf("get tenant: %v, %v", tn, err)
	}
	if c, err := s.GetConnection(ctx, "t1", "c1"); err != nil || c.EntityID != "https://idp" {
		t.Errorf("get connection: %v, %v", c, err)
	}
	if a, err := s.GetAppByEntityID(ctx, "t1", "https://sp"); err != nil || a.ID != "a1" || !a.SignResponse || a.NoFrameLogout || a.Provider != "" || a.LogoutSigAlg != "" {
		t.Errorf("get app: %v, %v", a, err)
	}
	sessions, err := s.ListSessions(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]db.Session{want1, want2}, sessions, opts); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
	if ps, err := s.ListParticipants(ctx, "t1", "s1"); err != nil || !cmp.Equal([]db.Participant{wantP1}, ps, opts) {
		t.Errorf("participants: %v, %v", ps, err)
	}
	if fresh, err := s.MarkSeen(ctx, "t1", "_m", at(2*time.Hour)); err != nil || fresh {
		t.Errorf("MarkSeen of the old replay entry = %v, %v; want false", fresh, err)
	}
	if p, err := s.TakePendingRequest(ctx, "t1", "r1", testNow); err != nil || p.AppRequestID != "_q" {
		t.Errorf("take pending request: %v, %v", p, err)
	}

	// The old rows, through the new methods.
	if seen, err := s.Seen(ctx, "t1", "_m", testNow); err != nil || !seen {
		t.Errorf("Seen of the old replay entry = %v, %v; want true", seen, err)
	}
	if got, err := s.FindSessionsByNameID(ctx, "t1", "c1", "alice"); err != nil || !cmp.Equal([]db.Session{want1}, got, opts) {
		t.Errorf("find sessions by NameID: %v, %v", got, err)
	}
	if got, err := s.FindSessionByUpstreamIndex(ctx, "t1", "c1", "up2"); err != nil || !cmp.Equal(&want2, got, opts) {
		t.Errorf("find session by upstream index: %v, %v", got, err)
	}
	if got, err := s.GetParticipantBySessionIndex(ctx, "t1", "a1", "b1"); err != nil || !cmp.Equal(&wantP1, got, opts) {
		t.Errorf("get participant by session index: %v, %v", got, err)
	}
	if got, err := s.ListParticipantsOfApp(ctx, "t1", "a1", "pw-alice"); err != nil || !cmp.Equal([]db.Participant{wantP1}, got, opts) {
		t.Errorf("list participants of app: %v, %v", got, err)
	}
	if ok, err := s.EndSession(ctx, "t1", "s2", testNow); err != nil || ok {
		t.Errorf("EndSession of the old ended session = %v, %v; want false", ok, err)
	}
	if ok, err := s.EndSession(ctx, "t1", "s1", testNow); err != nil || !ok {
		t.Errorf("EndSession of the old live session = %v, %v; want true", ok, err)
	}
	l := db.Logout{TenantID: "t1", Trigger: "idp", TriggerRef: "c1", User: "alice", SessionIDs: []string{"s1"}, Deadline: at(time.Minute)}
	legs := []db.LogoutLeg{{Target: "app", TargetID: "a1", Channel: "soap", RequestID: "_lr"}}
	if err := s.CreateLogout(ctx, &l, legs); err != nil {
		t.Fatalf("create logout: %v", err)
	}
	if got, gotLegs, err := s.GetLogout(ctx, "t1", l.ID); err != nil || !cmp.Equal(&l, got, opts) || !cmp.Equal(legs, gotLegs, opts) {
		t.Errorf("get logout: %v, %v, %v", got, gotLegs, err)
	}
	if list, err := s.ListLogouts(ctx, "t1", db.LogoutFilter{AppID: "a1"}); err != nil || len(list) != 1 {
		t.Errorf("list logouts of the old app: %v, %v", list, err)
	}
	if err := s.DeleteTenant(ctx, "t1"); err != nil {
		t.Errorf("delete the old tenant: %v", err)
	}
	s.Close()

	// Opening again applies nothing.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5}, versions(t, s2.w)); diff != "" {
		t.Errorf("schema_migrations after a second open (-want +got):\n%s", diff)
	}
}

// A migration that fails leaves nothing of itself: migration 2 runs in one transaction with its
// schema_migrations row.
func TestMigration2FailsWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	g := openAt(t, path, 1)
	// A table in the way of the second table migration 2 creates.
	if err := g.Exec("CREATE TABLE logout_legs (x INTEGER)").Error; err != nil {
		t.Fatal(err)
	}
	closePool(g)
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("open succeeded over a conflicting table")
	}
	g = openAt(t, path, 1)
	defer closePool(g)
	if diff := cmp.Diff([]int64{1}, versions(t, g)); diff != "" {
		t.Errorf("schema_migrations after the failed upgrade (-want +got):\n%s", diff)
	}
	if g.Migrator().HasTable("logouts") {
		t.Error("the failed migration left the logouts table")
	}
	for _, name := range indexes(t, g) {
		if name == "sessions_tenant_connection_name_id" || name == "logouts_tenant_id_key" {
			t.Errorf("the failed migration left index %s", name)
		}
	}
	if err := g.Exec("DROP TABLE logout_legs").Error; err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), g, func() time.Time { return testNow }, migrations); err != nil {
		t.Fatalf("migrate once the way is clear: %v", err)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5}, versions(t, g)); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}
	if !g.Migrator().HasColumn(&legRow{}, "request_id") {
		t.Error("logout_legs is not migration 2's table")
	}
}
