package sqlite

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// A migration is one step of the schema. Versions are applied in order, each in its own
// transaction together with its schema_migrations row; an applied migration is never edited:
// change the schema by appending a new one. The structs a migration uses are frozen copies
// defined next to it, so a later change to the runtime models cannot change what it creates.
type migration struct {
	version int64
	name    string
	up      func(tx *gorm.DB) error
}

// migrations is the ordered schema history.
var migrations = []migration{
	{version: 1, name: "create tables", up: migrate1},
	{version: 2, name: "logout log and session lookups", up: migrate2},
	{version: 3, name: "apps that refuse framed logout", up: migrate3},
	{version: 4, name: "app provider and logout signature algorithm", up: migrate4},
	{version: 5, name: "signing keys in the store", up: migrate5},
}

// migrate4 adds apps.provider and apps.logout_sig_alg (empty for the defaults).
func migrate4(tx *gorm.DB) error {
	if err := tx.Exec("ALTER TABLE apps ADD COLUMN provider TEXT NOT NULL DEFAULT ''").Error; err != nil {
		return err
	}
	return tx.Exec("ALTER TABLE apps ADD COLUMN logout_sig_alg TEXT NOT NULL DEFAULT ''").Error
}

// migrate3 adds apps.no_frame_logout.
func migrate3(tx *gorm.DB) error {
	return tx.Exec("ALTER TABLE apps ADD COLUMN no_frame_logout BOOLEAN NOT NULL DEFAULT false").Error
}

// schemaMigration is a row of schema_migrations: one applied migration.
type schemaMigration struct {
	Version   int64  `gorm:"column:version;primaryKey;autoIncrement:false"`
	Name      string `gorm:"column:name;not null"`
	AppliedAt int64  `gorm:"column:applied_at;not null"` // Unix microseconds, UTC
}

// TableName is the schema_migrations table.
func (schemaMigration) TableName() string { return "schema_migrations" }

