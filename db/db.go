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
// ID or name within a tenant), or when an update would change a record that is final (a
// finished logout or logout leg).
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
	// NoFrameLogout: the app's logout page refuses to be framed, so front-channel logout reaches
	// it by a redirect step of the browser instead of an iframe.
	NoFrameLogout bool
	// Provider names the product the app is ("" or "generic": any SAML SP; "salesforce"), whose
	// quirks toward the broker the logout engine reads.
	Provider string
	// LogoutSigAlg is the app's logout_signature_algorithm setting: "" for its provider's default,
	// "rsa-sha256" or "rsa-sha1" (RSA-SHA1 is then used toward this app and accepted from it only).
	LogoutSigAlg string
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

// The states of a logout transaction and of its legs. The store reads them: a running logout
// and a pending leg can still change; a finished logout and a done leg are final.
const (
	LogoutRunning  = "running"
	LogoutFinished = "finished"
	LegPending     = "pending"
	LegDone        = "done"
)

// Logout is a logout transaction: the logout of one user across the apps of one or more broker
// sessions and the upstream IdP, persisted as it runs, so that any replica can continue it and a
// crash leaves a record of where it stopped.
type Logout struct {
	ID       string
	TenantID string
	// Trigger is what started the logout: "app", "idp", "admin" or "expiry".
	Trigger string
	// TriggerRef names the trigger: the app's ID ("app"), the connection's ID ("idp"), the
	// admin's name ("admin"); empty for "expiry".
	TriggerRef string
	// User is the NameID value of the user as the IdP issued it, for search.
	User string
	// SessionIDs are the broker sessions the logout ends.
	SessionIDs []string
	// State is LogoutRunning or LogoutFinished; CreateLogout stores an empty State as
	// LogoutRunning.
	State string
	// Outcome is "" while running, then "success", "partial" or "failed".
	Outcome string
	// Initiator is how to answer whoever started the logout (binding, request ID, relay state,
	// response URL), as JSON; opaque to the store.
	Initiator  []byte
	StartedAt  time.Time
	FinishedAt *time.Time
	// Deadline is when the legs still pending are settled as "no answer".
	Deadline time.Time
}

// LogoutLeg is one leg of a logout transaction: the LogoutRequest to one app or to the upstream
// IdP, and what came of it.
type LogoutLeg struct {
	ID       string
	TenantID string
	LogoutID string
	// Target is "app" or "upstream"; TargetID the app's or the connection's ID, TargetName its
	// name when the leg was planned.
	Target     string
	TargetID   string
	TargetName string
	// Channel is "soap", "iframe", "redirect", "post" or "none".
	Channel string
	// RequestID is the ID of the LogoutRequest sent (the InResponseTo of the answer); empty
	// until one is made. Non-empty RequestIDs are unique within a tenant.
	RequestID string
	// State is LegPending or LegDone; CreateLogout stores an empty State as LegPending.
	State string
	// Status and SubStatus are the top-level and second-level SAML status code URIs of the
	// answer, or "".
	Status    string
	SubStatus string
	LatencyMS int64
	// ErrorClass is "" or one of "timeout", "bad_signature", "status", "unreachable",
	// "no_answer", "not_supported", "signing_unavailable", "refused".
	ErrorClass string
	// Diagnosis says in plain words what happened, for support staff.
	Diagnosis string
	// Sent and Received are the messages (XML) sent and received.
	Sent       []byte
	Received   []byte
	StartedAt  time.Time
	FinishedAt *time.Time
}

// DefaultLogoutLimit and MaxLogoutLimit bound the length of a ListLogouts answer.
const (
	DefaultLogoutLimit = 100
	MaxLogoutLimit     = 1000
)

// LogoutFilter selects logouts for ListLogouts. Zero fields select everything.
type LogoutFilter struct {
	// User is the user's NameID value, matched exactly.
	User string
	// AppID selects logouts an app took part in: started by it, or with a leg to it.
	AppID string
	// Outcome is "success", "partial" or "failed" (or "" for any, running ones included).
	Outcome string
	// Since and Until bound StartedAt: Since <= StartedAt < Until.
	Since time.Time
	Until time.Time
	// Limit is the most logouts returned: DefaultLogoutLimit when <= 0, at most MaxLogoutLimit.
	Limit int
}

