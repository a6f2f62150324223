// Package dbtest is the conformance suite of the storage contracts in package db: every backend
// runs Run from its own tests and must pass it.
//
// Beyond what the interfaces' comments say, the suite pins these rules:
//
//   - Create fills an empty ID with a fresh unique one and a zero CreatedAt with the current
//     time, and writes both back into the record passed, exactly as a later Get returns them.
//   - Update stores every field but ID, TenantID and CreatedAt, which never change.
//   - Lists are ordered by CreatedAt, then ID; an empty list may be nil.
//   - Times come back in UTC and equal to what was stored to the microsecond: a backend may drop
//     (truncate or round) anything finer, so the suite compares sub-microsecond times within
//     1µs and otherwise uses microsecond times, compared exactly.
//   - Nil and empty byte slices are the same value.
//   - A uniqueness violation (tenant slug; connection or app name or entity ID within a tenant;
//     session cookie hash within a tenant; a record ID) is db.ErrConflict.
//   - A record of a tenant that does not exist cannot be created (nor a replay entry marked),
//     and a participant needs an existing session of its own tenant: both are db.ErrNotFound.
//   - Expiry: a pending request or replay entry whose ExpiresAt <= now is expired; the
//     DeleteExpired* sweeps remove rows strictly before the given time (ExpiresAt < before, and
//     for sessions also EndedAt < before) and count the top-level rows removed.
//   - DeleteSession and DeleteExpiredSessions remove the session's participants;
//     DeleteLogoutsBefore removes the logouts' legs; DeleteTenant removes every row of the
//     tenant, and nothing of another tenant.
//   - Logouts: CreateLogout is all or nothing; it fills empty IDs, zero StartedAts and empty
//     States, sets each leg's TenantID and LogoutID to the logout's, writes all of it back, and
//     GetLogout returns the legs in the order given. UpdateLogout never changes ID, TenantID or
//     StartedAt, UpdateLeg never ID, TenantID or LogoutID. A finished logout and a done leg are
//     final: updating them is db.ErrConflict, finishing a done leg returns false and changes
//     nothing. ListLogouts is ordered by StartedAt, then ID, both descending;
//     ListUnfinishedLogouts by Deadline, then ID. User and NameID matches are exact
//     (case-sensitive), and an empty session index or request ID matches nothing.
//   - Atomic writes (MarkSeen, TakePendingRequest, FinishLeg, EndSession): of concurrent calls
//     on one key exactly one wins, and what is stored is the winner's.
package dbtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sloworks/broker/db"
)

// Run runs the suite. open is called once per test and must return an empty store on fresh
// storage, closed by a cleanup it registers on t. Tests do not run in parallel with each other,
// but some run concurrent calls on one store.
func Run(t *testing.T, open func(t *testing.T) db.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Tenants", tenantTests},
		{"Connections", connectionTests},
		{"Apps", appTests},
		{"Sessions", sessionTests},
		{"Participants", participantTests},
		{"PendingRequests", pendingTests},
		{"Replay", replayTests},
		{"SessionLookup", lookupTests},
		{"Logouts", logoutTests},
		{"Expiry", expiryTests},
		{"Times", timeTests},
		{"TenantIsolation", isolationTests},
		{"DeleteTenant", deleteTenantTests},
		{"Concurrency", concurrencyTests},
		{"SigningKeys", signingKeyTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(&env{T: t, s: open(t), ctx: t.Context(), n: new(int)})
				})
			}
		})
	}
}

// test is one leaf of the suite, run on a fresh store.
type test struct {
	name string
	run  func(h *env)
}

// env is a test's handle: the testing.T, the store under test and helpers.
type env struct {
	*testing.T
	s   db.Store
	ctx context.Context
	n   *int // sequence for unique fixture values, shared with subtests
}

// t0 is the suite's base time, in the future and of microsecond precision.
var t0 = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)

// key maps the IDs of the ListOrder tests to unique keys (names, cookie hashes) that sort the
// other way among the rows created at the same time.
var key = map[string]string{
	"c1": "k3", "c2": "k2", "c3": "k1",
	"a1": "k3", "a2": "k2", "a3": "k1",
	"s1": "k3", "s2": "k2", "s3": "k1",
}

// cmpOpts compares records: times by Equal (cmp's default for types with an Equal method), nil
// and empty slices alike.
var cmpOpts = cmp.Options{cmpopts.EquateEmpty()}

// equal fails the test when got differs from want.
func (h *env) equal(what string, want, got any) {
	h.Helper()
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		h.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
	h.utc(what, got)
}

