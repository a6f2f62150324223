package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/sloworks/broker/db"
)

// statement is one SQL statement a store ran, with its arguments.
type statement struct {
	sql  string
	vars []any
}

// recorder collects the statements run on the pools it is registered on, while on.
type recorder struct {
	mu    sync.Mutex
	on    bool
	stmts []statement
}

func (r *recorder) record(g *gorm.DB) {
	if g.Statement.SQL.Len() > 0 {
		r.add(g.Statement.SQL.String(), g.Statement.Vars)
	}
}

func (r *recorder) add(sql string, vars []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on {
		r.stmts = append(r.stmts, statement{sql, append([]any(nil), vars...)})
	}
}

// registerStmts records the prepared statements s runs as well.
func (r *recorder) registerStmts(s *Store) { s.st.trace = r.add }

func (r *recorder) register(t *testing.T, g *gorm.DB) {
	t.Helper()
	cb := g.Callback()
	for _, err := range []error{
		cb.Query().After("gorm:query").Register("test:record", r.record),
		cb.Row().After("gorm:row").Register("test:record", r.record),
		cb.Raw().After("gorm:raw").Register("test:record", r.record),
		cb.Update().After("gorm:update").Register("test:record", r.record),
		cb.Delete().After("gorm:delete").Register("test:record", r.record),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// take returns the statements recorded since the last take.
func (r *recorder) take() []statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stmts
	r.stmts = nil
	return s
}

// Every statement the logout lookups and sweeps run is served by an index: its query plan
// scans no table in full (SQLite's plan says "SCAN t" for that, "SEARCH t USING INDEX" when
// an index serves the lookup).
func TestLogoutQueriesUseIndexes(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

	// A little of everything, in two tenants.
	var legIDs []string
	for _, slug := range []string{"a", "b"} {
		tn := db.Tenant{ID: slug, Slug: slug}
		if err := s.CreateTenant(ctx, &tn); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			se := db.Session{TenantID: slug, ConnectionID: "c", CookieHash: fmt.Sprint(i), NameID: "alice",
				UpstreamSessionIndex: fmt.Sprint("up", i), ExpiresAt: t0}
			if err := s.CreateSession(ctx, &se); err != nil {
				t.Fatal(err)
			}
			p := db.Participant{TenantID: slug, SessionID: se.ID, AppID: "app", NameID: "pw", SessionIndex: fmt.Sprint("b", i)}
			if err := s.AddParticipant(ctx, &p); err != nil {
				t.Fatal(err)
			}
			l := db.Logout{TenantID: slug, Trigger: "app", TriggerRef: "app", User: "alice", Deadline: t0}
			legs := []db.LogoutLeg{{Target: "app", TargetID: "app2", RequestID: fmt.Sprint("_r", i)}, {Target: "upstream", TargetID: "c"}}
			if err := s.CreateLogout(ctx, &l, legs); err != nil {
				t.Fatal(err)
			}
			legIDs = append(legIDs, legs[0].ID)
		}
	}

	var rec recorder
	rec.register(t, s.w)
	rec.register(t, s.r)
	rec.registerStmts(s)
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"FindSessionsByNameID", func() error { _, err := s.FindSessionsByNameID(ctx, "a", "c", "alice"); return err }},
		{"FindSessionByUpstreamIndex", func() error { _, err := s.FindSessionByUpstreamIndex(ctx, "a", "c", "up1"); return err }},
		{"GetParticipantBySessionIndex", func() error { _, err := s.GetParticipantBySessionIndex(ctx, "a", "app", "b1"); return err }},
		{"ListParticipantsOfApp", func() error { _, err := s.ListParticipantsOfApp(ctx, "a", "app", "pw"); return err }},
		{"EndSession", func() error { _, err := s.EndSession(ctx, "a", "missing", t0); return ignoreNotFound(err) }},
		{"Seen", func() error { _, err := s.Seen(ctx, "a", "_m", t0); return err }},
		{"GetLegByRequestID", func() error { _, err := s.GetLegByRequestID(ctx, "a", "_r1"); return err }},
		{"FinishLeg", func() error { _, err := s.FinishLeg(ctx, "a", legIDs[0], &db.LogoutLeg{}); return err }},
		{"FinishLeg again", func() error { _, err := s.FinishLeg(ctx, "a", legIDs[0], &db.LogoutLeg{}); return err }},
		{"UpdateLeg", func() error { return ignoreConflict(s.UpdateLeg(ctx, &db.LogoutLeg{ID: legIDs[0], TenantID: "a"})) }},
		{"GetLogout", func() error {
			l, err := s.ListLogouts(ctx, "a", db.LogoutFilter{Limit: 1})
			if err != nil {
				return err
			}
			rec.take()
			_, _, err = s.GetLogout(ctx, "a", l[0].ID)
			return err
		}},
		{"UpdateLogout", func() error {
			return ignoreNotFound(s.UpdateLogout(ctx, &db.Logout{ID: "missing", TenantID: "a"}))
		}},
		{"ListLogouts", func() error { _, err := s.ListLogouts(ctx, "a", db.LogoutFilter{}); return err }},
		{"ListLogouts by user", func() error { _, err := s.ListLogouts(ctx, "a", db.LogoutFilter{User: "alice"}); return err }},
		{"ListLogouts by app", func() error { _, err := s.ListLogouts(ctx, "a", db.LogoutFilter{AppID: "app2"}); return err }},
		{"ListLogouts by outcome", func() error { _, err := s.ListLogouts(ctx, "a", db.LogoutFilter{Outcome: "partial"}); return err }},
		{"ListLogouts by time", func() error {
			_, err := s.ListLogouts(ctx, "a", db.LogoutFilter{Since: t0, Until: t0.Add(time.Hour)})
			return err
		}},
		{"ListUnfinishedLogouts", func() error { _, err := s.ListUnfinishedLogouts(ctx, t0); return err }},
		{"DeleteLogoutsBefore", func() error { _, err := s.DeleteLogoutsBefore(ctx, t0.Add(-time.Hour)); return err }},
	} {
		rec.mu.Lock()
		rec.on, rec.stmts = true, nil
		rec.mu.Unlock()
		err := op.run()
		rec.mu.Lock()
		rec.on = false
		rec.mu.Unlock()
		if err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		stmts := rec.take()
		if len(stmts) == 0 {
			t.Errorf("%s: no statement recorded", op.name)
		}
		for _, st := range stmts {
			plan := explain(t, s, st)
			t.Logf("%s: %s\n\t%s", op.name, st.sql, strings.Join(plan, "\n\t"))
			for _, step := range plan {
				if strings.HasPrefix(step, "SCAN ") {
					t.Errorf("%s: %q scans a table: %s", op.name, st.sql, step)
				}
			}
		}
	}
}

func ignoreNotFound(err error) error {
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	return err
}

func ignoreConflict(err error) error {
	if errors.Is(err, db.ErrConflict) {
		return nil
	}
	return err
}

// explain returns the steps of the statement's query plan.
func explain(t *testing.T, s *Store, st statement) []string {
	t.Helper()
	rows, err := s.w.Raw("EXPLAIN QUERY PLAN "+st.sql, st.vars...).Rows()
	if err != nil {
		t.Fatalf("explain %q: %v", st.sql, err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}
