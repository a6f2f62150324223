package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/dbtest"
)

// compiler is a database/sql driver wrapping mattn's that records every statement SQLite
// compiles through it: each Prepare, and each Exec or Query on a connection (mattn prepares
// those anew every time).
type compiler struct {
	name string
	mu   sync.Mutex
	sqls []string
}

var compilers atomic.Int64

// newCompiler registers a compiler under a name of its own.
func newCompiler() *compiler {
	c := &compiler{name: fmt.Sprintf("sqlite3-compiler-%d", compilers.Add(1))}
	sql.Register(c.name, c)
	return c
}

func (c *compiler) add(query string) {
	c.mu.Lock()
	c.sqls = append(c.sqls, query)
	c.mu.Unlock()
}

// take returns the statements compiled since the last take.
func (c *compiler) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sqls
	c.sqls = nil
	return s
}

func (c *compiler) Open(dsn string) (driver.Conn, error) {
	conn, err := (&sqlite3.SQLiteDriver{}).Open(dsn)
	if err != nil {
		return nil, err
	}
	return &compilingConn{conn.(*sqlite3.SQLiteConn), c}, nil
}

type compilingConn struct {
	*sqlite3.SQLiteConn
	c *compiler
}

func (cc *compilingConn) Prepare(query string) (driver.Stmt, error) {
	cc.c.add(query)
	return cc.SQLiteConn.Prepare(query)
}

func (cc *compilingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	cc.c.add(query)
	return cc.SQLiteConn.PrepareContext(ctx, query)
}

func (cc *compilingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cc.c.add(query)
	return cc.SQLiteConn.ExecContext(ctx, query, args)
}

func (cc *compilingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cc.c.add(query)
	return cc.SQLiteConn.QueryContext(ctx, query, args)
}

// hotFixture is a tenant with a live session and a running logout of two pending legs.
type hotFixture struct {
	tenant  string
	session db.Session
	logout  db.Logout
	legs    []db.LogoutLeg
}

// openHot opens a store with the fixture, and a context with a bounded wait: a statement that
// ran on the pools instead of a Batch's transaction would wait for the write connection the
// transaction holds.
func openHot(t *testing.T) (*Store, hotFixture, context.Context) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return s, newHotFixture(t, s), ctx
}