// Signing key backends (SigningKey.Backend).
const (
	KeyBackendLocal = "local"
	KeyBackendVault = "vault"
)

// SigningKey is one version of a tenant's signing key as every replica sees it: which backend
// holds it, the backend's version number, the certificate published for it, and when it signs
// and when it leaves the metadata. The private key is never here.
type SigningKey struct {
	ID       string
	TenantID string
	// Backend is KeyBackendLocal or KeyBackendVault; Version is the backend's key version (a
	// Transit key version, or the number of a local key file). Backend and Version are unique
	// per tenant.
	Backend string
	Version int
	// Certificate is the DER certificate published in metadata for this key.
	Certificate []byte
	CreatedAt   time.Time
	// ActivatesAt is when the key starts signing: the tenant signs with its key of the latest
	// ActivatesAt not after now. A key is published from CreatedAt.
	ActivatesAt time.Time
	// RetiresAt is when the key leaves the metadata; nil while no newer key replaces it.
	RetiresAt *time.Time
}

// SigningKeys stores the tenants' signing key versions.
type SigningKeys interface {
	// AddSigningKey stores k (filling an empty ID and a zero CreatedAt) and, in the same
	// transaction, sets RetiresAt to *retire on the tenant's other keys whose RetiresAt is nil
	// (when retire is not nil). It is ErrConflict when the tenant already has a key of the same
	// Backend and Version, or a key whose ActivatesAt is after k.CreatedAt (a rotation is
	// pending: one at a time); ErrNotFound when the tenant does not exist.
	AddSigningKey(ctx context.Context, k *SigningKey, retire *time.Time) error
	// ListSigningKeys returns the tenant's keys ordered by ActivatesAt, then CreatedAt, then ID.
	ListSigningKeys(ctx context.Context, tenantID string) ([]SigningKey, error)
	// DeleteSigningKeys deletes the tenant's keys and returns how many it deleted.
	DeleteSigningKeys(ctx context.Context, tenantID string) (int64, error)
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

// SessionLookup is what a logout needs of sessions and participants beyond Sessions: finding
// them by what a LogoutRequest carries, and ending a session exactly once.
type SessionLookup interface {
	// FindSessionsByNameID returns the tenant's live (not ended) sessions on the connection
	// whose NameID value is nameID, ordered like ListSessions.
	FindSessionsByNameID(ctx context.Context, tenantID, connectionID, nameID string) ([]Session, error)
	// FindSessionByUpstreamIndex returns the tenant's session on the connection whose
	// UpstreamSessionIndex is sessionIndex: the newest live one, else the newest ended one. An
	// empty sessionIndex matches nothing (ErrNotFound).
	FindSessionByUpstreamIndex(ctx context.Context, tenantID, connectionID, sessionIndex string) (*Session, error)
	// GetParticipantBySessionIndex returns the app's participant to which the broker issued
	// sessionIndex (the newest, should there be several), whether its session is live or not.
	// An empty sessionIndex matches nothing (ErrNotFound).
	GetParticipantBySessionIndex(ctx context.Context, tenantID, appID, sessionIndex string) (*Participant, error)
	// ListParticipantsOfApp returns the app's participants in live sessions to which the
	// broker issued the NameID value nameID, ordered like ListParticipants.
	ListParticipantsOfApp(ctx context.Context, tenantID, appID, nameID string) ([]Participant, error)
	// EndSession sets the session's EndedAt to at if it is not yet ended, atomically: of
	// concurrent calls exactly one returns true; a session already ended is left as it is and
	// returns false. A session not in the tenant is ErrNotFound.
	EndSession(ctx context.Context, tenantID, id string, at time.Time) (bool, error)
	// ListExpiredSessions returns, across tenants, live sessions (not ended) whose ExpiresAt is
	// before the given time, earliest first, at most limit of them: the janitor ends them
	// through the logout engine (trigger "expiry").
	ListExpiredSessions(ctx context.Context, before time.Time, limit int) ([]Session, error)
}

// Logouts stores logout transactions and their legs (the logout log).
type Logouts interface {
	// CreateLogout creates the logout and its legs in one transaction. Empty IDs are generated,
	// a zero StartedAt (of the logout or a leg) is the current time, empty States are running
	// and pending, and each leg's TenantID and LogoutID are the logout's; all of it is written
	// back into l and legs. A duplicate ID or non-empty leg RequestID is ErrConflict; a missing
	// tenant is ErrNotFound.
	CreateLogout(ctx context.Context, l *Logout, legs []LogoutLeg) error
	// GetLogout returns the tenant's logout and its legs, in the order they were created.
	GetLogout(ctx context.Context, tenantID, id string) (*Logout, []LogoutLeg, error)
	// UpdateLogout stores every field of l but ID, TenantID and StartedAt, while the stored
	// logout is running: a finished logout is final (ErrConflict), so of replicas racing to
	// finish it one wins and the others learn it.
	UpdateLogout(ctx context.Context, l *Logout) error
	// UpdateLeg stores every field of the leg but ID, TenantID and LogoutID, while the stored
	// leg is pending: a done leg is final (ErrConflict). Results go through FinishLeg.
	UpdateLeg(ctx context.Context, leg *LogoutLeg) error
	// FinishLeg records the result of the tenant's leg legID if it is still pending,
	// atomically: State becomes LegDone, and Status, SubStatus, LatencyMS, ErrorClass,
	// Diagnosis, Received and FinishedAt (the current time when nil) are taken from leg, and
	// Sent too when it is not empty (the message sent, recorded with the result in one write);
	// the other fields of leg are ignored. It returns true and writes the stored leg back into leg
	// when it recorded the result, false (leaving leg and the stored leg as they were) when
	// the leg was already done, for example finished by another replica. A leg not in the
	// tenant is ErrNotFound.
	FinishLeg(ctx context.Context, tenantID, legID string, leg *LogoutLeg) (bool, error)
	// GetLegByRequestID returns the tenant's leg whose RequestID is requestID (the
	// InResponseTo of a LogoutResponse). An empty requestID matches nothing (ErrNotFound).
	GetLegByRequestID(ctx context.Context, tenantID, requestID string) (*LogoutLeg, error)
	// ListLogouts returns the tenant's logouts that match the filter, newest StartedAt first
	// (then by ID, descending), at most f.Limit of them (see LogoutFilter).
	ListLogouts(ctx context.Context, tenantID string, f LogoutFilter) ([]Logout, error)
	// ListUnfinishedLogouts returns, across tenants, the running logouts whose Deadline is
	// before the given time, earliest Deadline first (then by ID).
	ListUnfinishedLogouts(ctx context.Context, before time.Time) ([]Logout, error)
	// DeleteLogoutsBefore deletes, across tenants, the logouts that started before the given
	// time, with their legs, and returns how many logouts it deleted.
	DeleteLogoutsBefore(ctx context.Context, before time.Time) (int64, error)
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
	// Seen reports whether the message ID is recorded and unexpired (expiresAt > now), without
	// recording it. Session-index tombstones use it, so a late assertion cannot revive an ended
	// session.
	Seen(ctx context.Context, tenantID, messageID string, now time.Time) (bool, error)
	// DeleteExpiredReplay removes entries that expired before the given time.
	DeleteExpiredReplay(ctx context.Context, before time.Time) (int64, error)
}

// Store is every contract a backend implements. Callers take the small interfaces they need.
type Store interface {
	Tenants
	Connections
	Apps
	Sessions
	SessionLookup
	Logouts
	PendingRequests
	Replay
	SigningKeys
	// Ping checks the backend is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// Batcher is a store that can run several calls in one transaction: one commit for the writes of
// one step, all of them or none. Optional: a backend without it runs each call on its own.
type Batcher interface {
	// Batch calls fn with a Store whose every call runs in one transaction, committed when fn
	// returns nil and rolled back when it returns an error. fn must use only the Store it is
	// given (the backend may hold its write connection until fn returns) and do nothing slow
	// (no signing, no network).
	Batch(ctx context.Context, fn func(tx Store) error) error
}

// Batch runs fn in one transaction of s when s is a Batcher, else with s itself, each call on
// its own. S is the part of the store the caller uses.
func Batch[S any](ctx context.Context, s S, fn func(S) error) error {
	b, ok := any(s).(Batcher)
	if !ok {
		return fn(s)
	}
	return b.Batch(ctx, func(tx Store) error {
		txs, ok := any(tx).(S)
		if !ok {
			return errors.New("batch: the transaction's store lacks the caller's methods")
		}
		return fn(txs)
	})
}