// migrate creates schema_migrations if needed and applies the missing migrations of steps (the
// schema history, or in tests a prefix of it). Each step runs in a write (BEGIN IMMEDIATE)
// transaction and checks again, inside it, whether it was applied, so two processes opening the
// same file at once do not apply a step twice.
func migrate(ctx context.Context, g *gorm.DB, now func() time.Time, steps []migration) error {
	g = g.WithContext(ctx)
	err := g.Transaction(func(tx *gorm.DB) error {
		if tx.Migrator().HasTable(&schemaMigration{}) {
			return nil
		}
		return tx.Migrator().CreateTable(&schemaMigration{})
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var latest int64
	if err := g.Model(&schemaMigration{}).Select("COALESCE(MAX(version), 0)").Scan(&latest).Error; err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if known := steps[len(steps)-1].version; latest > known {
		return fmt.Errorf("database schema version %d is newer than this build knows (%d)", latest, known)
	}
	for _, m := range steps {
		err := g.Transaction(func(tx *gorm.DB) error {
			var n int64
			if err := tx.Model(&schemaMigration{}).Where("version = ?", m.version).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if err := m.up(tx); err != nil {
				return err
			}
			return tx.Create(&schemaMigration{Version: m.version, Name: m.name, AppliedAt: micros(now())}).Error
		})
		if err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// Migration 1: the initial schema. Times are INTEGER Unix microseconds (UTC); byte slices are
// BLOBs; every column but sessions.ended_at is NOT NULL. Every tenant-scoped table references
// tenants(id), and participants reference their session by (tenant_id, session_id), so a row
// can never point at a missing tenant or at another tenant's session. Connections and apps are
// not referenced (sessions, participants and pending requests keep their IDs as history).

type v1Tenant struct {
	ID        string `gorm:"column:id;primaryKey;not null"`
	Slug      string `gorm:"column:slug;not null;uniqueIndex:tenants_slug_key"`
	Name      string `gorm:"column:name;not null"`
	CreatedAt int64  `gorm:"column:created_at;not null;autoCreateTime:false"`
}

// TableName is the tenants table.
func (v1Tenant) TableName() string { return "tenants" }

type v1Connection struct {
	ID        string    `gorm:"column:id;primaryKey;not null"`
	TenantID  string    `gorm:"column:tenant_id;not null;uniqueIndex:connections_tenant_name_key,priority:1;uniqueIndex:connections_tenant_entity_key,priority:1"`
	Name      string    `gorm:"column:name;not null;uniqueIndex:connections_tenant_name_key,priority:2"`
	Provider  string    `gorm:"column:provider;not null"`
	Config    []byte    `gorm:"column:config;not null"`
	EntityID  string    `gorm:"column:entity_id;not null;uniqueIndex:connections_tenant_entity_key,priority:2"`
	Metadata  []byte    `gorm:"column:metadata;not null"`
	CreatedAt int64     `gorm:"column:created_at;not null;autoCreateTime:false"`
	Tenant    *v1Tenant `gorm:"foreignKey:TenantID;references:ID"`
}

// TableName is the connections table.
func (v1Connection) TableName() string { return "connections" }

type v1App struct {
	ID           string    `gorm:"column:id;primaryKey;not null"`
	TenantID     string    `gorm:"column:tenant_id;not null;uniqueIndex:apps_tenant_name_key,priority:1;uniqueIndex:apps_tenant_entity_key,priority:1"`
	Name         string    `gorm:"column:name;not null;uniqueIndex:apps_tenant_name_key,priority:2"`
	EntityID     string    `gorm:"column:entity_id;not null;uniqueIndex:apps_tenant_entity_key,priority:2"`
	MetadataURL  string    `gorm:"column:metadata_url;not null"`
	Metadata     []byte    `gorm:"column:metadata;not null"`
	SignResponse bool      `gorm:"column:sign_response;not null"`
	CreatedAt    int64     `gorm:"column:created_at;not null;autoCreateTime:false"`
	Tenant       *v1Tenant `gorm:"foreignKey:TenantID;references:ID"`
}

// TableName is the apps table.
func (v1App) TableName() string { return "apps" }

type v1Session struct {
	ID                   string    `gorm:"column:id;primaryKey;not null;uniqueIndex:sessions_tenant_id_key,priority:2"`
	TenantID             string    `gorm:"column:tenant_id;not null;uniqueIndex:sessions_tenant_cookie_key,priority:1;uniqueIndex:sessions_tenant_id_key,priority:1"`
	ConnectionID         string    `gorm:"column:connection_id;not null"`
	CookieHash           string    `gorm:"column:cookie_hash;not null;uniqueIndex:sessions_tenant_cookie_key,priority:2"`
	NameID               string    `gorm:"column:name_id;not null"`
	NameIDFormat         string    `gorm:"column:name_id_format;not null"`
	NameQualifier        string    `gorm:"column:name_qualifier;not null"`
	SPNameQualifier      string    `gorm:"column:sp_name_qualifier;not null"`
	UpstreamSessionIndex string    `gorm:"column:upstream_session_index;not null"`
	Attributes           []byte    `gorm:"column:attributes;not null"`
	CreatedAt            int64     `gorm:"column:created_at;not null;autoCreateTime:false"`
	ExpiresAt            int64     `gorm:"column:expires_at;not null;index:sessions_expires_at"`
	EndedAt              *int64    `gorm:"column:ended_at;index:sessions_ended_at"`
	Tenant               *v1Tenant `gorm:"foreignKey:TenantID;references:ID"`
}

// TableName is the sessions table.
func (v1Session) TableName() string { return "sessions" }

// v1SessionKey carries the (tenant_id, id) unique key of sessions that participants reference;
// it only exists so gorm can build the composite foreign key.
type v1SessionKey struct {
	ID       string `gorm:"column:id;primaryKey;not null"`
	TenantID string `gorm:"column:tenant_id"`
}

// TableName is the sessions table.
func (v1SessionKey) TableName() string { return "sessions" }

type v1Participant struct {
	ID              string        `gorm:"column:id;primaryKey;not null"`
	TenantID        string        `gorm:"column:tenant_id;not null;index:participants_tenant_session,priority:1"`
	SessionID       string        `gorm:"column:session_id;not null;index:participants_tenant_session,priority:2"`
	AppID           string        `gorm:"column:app_id;not null"`
	NameID          string        `gorm:"column:name_id;not null"`
	NameIDFormat    string        `gorm:"column:name_id_format;not null"`
	NameQualifier   string        `gorm:"column:name_qualifier;not null"`
	SPNameQualifier string        `gorm:"column:sp_name_qualifier;not null"`
	SessionIndex    string        `gorm:"column:session_index;not null"`
	CreatedAt       int64         `gorm:"column:created_at;not null;autoCreateTime:false"`
	Session         *v1SessionKey `gorm:"foreignKey:TenantID,SessionID;references:TenantID,ID"`
}

// TableName is the participants table.
func (v1Participant) TableName() string { return "participants" }

type v1PendingRequest struct {
	ID           string    `gorm:"column:id;primaryKey;not null"`
	TenantID     string    `gorm:"column:tenant_id;not null;index:pending_requests_tenant"`
	ConnectionID string    `gorm:"column:connection_id;not null"`
	AppID        string    `gorm:"column:app_id;not null"`
	AppRequestID string    `gorm:"column:app_request_id;not null"`
	ACSURL       string    `gorm:"column:acs_url;not null"`
	RelayState   string    `gorm:"column:relay_state;not null"`
	NameIDFormat string    `gorm:"column:name_id_format;not null"`
	CreatedAt    int64     `gorm:"column:created_at;not null;autoCreateTime:false"`
	ExpiresAt    int64     `gorm:"column:expires_at;not null;index:pending_requests_expires_at"`
	Tenant       *v1Tenant `gorm:"foreignKey:TenantID;references:ID"`
}

// TableName is the pending_requests table.
func (v1PendingRequest) TableName() string { return "pending_requests" }

type v1Replay struct {
	TenantID  string    `gorm:"column:tenant_id;primaryKey;not null"`
	MessageID string    `gorm:"column:message_id;primaryKey;not null"`
	ExpiresAt int64     `gorm:"column:expires_at;not null;index:replay_expires_at"`
	Tenant    *v1Tenant `gorm:"foreignKey:TenantID;references:ID"`
}

// TableName is the replay table.
func (v1Replay) TableName() string { return "replay" }

func migrate1(tx *gorm.DB) error {
	// Parents first: SQLite checks that a foreign key's parent key is unique when the child
	// table is written, and the parent tables carry those unique indexes from the start.
	return tx.Migrator().CreateTable(
		&v1Tenant{}, &v1Connection{}, &v1App{}, &v1Session{}, &v1Participant{},
		&v1PendingRequest{}, &v1Replay{},
	)
}

// Migration 2: the logout log (logouts and their legs) and the indexes logout needs on sessions
// and participants. Logouts reference tenants(id); legs reference their logout by (tenant_id,
// logout_id), so a leg can never belong to another tenant's logout. Times are INTEGER Unix
// microseconds; finished_at is the only nullable column. logouts.session_ids is a JSON array of
// strings. logout_legs.seq is the leg's position in the plan (the order legs are returned in).
// A non-empty request ID is unique within a tenant: a LogoutResponse finds its leg by it.

type v2TenantKey struct {
	ID string `gorm:"column:id;primaryKey;not null"`
}

// TableName is the tenants table.
func (v2TenantKey) TableName() string { return "tenants" }

type v2Logout struct {
	ID          string       `gorm:"column:id;primaryKey;not null;uniqueIndex:logouts_tenant_id_key,priority:2;index:logouts_tenant_started,priority:3;index:logouts_tenant_name_id,priority:4;index:logouts_tenant_outcome,priority:4"`
	TenantID    string       `gorm:"column:tenant_id;not null;uniqueIndex:logouts_tenant_id_key,priority:1;index:logouts_tenant_started,priority:1;index:logouts_tenant_name_id,priority:1;index:logouts_tenant_outcome,priority:1;index:logouts_tenant_trigger_ref,priority:1"`
	TriggerKind string       `gorm:"column:trigger_kind;not null"`
	TriggerRef  string       `gorm:"column:trigger_ref;not null;index:logouts_tenant_trigger_ref,priority:2"`
	NameID      string       `gorm:"column:name_id;not null;index:logouts_tenant_name_id,priority:2"`
	SessionIDs  string       `gorm:"column:session_ids;not null"`
	State       string       `gorm:"column:state;not null;index:logouts_state_deadline,priority:1"`
	Outcome     string       `gorm:"column:outcome;not null;index:logouts_tenant_outcome,priority:2"`
	Initiator   []byte       `gorm:"column:initiator;not null"`
	StartedAt   int64        `gorm:"column:started_at;not null;index:logouts_tenant_started,priority:2;index:logouts_tenant_name_id,priority:3;index:logouts_tenant_outcome,priority:3;index:logouts_started_at"`
	FinishedAt  *int64       `gorm:"column:finished_at"`
	Deadline    int64        `gorm:"column:deadline;not null;index:logouts_state_deadline,priority:2"`
	Tenant      *v2TenantKey `gorm:"foreignKey:TenantID;references:ID"`
}

// TableName is the logouts table.
func (v2Logout) TableName() string { return "logouts" }

// v2LogoutKey carries the (tenant_id, id) unique key of logouts that legs reference; it only
// exists so gorm can build the composite foreign key.
type v2LogoutKey struct {
	ID       string `gorm:"column:id;primaryKey;not null"`
	TenantID string `gorm:"column:tenant_id"`
}

// TableName is the logouts table.
func (v2LogoutKey) TableName() string { return "logouts" }

type v2LogoutLeg struct {
	ID         string       `gorm:"column:id;primaryKey;not null"`
	TenantID   string       `gorm:"column:tenant_id;not null;index:logout_legs_tenant_logout,priority:1;uniqueIndex:logout_legs_tenant_request_key,priority:1,where:request_id <> '';index:logout_legs_tenant_target,priority:1"`
	LogoutID   string       `gorm:"column:logout_id;not null;index:logout_legs_tenant_logout,priority:2;index:logout_legs_tenant_target,priority:4"`
	Seq        int64        `gorm:"column:seq;not null;index:logout_legs_tenant_logout,priority:3"`
	Target     string       `gorm:"column:target;not null;index:logout_legs_tenant_target,priority:2"`
	TargetID   string       `gorm:"column:target_id;not null;index:logout_legs_tenant_target,priority:3"`
	TargetName string       `gorm:"column:target_name;not null"`
	Channel    string       `gorm:"column:channel;not null"`
	RequestID  string       `gorm:"column:request_id;not null;uniqueIndex:logout_legs_tenant_request_key,priority:2"`
	State      string       `gorm:"column:state;not null"`
	Status     string       `gorm:"column:status;not null"`
	SubStatus  string       `gorm:"column:sub_status;not null"`
	LatencyMS  int64        `gorm:"column:latency_ms;not null"`
	ErrorClass string       `gorm:"column:error_class;not null"`
	Diagnosis  string       `gorm:"column:diagnosis;not null"`
	Sent       []byte       `gorm:"column:sent;not null"`
	Received   []byte       `gorm:"column:received;not null"`
	StartedAt  int64        `gorm:"column:started_at;not null"`
	FinishedAt *int64       `gorm:"column:finished_at"`
	Logout     *v2LogoutKey `gorm:"foreignKey:TenantID,LogoutID;references:TenantID,ID"`
}

// TableName is the logout_legs table.
func (v2LogoutLeg) TableName() string { return "logout_legs" }

// v2SessionIndexes carries the new indexes of sessions: by NameID and by upstream session index,
// within a tenant's connection.
type v2SessionIndexes struct {
	TenantID             string `gorm:"column:tenant_id;index:sessions_tenant_connection_name_id,priority:1;index:sessions_tenant_connection_upstream_index,priority:1"`
	ConnectionID         string `gorm:"column:connection_id;index:sessions_tenant_connection_name_id,priority:2;index:sessions_tenant_connection_upstream_index,priority:2"`
	NameID               string `gorm:"column:name_id;index:sessions_tenant_connection_name_id,priority:3"`
	UpstreamSessionIndex string `gorm:"column:upstream_session_index;index:sessions_tenant_connection_upstream_index,priority:3"`
}

// TableName is the sessions table.
func (v2SessionIndexes) TableName() string { return "sessions" }

// v2ParticipantIndexes carries the new indexes of participants: by the session index and by the
// NameID the broker issued to an app.
type v2ParticipantIndexes struct {
	TenantID     string `gorm:"column:tenant_id;index:participants_tenant_app_session_index,priority:1;index:participants_tenant_app_name_id,priority:1"`
	AppID        string `gorm:"column:app_id;index:participants_tenant_app_session_index,priority:2;index:participants_tenant_app_name_id,priority:2"`
	SessionIndex string `gorm:"column:session_index;index:participants_tenant_app_session_index,priority:3"`
	NameID       string `gorm:"column:name_id;index:participants_tenant_app_name_id,priority:3"`
}

// TableName is the participants table.
func (v2ParticipantIndexes) TableName() string { return "participants" }

func migrate2(tx *gorm.DB) error {
	// logouts first: its (tenant_id, id) unique index is the parent key of logout_legs.
	if err := tx.Migrator().CreateTable(&v2Logout{}, &v2LogoutLeg{}); err != nil {
		return err
	}
	for _, ix := range []struct {
		model any
		name  string
	}{
		{&v2SessionIndexes{}, "sessions_tenant_connection_name_id"},
		{&v2SessionIndexes{}, "sessions_tenant_connection_upstream_index"},
		{&v2ParticipantIndexes{}, "participants_tenant_app_session_index"},
		{&v2ParticipantIndexes{}, "participants_tenant_app_name_id"},
	} {
		if err := tx.Migrator().CreateIndex(ix.model, ix.name); err != nil {
			return fmt.Errorf("create index %s: %w", ix.name, err)
		}
	}
	return nil
}

// Migration 5: signing_keys, every version of every tenant's signing key (backend, backend
// version, published certificate, activation and retirement times), so replicas agree on which
// key signs and which certificates metadata lists. Times are INTEGER Unix microseconds;
// retires_at is nullable. (tenant_id, backend, version) is unique.

type v5SigningKey struct {
	ID          string       `gorm:"column:id;primaryKey;not null"`
	TenantID    string       `gorm:"column:tenant_id;not null;uniqueIndex:signing_keys_tenant_backend_version_key,priority:1;index:signing_keys_tenant_activates,priority:1"`
	Backend     string       `gorm:"column:backend;not null;uniqueIndex:signing_keys_tenant_backend_version_key,priority:2"`
	Version     int64        `gorm:"column:version;not null;uniqueIndex:signing_keys_tenant_backend_version_key,priority:3"`
	Certificate []byte       `gorm:"column:certificate;not null"`
	CreatedAt   int64        `gorm:"column:created_at;not null;autoCreateTime:false"`
	ActivatesAt int64        `gorm:"column:activates_at;not null;index:signing_keys_tenant_activates,priority:2"`
	RetiresAt   *int64       `gorm:"column:retires_at"`
	Tenant      *v2TenantKey `gorm:"foreignKey:TenantID;references:ID"`
}

// TableName is the signing_keys table.
func (v5SigningKey) TableName() string { return "signing_keys" }

func migrate5(tx *gorm.DB) error {
	return tx.Migrator().CreateTable(&v5SigningKey{})
}
