package sqlite

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/sloworks/broker/db"
)

// Connections.

type connectionRow struct {
	ID        string `gorm:"column:id;primaryKey"`
	TenantID  string `gorm:"column:tenant_id"`
	Name      string `gorm:"column:name"`
	Provider  string `gorm:"column:provider"`
	Config    []byte `gorm:"column:config"`
	EntityID  string `gorm:"column:entity_id"`
	Metadata  []byte `gorm:"column:metadata"`
	CreatedAt int64  `gorm:"column:created_at;autoCreateTime:false"`
}

// TableName is the connections table.
func (connectionRow) TableName() string { return "connections" }

func (r *connectionRow) record() db.Connection {
	return db.Connection{ID: r.ID, TenantID: r.TenantID, Name: r.Name, Provider: r.Provider,
		Config: unblob(r.Config), EntityID: r.EntityID, Metadata: unblob(r.Metadata), CreatedAt: fromMicros(r.CreatedAt)}
}

// CreateConnection creates c, filling an empty ID and a zero CreatedAt. A duplicate name or
// entity ID in the tenant is db.ErrConflict; a missing tenant is db.ErrNotFound.
func (s *Store) CreateConnection(ctx context.Context, c *db.Connection) error {
	n := *c
	s.stamp(&n.ID, &n.CreatedAt)
	if err := s.insert(ctx, "connection", &connectionRow{ID: n.ID, TenantID: n.TenantID, Name: n.Name, Provider: n.Provider,
		Config: blob(n.Config), EntityID: n.EntityID, Metadata: blob(n.Metadata), CreatedAt: micros(n.CreatedAt)}); err != nil {
		return err
	}
	c.ID, c.CreatedAt = n.ID, n.CreatedAt
	return nil
}

// GetConnection returns the tenant's connection with the given ID.
func (s *Store) GetConnection(ctx context.Context, tenantID, id string) (*db.Connection, error) {
	r, err := take[connectionRow](ctx, s, "connection", "tenant_id = ? AND id = ?", tenantID, id)
	if err != nil {
		return nil, err
	}
	c := r.record()
	return &c, nil
}

// ListConnections returns the tenant's connections.
func (s *Store) ListConnections(ctx context.Context, tenantID string) ([]db.Connection, error) {
	return list(ctx, s, "connections", (*connectionRow).record, "tenant_id = ?", tenantID)
}

// UpdateConnection stores every field of c but ID, TenantID and CreatedAt.
func (s *Store) UpdateConnection(ctx context.Context, c *db.Connection) error {
	return s.update(ctx, "connection", &connectionRow{}, c.TenantID, c.ID, map[string]any{
		"name": c.Name, "provider": c.Provider, "config": blob(c.Config), "entity_id": c.EntityID, "metadata": blob(c.Metadata),
	})
}

// DeleteConnection deletes the tenant's connection. Sessions and pending requests that name it
// are left to expire.
func (s *Store) DeleteConnection(ctx context.Context, tenantID, id string) error {
	return remove(s.w.WithContext(ctx), "connection", &connectionRow{}, tenantID, id)
}

// Apps.

type appRow struct {
	ID           string `gorm:"column:id;primaryKey"`
	TenantID     string `gorm:"column:tenant_id"`
	Name         string `gorm:"column:name"`
	EntityID     string `gorm:"column:entity_id"`
	MetadataURL  string `gorm:"column:metadata_url"`
	Metadata     []byte `gorm:"column:metadata"`
	SignResponse bool   `gorm:"column:sign_response"`
	NoFrame      bool   `gorm:"column:no_frame_logout"`
	Provider     string `gorm:"column:provider"`
	LogoutSigAlg string `gorm:"column:logout_sig_alg"`
	CreatedAt    int64  `gorm:"column:created_at;autoCreateTime:false"`
}

// TableName is the apps table.
func (appRow) TableName() string { return "apps" }

func (r *appRow) record() db.App {
	return db.App{ID: r.ID, TenantID: r.TenantID, Name: r.Name, EntityID: r.EntityID, MetadataURL: r.MetadataURL,
		Metadata: unblob(r.Metadata), SignResponse: r.SignResponse, NoFrameLogout: r.NoFrame, Provider: r.Provider, LogoutSigAlg: r.LogoutSigAlg, CreatedAt: fromMicros(r.CreatedAt)}
}

