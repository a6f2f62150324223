// Package db holds the storage contracts of the broker: the records it keeps, one small interface
// per aggregate, and the sentinel errors every backend returns. Backends live in sub-packages
// (sqlite; postgres later) and must pass the conformance suite in db/dbtest.
//
// Every method on tenant data takes the tenant's ID and never reads, changes or deletes a row of
// another tenant: a row of tenant A asked for under tenant B is ErrNotFound. All times are UTC.
package db

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a record does not exist (or belongs to another tenant).
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a record would break a uniqueness rule (a duplicate slug, entity
// ID or name within a tenant).
var ErrConflict = errors.New("conflict")

// Tenant is one customer organisation.
type Tenant struct {
	ID        string
	Slug      string
	Name      string
	CreatedAt time.Time
}

// Connection is a tenant's upstream IdP, configured through a provider.
type Connection struct {
	ID       string
	TenantID string
	Name     string
	Provider string
	// Config is the provider's JSON configuration as the admin gave it (strictly decoded by the
	// provider).
	Config []byte
	// EntityID is the IdP's entity ID, from its metadata.
	EntityID string
	// Metadata is the IdP metadata document the connection was opened from, as fetched or given.
	Metadata  []byte
	CreatedAt time.Time
}

// App is a downstream service provider of a tenant.
type App struct {
	ID          string
	TenantID    string
	Name        string
	EntityID    string
	MetadataURL string
	// Metadata is the SP metadata document as fetched or given.
	Metadata []byte
	// SignResponse asks the broker to sign the Response as well as the Assertion.
	SignResponse bool
	CreatedAt    time.Time
}

// Session is a broker session: one sign-in of one user at the tenant's IdP.
type Session struct {
	ID           string
	TenantID     string
	ConnectionID string
	// CookieHash is the SHA-256 of the session cookie's secret (hex); the secret itself is never
	// stored.
	CookieHash string
	// NameID, NameIDFormat and the qualifiers are the subject as the IdP issued it.
	NameID               string
	NameIDFormat         string
	NameQualifier        string
	SPNameQualifier      string
	UpstreamSessionIndex string
	// Attributes is the IdP's attribute statement as JSON ([{"name","values"}]).
	Attributes []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time
	// EndedAt is set when the session was ended (logout, expiry); an ended session is never
	// revived.
	EndedAt *time.Time
}

// Participant is one app's part in a broker session: what the broker issued to that app.
type Participant struct {
	ID              string
	TenantID        string
	SessionID       string
	AppID           string
	NameID          string
	NameIDFormat    string
	NameQualifier   string
	SPNameQualifier string
	SessionIndex    string
	CreatedAt       time.Time
}

// PendingRequest is an app's AuthnRequest waiting for the IdP's Response. ID is the ID of the
// broker's upstream AuthnRequest (the Response's InResponseTo).
type PendingRequest struct {
	ID           string
	TenantID     string
	ConnectionID string
	AppID        string
	// AppRequestID is the ID of the app's AuthnRequest (the InResponseTo of our Response).
	AppRequestID string
	// ACSURL is the app's ACS URL, taken from its metadata.
	ACSURL     string
	RelayState string
	// NameIDFormat is the format the app asked for, if any.
	NameIDFormat string
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// Tenants stores tenants. Tenants are the only records not scoped by tenant.
type Tenants interface {
	CreateTenant(ctx context.Context, t *Tenant) error
	GetTenant(ctx context.Context, id string) (*Tenant, error)
	GetTenantBySlug(ctx context.Context, slug string) (*Tenant, error)
	ListTenants(ctx context.Context) ([]Tenant, error)
	// DeleteTenant deletes the tenant and every record it owns.
	DeleteTenant(ctx context.Context, id string) error
}

// Connections stores a tenant's upstream IdP connections. Names and entity IDs are unique per
// tenant.
type Connections interface {
	CreateConnection(ctx context.Context, c *Connection) error
	GetConnection(ctx context.Context, tenantID, id string) (*Connection, error)
	ListConnections(ctx context.Context, tenantID string) ([]Connection, error)
	UpdateConnection(ctx context.Context, c *Connection) error
	DeleteConnection(ctx context.Context, tenantID, id string) error
}

// Apps stores a tenant's downstream apps. Names and entity IDs are unique per tenant.
type Apps interface {
	CreateApp(ctx context.Context, a *App) error
	GetApp(ctx context.Context, tenantID, id string) (*App, error)
	GetAppByEntityID(ctx context.Context, tenantID, entityID string) (*App, error)
	ListApps(ctx context.Context, tenantID string) ([]App, error)
	UpdateApp(ctx context.Context, a *App) error
	DeleteApp(ctx context.Context, tenantID, id string) error
}

// Sessions stores broker sessions and their participants.
type Sessions interface {
	CreateSession(ctx context.Context, s *Session) error
	GetSession(ctx context.Context, tenantID, id string) (*Session, error)
	// GetSessionByCookie finds a session by the hash of its cookie secret.
	GetSessionByCookie(ctx context.Context, tenantID, cookieHash string) (*Session, error)
	ListSessions(ctx context.Context, tenantID string) ([]Session, error)
	UpdateSession(ctx context.Context, s *Session) error
	DeleteSession(ctx context.Context, tenantID, id string) error
	// DeleteExpiredSessions removes sessions (and their participants) that expired or ended
	// before the given time, across tenants, and returns how many were removed.
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int64, error)

	// AddParticipant adds an app to a session.
	AddParticipant(ctx context.Context, p *Participant) error
	ListParticipants(ctx context.Context, tenantID, sessionID string) ([]Participant, error)
}

// PendingRequests stores AuthnRequests between the app and the IdP's answer.
type PendingRequests interface {
	CreatePendingRequest(ctx context.Context, p *PendingRequest) error
	// TakePendingRequest returns the pending request and deletes it, atomically: a second take of
	// the same ID is ErrNotFound. An expired request is ErrNotFound.
	TakePendingRequest(ctx context.Context, tenantID, id string, now time.Time) (*PendingRequest, error)
	// DeleteExpiredPendingRequests removes requests that expired before the given time.
	DeleteExpiredPendingRequests(ctx context.Context, before time.Time) (int64, error)
}

// Replay is the replay cache of message IDs, per tenant.
type Replay interface {
	// MarkSeen records a message ID until expiresAt. It returns false when the ID was already
	// recorded (a replay) and has not expired.
	MarkSeen(ctx context.Context, tenantID, messageID string, expiresAt time.Time) (bool, error)
	// DeleteExpiredReplay removes entries that expired before the given time.
	DeleteExpiredReplay(ctx context.Context, before time.Time) (int64, error)
}

// Store is every contract a backend implements. Callers take the small interfaces they need.
type Store interface {
	Tenants
	Connections
	Apps
	Sessions
	PendingRequests
	Replay
	// Ping checks the backend is reachable.
	Ping(ctx context.Context) error
	Close() error
}
