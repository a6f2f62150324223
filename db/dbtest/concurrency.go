package dbtest

import (
	"errors"
	"fmt"
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