// CreateApp creates a, filling an empty ID and a zero CreatedAt. A duplicate name or entity ID
// in the tenant is db.ErrConflict; a missing tenant is db.ErrNotFound.
func (s *Store) CreateApp(ctx context.Context, a *db.App) error {
	n := *a
	s.stamp(&n.ID, &n.CreatedAt)
	if err := s.insert(ctx, "app", &appRow{ID: n.ID, TenantID: n.TenantID, Name: n.Name, EntityID: n.EntityID,
		MetadataURL: n.MetadataURL, Metadata: blob(n.Metadata), SignResponse: n.SignResponse, NoFrame: n.NoFrameLogout, Provider: n.Provider, LogoutSigAlg: n.LogoutSigAlg, CreatedAt: micros(n.CreatedAt)}); err != nil {
		return err
	}
	a.ID, a.CreatedAt = n.ID, n.CreatedAt
	return nil
}

// GetApp returns the tenant's app with the given ID.
func (s *Store) GetApp(ctx context.Context, tenantID, id string) (*db.App, error) {
	return getApp(ctx, s, "tenant_id = ? AND id = ?", tenantID, id)
}

// GetAppByEntityID returns the tenant's app with the given entity ID.
func (s *Store) GetAppByEntityID(ctx context.Context, tenantID, entityID string) (*db.App, error) {
	return getApp(ctx, s, "tenant_id = ? AND entity_id = ?", tenantID, entityID)
}

func getApp(ctx context.Context, s *Store, query string, args ...any) (*db.App, error) {
	r, err := take[appRow](ctx, s, "app", query, args...)
	if err != nil {
		return nil, err
	}
	a := r.record()
	return &a, nil
}

// ListApps returns the tenant's apps.
func (s *Store) ListApps(ctx context.Context, tenantID string) ([]db.App, error) {
	return list(ctx, s, "apps", (*appRow).record, "tenant_id = ?", tenantID)
}

// UpdateApp stores every field of a but ID, TenantID and CreatedAt.
func (s *Store) UpdateApp(ctx context.Context, a *db.App) error {
	return s.update(ctx, "app", &appRow{}, a.TenantID, a.ID, map[string]any{
		"name": a.Name, "entity_id": a.EntityID, "metadata_url": a.MetadataURL, "metadata": blob(a.Metadata),
		"sign_response": a.SignResponse, "no_frame_logout": a.NoFrameLogout,
		"provider": a.Provider, "logout_sig_alg": a.LogoutSigAlg,
	})
}

// DeleteApp deletes the tenant's app. Participants that name it stay, as the history of the
// sessions they belong to (they go with their session); pending requests are left to expire.
func (s *Store) DeleteApp(ctx context.Context, tenantID, id string) error {
	return remove(s.w.WithContext(ctx), "app", &appRow{}, tenantID, id)
}

// Sessions.

type sessionRow struct {
	ID                   string `gorm:"column:id;primaryKey"`
	TenantID             string `gorm:"column:tenant_id"`
	ConnectionID         string `gorm:"column:connection_id"`
	CookieHash           string `gorm:"column:cookie_hash"`
	NameID               string `gorm:"column:name_id"`
	NameIDFormat         string `gorm:"column:name_id_format"`
	NameQualifier        string `gorm:"column:name_qualifier"`
	SPNameQualifier      string `gorm:"column:sp_name_qualifier"`
	UpstreamSessionIndex string `gorm:"column:upstream_session_index"`
	Attributes           []byte `gorm:"column:attributes"`
	CreatedAt            int64  `gorm:"column:created_at;autoCreateTime:false"`
	ExpiresAt            int64  `gorm:"column:expires_at"`
	EndedAt              *int64 `gorm:"column:ended_at"`
}

// TableName is the sessions table.
func (sessionRow) TableName() string { return "sessions" }

