package dbtest

import (
	"time"

	"github.com/sloworks/broker/db"
)

var sessionTests = []test{
	{"CRUD", func(h *env) {
		t := h.tenant("acme")
		c := h.conn(t.ID, "okta")
		s := h.session(t.ID, c.ID)
		got, err := h.s.GetSession(h.ctx, t.ID, s.ID)
		h.ok("get", err)
		h.equal("get", &s, got)
		got, err = h.s.GetSessionByCookie(h.ctx, t.ID, s.CookieHash)
		h.ok("get by cookie", err)
		h.equal("get by cookie", &s, got)

		ended := t0.Add(time.Hour)
		u := s
		u.ConnectionID, u.CookieHash, u.NameID, u.NameIDFormat = "other-conn", "ff00", "new@example.com", "unspecified"
		u.NameQualifier, u.SPNameQualifier, u.UpstreamSessionIndex = "nq", "spnq", "idx-new"
		u.Attributes, u.ExpiresAt, u.EndedAt = []byte(`[]`), t0.Add(2*time.Hour), &ended
		u.CreatedAt = t0.Add(99 * time.Hour) // ignored: CreatedAt never changes
		h.ok("update", h.s.UpdateSession(h.ctx, &u))
		want := u
		want.CreatedAt = s.CreatedAt
		got, err = h.s.GetSession(h.ctx, t.ID, s.ID)
		h.ok("get updated", err)
		h.equal("get updated", &want, got)
		_, err = h.s.GetSessionByCookie(h.ctx, t.ID, s.CookieHash)
		h.is("get by old cookie", err, db.ErrNotFound)
		list, err := h.s.ListSessions(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list", []db.Session{want}, list)

		h.ok("delete", h.s.DeleteSession(h.ctx, t.ID, s.ID))
		_, err = h.s.GetSession(h.ctx, t.ID, s.ID)
		h.is("get deleted", err, db.ErrNotFound)
		_, err = h.s.GetSessionByCookie(h.ctx, t.ID, u.CookieHash)
		h.is("get deleted by cookie", err, db.ErrNotFound)
		list, err = h.s.ListSessions(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list after delete", []db.Session(nil), list)
	}},
	{"EndedAtRoundTrip", func(h *env) {
		t := h.tenant("acme")
		ended := t0.Add(30 * time.Minute)
		for _, tc := range []struct {
			name  string
			ended *time.Time
		}{{"nil", nil}, {"set", &ended}} {
			h.run(tc.name, func(h *env) {
				s := db.Session{TenantID: t.ID, CookieHash: tc.name, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), EndedAt: tc.ended}
				h.ok("create", h.s.CreateSession(h.ctx, &s))
				got, err := h.s.GetSession(h.ctx, t.ID, s.ID)
				h.ok("get", err)
				h.equal("get", &s, got)
			})
		}
		s := h.session(t.ID, "conn")
		s.EndedAt = &ended
		h.ok("end", h.s.UpdateSession(h.ctx, &s))
		got, err := h.s.GetSession(h.ctx, t.ID, s.ID)
		h.ok("get ended", err)
		h.equal("get ended", &s, got)
	}},
	{"CreateGeneratesIDAndCreatedAt", func(h *env) {
		t := h.tenant("acme")
		before := time.Now()
		s := db.Session{TenantID: t.ID, CookieHash: "abc", ExpiresAt: t0}
		h.ok("create", h.s.CreateSession(h.ctx, &s))
		h.generated(s.ID, s.CreatedAt, before, time.Now())
		got, err := h.s.GetSession(h.ctx, t.ID, s.ID)
		h.ok("get", err)
		h.equal("get", &s, got)
	}},
	{"ListOrder", func(h *env) {
		t := h.tenant("acme")
		// Cookie hashes sort against the IDs, so an index on them cannot fake the order.
		for i, id := range []string{"s3", "s1", "s2"} {
			s := db.Session{ID: id, TenantID: t.ID, CookieHash: key[id], CreatedAt: t0.Add(time.Duration(i%2) * time.Second), ExpiresAt: t0}
			h.ok("create", h.s.CreateSession(h.ctx, &s))
		}
		list, err := h.s.ListSessions(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list", []db.Session{
			{ID: "s2", TenantID: t.ID, CookieHash: "k2", CreatedAt: t0, ExpiresAt: t0},
			{ID: "s3", TenantID: t.ID, CookieHash: "k1", CreatedAt: t0, ExpiresAt: t0},
			{ID: "s1", TenantID: t.ID, CookieHash: "k3", CreatedAt: t0.Add(time.Second), ExpiresAt: t0},
		}, list)
	}},
	{"Conflicts", func(h *env) {
		t := h.tenant("acme")
		s, o := h.session(t.ID, "conn"), h.session(t.ID, "conn")
		h.is("same cookie hash", h.s.CreateSession(h.ctx, &db.Session{TenantID: t.ID, CookieHash: s.CookieHash}), db.ErrConflict)
		h.is("same ID", h.s.CreateSession(h.ctx, &db.Session{ID: s.ID, TenantID: t.ID, CookieHash: "new"}), db.ErrConflict)
		u := o
		u.CookieHash = s.CookieHash
		h.is("update to a taken cookie hash", h.s.UpdateSession(h.ctx, &u), db.ErrConflict)
		list, err := h.s.ListSessions(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list", []db.Session{s, o}, list)
	}},
	{"NotFound", func(h *env) {
		t := h.tenant("acme")
		h.session(t.ID, "conn")
		_, err := h.s.GetSession(h.ctx, t.ID, "missing")
		h.is("get", err, db.ErrNotFound)
		_, err = h.s.GetSessionByCookie(h.ctx, t.ID, "missing")
		h.is("get by cookie", err, db.ErrNotFound)
		h.is("update", h.s.UpdateSession(h.ctx, &db.Session{ID: "missing", TenantID: t.ID, CookieHash: "x"}), db.ErrNotFound)
		h.is("delete", h.s.DeleteSession(h.ctx, t.ID, "missing"), db.ErrNotFound)
	}},
	{"DeleteRemovesParticipants", func(h *env) {
		t := h.tenant("acme")
		s1, s2 := h.session(t.ID, "conn"), h.session(t.ID, "conn")
		h.participant(t.ID, s1.ID, "app1")
		h.participant(t.ID, s1.ID, "app2")
		p3 := h.participant(t.ID, s2.ID, "app1")
		h.ok("delete", h.s.DeleteSession(h.ctx, t.ID, s1.ID))
		got, err := h.s.ListParticipants(h.ctx, t.ID, s1.ID)
		h.ok("list participants of the deleted session", err)
		h.equal("participants of the deleted session", []db.Participant(nil), got)
		got, err = h.s.ListParticipants(h.ctx, t.ID, s2.ID)
		h.ok("list participants of the other session", err)
		h.equal("participants of the other session", []db.Participant{p3}, got)
	}},
}

var participantTests = []test{
	{"AddAndList", func(h *env) {
		t := h.tenant("acme")
		s1, s2 := h.session(t.ID, "conn"), h.session(t.ID, "conn")
		p1 := h.participant(t.ID, s1.ID, "app1")
		p2 := h.participant(t.ID, s1.ID, "app2")
		p3 := h.participant(t.ID, s2.ID, "app1")
		got, err := h.s.ListParticipants(h.ctx, t.ID, s1.ID)
		h.ok("list", err)
		h.equal("list", []db.Participant{p1, p2}, got)
		got, err = h.s.ListParticipants(h.ctx, t.ID, s2.ID)
		h.ok("list", err)
		h.equal("list", []db.Participant{p3}, got)
	}},
	{"CreateGeneratesIDAndCreatedAt", func(h *env) {
		t := h.tenant("acme")
		s := h.session(t.ID, "conn")
		before := time.Now()
		p := db.Participant{TenantID: t.ID, SessionID: s.ID, AppID: "app"}
		h.ok("add", h.s.AddParticipant(h.ctx, &p))
		h.generated(p.ID, p.CreatedAt, before, time.Now())
		got, err := h.s.ListParticipants(h.ctx, t.ID, s.ID)
		h.ok("list", err)
		h.equal("list", []db.Participant{p}, got)
	}},
	{"ListOrder", func(h *env) {
		t := h.tenant("acme")
		s := h.session(t.ID, "conn")
		for i, id := range []string{"p3", "p1", "p2"} {
			p := db.Participant{ID: id, TenantID: t.ID, SessionID: s.ID, AppID: id, CreatedAt: t0.Add(time.Duration(i%2) * time.Second)}
			h.ok("add", h.s.AddParticipant(h.ctx, &p))
		}
		got, err := h.s.ListParticipants(h.ctx, t.ID, s.ID)
		h.ok("list", err)
		h.equal("list", []db.Participant{
			{ID: "p2", TenantID: t.ID, SessionID: s.ID, AppID: "p2", CreatedAt: t0},
			{ID: "p3", TenantID: t.ID, SessionID: s.ID, AppID: "p3", CreatedAt: t0},
			{ID: "p1", TenantID: t.ID, SessionID: s.ID, AppID: "p1", CreatedAt: t0.Add(time.Second)},
		}, got)
	}},
	{"UnknownSession", func(h *env) {
		t := h.tenant("acme")
		h.is("add", h.s.AddParticipant(h.ctx, &db.Participant{TenantID: t.ID, SessionID: "missing", AppID: "app"}), db.ErrNotFound)
		got, err := h.s.ListParticipants(h.ctx, t.ID, "missing")
		h.ok("list", err)
		h.equal("list", []db.Participant(nil), got)
	}},
	{"DuplicateID", func(h *env) {
		t := h.tenant("acme")
		s := h.session(t.ID, "conn")
		p := h.participant(t.ID, s.ID, "app")
		h.is("add", h.s.AddParticipant(h.ctx, &db.Participant{ID: p.ID, TenantID: t.ID, SessionID: s.ID}), db.ErrConflict)
	}},
}

var pendingTests = []test{
	{"TakeOnce", func(h *env) {
		t := h.tenant("acme")
		p := h.pending(t.ID, t0.Add(5*time.Minute))
		other := h.pending(t.ID, t0.Add(5*time.Minute))
		got, err := h.s.TakePendingRequest(h.ctx, t.ID, p.ID, t0)
		h.ok("take", err)
		h.equal("take", &p, got)
		_, err = h.s.TakePendingRequest(h.ctx, t.ID, p.ID, t0)
		h.is("second take", err, db.ErrNotFound)
		got, err = h.s.TakePendingRequest(h.ctx, t.ID, other.ID, t0)
		h.ok("take the other", err)
		h.equal("take the other", &other, got)
	}},
	{"CreateGeneratesIDAndCreatedAt", func(h *env) {
		t := h.tenant("acme")
		before := time.Now()
		p := db.PendingRequest{TenantID: t.ID, AppRequestID: "_abc", ExpiresAt: before.Add(time.Hour).UTC().Truncate(time.Microsecond)}
		h.ok("create", h.s.CreatePendingRequest(h.ctx, &p))
		h.generated(p.ID, p.CreatedAt, before, time.Now())
		got, err := h.s.TakePendingRequest(h.ctx, t.ID, p.ID, time.Now())
		h.ok("take", err)
		h.equal("take", &p, got)
	}},
	{"Expired", func(h *env) {
		t := h.tenant("acme")
		for _, tc := range []struct {
			name string
			now  time.Time
		}{
			{"ExpiresAt equal to now", t0},
			{"ExpiresAt before now", t0.Add(time.Second)},
		} {
			h.run(tc.name, func(h *env) {
				p := h.pending(t.ID, t0)
				_, err := h.s.TakePendingRequest(h.ctx, t.ID, p.ID, tc.now)
				h.is("take expired", err, db.ErrNotFound)
				_, err = h.s.TakePendingRequest(h.ctx, t.ID, p.ID, t0.Add(-time.Hour))
				h.is("take again, earlier", err, db.ErrNotFound)
			})
		}
	}},
	{"NotFound", func(h *env) {
		t := h.tenant("acme")
		h.pending(t.ID, t0)
		_, err := h.s.TakePendingRequest(h.ctx, t.ID, "missing", t0.Add(-time.Hour))
		h.is("take", err, db.ErrNotFound)
	}},
	{"DuplicateID", func(h *env) {
		t := h.tenant("acme")
		p := h.pending(t.ID, t0)
		h.is("create", h.s.CreatePendingRequest(h.ctx, &db.PendingRequest{ID: p.ID, TenantID: t.ID, ExpiresAt: t0}), db.ErrConflict)
	}},
}

// Replay tests run on the real clock: MarkSeen judges expiry by the store's own now.
var replayTests = []test{
	// Seen is a read: it judges expiry by the time given (expiresAt > now) and records nothing.
	{"Seen", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		seen := func(what, tenantID, id string, now time.Time, want bool) {
			h.Helper()
			got, err := h.s.Seen(h.ctx, tenantID, id, now)
			h.ok(what, err)
			if got != want {
				h.Errorf("%s: Seen = %v, want %v", what, got, want)
			}
		}
		seen("before it is marked", a.ID, "_t", time.Now(), false)
		seen("again", a.ID, "_t", time.Now(), false)
		marked, err := h.s.MarkSeen(h.ctx, a.ID, "_t", exp)
		h.ok("mark seen", err)
		if !marked {
			h.Error("MarkSeen after Seen returned false: Seen recorded the ID")
		}
		seen("after it is marked", a.ID, "_t", time.Now(), true)
		seen("just before it expires", a.ID, "_t", exp.Add(-time.Microsecond), true)
		seen("when it expires", a.ID, "_t", exp, false)
		seen("after it expired", a.ID, "_t", exp.Add(time.Hour), false)
		seen("in another tenant", b.ID, "_t", time.Now(), false)
		seen("another ID", a.ID, "_u", time.Now(), false)
		seen("in a missing tenant", "missing", "_t", time.Now(), false)
		marked, err = h.s.MarkSeen(h.ctx, a.ID, "_t", exp)
		h.ok("mark seen again", err)
		if marked {
			h.Error("MarkSeen of a live entry returned true after Seen")
		}
	}},
	{"MarkSeen", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		exp := time.Now().Add(time.Hour)
		for i, tc := range []struct {
			tenant, id string
			want       bool
		}{
			{a.ID, "_m1", true},
			{a.ID, "_m1", false}, // a replay
			{a.ID, "_m2", true},
			{b.ID, "_m1", true}, // the same ID in another tenant
			{b.ID, "_m1", false},
			{a.ID, "_m1", false},
		} {
			got, err := h.s.MarkSeen(h.ctx, tc.tenant, tc.id, exp)
			h.ok("mark seen", err)
			if got != tc.want {
				h.Errorf("call %d: MarkSeen(%s, %s) = %v, want %v", i, tc.tenant, tc.id, got, tc.want)
			}
		}
	}},
	{"ExpiredEntryIsMarkedAgain", func(h *env) {
		t := h.tenant("acme")
		now := time.Now()
		for i, tc := range []struct {
			expires time.Time
			want    bool
		}{
			{now.Add(-time.Second), true}, // new, already expired
			{now.Add(-time.Second), true}, // the entry had expired: replaced
			{now.Add(time.Hour), true},    // expired again: replaced, now live
			{now.Add(time.Hour), false},   // live: a replay
			{now.Add(-time.Hour), false},  // still a replay, whatever the new expiry
		} {
			got, err := h.s.MarkSeen(h.ctx, t.ID, "_m", tc.expires)
			h.ok("mark seen", err)
			if got != tc.want {
				h.Errorf("call %d: MarkSeen = %v, want %v", i, got, tc.want)
			}
		}
	}},
}
