package dbtest

import (
	"fmt"
	"slices"
	"time"

	"github.com/sloworks/broker/db"
)

// newLogout returns a running logout of every field (not yet created), started by the app.
func (h *env) newLogout(tenantID, appID, user string) db.Logout {
	n := h.seq()
	start := t0.Add(time.Duration(n) * time.Second)
	return db.Logout{
		TenantID: tenantID, Trigger: "app", TriggerRef: appID, User: user,
		SessionIDs: []string{fmt.Sprintf("sess-%d-a", n), fmt.Sprintf("sess-%d-b", n)},
		State:      db.LogoutRunning,
		Initiator:  []byte(fmt.Sprintf(`{"binding":"redirect","request_id":"_app%d","relay_state":"rs"}`, n)),
		StartedAt:  start, Deadline: start.Add(5 * time.Minute),
	}
}

// newLeg returns a pending leg of every field a pending leg has (not yet created).
func (h *env) newLeg(target, targetID string) db.LogoutLeg {
	n := h.seq()
	return db.LogoutLeg{
		Target: target, TargetID: targetID, TargetName: "name-" + targetID, Channel: "soap",
		RequestID: fmt.Sprintf("_lr%d", n), State: db.LegPending,
		Sent: []byte(fmt.Sprintf(`<samlp:LogoutRequest ID="_lr%d"/>`, n)), StartedAt: t0.Add(time.Duration(n) * time.Second),
	}
}

// doneLeg returns a finished leg of every field (not yet created).
func (h *env) doneLeg(target, targetID string) db.LogoutLeg {
	g := h.newLeg(target, targetID)
	fin := g.StartedAt.Add(1500 * time.Millisecond)
	g.State, g.Status, g.SubStatus = db.LegDone, "urn:oasis:names:tc:SAML:2.0:status:Responder", "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
	g.LatencyMS, g.ErrorClass, g.Diagnosis = 1500, "status", "the app answered Responder/PartialLogout"
	g.Received, g.FinishedAt = []byte(`<samlp:LogoutResponse/>`), &fin
	return g
}

// createLogout creates l with legs and returns them as written back.
func (h *env) createLogout(l db.Logout, legs ...db.LogoutLeg) (db.Logout, []db.LogoutLeg) {
	h.Helper()
	h.ok("create logout", h.s.CreateLogout(h.ctx, &l, legs))
	return l, legs
}

// logoutIs fails the test unless the stored logout id is want with wantLegs.
func (h *env) logoutIs(what string, want db.Logout, wantLegs []db.LogoutLeg) {
	h.Helper()
	got, legs, err := h.s.GetLogout(h.ctx, want.TenantID, want.ID)
	h.ok(what+": get logout", err)
	h.equal(what+": logout", &want, got)
	h.equal(what+": legs", wantLegs, legs)
}

