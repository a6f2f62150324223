// Package sqlite is the SQLite backend of the broker's storage contracts (db.Store), on gorm,
// gorm.io/driver/sqlite and github.com/mattn/go-sqlite3 (cgo). The calls of a sign-in and of a
// logout skip gorm: they run database/sql statements prepared once at Open (see hot.go).
//
// The database is one file in WAL mode. A Store keeps two connection pools on it: a single
// write connection (writes, transactions, migrations), so writers queue in database/sql instead
// of contending for SQLite's lock and never see SQLITE_BUSY from each other, and a pool of
// query-only connections for reads, which WAL lets run beside the writer. busy_timeout still
// covers other processes on the same file (an admin tool), and write transactions begin
// IMMEDIATE so they never fail upgrading a read lock.
//
// Times are stored as INTEGER Unix microseconds and returned in UTC: sub-microsecond precision
// is dropped, on writes and in comparisons. Empty and nil byte slices are stored alike and come
// back nil. Lists are ordered by CreatedAt, then ID; logouts newest first (see db.Logouts).
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/sloworks/broker/db"
)

var _ db.Store = (*Store)(nil)

// Store is a db.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	w, r *gorm.DB // the single write connection; the query-only read pool
	now  func() time.Time
	st   *stmts  // the hot path's prepared statements (see hot.go)
	tx   *sql.Tx // in a Store a Batch hands out: the transaction under w, which st's statements run on
}

type options struct {
	logger *slog.Logger
	now    func() time.Time
	driver string // the database/sql driver; "" is mattn's sqlite3
}

// Option configures Open.
type Option func(*options)

// WithLogger logs SQL errors and slow statements (over 200ms) to l. Statements are logged
// without their parameters, so no record values (names, attributes) reach the log. The default
// logs nothing.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock used for generated CreatedAt values and for MarkSeen's expiry check.
// The default is time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// withDriver opens the pools on the named database/sql driver (a wrapper of mattn's, in tests).
func withDriver(name string) Option { return func(o *options) { o.driver = name } }

