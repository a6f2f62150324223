// Package tenants manages tenants, their connections (upstream IdPs) and apps (downstream SPs):
// it validates what admins give, opens connections through their provider, and resolves a
// tenant's parts for the SSO and SLO engines, caching parsed metadata.
package tenants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers"
)

// Store is the part of the storage the tenants service uses.
type Store interface {
	db.Tenants
	db.Connections
	db.Apps
}

// Service manages tenants, connections and apps.
type Service struct {
	store     Store
	keys      keys.Source
	providers map[string]providers.Provider
	// appProviders are the products an app may name as its provider ("generic" always).
	appProviders map[string]providers.AppProvider
	env          providers.Env
	logger       *slog.Logger

	mu        sync.Mutex
	upstreams map[string]*providers.Upstream // by connection ID
	apps      map[string]*metadata.SP        // by app ID

	rows *rowCache
}

// New returns a Service. providers is the catalogue of provider plugins by name.
func New(store Store, ks keys.Source, catalogue map[string]providers.Provider, env providers.Env, logger *slog.Logger) *Service {
	return &Service{
		store:     store,
		keys:      ks,
		providers: catalogue,
		appProviders: map[string]providers.AppProvider{
			"generic": providers.GenericApp,
		},
		env:       env,
		logger:    logger,
		upstreams: map[string]*providers.Upstream{},
		apps:      map[string]*metadata.SP{},
		rows:      newRowCache(DefaultRowTTL, time.Now),
	}
}

// WithRowTTL sets how long tenants, apps and connections are served from memory (DefaultRowTTL
// unless set; 0 reads the store every time) and the clock that ages them; it returns s. Call it
// before serving.
func (s *Service) WithRowTTL(ttl time.Duration, now func() time.Time) *Service {
	s.rows = newRowCache(ttl, now)
	return s
}

// WithAppProviders adds the catalogue of app providers by name (products as apps behind the
// broker, e.g. "salesforce") to the generic one; it returns s. Call it before serving.
func (s *Service) WithAppProviders(catalogue map[string]providers.AppProvider) *Service {
	for name, p := range catalogue {
		s.appProviders[name] = p
	}
	return s
}

// AppProviders returns the names of the registered app providers.
func (s *Service) AppProviders() []string {
	out := make([]string, 0, len(s.appProviders))
	for name := range s.appProviders {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// InputError is a problem with what an admin gave: it names the field and says what to fix.
type InputError struct {
	Field   string
	Message string
	// Kind says which status fits: "invalid" (400), "unprocessable" (422: well-formed but
	// unusable, e.g. unreachable metadata), "conflict" (409).
	Kind string
	Err  error
}

// Kinds of InputError.
const (
	KindInvalid       = "invalid"
	KindUnprocessable = "unprocessable"
	KindConflict      = "conflict"
)

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func (e *InputError) Unwrap() error { return e.Err }

var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidSlug reports whether s is a usable tenant slug: 1–63 lowercase letters, digits and
// inner hyphens (it appears in every public URL of the tenant).
func ValidSlug(s string) bool { return slugRE.MatchString(s) }

// Providers returns the names of the registered providers.
func (s *Service) Providers() []string {
	out := make([]string, 0, len(s.providers))
	for name := range s.providers {
		out = append(out, name)
	}
	return out
}

// CreateTenant validates and stores a tenant.
func (s *Service) CreateTenant(ctx context.Context, slug, name string) (*db.Tenant, error) {
	slug = strings.TrimSpace(slug)
	name = strings.TrimSpace(name)
	if !ValidSlug(slug) {
		return nil, &InputError{Field: "slug", Kind: KindInvalid, Message: fmt.Sprintf("slug %q is not valid: use 1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit", slug)}
	}
	if name == "" {
		name = slug
	}
	if len(name) > 200 {
		return nil, &InputError{Field: "name", Kind: KindInvalid, Message: "name is longer than 200 characters"}
	}
	t := &db.Tenant{Slug: slug, Name: name}
	defer s.rows.reset()
	if err := s.store.CreateTenant(ctx, t); err != nil {
		if errors.Is(err, db.ErrConflict) {
			return nil, &InputError{Field: "slug", Kind: KindConflict, Message: fmt.Sprintf("a tenant with slug %q already exists", slug), Err: err}
		}
		return nil, fmt.Errorf("create tenant: %w", err)
	}
	return t, nil
}

// TenantBySlug returns the tenant with the slug (db.ErrNotFound when none).
func (s *Service) TenantBySlug(ctx context.Context, slug string) (*db.Tenant, error) {
	if !ValidSlug(slug) {
		return nil, db.ErrNotFound
	}
	return cachedLookup(s.rows, rowKey("tenant-slug", slug), copyTenant, func() (*db.Tenant, error) {
		return s.store.GetTenantBySlug(ctx, slug)
	})
}

// ListTenants returns every tenant.
func (s *Service) ListTenants(ctx context.Context) ([]db.Tenant, error) {
	return s.store.ListTenants(ctx)
}

// DeleteTenant deletes the tenant, everything it owns, and its keys.
func (s *Service) DeleteTenant(ctx context.Context, t *db.Tenant) error {
	conns, err := s.store.ListConnections(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("delete tenant: %w", err)
	}
	apps, err := s.store.ListApps(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("delete tenant: %w", err)
	}
	defer s.rows.reset()
	if err := s.store.DeleteTenant(ctx, t.ID); err != nil {
		return fmt.Errorf("delete tenant: %w", err)
	}
	s.mu.Lock()
	for _, c := range conns {
		delete(s.upstreams, c.ID)
	}
	for _, a := range apps {
		delete(s.apps, a.ID)
	}
	s.mu.Unlock()
	if err := s.keys.Forget(ctx, t.ID); err != nil {
		return fmt.Errorf("delete tenant keys: %w", err)
	}
	return nil
}

// Tenant returns the tenant with the ID (db.ErrNotFound when none).
func (s *Service) Tenant(ctx context.Context, id string) (*db.Tenant, error) {
	return cachedLookup(s.rows, rowKey("tenant", id), copyTenant, func() (*db.Tenant, error) {
		return s.store.GetTenant(ctx, id)
	})
}
