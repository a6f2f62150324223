package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/dbtest"
	"github.com/sloworks/broker/db/sqlite"
)

// open opens the store at path, closed when the test ends.
func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	dbtest.Run(t, func(t *testing.T) db.Store {
		return open(t, filepath.Join(t.TempDir(), "broker.db"))
	})
}

// rawOpen opens the file with a plain database/sql connection (the driver is registered by
// package sqlite's import of mattn/go-sqlite3).
func rawOpen(t *testing.T, path string) *sql.DB {
	t.Helper()
	uri := "file://" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(path))
	conn, err := sql.Open("sqlite3", uri)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// appliedMigrations reads schema_migrations with a plain connection.
func appliedMigrations(t *testing.T, path string) []int64 {
	t.Helper()
	conn := rawOpen(t, path)
	defer conn.Close()
	rows, err := conn.Query("SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return versions
}

func TestMigrationsIdempotent(t *testing.T) {
	// Characters that URIs reserve must not change the file name.
	path := filepath.Join(t.TempDir(), "broker ?#%.db")
	ctx := context.Background()

	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("first open: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	tn := db.Tenant{Slug: "acme"}
	if err := s.CreateTenant(ctx, &tn); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	got, err := s.GetTenantBySlug(ctx, "acme")
	if err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
	if diff := cmp.Diff(&tn, got); diff != "" {
		t.Errorf("tenant after reopen (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5}, appliedMigrations(t, path)); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn := rawOpen(t, path)
	_, err = conn.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (1000, 'future', 0)")
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(path); err == nil {
		s.Close()
		t.Fatal("open of a database from a newer build succeeded")
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "missing", "broker.db")} {
		if s, err := sqlite.Open(path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestWithClock(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "broker.db"), sqlite.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	tn := db.Tenant{Slug: "acme"}
	if err := s.CreateTenant(ctx, &tn); err != nil {
		t.Fatal(err)
	}
	if !tn.CreatedAt.Equal(now) {
		t.Errorf("CreatedAt = %v, want the clock's %v", tn.CreatedAt, now)
	}
	for i, want := range []bool{true, false} {
		if seen, err := s.MarkSeen(ctx, tn.ID, "_m", now.Add(time.Second)); err != nil || seen != want {
			t.Errorf("MarkSeen %d = %v, %v; want %v", i, seen, err, want)
		}
	}
	now = now.Add(time.Second) // the entry expires at the clock's now
	if seen, err := s.MarkSeen(ctx, tn.ID, "_m", now.Add(time.Second)); err != nil || !seen {
		t.Errorf("MarkSeen after expiry = %v, %v; want true", seen, err)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Ping(context.Background()); err == nil {
		t.Error("ping of a closed store succeeded")
	}
	if _, err := s.GetTenant(context.Background(), "x"); err == nil || errors.Is(err, db.ErrNotFound) {
		t.Errorf("get from a closed store: %v, want a non-ErrNotFound error", err)
	}
}

// BenchmarkSignIn measures the writes and reads of one sign-in, from parallel goroutines.
func BenchmarkSignIn(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "broker.db"))
	ctx := context.Background()
	tn := db.Tenant{Slug: "acme"}
	if err := s.CreateTenant(ctx, &tn); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprint(n.Add(1))
			p := db.PendingRequest{TenantID: tn.ID, ExpiresAt: time.Now().Add(time.Hour)}
			if err := s.CreatePendingRequest(ctx, &p); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.TakePendingRequest(ctx, tn.ID, p.ID, time.Now()); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.MarkSeen(ctx, tn.ID, key, time.Now().Add(time.Hour)); err != nil {
				b.Error(err)
				return
			}
			se := db.Session{TenantID: tn.ID, CookieHash: key, ExpiresAt: time.Now().Add(time.Hour)}
			if err := s.CreateSession(ctx, &se); err != nil {
				b.Error(err)
				return
			}
			if err := s.AddParticipant(ctx, &db.Participant{TenantID: tn.ID, SessionID: se.ID}); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.GetSessionByCookie(ctx, tn.ID, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
