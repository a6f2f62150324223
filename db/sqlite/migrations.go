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
}

// schemaMigration is a row of schema_migrations: one applied migration.
type schemaMigration struct {
	Version   int64  `gorm:"column:version;primaryKey;autoIncrement:false"`
	Name      string `gorm:"column:name;not null"`
	AppliedAt int64  `gorm:"column:applied_at;not null"` // Unix microseconds, UTC
}

// TableName is the schema_migrations table.
func (schemaMigration) TableName() string { return "schema_migrations" }

// migrate creates schema_migrations if needed and applies the missing migrations. Each step
// runs in a write (BEGIN IMMEDIATE) transaction and checks again, inside it, whether it was
// applied, so two processes opening the same file at once do not apply a step twice.
func migrate(ctx context.Context, g *gorm.DB, now func() time.Time) error {
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
	if known := migrations[len(migrations)-1].version; latest > known {
		return fmt.Errorf("database schema version %d is newer than this build knows (%d)", latest, known)
	}
	for _, m := range migrations {
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
