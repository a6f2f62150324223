package dbtest

import (
	"time"

	"github.com/sloworks/broker/db"
)

// count fails the test when a sweep did not remove want rows.
func (h *env) count(what string, want int64, got int64, err error) {
	h.Helper()
	h.ok(what, err)
	if got != want {
		h.Errorf("%s removed %d, want %d", what, got, want)
	}
}

var expiryTests = []test{
	{"DeleteExpiredPendingRequests", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		old1 := h.pending(a.ID, t0.Add(-time.Second))
		old2 := h.pending(b.ID, t0.Add(-time.Hour))
		edge := h.pending(a.ID, t0) // not before t0: kept by the sweep
		live := h.pending(b.ID, t0.Add(time.Minute))
		n, err := h.s.DeleteExpiredPendingRequests(h.ctx, t0)
		h.count("sweep", 2, n, err)
		n, err = h.s.DeleteExpiredPendingRequests(h.ctx, t0)
		h.count("second sweep", 0, n, err)
		for _, p := range []db.PendingRequest{old1, old2} {
			_, err := h.s.TakePendingRequest(h.ctx, p.TenantID, p.ID, t0.Add(-2*time.Hour))
			h.is("take swept", err, db.ErrNotFound)
		}
		for _, p := range []db.PendingRequest{edge, live} {
			got, err := h.s.TakePendingRequest(h.ctx, p.TenantID, p.ID, t0.Add(-2*time.Hour))
			h.ok("take kept", err)
			h.equal("take kept", &p, got)
		}
	}},
	{"DeleteExpiredSessions", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		mk := func(tenantID string, expires time.Time, ended *time.Time) db.Session {
			s := h.session(tenantID, "conn")
			s.ExpiresAt, s.EndedAt = expires, ended
			h.ok("update", h.s.UpdateSession(h.ctx, &s))
			h.participant(tenantID, s.ID, "app")
			return s
		}
		early, late := t0.Add(-time.Second), t0.Add(time.Second)
		gone := []db.Session{
			mk(a.ID, early, nil),                 // expired
			mk(b.ID, t0.Add(time.Hour), &early),  // ended
			mk(a.ID, t0.Add(-time.Hour), &early), // both
		}
		kept := []db.Session{
			mk(a.ID, t0.Add(time.Hour), nil),
			mk(b.ID, t0.Add(time.Hour), &late), // ended, but not before t0
			mk(a.ID, t0, nil),                  // expires at t0: not before it
			mk(b.ID, t0.Add(time.Hour), &t0),   // ended at t0: not before it
		}
		n, err := h.s.DeleteExpiredSessions(h.ctx, t0)
		h.count("sweep", int64(len(gone)), n, err)
		n, err = h.s.DeleteExpiredSessions(h.ctx, t0)
		h.count("second sweep", 0, n, err)
		for _, s := range gone {
			_, err := h.s.GetSession(h.ctx, s.TenantID, s.ID)
			h.is("get swept", err, db.ErrNotFound)
			ps, err := h.s.ListParticipants(h.ctx, s.TenantID, s.ID)
			h.ok("list participants of a swept session", err)
			if len(ps) != 0 {
				h.Errorf("swept session %s kept %d participants", s.ID, len(ps))
			}
		}
		for _, s := range kept {
			got, err := h.s.GetSession(h.ctx, s.TenantID, s.ID)
			h.ok("get kept", err)
			h.equal("get kept", &s, got)
			ps, err := h.s.ListParticipants(h.ctx, s.TenantID, s.ID)
			h.ok("list participants of a kept session", err)
			if len(ps) != 1 {
				h.Errorf("kept session %s has %d participants, want 1", s.ID, len(ps))
			}
		}
	}},
	{"DeleteExpiredReplay", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		now := time.Now()
		for _, e := range []struct {
			tenant, id string
			expires    time.Time
		}{
			{a.ID, "_old", now.Add(-2 * time.Hour)},
			{b.ID, "_old", now.Add(-time.Hour)},
			{a.ID, "_live", now.Add(time.Hour)},
			{b.ID, "_later", now.Add(2 * time.Hour)},
		} {
			_, err := h.s.MarkSeen(h.ctx, e.tenant, e.id, e.expires)
			h.ok("mark seen", err)
		}
		n, err := h.s.DeleteExpiredReplay(h.ctx, now.Add(-30*time.Minute))
		h.count("sweep", 2, n, err)
		n, err = h.s.DeleteExpiredReplay(h.ctx, now.Add(-30*time.Minute))
		h.count("second sweep", 0, n, err)
		seen, err := h.s.MarkSeen(h.ctx, a.ID, "_live", now.Add(time.Hour))
		h.ok("mark seen", err)
		if seen {
			h.Error("a live entry was swept")
		}
		n, err = h.s.DeleteExpiredReplay(h.ctx, now.Add(90*time.Minute))
		h.count("sweep of the live entry", 1, n, err)
		seen, err = h.s.MarkSeen(h.ctx, a.ID, "_live", now.Add(time.Hour))
		h.ok("mark seen", err)
		if !seen {
			h.Error("a swept entry is still seen")
		}
	}},
}