// utc fails the test when a time in v (a record, a pointer to one or a slice of them) is not in
// UTC.
func (h *env) utc(what string, v any) {
	h.Helper()
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := range rv.Len() {
			h.utc(fmt.Sprintf("%s[%d]", what, i), rv.Index(i).Interface())
		}
	case reflect.Struct:
		if tm, ok := rv.Interface().(time.Time); ok {
			if tm.Location() != time.UTC {
				h.Errorf("%s: time %v is in %v, not UTC", what, tm, tm.Location())
			}
			return
		}
		for i := range rv.NumField() {
			if rv.Type().Field(i).IsExported() {
				h.utc(what+"."+rv.Type().Field(i).Name, rv.Field(i).Interface())
			}
		}
	}
}

// is fails the test when err is not target.
func (h *env) is(what string, err, target error) {
	h.Helper()
	if !errors.Is(err, target) {
		h.Errorf("%s: error %v, want %v", what, err, target)
	}
}

// ok fails the test now on an error.
func (h *env) ok(what string, err error) {
	h.Helper()
	if err != nil {
		h.Fatalf("%s: %v", what, err)
	}
}

// run runs f as a subtest on the same store.
func (h *env) run(name string, f func(h *env)) {
	h.Helper()
	h.T.Run(name, func(t *testing.T) { f(&env{T: t, s: h.s, ctx: h.ctx, n: h.n}) })
}

func (h *env) seq() int { *h.n++; return *h.n }

// tenant creates a tenant.
func (h *env) tenant(slug string) db.Tenant {
	h.Helper()
	t := db.Tenant{Slug: slug, Name: "Tenant " + slug, CreatedAt: t0.Add(time.Duration(h.seq()) * time.Second)}
	h.ok("create tenant", h.s.CreateTenant(h.ctx, &t))
	return t
}

// conn creates a connection of every field.
func (h *env) conn(tenantID, name string) db.Connection {
	h.Helper()
	c := db.Connection{
		TenantID: tenantID, Name: name, Provider: "generic",
		Config:   []byte(`{"name":"` + name + `"}`),
		EntityID: "https://idp.example/" + name, Metadata: []byte("<EntityDescriptor/>"),
		CreatedAt: t0.Add(time.Duration(h.seq()) * time.Second),
	}
	h.ok("create connection", h.s.CreateConnection(h.ctx, &c))
	return c
}

// app creates an app of every field.
func (h *env) app(tenantID, name string) db.App {
	h.Helper()
	a := db.App{
		TenantID: tenantID, Name: name, EntityID: "https://sp.example/" + name,
		MetadataURL: "https://sp.example/" + name + "/metadata", Metadata: []byte("<EntityDescriptor/>"),
		SignResponse: true, NoFrameLogout: true, Provider: "salesforce", LogoutSigAlg: "rsa-sha1", CreatedAt: t0.Add(time.Duration(h.seq()) * time.Second),
	}
	h.ok("create app", h.s.CreateApp(h.ctx, &a))
	return a
}

// session creates a live session of every field.
func (h *env) session(tenantID, connectionID string) db.Session {
	h.Helper()
	n := h.seq()
	s := db.Session{
		TenantID: tenantID, ConnectionID: connectionID, CookieHash: fmt.Sprintf("%064x", n),
		NameID: fmt.Sprintf("user%d@example.com", n), NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
		NameQualifier: "https://idp.example", SPNameQualifier: "https://broker.example",
		UpstreamSessionIndex: fmt.Sprintf("idx-%d", n), Attributes: []byte(`[{"name":"mail","values":["a@example.com"]}]`),
		CreatedAt: t0.Add(time.Duration(n) * time.Second), ExpiresAt: t0.Add(8 * time.Hour),
	}
	h.ok("create session", h.s.CreateSession(h.ctx, &s))
	return s
}

// participant adds an app to a session, with every field.
func (h *env) participant(tenantID, sessionID, appID string) db.Participant {
	h.Helper()
	n := h.seq()
	p := db.Participant{
		TenantID: tenantID, SessionID: sessionID, AppID: appID, NameID: fmt.Sprintf("pairwise-%d", n),
		NameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", NameQualifier: "https://broker.example",
		SPNameQualifier: "https://sp.example", SessionIndex: fmt.Sprintf("bidx-%d", n),
		CreatedAt: t0.Add(time.Duration(n) * time.Second),
	}
	h.ok("add participant", h.s.AddParticipant(h.ctx, &p))
	return p
}

// pending creates a pending request of every field, expiring at expires.
func (h *env) pending(tenantID string, expires time.Time) db.PendingRequest {
	h.Helper()
	n := h.seq()
	p := db.PendingRequest{
		TenantID: tenantID, ConnectionID: "conn-1", AppID: "app-1", AppRequestID: fmt.Sprintf("_req%d", n),
		ACSURL: "https://sp.example/acs", RelayState: fmt.Sprintf("relay-%d", n),
		NameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
		CreatedAt:    t0.Add(time.Duration(n) * time.Second), ExpiresAt: expires,
	}
	h.ok("create pending request", h.s.CreatePendingRequest(h.ctx, &p))
	return p
}
