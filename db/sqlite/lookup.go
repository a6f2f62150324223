package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/sloworks/broker/db"
)

// Session lookups for logout.

// FindSessionsByNameID returns the tenant's live (EndedAt NULL) sessions on the connection with
// the given NameID value.
func (s *Store) FindSessionsByNameID(ctx context.Context, tenantID, connectionID, nameID string) ([]db.Session, error) {
	return list(ctx, s, "sessions", (*sessionRow).record,
		"tenant_id = ? AND connection_id = ? AND name_id = ? AND ended_at IS NULL", tenantID, connectionID, nameID)
}

// FindSessionByUpstreamIndex returns the tenant's newest live session on the connection with the
// given upstream session index, else the newest ended one.
func (s *Store) FindSessionByUpstreamIndex(ctx context.Context, tenantID, connectionID, sessionIndex string) (*db.Session, error) {
	if sessionIndex == "" {
		return nil, fmt.Errorf("get session: %w", db.ErrNotFound)
	}
	var r sessionRow
	err := s.r.WithContext(ctx).
		Where("tenant_id = ? AND connection_id = ? AND upstream_session_index = ?", tenantID, connectionID, sessionIndex).
		Order("CASE WHEN ended_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id DESC").Take(&r).Error
	if err != nil {
		return nil, fmt.Errorf("get session: %w", translate(err))
	}
	se := r.record()
	return &se, nil
}

// GetParticipantBySessionIndex returns the app's newest participant with the given session
// index, in the tenant.
func (s *Store) GetParticipantBySessionIndex(ctx context.Context, tenantID, appID, sessionIndex string) (*db.Participant, error) {
	if sessionIndex == "" {
		return nil, fmt.Errorf("get participant: %w", db.ErrNotFound)
	}
	var r participantRow
	err := s.r.WithContext(ctx).
		Where("tenant_id = ? AND app_id = ? AND session_index = ?", tenantID, appID, sessionIndex).
		Order("created_at DESC, id DESC").Take(&r).Error
	if err != nil {
		return nil, fmt.Errorf("get participant: %w", translate(err))
	}
	p := r.record()
	return &p, nil
}

// ListParticipantsOfApp returns the app's participants with the given NameID whose session is
// live.
func (s *Store) ListParticipantsOfApp(ctx context.Context, tenantID, appID, nameID string) ([]db.Participant, error) {
	return list(ctx, s, "participants", (*participantRow).record,
		`tenant_id = ? AND app_id = ? AND name_id = ? AND EXISTS (SELECT 1 FROM sessions s
			WHERE s.tenant_id = participants.tenant_id AND s.id = participants.session_id AND s.ended_at IS NULL)`,
		tenantID, appID, nameID)
}

// EndSession sets the session's EndedAt if it is NULL, in one conditional UPDATE: of concurrent
// calls exactly one matches. Only when it matches nothing does a second statement tell an ended
// session from a missing one.
func (s *Store) EndSession(ctx context.Context, tenantID, id string, at time.Time) (bool, error) {
	n, err := s.exec(ctx, sEndSession, micros(at), tenantID, id)
	if err != nil {
		return false, fmt.Errorf("end session: %w", translate(err))
	}
	if n > 0 {
		return true, nil
	}
	if n, err = s.count(ctx, sCountSession, tenantID, id); err != nil {
		return false, fmt.Errorf("end session: %w", translate(err))
	}
	if n == 0 {
		return false, fmt.Errorf("end session: %w", db.ErrNotFound)
	}
	return false, nil
}

// ListExpiredSessions returns live sessions that expired before the given time, across tenants,
// earliest first.
func (s *Store) ListExpiredSessions(ctx context.Context, before time.Time, limit int) ([]db.Session, error) {
	if limit <= 0 {
		limit = 100
	}
	var rows []sessionRow
	err := s.r.WithContext(ctx).Where("ended_at IS NULL AND expires_at < ?", micros(before)).
		Order("expires_at, id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list expired sessions: %w", translate(err))
	}
	out := make([]db.Session, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].record())
	}
	return out, nil
}
