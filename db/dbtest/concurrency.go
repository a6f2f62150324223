package dbtest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sloworks/broker/db"
)

// workers is how many goroutines the concurrency tests run at once.
const workers = 20

var concurrencyTests = []test{
	{"MarkSeenOnce", func(h *env) {
		t := h.tenant("acme")
		exp := time.Now().Add(time.Hour)
		var wins, fails atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				seen, err := h.s.MarkSeen(h.ctx, t.ID, "_same", exp)
				switch {
				case err != nil:
					fails.Add(1)
					h.Errorf("mark seen: %v", err)
				case seen:
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || fails.Load() != 0 {
			h.Errorf("%d of %d concurrent MarkSeen returned true (%d failed), want exactly 1", wins.Load(), workers, fails.Load())
		}
	}},
	{"TakePendingRequestOnce", func(h *env) {
		t := h.tenant("acme")
		p := h.pending(t.ID, t0.Add(time.Hour))
		var wins atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				got, err := h.s.TakePendingRequest(h.ctx, t.ID, p.ID, t0)
				switch {
				case errors.Is(err, db.ErrNotFound):
				case err != nil:
					h.Errorf("take: %v", err)
				default:
					wins.Add(1)
					if got.ID != p.ID {
						h.Errorf("took %q, want %q", got.ID, p.ID)
					}
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			h.Errorf("%d of %d concurrent takes succeeded, want exactly 1", wins.Load(), workers)
		}
	}},
	// Two browsers or replicas answering for the same leg: one result is stored, the winner's,
	// and the others learn they lost.
	{"FinishLegOnce", func(h *env) {
		t := h.tenant("acme")
		l, legs := h.createLogout(h.newLogout(t.ID, "app-1", "u"), h.newLeg("app", "app-2"))
		results := make([]db.LogoutLeg, workers)
		won := make([]bool, workers)
		for w := range workers {
			fin := t0.Add(time.Duration(w) * time.Second)
			results[w] = db.LogoutLeg{Status: fmt.Sprintf("urn:status:%d", w), LatencyMS: int64(w),
				Diagnosis: fmt.Sprintf("worker %d", w), Received: []byte(fmt.Sprintf("<r%d/>", w)), FinishedAt: &fin}
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				ok, err := h.s.FinishLeg(h.ctx, t.ID, legs[0].ID, &results[w])
				if err != nil {
					h.Errorf("worker %d: finish leg: %v", w, err)
				}
				won[w] = ok
			})
		}
		wg.Wait()
		var winners []int
		for w, ok := range won {
			if ok {
				winners = append(winners, w)
			} else if results[w].State != "" || results[w].Diagnosis != fmt.Sprintf("worker %d", w) {
				h.Errorf("worker %d lost, but its leg was changed to %+v", w, results[w])
			}
		}
		if len(winners) != 1 {
			h.Fatalf("%d of %d concurrent FinishLeg returned true (workers %v), want exactly 1", len(winners), workers, winners)
		}
		w := winners[0]
		if results[w].Diagnosis != fmt.Sprintf("worker %d", w) || results[w].State != db.LegDone {
			h.Errorf("the winner %d got back %+v", w, results[w])
		}
		h.logoutIs("after the race", l, []db.LogoutLeg{results[w]})
	}},
	{"EndSessionOnce", func(h *env) {
		t := h.tenant("acme")
		s := h.session(t.ID, "conn")
		won := make([]bool, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				ok, err := h.s.EndSession(h.ctx, t.ID, s.ID, t0.Add(time.Duration(w)*time.Second))
				if err != nil {
					h.Errorf("worker %d: end session: %v", w, err)
				}
				won[w] = ok
			})
		}
		wg.Wait()
		winner := slices.Index(won, true)
		if n := len(slices.DeleteFunc(slices.Clone(won), func(ok bool) bool { return !ok })); n != 1 {
			h.Fatalf("%d of %d concurrent EndSession returned true, want exactly 1", n, workers)
		}
		got, err := h.s.GetSession(h.ctx, t.ID, s.ID)
		h.ok("get", err)
		want := t0.Add(time.Duration(winner) * time.Second)
		if got.EndedAt == nil || !got.EndedAt.Equal(want) {
			h.Errorf("EndedAt = %v, want the winner's %v", got.EndedAt, want)
		}
	}},
	// Many goroutines running logouts at once: none may fail.
	{"LogoutLoad", func(h *env) {
		t := h.tenant("acme")
		const rounds = 5
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					if err := logOut(h, t.ID, fmt.Sprintf("%d-%d", w, r)); err != nil {
						h.Errorf("worker %d round %d: %v", w, r, err)
						return
					}
				}
			})
		}
		wg.Wait()
		list, err := h.s.ListLogouts(h.ctx, t.ID, db.LogoutFilter{Outcome: "success", Limit: db.MaxLogoutLimit})
		h.ok("list logouts", err)
		if len(list) != workers*rounds {
			h.Errorf("%d successful logouts, want %d", len(list), workers*rounds)
		}
	}},
	// Many goroutines doing a sign-in's writes and reads at once: none may fail (a backend
	// must queue or retry, not return "database is locked").
	{"MixedLoad", func(h *env) {
		t := h.tenant("acme")
		c := h.conn(t.ID, "okta")
		a := h.app(t.ID, "wiki")
		const rounds = 15
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					if err := signIn(h, t.ID, c.ID, a.ID, fmt.Sprintf("%d-%d", w, r)); err != nil {
						h.Errorf("worker %d round %d: %v", w, r, err)
						return
					}
				}
			})
		}
		wg.Wait()
		list, err := h.s.ListSessions(h.ctx, t.ID)
		h.ok("list sessions", err)
		if len(list) != workers*rounds {
			h.Errorf("%d sessions, want %d", len(list), workers*rounds)
		}
	}},
}

