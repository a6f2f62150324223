package tenants_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/local"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/generic"
	"github.com/sloworks/broker/tenants"
)

// countingStore counts the row reads the service's hot lookups make.
type countingStore struct {
	*sqlite.Store
	reads atomic.Int64
}

func (c *countingStore) GetTenantBySlug(ctx context.Context, slug string) (*db.Tenant, error) {
	c.reads.Add(1)
	return c.Store.GetTenantBySlug(ctx, slug)
}

func (c *countingStore) GetTenant(ctx context.Context, id string) (*db.Tenant, error) {
	c.reads.Add(1)
	return c.Store.GetTenant(ctx, id)
}

func (c *countingStore) GetApp(ctx context.Context, tenantID, id string) (*db.App, error) {
	c.reads.Add(1)
	return c.Store.GetApp(ctx, tenantID, id)
}

func (c *countingStore) GetAppByEntityID(ctx context.Context, tenantID, entityID string) (*db.App, error) {
	c.reads.Add(1)
	return c.Store.GetAppByEntityID(ctx, tenantID, entityID)
}

func (c *countingStore) GetConnection(ctx context.Context, tenantID, id string) (*db.Connection, error) {
	c.reads.Add(1)
	return c.Store.GetConnection(ctx, tenantID, id)
}

func (c *countingStore) ListConnections(ctx context.Context, tenantID string) ([]db.Connection, error) {
	c.reads.Add(1)
	return c.Store.ListConnections(ctx, tenantID)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	svc    *tenants.Service
	store  *countingStore
	clock  *clock
	tenant *db.Tenant
	app    *db.App
	conn   *db.Connection
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lk, err := local.New(filepath.Join(dir, "keys"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.NewRing(keys.RingOptions{Store: st, Primary: lk})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	clk := &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	svc := tenants.New(cs, ring, map[string]providers.Provider{"generic": generic.New()},
		providers.Env{AllowHTTP: true}, slog.New(slog.DiscardHandler)).WithRowTTL(time.Second, clk.now)
	ctx := context.Background()
	tn, err := svc.CreateTenant(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := os.ReadFile("../metadata/testdata/ssp-sp-metadata.xml")
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := svc.CreateApp(ctx, tn, tenants.AppInput{Name: "wiki", MetadataXML: string(sp)})
	if err != nil {
		t.Fatal(err)
	}
	idp, err := os.ReadFile("../metadata/testdata/ssp-idp-metadata.xml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]string{"metadata_xml": string(idp)})
	conn, _, err := svc.CreateConnection(ctx, tn, "generic", "idp", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, store: cs, clock: clk, tenant: tn, app: app, conn: conn}
}

// lookups runs every cached lookup once and fails on any error.
func (f *fixture) lookups(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.svc.TenantBySlug(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Tenant(ctx, f.tenant.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.AppByEntityID(ctx, f.tenant.ID, f.app.EntityID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.App(ctx, f.tenant.ID, f.app.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Connection(ctx, f.tenant.ID, f.conn.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.LoginConnection(ctx, f.tenant.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRowsServedFromMemoryWithinTTL(t *testing.T) {
	f := newFixture(t)
	f.store.reads.Store(0)
	f.lookups(t)
	if n := f.store.reads.Load(); n != 6 {
		t.Fatalf("first lookups read the store %d times, want 6", n)
	}
	f.clock.add(900 * time.Millisecond)
	f.lookups(t)
	if n := f.store.reads.Load(); n != 6 {
		t.Errorf("lookups within the TTL read the store again: %d reads, want 6", n)
	}
	f.clock.add(200 * time.Millisecond)
	f.lookups(t)
	if n := f.store.reads.Load(); n != 12 {
		t.Errorf("lookups past the TTL: %d reads, want 12 (each row read again)", n)
	}
}

func TestDeleteHereIsSeenAtOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.lookups(t)
	if err := f.svc.DeleteApp(ctx, f.tenant.ID, f.app.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.AppByEntityID(ctx, f.tenant.ID, f.app.EntityID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("app by entity ID after its deletion: %v, want ErrNotFound", err)
	}
	if _, err := f.svc.App(ctx, f.tenant.ID, f.app.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("app after its deletion: %v, want ErrNotFound", err)
	}
	if err := f.svc.DeleteConnection(ctx, f.tenant.ID, f.conn.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Connection(ctx, f.tenant.ID, f.conn.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("connection after its deletion: %v, want ErrNotFound", err)
	}
	if _, _, err := f.svc.LoginConnection(ctx, f.tenant.ID); !errors.Is(err, tenants.ErrNoConnection) {
		t.Errorf("login connection after the only one was deleted: %v, want ErrNoConnection", err)
	}
	if err := f.svc.DeleteTenant(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TenantBySlug(ctx, "acme"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("tenant by slug after its deletion: %v, want ErrNotFound", err)
	}
	if _, err := f.svc.Tenant(ctx, f.tenant.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("tenant after its deletion: %v, want ErrNotFound", err)
	}
}

// A deletion made by another process on the same database (another replica, the CLI) is seen
// once the TTL has passed.
func TestDeleteElsewhereIsSeenWithinTTL(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.lookups(t)
	if err := f.store.Store.DeleteApp(ctx, f.tenant.ID, f.app.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.AppByEntityID(ctx, f.tenant.ID, f.app.EntityID); err != nil {
		t.Fatalf("within the TTL the app is still served: %v", err)
	}
	f.clock.add(time.Second)
	if _, _, err := f.svc.AppByEntityID(ctx, f.tenant.ID, f.app.EntityID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("past the TTL, app deleted elsewhere: %v, want ErrNotFound", err)
	}
	if _, err := f.svc.App(ctx, f.tenant.ID, f.app.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("past the TTL, app deleted elsewhere (by ID): %v, want ErrNotFound", err)
	}
}

// A row that was absent is not remembered as absent: created elsewhere, it works at once.
func TestAbsentRowsAreNotCached(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.svc.TenantBySlug(ctx, "globex"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown tenant: %v, want ErrNotFound", err)
	}
	if err := f.store.Store.CreateTenant(ctx, &db.Tenant{Slug: "globex", Name: "Globex"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TenantBySlug(ctx, "globex"); err != nil {
		t.Errorf("tenant created elsewhere right after a miss: %v", err)
	}
}

// Callers get their own copies: changing one does not change what the next caller gets.
func TestCachedRowsAreCopies(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.lookups(t)
	a, err := f.svc.App(ctx, f.tenant.ID, f.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.Name = "changed"
	a.Metadata[0] = 'X'
	b, err := f.svc.App(ctx, f.tenant.ID, f.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "wiki" || b.Metadata[0] == 'X' {
		t.Errorf("a caller's change leaked into the cache: name %q, metadata starts %q", b.Name, b.Metadata[:1])
	}
	tn, _ := f.svc.TenantBySlug(ctx, "acme")
	tn.Slug = "evil"
	if again, _ := f.svc.TenantBySlug(ctx, "acme"); again.Slug != "acme" {
		t.Errorf("tenant slug leaked: %q", again.Slug)
	}
}

// Tenant isolation holds through the cache: tenant B's lookups never return tenant A's rows.
func TestCacheKeepsTenantsApart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.lookups(t)
	other, err := f.svc.CreateTenant(ctx, "globex", "Globex")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.App(ctx, other.ID, f.app.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("tenant B got tenant A's app by ID: %v", err)
	}
	if _, _, err := f.svc.AppByEntityID(ctx, other.ID, f.app.EntityID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("tenant B got tenant A's app by entity ID: %v", err)
	}
	if _, _, err := f.svc.Connection(ctx, other.ID, f.conn.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("tenant B got tenant A's connection: %v", err)
	}
	if _, _, err := f.svc.LoginConnection(ctx, other.ID); !errors.Is(err, tenants.ErrNoConnection) {
		t.Errorf("tenant B's login connection: %v, want ErrNoConnection", err)
	}
}

// With a TTL of 0 every lookup reads the store.
func TestRowTTLZeroReadsEveryTime(t *testing.T) {
	f := newFixture(t)
	f.svc.WithRowTTL(0, f.clock.now)
	f.store.reads.Store(0)
	f.lookups(t)
	f.lookups(t)
	if n := f.store.reads.Load(); n != 12 {
		t.Errorf("reads with TTL 0: %d, want 12", n)
	}
}
