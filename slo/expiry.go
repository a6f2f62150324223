package slo

import (
	"context"
	"errors"
	"time"
)

// EndExpired ends, across tenants, up to limit live sessions that expired before now, each as a
// broker-initiated logout with trigger "expiry" (back channel only), and returns how many it
// ended. The janitor calls it every minute, so apps hear of an expired session too.
func (e *Engine) EndExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	ss, err := e.Store.ListExpiredSessions(ctx, now, limit)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, s := range ss {
		_, _, err := e.EndSession(ctx, s.TenantID, s.ID, TriggerExpiry, "")
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrSessionGone): // another replica was first
		default:
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}