func (r *sessionRow) record() db.Session {
	s := db.Session{ID: r.ID, TenantID: r.TenantID, ConnectionID: r.ConnectionID, CookieHash: r.CookieHash,
		NameID: r.NameID, NameIDFormat: r.NameIDFormat, NameQualifier: r.NameQualifier, SPNameQualifier: r.SPNameQualifier,
		UpstreamSessionIndex: r.UpstreamSessionIndex, Attributes: unblob(r.Attributes),
		CreatedAt: fromMicros(r.CreatedAt), ExpiresAt: fromMicros(r.ExpiresAt)}
	if r.EndedAt != nil {
		t := fromMicros(*r.EndedAt)
		s.EndedAt = &t
	}
	return s
}

// optMicros is micros for an optional time; nil stays NULL.
func optMicros(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	us := micros(*t)
	return &us
}

// CreateSession creates the session, filling an empty ID and a zero CreatedAt. A duplicate
// cookie hash in the tenant is db.ErrConflict; a missing tenant is db.ErrNotFound.
func (s *Store) CreateSession(ctx context.Context, se *db.Session) error {
	n := *se
	s.stamp(&n.ID, &n.CreatedAt)
	_, err := s.exec(ctx, sCreateSession, n.ID, n.TenantID, n.ConnectionID, n.CookieHash, n.NameID, n.NameIDFormat,
		n.NameQualifier, n.SPNameQualifier, n.UpstreamSessionIndex, blob(n.Attributes), micros(n.CreatedAt),
		micros(n.ExpiresAt), nullMicros(n.EndedAt))
	if err != nil {
		return fmt.Errorf("create session: %w", translate(err))
	}
	se.ID, se.CreatedAt = n.ID, n.CreatedAt
	return nil
}

// GetSession returns the tenant's session with the given ID, ended or expired alike.
func (s *Store) GetSession(ctx context.Context, tenantID, id string) (*db.Session, error) {
	return s.getSession(ctx, sGetSession, tenantID, id)
}

// GetSessionByCookie returns the tenant's session with the given cookie hash.
func (s *Store) GetSessionByCookie(ctx context.Context, tenantID, cookieHash string) (*db.Session, error) {
	return s.getSession(ctx, sGetSessionByCookie, tenantID, cookieHash)
}

func (s *Store) getSession(ctx context.Context, id stmtID, tenantID, key string) (*db.Session, error) {
	var se db.Session
	err := s.queryRow(ctx, id, func(scan func(...any) error) (err error) {
		se, err = scanSession(scan)
		return err
	}, tenantID, key)
	if err != nil {
		return nil, fmt.Errorf("get session: %w", translate(err))
	}
	return &se, nil
}

// ListSessions returns the tenant's sessions.
func (s *Store) ListSessions(ctx context.Context, tenantID string) ([]db.Session, error) {
	return list(ctx, s, "sessions", (*sessionRow).record, "tenant_id = ?", tenantID)
}

// UpdateSession stores every field of the session but ID, TenantID and CreatedAt.
func (s *Store) UpdateSession(ctx context.Context, se *db.Session) error {
	return s.update(ctx, "session", &sessionRow{}, se.TenantID, se.ID, map[string]any{
		"connection_id": se.ConnectionID, "cookie_hash": se.CookieHash, "name_id": se.NameID,
		"name_id_format": se.NameIDFormat, "name_qualifier": se.NameQualifier, "sp_name_qualifier": se.SPNameQualifier,
		"upstream_session_index": se.UpstreamSessionIndex, "attributes": blob(se.Attributes),
		"expires_at": micros(se.ExpiresAt), "ended_at": optMicros(se.EndedAt),
	})
}

// DeleteSession deletes the tenant's session and its participants.
func (s *Store) DeleteSession(ctx context.Context, tenantID, id string) error {
	return s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("tenant_id = ? AND session_id = ?", tenantID, id).Delete(&participantRow{}).Error; err != nil {
			return fmt.Errorf("delete session: %w", translate(err))
		}
		return remove(tx, "session", &sessionRow{}, tenantID, id)
	})
}