// signIn does what one sign-in does to the store.
func signIn(h *env, tenantID, connID, appID, key string) error {
	ctx := h.ctx
	p := db.PendingRequest{TenantID: tenantID, ConnectionID: connID, AppID: appID, AppRequestID: "_" + key, ExpiresAt: t0}
	if err := h.s.CreatePendingRequest(ctx, &p); err != nil {
		return err
	}
	if _, err := h.s.GetApp(ctx, tenantID, appID); err != nil {
		return err
	}
	if seen, err := h.s.MarkSeen(ctx, tenantID, "_resp"+key, time.Now().Add(time.Hour)); err != nil || !seen {
		return fmt.Errorf("mark seen: %v, %v", seen, err)
	}
	if _, err := h.s.TakePendingRequest(ctx, tenantID, p.ID, t0.Add(-time.Minute)); err != nil {
		return err
	}
	s := db.Session{TenantID: tenantID, ConnectionID: connID, CookieHash: "cookie" + key, ExpiresAt: t0}
	if err := h.s.CreateSession(ctx, &s); err != nil {
		return err
	}
	if err := h.s.AddParticipant(ctx, &db.Participant{TenantID: tenantID, SessionID: s.ID, AppID: appID}); err != nil {
		return err
	}
	if _, err := h.s.GetSessionByCookie(ctx, tenantID, s.CookieHash); err != nil {
		return err
	}
	_, err := h.s.ListParticipants(ctx, tenantID, s.ID)
	return err
}

// logOut does what one logout does to the store.
func logOut(h *env, tenantID, key string) error {
	ctx := h.ctx
	s := db.Session{TenantID: tenantID, ConnectionID: "conn", CookieHash: "cookie" + key, NameID: "user" + key, ExpiresAt: t0}
	if err := h.s.CreateSession(ctx, &s); err != nil {
		return err
	}
	p := db.Participant{TenantID: tenantID, SessionID: s.ID, AppID: "app", NameID: "p" + key, SessionIndex: "idx" + key}
	if err := h.s.AddParticipant(ctx, &p); err != nil {
		return err
	}
	if _, err := h.s.GetParticipantBySessionIndex(ctx, tenantID, "app", p.SessionIndex); err != nil {
		return err
	}
	if ok, err := h.s.EndSession(ctx, tenantID, s.ID, t0); err != nil || !ok {
		return fmt.Errorf("end session: %v, %v", ok, err)
	}
	l := db.Logout{TenantID: tenantID, Trigger: "app", TriggerRef: "app", User: s.NameID, SessionIDs: []string{s.ID}, Deadline: t0}
	legs := []db.LogoutLeg{{Target: "app", TargetID: "other", RequestID: "_a" + key}, {Target: "upstream", TargetID: "conn", RequestID: "_u" + key}}
	if err := h.s.CreateLogout(ctx, &l, legs); err != nil {
		return err
	}
	for _, g := range legs {
		found, err := h.s.GetLegByRequestID(ctx, tenantID, g.RequestID)
		if err != nil {
			return err
		}
		if ok, err := h.s.FinishLeg(ctx, tenantID, found.ID, &db.LogoutLeg{Status: "urn:oasis:names:tc:SAML:2.0:status:Success"}); err != nil || !ok {
			return fmt.Errorf("finish leg: %v, %v", ok, err)
		}
	}
	fin := t0
	l.State, l.Outcome, l.FinishedAt = db.LogoutFinished, "success", &fin
	if err := h.s.UpdateLogout(ctx, &l); err != nil {
		return err
	}
	_, _, err := h.s.GetLogout(ctx, tenantID, l.ID)
	return err
}