// near fails the test when got is not UTC or is more than a microsecond off want.
func (h *env) near(what string, want, got time.Time) {
	h.Helper()
	if d := got.Sub(want); d <= -time.Microsecond || d >= time.Microsecond {
		h.Errorf("%s: got %v, want %v to the microsecond", what, got, want)
	}
	if got.Location() != time.UTC {
		h.Errorf("%s: %v is not in UTC", what, got)
	}
}

var timeTests = []test{
	// Times given with nanoseconds and in another zone come back in UTC, equal to the
	// microsecond.
	{"PrecisionAndZone", func(h *env) {
		zone := time.FixedZone("UTC+2", 2*60*60)
		at := func(d time.Duration) time.Time {
			return time.Date(2031, 5, 6, 9, 8, 9, 123456789, zone).Add(d)
		}
		t := h.tenant("acme")
		ended := at(time.Hour)
		s := db.Session{TenantID: t.ID, CookieHash: "c", CreatedAt: at(0), ExpiresAt: at(2 * time.Hour), EndedAt: &ended}
		h.ok("create session", h.s.CreateSession(h.ctx, &s))
		got, err := h.s.GetSession(h.ctx, t.ID, s.ID)
		h.ok("get session", err)
		h.near("session CreatedAt", s.CreatedAt, got.CreatedAt)
		h.near("session ExpiresAt", s.ExpiresAt, got.ExpiresAt)
		if got.EndedAt == nil {
			h.Fatal("session EndedAt is nil")
		}
		h.near("session EndedAt", ended, *got.EndedAt)

		p := db.PendingRequest{TenantID: t.ID, CreatedAt: at(0), ExpiresAt: at(time.Minute)}
		h.ok("create pending request", h.s.CreatePendingRequest(h.ctx, &p))
		gp, err := h.s.TakePendingRequest(h.ctx, t.ID, p.ID, at(0))
		h.ok("take", err)
		h.near("pending CreatedAt", p.CreatedAt, gp.CreatedAt)
		h.near("pending ExpiresAt", p.ExpiresAt, gp.ExpiresAt)

		fin := at(3 * time.Hour)
		l := db.Logout{TenantID: t.ID, StartedAt: at(0), Deadline: at(time.Minute), FinishedAt: &fin}
		legs := []db.LogoutLeg{{RequestID: "_r", StartedAt: at(time.Second), FinishedAt: &fin}}
		h.ok("create logout", h.s.CreateLogout(h.ctx, &l, legs))
		gl, glegs, err := h.s.GetLogout(h.ctx, t.ID, l.ID)
		h.ok("get logout", err)
		h.near("logout StartedAt", l.StartedAt, gl.StartedAt)
		h.near("logout Deadline", l.Deadline, gl.Deadline)
		if gl.FinishedAt == nil || len(glegs) != 1 || glegs[0].FinishedAt == nil {
			h.Fatal("logout or leg FinishedAt is nil")
		}
		h.near("logout FinishedAt", fin, *gl.FinishedAt)
		h.near("leg StartedAt", legs[0].StartedAt, glegs[0].StartedAt)
		h.near("leg FinishedAt", fin, *glegs[0].FinishedAt)
		gg, err := h.s.GetLegByRequestID(h.ctx, t.ID, "_r")
		h.ok("get leg", err)
		h.near("leg StartedAt by request ID", legs[0].StartedAt, gg.StartedAt)
		// Filters compare to the microsecond too: at(0) is within [at(0), at(0)+1µs).
		list, err := h.s.ListLogouts(h.ctx, t.ID, db.LogoutFilter{Since: at(0).Truncate(time.Microsecond), Until: at(0).Add(time.Microsecond)})
		h.ok("list logouts", err)
		if len(list) != 1 {
			h.Errorf("listed %d logouts in the microsecond of StartedAt, want 1", len(list))
		}
		endAt := at(4 * time.Hour)
		ok, err := h.s.EndSession(h.ctx, t.ID, s.ID, endAt)
		h.ok("end session", err)
		if ok {
			h.Error("EndSession of an ended session returned true")
		}
		o := db.Session{TenantID: t.ID, CookieHash: "o", CreatedAt: at(0), ExpiresAt: at(time.Hour)}
		h.ok("create session", h.s.CreateSession(h.ctx, &o))
		_, err = h.s.EndSession(h.ctx, t.ID, o.ID, endAt)
		h.ok("end session", err)
		got, err = h.s.GetSession(h.ctx, t.ID, o.ID)
		h.ok("get ended session", err)
		if got.EndedAt == nil {
			h.Fatal("EndSession left EndedAt nil")
		}
		h.near("EndSession EndedAt", endAt, *got.EndedAt)

		c := db.Connection{TenantID: t.ID, Name: "c", CreatedAt: at(0)}
		h.ok("create connection", h.s.CreateConnection(h.ctx, &c))
		gc, err := h.s.GetConnection(h.ctx, t.ID, c.ID)
		h.ok("get connection", err)
		h.near("connection CreatedAt", c.CreatedAt, gc.CreatedAt)
	}},
}
