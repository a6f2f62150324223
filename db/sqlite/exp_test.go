package sqlite

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sloworks/broker/db"
)

func expStore(t testing.TB, mode string) *Store {
	path := filepath.Join(t.TempDir(), "x.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode == "shared16" {
		closePool(s.r)
		closePool(s.w)
		common := url.Values{"_busy_timeout": {"5000"}, "_foreign_keys": {"on"}}
		w, err := openPool(path, common, url.Values{"_journal_mode": {"WAL"}, "_synchronous": {"FULL"}, "_txlock": {"immediate"}}, 16, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.w, s.r = w, w
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestExpLoad(t *testing.T) {
	for _, mode := range []string{"split", "shared16"} {
		for _, g := range []int{8, 64, 256} {
			s := expStore(t, mode)
			ctx := context.Background()
			tn := db.Tenant{Slug: "a"}
			s.CreateTenant(ctx, &tn)
			var errs atomic.Int64
			var firstErr atomic.Value
			start := time.Now()
			var wg sync.WaitGroup
			const per = 40
			for w := range g {
				wg.Go(func() {
					for r := range per {
						key := fmt.Sprintf("%d-%d", w, r)
						p := db.PendingRequest{TenantID: tn.ID, ExpiresAt: time.Now().Add(time.Hour)}
						err := s.CreatePendingRequest(ctx, &p)
						if err == nil {
							_, err = s.MarkSeen(ctx, tn.ID, key, time.Now().Add(time.Hour))
						}
						if err == nil {
							_, err = s.TakePendingRequest(ctx, tn.ID, p.ID, time.Now())
						}
						if err == nil {
							se := db.Session{TenantID: tn.ID, CookieHash: key, ExpiresAt: time.Now().Add(time.Hour)}
							err = s.CreateSession(ctx, &se)
							if err == nil {
								err = s.AddParticipant(ctx, &db.Participant{TenantID: tn.ID, SessionID: se.ID})
							}
							if err == nil {
								_, err = s.GetSessionByCookie(ctx, tn.ID, key)
							}
							if err == nil {
								_, err = s.ListSessions(ctx, tn.ID)
							}
						}
						if err != nil {
							errs.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
						}
					}
				})
			}
			wg.Wait()
			el := time.Since(start)
			t.Logf("%-9s g=%3d: %v, %.0f sign-ins/s, errors=%d %v", mode, g, el.Round(time.Millisecond), float64(g*per)/el.Seconds(), errs.Load(), firstErr.Load())
		}
	}
}