// ids returns the IDs of logouts, in order.
func ids(ls []db.Logout) []string {
	out := []string{}
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

var logoutTests = []test{
	{"CreateAndGet", func(h *env) {
		t := h.tenant("acme")
		l := h.newLogout(t.ID, "app-1", "alice@example.com")
		l.ID = "logout-1"
		// Leg IDs sort against the plan order: legs come back in the order given.
		g1, g2, g3 := h.newLeg("app", "app-2"), h.doneLeg("app", "app-3"), h.newLeg("upstream", "conn-1")
		g1.ID, g2.ID, g3.ID = "leg-c", "leg-b", "leg-a"
		g2.TenantID, g2.LogoutID = "ignored", "ignored" // the logout's are stored
		l, legs := h.createLogout(l, g1, g2, g3)
		for i, g := range legs {
			if g.TenantID != t.ID || g.LogoutID != "logout-1" {
				h.Errorf("leg %d written back with tenant %q, logout %q", i, g.TenantID, g.LogoutID)
			}
		}
		h.equal("leg IDs", []string{"leg-c", "leg-b", "leg-a"}, []string{legs[0].ID, legs[1].ID, legs[2].ID})
		h.logoutIs("get", l, legs)
	}},
	{"CreateWithoutLegs", func(h *env) {
		t := h.tenant("acme")
		l, _ := h.createLogout(h.newLogout(t.ID, "app-1", "alice@example.com"))
		h.logoutIs("get", l, nil)
		fin := t0.Add(time.Hour)
		l2 := h.newLogout(t.ID, "", "")
		l2.Trigger, l2.SessionIDs, l2.Initiator = "expiry", nil, nil
		l2.State, l2.Outcome, l2.FinishedAt = db.LogoutFinished, "success", &fin
		l2, _ = h.createLogout(l2, []db.LogoutLeg{}...)
		h.logoutIs("get a finished one", l2, nil)
	}},
	{"CreateGeneratesIDsAndDefaults", func(h *env) {
		t := h.tenant("acme")
		before := time.Now()
		l := db.Logout{TenantID: t.ID, Trigger: "admin", TriggerRef: "root", Deadline: t0}
		legs := []db.LogoutLeg{{Target: "app", TargetID: "a"}, {Target: "upstream", TargetID: "c"}}
		h.ok("create", h.s.CreateLogout(h.ctx, &l, legs))
		after := time.Now()
		h.generated(l.ID, l.StartedAt, before, after)
		if l.State != db.LogoutRunning {
			h.Errorf("State written back as %q, want %q", l.State, db.LogoutRunning)
		}
		seen := map[string]bool{l.ID: true}
		for i, g := range legs {
			h.generated(g.ID, g.StartedAt, before, after)
			if seen[g.ID] {
				h.Errorf("leg %d got a repeated ID %q", i, g.ID)
			}
			seen[g.ID] = true
			if g.State != db.LegPending || g.TenantID != t.ID || g.LogoutID != l.ID {
				h.Errorf("leg %d written back as state %q, tenant %q, logout %q", i, g.State, g.TenantID, g.LogoutID)
			}
		}
		h.logoutIs("get", l, legs)
	}},
	{"CreateConflicts", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		l, legs := h.createLogout(h.newLogout(a.ID, "app", "u"), h.newLeg("app", "app"), db.LogoutLeg{Target: "app"})
		for _, tc := range []struct {
			name   string
			logout db.Logout
			legs   []db.LogoutLeg
		}{
			{"same logout ID", db.Logout{ID: l.ID, TenantID: a.ID}, nil},
			{"same leg ID", db.Logout{ID: "new", TenantID: a.ID}, []db.LogoutLeg{{ID: legs[0].ID}}},
			{"same request ID as a stored leg", db.Logout{ID: "new", TenantID: a.ID}, []db.LogoutLeg{{}, {RequestID: legs[0].RequestID}}},
			{"same request ID twice", db.Logout{ID: "new", TenantID: a.ID}, []db.LogoutLeg{{RequestID: "_x"}, {RequestID: "_x"}}},
		} {
			h.run(tc.name, func(h *env) {
				h.is("create", h.s.CreateLogout(h.ctx, &tc.logout, tc.legs), db.ErrConflict)
				// Nothing of a failed create is stored.
				_, _, err := h.s.GetLogout(h.ctx, a.ID, "new")
				h.is("get the failed logout", err, db.ErrNotFound)
				_, err = h.s.GetLegByRequestID(h.ctx, a.ID, "_x")
				h.is("get a leg of the failed logout", err, db.ErrNotFound)
			})
		}
		h.logoutIs("the first logout", l, legs)
		// Request IDs are unique per tenant, and empty ones are not request IDs.
		h.createLogout(db.Logout{TenantID: b.ID}, db.LogoutLeg{RequestID: legs[0].RequestID}, db.LogoutLeg{}, db.LogoutLeg{})
		h.createLogout(db.Logout{TenantID: a.ID}, db.LogoutLeg{}, db.LogoutLeg{})
	}},
	{"UpdateLogout", func(h *env) {
		t := h.tenant("acme")
		l, legs := h.createLogout(h.newLogout(t.ID, "app-1", "alice@example.com"), h.newLeg("app", "app-2"))
		u := l
		u.Trigger, u.TriggerRef, u.User, u.SessionIDs = "idp", "conn-1", "bob@example.com", []string{"s9"}
		u.Initiator, u.Deadline = []byte(`{"binding":"soap"}`), t0.Add(time.Hour)
		u.StartedAt = t0.Add(99 * time.Hour) // ignored: StartedAt never changes
		h.ok("update", h.s.UpdateLogout(h.ctx, &u))
		want := u
		want.StartedAt = l.StartedAt
		h.logoutIs("updated", want, legs)

		fin := t0.Add(2 * time.Hour)
		want.State, want.Outcome, want.FinishedAt, want.SessionIDs, want.Initiator = db.LogoutFinished, "partial", &fin, nil, nil
		h.ok("finish", h.s.UpdateLogout(h.ctx, &want))
		h.logoutIs("finished", want, legs)

		// A finished logout is final, whatever the update says.
		again := want
		again.State, again.Outcome, again.FinishedAt = db.LogoutRunning, "", nil
		h.is("update a finished logout", h.s.UpdateLogout(h.ctx, &again), db.ErrConflict)
		again.State, again.Outcome = db.LogoutFinished, "success"
		h.is("finish it again", h.s.UpdateLogout(h.ctx, &again), db.ErrConflict)
		h.logoutIs("after the refused updates", want, legs)

		missing := h.newLogout(t.ID, "app-1", "u")
		missing.ID = "missing"
		h.is("update a missing logout", h.s.UpdateLogout(h.ctx, &missing), db.ErrNotFound)
	}},
	{"UpdateLeg", func(h *env) {
		t := h.tenant("acme")
		l, legs := h.createLogout(h.newLogout(t.ID, "app-1", "u"), h.newLeg("app", "app-2"), h.newLeg("app", "app-3"))
		fin := t0.Add(time.Hour)
		u := legs[0]
		u.Target, u.TargetID, u.TargetName, u.Channel, u.RequestID = "upstream", "conn-9", "okta", "iframe", "_new"
		u.Status, u.SubStatus, u.LatencyMS, u.ErrorClass, u.Diagnosis = "st", "sub", 7, "timeout", "slow"
		u.Sent, u.Received, u.StartedAt, u.FinishedAt = []byte("<a/>"), []byte("<b/>"), t0.Add(time.Minute), &fin
		u.LogoutID = "another-logout" // ignored: a leg stays with its logout
		h.ok("update", h.s.UpdateLeg(h.ctx, &u))
		want := u
		want.LogoutID = l.ID
		h.logoutIs("updated", l, []db.LogoutLeg{want, legs[1]})
		got, err := h.s.GetLegByRequestID(h.ctx, t.ID, "_new")
		h.ok("get by the new request ID", err)
		h.equal("get by the new request ID", &want, got)
		_, err = h.s.GetLegByRequestID(h.ctx, t.ID, legs[0].RequestID)
		h.is("get by the old request ID", err, db.ErrNotFound)

		taken := legs[1]
		taken.RequestID = "_new"
		h.is("update to a taken request ID", h.s.UpdateLeg(h.ctx, &taken), db.ErrConflict)

		// A done leg is final.
		want.State = db.LegDone
		h.ok("update to done", h.s.UpdateLeg(h.ctx, &want))
		again := want
		again.State, again.Diagnosis = db.LegPending, "overwritten"
		h.is("update a done leg", h.s.UpdateLeg(h.ctx, &again), db.ErrConflict)
		if ok, err := h.s.FinishLeg(h.ctx, t.ID, want.ID, &again); ok || err != nil {
			h.Errorf("FinishLeg of a done leg = %v, %v; want false, nil", ok, err)
		}
		h.logoutIs("after the refused updates", l, []db.LogoutLeg{want, legs[1]})

		missing := legs[1]
		missing.ID = "missing"
		h.is("update a missing leg", h.s.UpdateLeg(h.ctx, &missing), db.ErrNotFound)
	}},
	{"FinishLeg", func(h *env) {
		t := h.tenant("acme")
		l, legs := h.createLogout(h.newLogout(t.ID, "app-1", "u"), h.newLeg("app", "app-2"), h.newLeg("upstream", "conn-1"))
		fin := t0.Add(time.Hour)
		// Only the result fields of the argument count, and Sent (when not empty: legs[1] below keeps its own).
		res := db.LogoutLeg{
			ID: "ignored", TenantID: "ignored", LogoutID: "ignored", Target: "ignored", TargetID: "ignored",
			TargetName: "ignored", Channel: "ignored", RequestID: "ignored", State: db.LegPending,
			Status: "urn:oasis:names:tc:SAML:2.0:status:Success", SubStatus: "sub", LatencyMS: 42, ErrorClass: "",
			Diagnosis: "logged out", Sent: []byte("<samlp:LogoutRequest/>"), Received: []byte("<samlp:LogoutResponse/>"),
			StartedAt: t0.Add(99 * time.Hour), FinishedAt: &fin,
		}
		want := legs[0]
		want.State, want.Status, want.SubStatus, want.LatencyMS = db.LegDone, res.Status, res.SubStatus, 42
		want.Diagnosis, want.Sent, want.Received, want.FinishedAt = res.Diagnosis, res.Sent, res.Received, &fin
		got := res
		ok, err := h.s.FinishLeg(h.ctx, t.ID, legs[0].ID, &got)
		h.ok("finish", err)
		if !ok {
			h.Fatal("FinishLeg of a pending leg returned false")
		}
		h.equal("written back", want, got)
		h.logoutIs("finished", l, []db.LogoutLeg{want, legs[1]})

		second := db.LogoutLeg{ErrorClass: "no_answer", Diagnosis: "second", FinishedAt: &t0}
		arg := second
		ok, err = h.s.FinishLeg(h.ctx, t.ID, legs[0].ID, &arg)
		h.ok("finish again", err)
		if ok {
			h.Error("FinishLeg of a done leg returned true")
		}
		h.equal("the argument of a refused finish", second, arg)
		h.logoutIs("after the second finish", l, []db.LogoutLeg{want, legs[1]})

		// No FinishedAt: the current time.
		before := time.Now()
		got = db.LogoutLeg{ErrorClass: "timeout", Diagnosis: "no answer within 5s", LatencyMS: 5000}
		ok, err = h.s.FinishLeg(h.ctx, t.ID, legs[1].ID, &got)
		h.ok("finish without FinishedAt", err)
		if !ok || got.FinishedAt == nil {
			h.Fatalf("FinishLeg = %v with FinishedAt %v; want true and a time", ok, got.FinishedAt)
		}
		h.generated(got.ID, *got.FinishedAt, before, time.Now())
		want1 := legs[1]
		want1.State, want1.ErrorClass, want1.Diagnosis, want1.LatencyMS, want1.FinishedAt = db.LegDone, "timeout", got.Diagnosis, 5000, got.FinishedAt
		h.equal("written back", want1, got)
		h.logoutIs("both finished", l, []db.LogoutLeg{want, want1})

		ok, err = h.s.FinishLeg(h.ctx, t.ID, "missing", &db.LogoutLeg{})
		h.is("finish a missing leg", err, db.ErrNotFound)
		if ok {
			h.Error("FinishLeg of a missing leg returned true")
		}
	}},
	{"GetLegByRequestID", func(h *env) {
		t := h.tenant("acme")
		_, legs := h.createLogout(h.newLogout(t.ID, "app-1", "u"), h.newLeg("app", "app-2"), db.LogoutLeg{Target: "app"})
		_, other := h.createLogout(h.newLogout(t.ID, "app-1", "u"), h.doneLeg("upstream", "conn-1"))
		for _, g := range []db.LogoutLeg{legs[0], other[0]} {
			got, err := h.s.GetLegByRequestID(h.ctx, t.ID, g.RequestID)
			h.ok("get", err)
			h.equal("get", &g, got)
		}
		for _, id := range []string{"", "_missing"} {
			_, err := h.s.GetLegByRequestID(h.ctx, t.ID, id)
			h.is(fmt.Sprintf("get %q", id), err, db.ErrNotFound)
		}
	}},
	{"NotFound", func(h *env) {
		t := h.tenant("acme")
		h.createLogout(h.newLogout(t.ID, "app-1", "u"), h.newLeg("app", "app-2"))
		_, _, err := h.s.GetLogout(h.ctx, t.ID, "missing")
		h.is("get", err, db.ErrNotFound)
		h.is("create in a missing tenant", h.s.CreateLogout(h.ctx, &db.Logout{TenantID: "missing"}, []db.LogoutLeg{{}}), db.ErrNotFound)
	}},
	{"ListLogoutsFilters", func(h *env) {
		t := h.tenant("acme")
		at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
		mk := func(id string, start int, trigger, ref, user, outcome string, legs ...db.LogoutLeg) db.Logout {
			l := h.newLogout(t.ID, ref, user)
			l.ID, l.StartedAt, l.Trigger, l.Outcome = id, at(start), trigger, outcome
			if outcome != "" {
				l.State = db.LogoutFinished
			}
			l, _ = h.createLogout(l, legs...)
			return l
		}
		app := func(id string) db.LogoutLeg { return db.LogoutLeg{Target: "app", TargetID: id} }
		l1 := mk("l1", 1, "app", "a1", "u1", "success", app("a2"), db.LogoutLeg{Target: "upstream", TargetID: "c"})
		l2 := mk("l2", 2, "idp", "c", "u1", "partial", app("a1"), app("a1")) // two sessions with a1
		l3 := mk("l3", 3, "admin", "root", "u2", "failed", app("a2"))
		l4 := mk("l4", 4, "expiry", "", "u2", "")
		// Not a1's: an admin whose name is a1's ID, and an upstream leg to a connection of that ID.
		l5 := mk("l5", 5, "admin", "a1", "u1", "success", db.LogoutLeg{Target: "upstream", TargetID: "a1"})
		all := []db.Logout{l5, l4, l3, l2, l1}
		for _, tc := range []struct {
			name string
			f    db.LogoutFilter
			want []db.Logout
		}{
			{"none", db.LogoutFilter{}, all},
			{"user", db.LogoutFilter{User: "u1"}, []db.Logout{l5, l2, l1}},
			{"user matched exactly", db.LogoutFilter{User: "U1"}, nil},
			{"app by leg or trigger", db.LogoutFilter{AppID: "a1"}, []db.Logout{l2, l1}},
			{"app by legs", db.LogoutFilter{AppID: "a2"}, []db.Logout{l3, l1}},
			{"unknown app", db.LogoutFilter{AppID: "c"}, nil},
			{"outcome", db.LogoutFilter{Outcome: "partial"}, []db.Logout{l2}},
			{"outcome success", db.LogoutFilter{Outcome: "success"}, []db.Logout{l5, l1}},
			{"since, inclusive", db.LogoutFilter{Since: at(2)}, []db.Logout{l5, l4, l3, l2}},
			{"until, exclusive", db.LogoutFilter{Until: at(3)}, []db.Logout{l2, l1}},
			{"since and until", db.LogoutFilter{Since: at(2), Until: at(4)}, []db.Logout{l3, l2}},
			{"user and app", db.LogoutFilter{User: "u1", AppID: "a2"}, []db.Logout{l1}},
			{"everything", db.LogoutFilter{User: "u1", AppID: "a1", Outcome: "partial", Since: at(2), Until: at(3)}, []db.Logout{l2}},
			{"limit", db.LogoutFilter{Limit: 2}, []db.Logout{l5, l4}},
			{"limit with a filter", db.LogoutFilter{User: "u2", Limit: 1}, []db.Logout{l4}},
			{"negative limit is the default", db.LogoutFilter{Limit: -1}, all},
		} {
			h.run(tc.name, func(h *env) {
				got, err := h.s.ListLogouts(h.ctx, t.ID, tc.f)
				h.ok("list", err)
				h.equal("list", tc.want, got)
			})
		}
	}},
	{"ListLogoutsOrder", func(h *env) {
		t := h.tenant("acme")
		// Equal StartedAt: by ID, descending; a later StartedAt first whatever its ID.
		for i, id := range []string{"x3", "x1", "x2"} {
			l := db.Logout{ID: id, TenantID: t.ID, StartedAt: t0.Add(time.Duration(i%2) * time.Second), Deadline: t0}
			h.createLogout(l)
		}
		got, err := h.s.ListLogouts(h.ctx, t.ID, db.LogoutFilter{})
		h.ok("list", err)
		h.equal("order", []string{"x1", "x3", "x2"}, ids(got))
	}},
	{"ListLogoutsLimits", func(h *env) {
		t := h.tenant("acme")
		for i := range db.MaxLogoutLimit + 1 {
			h.createLogout(db.Logout{ID: fmt.Sprintf("l%04d", i), TenantID: t.ID, StartedAt: t0.Add(time.Duration(i) * time.Second), Deadline: t0})
		}
		newest := func(n int) []string {
			var out []string
			for i := db.MaxLogoutLimit; len(out) < n; i-- {
				out = append(out, fmt.Sprintf("l%04d", i))
			}
			return out
		}
		for _, tc := range []struct {
			limit, want int
		}{
			{0, db.DefaultLogoutLimit},
			{-5, db.DefaultLogoutLimit},
			{7, 7},
			{db.MaxLogoutLimit, db.MaxLogoutLimit},
			{db.MaxLogoutLimit + 1, db.MaxLogoutLimit},
			{1 << 30, db.MaxLogoutLimit},
		} {
			got, err := h.s.ListLogouts(h.ctx, t.ID, db.LogoutFilter{Limit: tc.limit})
			h.ok("list", err)
			if !slices.Equal(ids(got), newest(tc.want)) {
				h.Errorf("limit %d: got %d logouts, want the newest %d", tc.limit, len(got), tc.want)
			}
		}
	}},
	{"ListUnfinishedLogouts", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		mk := func(tenantID string, deadline time.Time, state string) db.Logout {
			l := h.newLogout(tenantID, "app", "u")
			l.Deadline, l.State = deadline, state
			l, _ = h.createLogout(l, h.newLeg("app", "app"))
			return l
		}
		late := mk(a.ID, t0.Add(-time.Second), db.LogoutRunning)
		later := mk(b.ID, t0.Add(-time.Hour), db.LogoutRunning)
		mk(a.ID, t0, db.LogoutRunning)                    // deadline at t0: not before it
		mk(b.ID, t0.Add(time.Hour), db.LogoutRunning)     // not yet due
		mk(a.ID, t0.Add(-time.Hour), db.LogoutFinished)   // finished
		mk(b.ID, t0.Add(-2*time.Hour), db.LogoutFinished) // finished
		got, err := h.s.ListUnfinishedLogouts(h.ctx, t0)
		h.ok("list", err)
		h.equal("unfinished", []db.Logout{later, late}, got)

		fin := t0
		late.State, late.Outcome, late.FinishedAt = db.LogoutFinished, "partial", &fin
		h.ok("finish", h.s.UpdateLogout(h.ctx, &late))
		got, err = h.s.ListUnfinishedLogouts(h.ctx, t0)
		h.ok("list", err)
		h.equal("unfinished after finishing one", []db.Logout{later}, got)
	}},
	{"DeleteLogoutsBefore", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		type rec struct {
			l    db.Logout
			legs []db.LogoutLeg
		}
		mk := func(tenantID string, start time.Time, state string, legs ...db.LogoutLeg) rec {
			l := h.newLogout(tenantID, "app", "u")
			l.StartedAt, l.State = start, state
			l, legs = h.createLogout(l, legs...)
			return rec{l, legs}
		}
		gone := []rec{
			mk(a.ID, t0.Add(-time.Second), db.LogoutFinished, h.newLeg("app", "x"), h.doneLeg("upstream", "c")),
			mk(b.ID, t0.Add(-time.Hour), db.LogoutFinished, h.newLeg("app", "x")),
			mk(a.ID, t0.Add(-2*time.Hour), db.LogoutRunning, h.newLeg("app", "y")), // running, but past retention
		}
		kept := []rec{
			mk(a.ID, t0, db.LogoutFinished, h.newLeg("app", "x")), // started at t0: not before it
			mk(b.ID, t0.Add(time.Second), db.LogoutRunning, h.newLeg("app", "x"), h.newLeg("upstream", "c")),
			mk(a.ID, t0.Add(time.Hour), db.LogoutFinished),
		}
		n, err := h.s.DeleteLogoutsBefore(h.ctx, t0)
		h.count("sweep", int64(len(gone)), n, err)
		n, err = h.s.DeleteLogoutsBefore(h.ctx, t0)
		h.count("second sweep", 0, n, err)
		for _, r := range gone {
			_, _, err := h.s.GetLogout(h.ctx, r.l.TenantID, r.l.ID)
			h.is("get a deleted logout", err, db.ErrNotFound)
			for _, g := range r.legs {
				_, err := h.s.GetLegByRequestID(h.ctx, g.TenantID, g.RequestID)
				h.is("get a leg of a deleted logout", err, db.ErrNotFound)
				ok, err := h.s.FinishLeg(h.ctx, g.TenantID, g.ID, &db.LogoutLeg{})
				h.is("finish a leg of a deleted logout", err, db.ErrNotFound)
				if ok {
					h.Error("finished a leg of a deleted logout")
				}
			}
			// The legs are gone, not orphaned: their IDs and request IDs are free again.
			again := r.l
			h.ok("create the logout again", h.s.CreateLogout(h.ctx, &again, slices.Clone(r.legs)))
		}
		for _, r := range kept {
			h.logoutIs("kept", r.l, r.legs)
		}
		list, err := h.s.ListLogouts(h.ctx, a.ID, db.LogoutFilter{})
		h.ok("list", err)
		h.equal("A's logouts", []string{kept[2].l.ID, kept[0].l.ID, gone[0].l.ID, gone[2].l.ID}, ids(list))
	}},
}