// Open opens (creating it if needed) the SQLite database file at path and applies the missing
// schema migrations. The directory must exist. In-memory databases are not supported: the two
// pools must share the file.
func Open(path string, opts ...Option) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite: %q is not a database file path", path)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	common := url.Values{"_busy_timeout": {"5000"}, "_foreign_keys": {"on"}}
	// WAL with synchronous=NORMAL: no fsync per commit (a crash of the process loses nothing; a
	// power cut can lose the last commits, e.g. a replay-cache entry of a still-valid assertion
	// whose lifetime is minutes). FULL costs an fsync per sign-in step.
	w, err := openPool(o.driver, path, common, url.Values{"_journal_mode": {"WAL"}, "_synchronous": {"NORMAL"}, "_txlock": {"immediate"}}, 1, o.logger)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// Checkpoint the WAL back into the database every 10,000 pages (about 40 MB) instead of
	// SQLite's 1,000: each checkpoint copies the pages the WAL holds and syncs twice, and the
	// same index pages change on every sign-in, so a longer WAL copies each of them once for many
	// commits (a sign-in's writes cost about a third less CPU). It changes no durability: a
	// commit is in the WAL either way. journal_size_limit truncates the WAL file back to 64 MB
	// after a checkpoint should it ever grow past that (a long reader holding a checkpoint back).
	for _, q := range []string{"PRAGMA wal_autocheckpoint = 10000", "PRAGMA journal_size_limit = 67108864"} {
		if err := w.Exec(q).Error; err != nil {
			closePool(w)
			return nil, fmt.Errorf("open sqlite: %s: %w", q, err)
		}
	}
	s := &Store{w: w, now: func() time.Time { return o.now().UTC().Truncate(time.Microsecond) }}
	if err := migrate(context.Background(), w, s.now, migrations); err != nil {
		closePool(w)
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if s.r, err = openPool(o.driver, path, common, url.Values{"_query_only": {"on"}}, max(4, runtime.GOMAXPROCS(0)), o.logger); err != nil {
		closePool(w)
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if s.st, err = prepareStmts(context.Background(), s.w, s.r, o.logger); err != nil {
		closePool(s.r)
		closePool(w)
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	return s, nil
}

// openPool opens a gorm DB of at most conns connections with the given pragmas, on the named
// database/sql driver ("" for mattn's sqlite3).
func openPool(driver, path string, common, pragmas url.Values, conns int, l *slog.Logger) (*gorm.DB, error) {
	for k, v := range common {
		pragmas[k] = v
	}
	cfg := &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true, PrepareStmt: true}
	if l != nil {
		cfg.Logger = logger.NewSlogLogger(l, logger.Config{
			LogLevel: logger.Warn, SlowThreshold: 200 * time.Millisecond,
			IgnoreRecordNotFoundError: true, ParameterizedQueries: true,
		})
	}
	g, err := gorm.Open(&sqlite.Dialector{DriverName: driver, DSN: dsn(path, pragmas)}, cfg)
	if err != nil {
		return nil, err
	}
	sdb, err := g.DB()
	if err != nil {
		return nil, err
	}
	sdb.SetMaxOpenConns(conns)
	sdb.SetMaxIdleConns(conns)
	sdb.SetConnMaxLifetime(0)
	sdb.SetConnMaxIdleTime(0)
	return g, nil
}

// dsn builds a file: URI for path (escaping the characters URIs reserve) with mattn pragmas.
func dsn(path string, pragmas url.Values) string {
	p := filepath.ToSlash(path)
	p = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
	if strings.HasPrefix(p, "/") {
		p = "//" + p // empty authority: file:///abs/path
	}
	return "file:" + p + "?" + pragmas.Encode()
}

func closePool(g *gorm.DB) error {
	sdb, err := g.DB()
	if err != nil {
		return err
	}
	return sdb.Close()
}

// Ping checks both pools can run a statement.
func (s *Store) Ping(ctx context.Context) error {
	for _, g := range []*gorm.DB{s.w, s.r} {
		var one int
		if err := g.WithContext(ctx).Raw("SELECT 1").Scan(&one).Error; err != nil {
			return fmt.Errorf("ping sqlite: %w", err)
		}
	}
	return nil
}

// Close closes the prepared statements and both pools.
func (s *Store) Close() error {
	if err := errors.Join(s.st.close(), closePool(s.r), closePool(s.w)); err != nil {
		return fmt.Errorf("close sqlite: %w", err)
	}
	return nil
}

// newID returns 16 random bytes, hex encoded.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// micros is the stored form of a time: Unix microseconds (UTC by definition).
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// blob stores nil as an empty BLOB (columns are NOT NULL); unblob returns empty as nil.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func unblob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// translate maps driver errors to the db sentinels: a uniqueness violation is db.ErrConflict,
// a missing parent row (foreign key) or no row is db.ErrNotFound.
func translate(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.ExtendedCode {
		case sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey:
			return fmt.Errorf("%w: %v", db.ErrConflict, se)
		case sqlite3.ErrConstraintForeignKey:
			return fmt.Errorf("referenced tenant, session or logout: %w", db.ErrNotFound)
		}
	}
	if errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, sql.ErrNoRows) {
		return db.ErrNotFound
	}
	return err
}

// stamp fills an empty ID and a zero CreatedAt.
func (s *Store) stamp(id *string, created *time.Time) {
	if *id == "" {
		*id = newID()
	}
	if created.IsZero() {
		*created = s.now()
	}
}

// insert creates row; what names the record in errors.
func (s *Store) insert(ctx context.Context, what string, row any) error {
	if err := s.w.WithContext(ctx).Create(row).Error; err != nil {
		return fmt.Errorf("create %s: %w", what, translate(err))
	}
	return nil
}

// take reads the one row matching the conditions from the read pool.
func take[R any](ctx context.Context, s *Store, what, query string, args ...any) (*R, error) {
	var row R
	if err := s.r.WithContext(ctx).Where(query, args...).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get %s: %w", what, translate(err))
	}
	return &row, nil
}

// list reads the matching rows ordered by created_at, id, and converts them.
func list[R, T any](ctx context.Context, s *Store, what string, conv func(*R) T, query string, args ...any) ([]T, error) {
	var rows []R
	if err := s.r.WithContext(ctx).Where(query, args...).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list %s: %w", what, translate(err))
	}
	out := make([]T, 0, len(rows))
	for i := range rows {
		out = append(out, conv(&rows[i]))
	}
	return out, nil
}