// DeleteExpiredSessions deletes, across tenants, the sessions that expired or ended before the
// given time, with their participants, and returns how many sessions it deleted.
func (s *Store) DeleteExpiredSessions(ctx context.Context, before time.Time) (int64, error) {
	us := micros(before)
	var n int64
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Exec(`DELETE FROM participants WHERE EXISTS (SELECT 1 FROM sessions s
			WHERE s.tenant_id = participants.tenant_id AND s.id = participants.session_id
			AND (s.expires_at < ? OR s.ended_at < ?))`, us, us).Error
		if err != nil {
			return err
		}
		res := tx.Where("expires_at < ? OR ended_at < ?", us, us).Delete(&sessionRow{})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", translate(err))
	}
	return n, nil
}

// Participants.

type participantRow struct {
	ID              string `gorm:"column:id;primaryKey"`
	TenantID        string `gorm:"column:tenant_id"`
	SessionID       string `gorm:"column:session_id"`
	AppID           string `gorm:"column:app_id"`
	NameID          string `gorm:"column:name_id"`
	NameIDFormat    string `gorm:"column:name_id_format"`
	NameQualifier   string `gorm:"column:name_qualifier"`
	SPNameQualifier string `gorm:"column:sp_name_qualifier"`
	SessionIndex    string `gorm:"column:session_index"`
	CreatedAt       int64  `gorm:"column:created_at;autoCreateTime:false"`
}

// TableName is the participants table.
func (participantRow) TableName() string { return "participants" }

func (r *participantRow) record() db.Participant {
	return db.Participant{ID: r.ID, TenantID: r.TenantID, SessionID: r.SessionID, AppID: r.AppID, NameID: r.NameID,
		NameIDFormat: r.NameIDFormat, NameQualifier: r.NameQualifier, SPNameQualifier: r.SPNameQualifier,
		SessionIndex: r.SessionIndex, CreatedAt: fromMicros(r.CreatedAt)}
}

// AddParticipant adds p to its session, filling an empty ID and a zero CreatedAt. The session
// must exist in p's tenant, or it is db.ErrNotFound.
func (s *Store) AddParticipant(ctx context.Context, p *db.Participant) error {
	n := *p
	s.stamp(&n.ID, &n.CreatedAt)
	_, err := s.exec(ctx, sAddParticipant, n.ID, n.TenantID, n.SessionID, n.AppID, n.NameID, n.NameIDFormat,
		n.NameQualifier, n.SPNameQualifier, n.SessionIndex, micros(n.CreatedAt))
	if err != nil {
		return fmt.Errorf("create participant: %w", translate(err))
	}
	p.ID, p.CreatedAt = n.ID, n.CreatedAt
	return nil
}

// ListParticipants returns the participants of the tenant's session (none for an unknown
// session), ordered by CreatedAt, then ID.
func (s *Store) ListParticipants(ctx context.Context, tenantID, sessionID string) ([]db.Participant, error) {
	out := []db.Participant{}
	err := s.query(ctx, sListParticipants, func(scan func(...any) error) error {
		p, err := scanParticipant(scan)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	}, tenantID, sessionID)
	if err != nil {
		return nil, fmt.Errorf("list participants: %w", translate(err))
	}
	return out, nil
}

// Pending requests.

type pendingRow struct {
	ID           string `gorm:"column:id;primaryKey"`
	TenantID     string `gorm:"column:tenant_id"`
	ConnectionID string `gorm:"column:connection_id"`
	AppID        string `gorm:"column:app_id"`
	AppRequestID string `gorm:"column:app_request_id"`
	ACSURL       string `gorm:"column:acs_url"`
	RelayState   string `gorm:"column:relay_state"`
	NameIDFormat string `gorm:"column:name_id_format"`
	CreatedAt    int64  `gorm:"column:created_at;autoCreateTime:false"`
	ExpiresAt    int64  `gorm:"column:expires_at"`
}

// TableName is the pending_requests table.
func (pendingRow) TableName() string { return "pending_requests" }