func newHotFixture(t testing.TB, s *Store) hotFixture {
	t.Helper()
	ctx := context.Background()
	tn := db.Tenant{Slug: "acme"}
	if err := s.CreateTenant(ctx, &tn); err != nil {
		t.Fatal(err)
	}
	f := hotFixture{tenant: tn.ID}
	f.session = db.Session{TenantID: tn.ID, ConnectionID: "c", CookieHash: "fixture", NameID: "alice", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateSession(ctx, &f.session); err != nil {
		t.Fatal(err)
	}
	f.logout = db.Logout{TenantID: tn.ID, Trigger: "admin", User: "alice", Deadline: time.Now().Add(time.Hour)}
	f.legs = []db.LogoutLeg{{Target: "app", TargetID: "a1", RequestID: "_fixture1"}, {Target: "app", TargetID: "a2"}}
	if err := s.CreateLogout(ctx, &f.logout, f.legs); err != nil {
		t.Fatal(err)
	}
	return f
}

// hotCalls makes one call of every method that runs prepared statements (key keeps the rows of
// each round apart), the writes before the reads that see them.
func hotCalls(ctx context.Context, st db.Store, f hotFixture, key string) error {
	exp := time.Now().Add(time.Hour)
	if _, err := st.MarkSeen(ctx, f.tenant, key, exp); err != nil {
		return err
	}
	if _, err := st.Seen(ctx, f.tenant, key, time.Now()); err != nil {
		return err
	}
	p := db.PendingRequest{TenantID: f.tenant, ExpiresAt: exp}
	if err := st.CreatePendingRequest(ctx, &p); err != nil {
		return err
	}
	if _, err := st.TakePendingRequest(ctx, f.tenant, p.ID, time.Now()); err != nil {
		return err
	}
	se := db.Session{TenantID: f.tenant, CookieHash: key, ExpiresAt: exp}
	if err := st.CreateSession(ctx, &se); err != nil {
		return err
	}
	if err := st.AddParticipant(ctx, &db.Participant{TenantID: f.tenant, SessionID: se.ID}); err != nil {
		return err
	}
	if _, err := st.GetSession(ctx, f.tenant, se.ID); err != nil {
		return err
	}
	if _, err := st.GetSessionByCookie(ctx, f.tenant, key); err != nil {
		return err
	}
	if _, err := st.ListParticipants(ctx, f.tenant, se.ID); err != nil {
		return err
	}
	for range 2 { // the second ends nothing and counts
		if _, err := st.EndSession(ctx, f.tenant, se.ID, time.Now()); err != nil {
			return err
		}
	}
	l := db.Logout{TenantID: f.tenant, Trigger: "admin", Deadline: exp}
	legs := []db.LogoutLeg{{Target: "app", RequestID: "_r" + key}, {Target: "upstream"}}
	if err := st.CreateLogout(ctx, &l, legs); err != nil {
		return err
	}
	if _, err := st.GetLegByRequestID(ctx, f.tenant, "_r"+key); err != nil {
		return err
	}
	if err := st.UpdateLeg(ctx, &legs[1]); err != nil {
		return err
	}
	if _, err := st.FinishLeg(ctx, f.tenant, legs[0].ID, &db.LogoutLeg{Sent: []byte("<sent/>")}); err != nil {
		return err
	}
	for range 2 { // the second finishes nothing and counts
		if _, err := st.FinishLeg(ctx, f.tenant, legs[1].ID, &db.LogoutLeg{}); err != nil {
			return err
		}
	}
	l.State = db.LogoutFinished
	if err := st.UpdateLogout(ctx, &l); err != nil {
		return err
	}
	if err := st.UpdateLogout(ctx, &l); !errors.Is(err, db.ErrConflict) { // counts
		return fmt.Errorf("update of a finished logout: %v", err)
	}
	// A CreateLogout that fails (a request ID taken) leaves nothing behind, in a Batch too.
	if err := st.CreateLogout(ctx, &db.Logout{TenantID: f.tenant}, []db.LogoutLeg{{RequestID: "_r" + key}}); !errors.Is(err, db.ErrConflict) {
		return fmt.Errorf("create logout with a request ID taken: %v", err)
	}
	return nil
}

// Once a statement has run on a connection, it never compiles again: not in a later Batch,
// where gorm compiles anew every statement it first met inside a transaction, and not outside
// one either.
func TestPreparedStatementsReused(t *testing.T) {
	c := newCompiler()
	s, err := Open(filepath.Join(t.TempDir(), "broker.db"), withDriver(c.name))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := newHotFixture(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, mode := range []struct {
		name string
		run  func(key string) error
	}{
		{"batch", func(key string) error {
			return s.Batch(ctx, func(tx db.Store) error { return hotCalls(ctx, tx, f, key) })
		}},
		{"pools", func(key string) error { return hotCalls(ctx, s, f, key) }},
	} {
		if err := mode.run(mode.name + "-warm"); err != nil {
			t.Fatalf("%s: first round: %v", mode.name, err)
		}
		c.take()
		for i := range 3 {
			if err := mode.run(fmt.Sprint(mode.name, i)); err != nil {
				t.Fatalf("%s: round %d: %v", mode.name, i, err)
			}
		}
		if got := c.take(); len(got) > 0 {
			slices.Sort(got)
			t.Errorf("%s: %d statements compiled again in 3 later rounds:\n%q", mode.name, len(got), slices.Compact(got))
		}
	}
}

// A Batch's writes through the prepared statements are the transaction's: an error from fn
// undoes every one of them, and they are committed together otherwise.
func TestBatchAllOrNothing(t *testing.T) {
	s, f, ctx := openHot(t)
	exp := time.Now().Add(time.Hour)
	taken := db.PendingRequest{TenantID: f.tenant, ExpiresAt: exp}
	if err := s.CreatePendingRequest(ctx, &taken); err != nil {
		t.Fatal(err)
	}

	// writes makes one write of every kind and returns the IDs of the rows it created.
	type created struct{ pending, session, participant, logout string }
	writes := func(tx db.Store, key string) (c created, err error) {
		if fresh, err := tx.MarkSeen(ctx, f.tenant, key, exp); err != nil || !fresh {
			return c, fmt.Errorf("MarkSeen = %v, %v", fresh, err)
		}
		p := db.PendingRequest{TenantID: f.tenant, ExpiresAt: exp}
		if err := tx.CreatePendingRequest(ctx, &p); err != nil {
			return c, err
		}
		if _, err := tx.TakePendingRequest(ctx, f.tenant, taken.ID, time.Now()); err != nil {
			return c, err
		}
		se := db.Session{TenantID: f.tenant, CookieHash: key, ExpiresAt: exp}
		if err := tx.CreateSession(ctx, &se); err != nil {
			return c, err
		}
		pt := db.Participant{TenantID: f.tenant, SessionID: f.session.ID, AppID: key}
		if err := tx.AddParticipant(ctx, &pt); err != nil {
			return c, err
		}
		if ended, err := tx.EndSession(ctx, f.tenant, f.session.ID, time.Now()); err != nil || !ended {
			return c, fmt.Errorf("EndSession = %v, %v", ended, err)
		}
		l := db.Logout{TenantID: f.tenant, Trigger: "admin", User: key, Deadline: exp}
		if err := tx.CreateLogout(ctx, &l, []db.LogoutLeg{{Target: "app", RequestID: "_" + key}}); err != nil {
			return c, err
		}
		if done, err := tx.FinishLeg(ctx, f.tenant, f.legs[0].ID, &db.LogoutLeg{Status: "ok"}); err != nil || !done {
			return c, fmt.Errorf("FinishLeg = %v, %v", done, err)
		}
		leg := f.legs[1]
		leg.Diagnosis = key
		if err := tx.UpdateLeg(ctx, &leg); err != nil {
			return c, err
		}
		lo := f.logout
		lo.State, lo.Outcome = db.LogoutFinished, "partial"
		if err := tx.UpdateLogout(ctx, &lo); err != nil {
			return c, err
		}
		// The batch reads its own writes.
		if seen, err := tx.Seen(ctx, f.tenant, key, time.Now()); err != nil || !seen {
			return c, fmt.Errorf("Seen in the batch = %v, %v", seen, err)
		}
		if got, err := tx.GetSessionByCookie(ctx, f.tenant, key); err != nil || got.ID != se.ID {
			return c, fmt.Errorf("GetSessionByCookie in the batch = %v, %v", got, err)
		}
		if ps, err := tx.ListParticipants(ctx, f.tenant, f.session.ID); err != nil || len(ps) != 1 {
			return c, fmt.Errorf("ListParticipants in the batch = %d, %v", len(ps), err)
		}
		if g, err := tx.GetLegByRequestID(ctx, f.tenant, "_"+key); err != nil || g.LogoutID != l.ID {
			return c, fmt.Errorf("GetLegByRequestID in the batch = %v, %v", g, err)
		}
		return created{p.ID, se.ID, pt.ID, l.ID}, nil
	}

	boom := errors.New("boom")
	var c created
	err := s.Batch(ctx, func(tx db.Store) error {
		var err error
		if c, err = writes(tx, "undone"); err != nil {
			t.Errorf("writes: %v", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Batch = %v; want fn's error", err)
	}
	if seen, err := s.Seen(ctx, f.tenant, "undone", time.Now()); err != nil || seen {
		t.Errorf("replay entry of a failed batch: %v, %v", seen, err)
	}
	if _, err := s.TakePendingRequest(ctx, f.tenant, c.pending, time.Now()); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("pending request created in a failed batch: %v; want ErrNotFound", err)
	}
	if _, err := s.GetSession(ctx, f.tenant, c.session); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("session created in a failed batch: %v; want ErrNotFound", err)
	}
	if ps, err := s.ListParticipants(ctx, f.tenant, f.session.ID); err != nil || len(ps) != 0 {
		t.Errorf("participants added in a failed batch: %d, %v", len(ps), err)
	}
	if se, err := s.GetSession(ctx, f.tenant, f.session.ID); err != nil || se.EndedAt != nil {
		t.Errorf("session ended in a failed batch: %+v, %v", se, err)
	}
	if _, _, err := s.GetLogout(ctx, f.tenant, c.logout); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("logout created in a failed batch: %v; want ErrNotFound", err)
	}
	if _, err := s.GetLegByRequestID(ctx, f.tenant, "_undone"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("leg created in a failed batch: %v; want ErrNotFound", err)
	}
	lo, legs, err := s.GetLogout(ctx, f.tenant, f.logout.ID)
	if err != nil {
		t.Fatal(err)
	}
	if lo.State != db.LogoutRunning || legs[0].State != db.LegPending || legs[1].Diagnosis != "" {
		t.Errorf("logout updated in a failed batch: %+v, %+v", lo, legs)
	}

	// The same writes again, committed: the request taken above is still there to take.
	err = s.Batch(ctx, func(tx db.Store) error {
		var err error
		c, err = writes(tx, "kept")
		return err
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if seen, err := s.Seen(ctx, f.tenant, "kept", time.Now()); err != nil || !seen {
		t.Errorf("replay entry of a batch: %v, %v", seen, err)
	}
	if _, err := s.TakePendingRequest(ctx, f.tenant, taken.ID, time.Now()); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("pending request taken in a batch: %v; want ErrNotFound", err)
	}
	if _, err := s.TakePendingRequest(ctx, f.tenant, c.pending, time.Now()); err != nil {
		t.Errorf("pending request created in a batch: %v", err)
	}
	if _, err := s.GetSessionByCookie(ctx, f.tenant, "kept"); err != nil {
		t.Errorf("session created in a batch: %v", err)
	}
	if ps, err := s.ListParticipants(ctx, f.tenant, f.session.ID); err != nil || len(ps) != 1 || ps[0].ID != c.participant {
		t.Errorf("participants added in a batch: %+v, %v", ps, err)
	}
	if se, err := s.GetSession(ctx, f.tenant, f.session.ID); err != nil || se.EndedAt == nil {
		t.Errorf("session ended in a batch: %+v, %v", se, err)
	}
	if g, err := s.GetLegByRequestID(ctx, f.tenant, "_kept"); err != nil || g.LogoutID != c.logout {
		t.Errorf("leg created in a batch: %+v, %v", g, err)
	}
	lo, legs, err = s.GetLogout(ctx, f.tenant, f.logout.ID)
	if err != nil {
		t.Fatal(err)
	}
	if lo.State != db.LogoutFinished || legs[0].State != db.LegDone || legs[1].Diagnosis != "kept" {
		t.Errorf("logout updated in a batch: %+v, %+v", lo, legs)
	}
}

// A CreateLogout that fails inside a Batch leaves no row behind, and the batch goes on to
// commit the rest; outside a Batch it leaves nothing either.
func TestCreateLogoutFailsWhole(t *testing.T) {
	s, f, ctx := openHot(t)
	failing := func(id string) (db.Logout, []db.LogoutLeg) {
		// The second leg's request ID is the fixture's: the logout row and the first leg are
		// written before the conflict.
		return db.Logout{ID: id, TenantID: f.tenant, Trigger: "admin"},
			[]db.LogoutLeg{{ID: id + "-leg", RequestID: "_" + id}, {RequestID: f.legs[0].RequestID}}
	}
	err := s.Batch(ctx, func(tx db.Store) error {
		l, legs := failing("in-batch")
		if err := tx.CreateLogout(ctx, &l, legs); !errors.Is(err, db.ErrConflict) {
			t.Errorf("CreateLogout = %v; want ErrConflict", err)
		}
		if _, _, err := tx.GetLogout(ctx, f.tenant, "in-batch"); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("failed logout inside the batch: %v; want ErrNotFound", err)
		}
		_, err := tx.MarkSeen(ctx, f.tenant, "after", time.Now().Add(time.Hour))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l, legs := failing("alone")
	if err := s.CreateLogout(ctx, &l, legs); !errors.Is(err, db.ErrConflict) {
		t.Errorf("CreateLogout = %v; want ErrConflict", err)
	}
	for _, id := range []string{"in-batch", "alone"} {
		if _, _, err := s.GetLogout(ctx, f.tenant, id); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("failed logout %s: %v; want ErrNotFound", id, err)
		}
		if _, err := s.GetLegByRequestID(ctx, f.tenant, "_"+id); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("leg of failed logout %s: %v; want ErrNotFound", id, err)
		}
	}
	if seen, err := s.Seen(ctx, f.tenant, "after", time.Now()); err != nil || !seen {
		t.Errorf("write after the failed CreateLogout in the batch: %v, %v", seen, err)
	}
	// The store goes on writing logouts, in and out of batches.
	err = s.Batch(ctx, func(tx db.Store) error {
		return tx.CreateLogout(ctx, &db.Logout{TenantID: f.tenant}, []db.LogoutLeg{{RequestID: "_in-batch"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLogout(ctx, &db.Logout{TenantID: f.tenant}, []db.LogoutLeg{{RequestID: "_alone"}}); err != nil {
		t.Fatal(err)
	}
}

// batched is a Store whose every call of the hot path runs in a Batch of its own, so the
// conformance suite checks the statements on a Batch's transaction as well as on the pools.
type batched struct{ *Store }

// inBatch runs call in a Batch of s and returns what it returned. The batch commits whatever
// call returned, as a call on its own would (TakePendingRequest deletes an expired request and
// returns ErrNotFound; a failed CreateLogout leaves nothing for the commit).
func inBatch[T any](ctx context.Context, s *Store, call func(tx db.Store) (T, error)) (T, error) {
	var v T
	var callErr error
	err := s.Batch(ctx, func(tx db.Store) error {
		v, callErr = call(tx)
		return nil
	})
	if callErr != nil {
		return v, callErr
	}
	return v, err
}

func (b batched) batch(ctx context.Context, call func(tx db.Store) error) error {
	_, err := inBatch(ctx, b.Store, func(tx db.Store) (struct{}, error) { return struct{}{}, call(tx) })
	return err
}

func (b batched) MarkSeen(ctx context.Context, tenantID, messageID string, expiresAt time.Time) (bool, error) {
	return inBatch(ctx, b.Store, func(tx db.Store) (bool, error) { return tx.MarkSeen(ctx, tenantID, messageID, expiresAt) })
}

func (b batched) Seen(ctx context.Context, tenantID, messageID string, now time.Time) (bool, error) {
	return inBatch(ctx, b.Store, func(tx db.Store) (bool, error) { return tx.Seen(ctx, tenantID, messageID, now) })
}

func (b batched) CreatePendingRequest(ctx context.Context, p *db.PendingRequest) error {
	return b.batch(ctx, func(tx db.Store) error { return tx.CreatePendingRequest(ctx, p) })
}

func (b batched) TakePendingRequest(ctx context.Context, tenantID, id string, now time.Time) (*db.PendingRequest, error) {
	return inBatch(ctx, b.Store, func(tx db.Store) (*db.PendingRequest, error) { return tx.TakePendingRequest(ctx, tenantID, id, now) })
}

func (b batched) CreateSession(ctx context.Context, se *db.Session) error {
	return b.batch(ctx, func(tx db.Store) error { return tx.CreateSession(ctx, se) })
}

func (b batched) GetSession(ctx context.Context, tenantID, id string) (*db.Session, error) {
	return inBatch(ctx, b.Store, func(tx db.Store) (*db.Session, error) { return tx.GetSession(ctx, tenantID, id) })
}

func (b batched) GetSessionByCookie(ctx context.Context, tenantID, cookieHash string) (*db.Session, error) {
	return inBatch(ctx, b.Store, func(tx db.Store) (*db.Session, error) { return tx.GetSessionByCookie(ctx, tenantID, cookieHash) })
}

func (b batched) AddParticipant(ctx context.Context, p *db.Participant) error {
	return b.batch(ctx, func(tx db.Store) error { return tx.AddParticipant(ctx, p) })
}

func (b batched) ListParticipants(ctx context.Context, tenantID, sessionID string) ([]db.Participant, error) {
	return inBatch(ctx, b.Store, func(tx db.Store) ([]db.Participant, error) { return tx.ListParticipants(ctx, tenantID, sessionID) })
}

func (b batched) EndSession(ctx context.Context, tenantID, id string, at time.Time) (bool, error) {
	return inBatch(ctx, b.Store, func(tx db.Store) (bool, error) { return tx.EndSession(ctx, tenantID, id, at) })
}

func (b batched) CreateLogout(ctx context.Context, l *db.Logout, legs []db.LogoutLeg) error {
	return b.batch(ctx, func(tx db.Store) error { return tx.CreateLogout(ctx, l, legs) })
}

func (b batched) UpdateLogout(ctx context.Context, l *db.Logout) error {
	return b.batch(ctx, func(tx db.Store) error { return tx.UpdateLogout(ctx, l) })
}

func (b batched) UpdateLeg(ctx context.Context, g *db.LogoutLeg) error {
	return b.batch(ctx, func(tx db.Store) error { return tx.UpdateLeg(ctx, g) })
}

func (b batched) FinishLeg(ctx context.Context, tenantID, legID string, g *db.LogoutLeg) (bool, error) {
	return inBatch(ctx, b.Store, func(tx db.Store) (bool, error) { return tx.FinishLeg(ctx, tenantID, legID, g) })
}

func (b batched) GetLegByRequestID(ctx context.Context, tenantID, requestID string) (*db.LogoutLeg, error) {
	return inBatch(ctx, b.Store, func(tx db.Store) (*db.LogoutLeg, error) { return tx.GetLegByRequestID(ctx, tenantID, requestID) })
}

func TestConformanceInBatches(t *testing.T) {
	dbtest.Run(t, func(t *testing.T) db.Store {
		s, err := Open(filepath.Join(t.TempDir(), "broker.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return batched{s}
	})
}

// WithLogger's logger hears of a failed prepared statement, with its SQL and without its
// arguments; a missing row is no failure.
func TestPreparedStatementErrorsLogged(t *testing.T) {
	var buf bytes.Buffer
	s, err := Open(filepath.Join(t.TempDir(), "broker.db"), WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := newHotFixture(t, s)
	ctx := context.Background()
	buf.Reset()
	if _, err := s.GetSessionByCookie(ctx, f.tenant, "missing"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("GetSessionByCookie = %v; want ErrNotFound", err)
	}
	if buf.Len() > 0 {
		t.Errorf("a missing row was logged: %s", buf.String())
	}
	dup := db.Session{TenantID: f.tenant, CookieHash: f.session.CookieHash, NameID: "secret-name"}
	if err := s.CreateSession(ctx, &dup); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("CreateSession = %v; want ErrConflict", err)
	}
	got := buf.String()
	for _, want := range []string{"level=ERROR", "SQL executed", "INSERT INTO sessions", "UNIQUE constraint failed"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, "secret-name") {
		t.Errorf("log shows an argument: %s", got)
	}
}

// Every prepared statement is served by an index: no query plan scans a table in full.
func TestPreparedStatementsUseIndexes(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, d := range stmtDefs {
		if strings.Contains(d.sql, "SAVEPOINT") || strings.HasPrefix(d.sql, "RELEASE") || strings.HasPrefix(d.sql, "ROLLBACK") {
			continue
		}
		plan := explain(t, s, statement{d.sql, make([]any, strings.Count(d.sql, "?"))})
		t.Logf("%d: %s\n\t%s", id, d.sql, strings.Join(plan, "\n\t"))
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN ") {
				t.Errorf("%q scans a table: %s", d.sql, step)
			}
		}
	}
}

// BenchmarkHotCalls makes one call of every method of the hot path (25 statements), each on its
// own ("pools") or all in one Batch ("batch"). A batch that compiled its statements again would
// cost tens of microseconds more per statement than the calls on their own.
func BenchmarkHotCalls(b *testing.B) {
	for _, mode := range []string{"pools", "batch"} {
		b.Run(mode, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "broker.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			f := newHotFixture(b, s)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				key := fmt.Sprint(i)
				if mode == "pools" {
					err = hotCalls(ctx, s, f, key)
				} else {
					err = s.Batch(ctx, func(tx db.Store) error { return hotCalls(ctx, tx, f, key) })
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