// update sets cols on the row (tenantID, id) of model's table: no such row in that tenant is
// db.ErrNotFound.
func (s *Store) update(ctx context.Context, what string, model any, tenantID, id string, cols map[string]any) error {
	res := s.w.WithContext(ctx).Model(model).Where("tenant_id = ? AND id = ?", tenantID, id).Updates(cols)
	if res.Error != nil {
		return fmt.Errorf("update %s: %w", what, translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("update %s: %w", what, db.ErrNotFound)
	}
	return nil
}

// remove deletes the row (tenantID, id) of model's table: no such row is db.ErrNotFound.
func remove(tx *gorm.DB, what string, model any, tenantID, id string) error {
	res := tx.Where("tenant_id = ? AND id = ?", tenantID, id).Delete(model)
	if res.Error != nil {
		return fmt.Errorf("delete %s: %w", what, translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("delete %s: %w", what, db.ErrNotFound)
	}
	return nil
}

// Tenants.

type tenantRow struct {
	ID        string `gorm:"column:id;primaryKey"`
	Slug      string `gorm:"column:slug"`
	Name      string `gorm:"column:name"`
	CreatedAt int64  `gorm:"column:created_at;autoCreateTime:false"`
}

// TableName is the tenants table.
func (tenantRow) TableName() string { return "tenants" }

func (r *tenantRow) record() db.Tenant {
	return db.Tenant{ID: r.ID, Slug: r.Slug, Name: r.Name, CreatedAt: fromMicros(r.CreatedAt)}
}

// CreateTenant creates t, filling an empty ID and a zero CreatedAt. A duplicate slug or ID is
// db.ErrConflict.
func (s *Store) CreateTenant(ctx context.Context, t *db.Tenant) error {
	c := *t
	s.stamp(&c.ID, &c.CreatedAt)
	if err := s.insert(ctx, "tenant", &tenantRow{ID: c.ID, Slug: c.Slug, Name: c.Name, CreatedAt: micros(c.CreatedAt)}); err != nil {
		return err
	}
	t.ID, t.CreatedAt = c.ID, c.CreatedAt
	return nil
}

// GetTenant returns the tenant with the given ID.
func (s *Store) GetTenant(ctx context.Context, id string) (*db.Tenant, error) {
	return getTenant(ctx, s, "id = ?", id)
}

// GetTenantBySlug returns the tenant with the given slug.
func (s *Store) GetTenantBySlug(ctx context.Context, slug string) (*db.Tenant, error) {
	return getTenant(ctx, s, "slug = ?", slug)
}

func getTenant(ctx context.Context, s *Store, query string, arg string) (*db.Tenant, error) {
	r, err := take[tenantRow](ctx, s, "tenant", query, arg)
	if err != nil {
		return nil, err
	}
	t := r.record()
	return &t, nil
}

// ListTenants returns every tenant.
func (s *Store) ListTenants(ctx context.Context) ([]db.Tenant, error) {
	return list(ctx, s, "tenants", (*tenantRow).record, "1 = 1")
}

// tenantTables are the tenant-scoped tables, children before parents.
var tenantTables = []any{&signingKeyRow{}, &legRow{}, &logoutRow{}, &participantRow{}, &sessionRow{}, &pendingRow{}, &replayRow{}, &appRow{}, &connectionRow{}}

// DeleteTenant deletes the tenant and every row of every table it owns, in one transaction.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	return s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, m := range tenantTables {
			if err := tx.Where("tenant_id = ?", id).Delete(m).Error; err != nil {
				return fmt.Errorf("delete tenant: %w", translate(err))
			}
		}
		res := tx.Where("id = ?", id).Delete(&tenantRow{})
		if res.Error != nil {
			return fmt.Errorf("delete tenant: %w", translate(res.Error))
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("delete tenant: %w", db.ErrNotFound)
		}
		return nil
	})
}

// Batch runs fn with a Store bound to one write transaction (see db.Batcher): its reads and
// writes go through the transaction, gorm's calls and the prepared statements of the hot path
// alike, and CreateLogout's own transaction nests as a savepoint.
func (s *Store) Batch(ctx context.Context, fn func(tx db.Store) error) error {
	return s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		stx, err := sqlTx(tx)
		if err != nil {
			return fmt.Errorf("batch: %w", err)
		}
		return fn(&Store{w: tx, r: tx, now: s.now, st: s.st, tx: stx})
	})
}