// CreatePendingRequest creates p, filling an empty ID and a zero CreatedAt. A duplicate ID is
// db.ErrConflict; a missing tenant is db.ErrNotFound.
func (s *Store) CreatePendingRequest(ctx context.Context, p *db.PendingRequest) error {
	n := *p
	s.stamp(&n.ID, &n.CreatedAt)
	_, err := s.exec(ctx, sCreatePending, n.ID, n.TenantID, n.ConnectionID, n.AppID, n.AppRequestID, n.ACSURL,
		n.RelayState, n.NameIDFormat, micros(n.CreatedAt), micros(n.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create pending request: %w", translate(err))
	}
	p.ID, p.CreatedAt = n.ID, n.CreatedAt
	return nil
}

// TakePendingRequest deletes the tenant's pending request and returns it, in one statement
// (DELETE ... RETURNING), so of concurrent takes exactly one gets it. A request that expired
// (ExpiresAt <= now) is deleted and reported as db.ErrNotFound.
func (s *Store) TakePendingRequest(ctx context.Context, tenantID, id string, now time.Time) (*db.PendingRequest, error) {
	var r pendingRow
	err := s.queryRow(ctx, sTakePending, func(scan func(...any) error) (err error) {
		r, err = scanPending(scan)
		return err
	}, tenantID, id)
	if err != nil {
		return nil, fmt.Errorf("take pending request: %w", translate(err))
	}
	if r.ExpiresAt <= micros(now) {
		return nil, fmt.Errorf("take pending request: %w", db.ErrNotFound)
	}
	return &db.PendingRequest{ID: r.ID, TenantID: r.TenantID, ConnectionID: r.ConnectionID, AppID: r.AppID,
		AppRequestID: r.AppRequestID, ACSURL: r.ACSURL, RelayState: r.RelayState, NameIDFormat: r.NameIDFormat,
		CreatedAt: fromMicros(r.CreatedAt), ExpiresAt: fromMicros(r.ExpiresAt)}, nil
}

// DeleteExpiredPendingRequests deletes, across tenants, the requests with ExpiresAt before the
// given time.
func (s *Store) DeleteExpiredPendingRequests(ctx context.Context, before time.Time) (int64, error) {
	res := s.w.WithContext(ctx).Where("expires_at < ?", micros(before)).Delete(&pendingRow{})
	if res.Error != nil {
		return 0, fmt.Errorf("delete expired pending requests: %w", translate(res.Error))
	}
	return res.RowsAffected, nil
}

// Replay cache.

type replayRow struct {
	TenantID  string `gorm:"column:tenant_id;primaryKey"`
	MessageID string `gorm:"column:message_id;primaryKey"`
	ExpiresAt int64  `gorm:"column:expires_at"`
}

// TableName is the replay table.
func (replayRow) TableName() string { return "replay" }

// MarkSeen records the tenant's message ID until expiresAt, in one upsert: a new ID is
// inserted, an expired entry (expires_at <= the clock's now) is replaced, and both return true;
// an unexpired entry is left as it is and returns false. A missing tenant is db.ErrNotFound.
func (s *Store) MarkSeen(ctx context.Context, tenantID, messageID string, expiresAt time.Time) (bool, error) {
	n, err := s.exec(ctx, sMarkSeen, tenantID, messageID, micros(expiresAt), micros(s.now()))
	if err != nil {
		return false, fmt.Errorf("mark seen: %w", translate(err))
	}
	return n == 1, nil
}

// Seen reports whether the tenant's message ID is recorded with expires_at after now; it
// records nothing.
func (s *Store) Seen(ctx context.Context, tenantID, messageID string, now time.Time) (bool, error) {
	n, err := s.count(ctx, sSeen, tenantID, messageID, micros(now))
	if err != nil {
		return false, fmt.Errorf("seen: %w", translate(err))
	}
	return n > 0, nil
}

// DeleteExpiredReplay deletes, across tenants, the entries with ExpiresAt before the given
// time.
func (s *Store) DeleteExpiredReplay(ctx context.Context, before time.Time) (int64, error) {
	res := s.w.WithContext(ctx).Where("expires_at < ?", micros(before)).Delete(&replayRow{})
	if res.Error != nil {
		return 0, fmt.Errorf("delete expired replay entries: %w", translate(res.Error))
	}
	return res.RowsAffected, nil
}
