package tenants

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers"
)

// ErrNoConnection is returned when a tenant has no upstream IdP connection yet.
var ErrNoConnection = errors.New("tenant has no IdP connection")

func checkName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", &InputError{Field: field, Kind: KindInvalid, Message: field + " is required"}
	}
	if len(name) > 100 {
		return "", &InputError{Field: field, Kind: KindInvalid, Message: field + " is longer than 100 characters"}
	}
	return name, nil
}

// CreateConnection validates the config through the provider, fetches its metadata, and stores
// the connection. Nothing is stored when anything is wrong.
func (s *Service) CreateConnection(ctx context.Context, t *db.Tenant, providerName, name string, config []byte) (*db.Connection, *providers.Upstream, error) {
	name, err := checkName("name", name)
	if err != nil {
		return nil, nil, err
	}
	p, ok := s.providers[providerName]
	if !ok {
		names := s.Providers()
		sort.Strings(names)
		return nil, nil, &InputError{Field: "provider", Kind: KindInvalid, Message: fmt.Sprintf("unknown provider %q; known providers: %s", providerName, strings.Join(names, ", "))}
	}
	up, err := p.Configure(ctx, config, s.env)
	if err != nil {
		if ce, ok := providers.IsConfigError(err); ok {
			kind := KindInvalid
			if ce.Unreachable {
				kind = KindUnprocessable
			}
			return nil, nil, &InputError{Field: ce.Field, Kind: kind, Message: ce.Message, Err: err}
		}
		return nil, nil, fmt.Errorf("configure connection: %w", err)
	}
	c := &db.Connection{TenantID: t.ID, Name: name, Provider: providerName, Config: config, EntityID: up.EntityID, Metadata: up.Metadata}
	defer s.rows.reset()
	if err := s.store.CreateConnection(ctx, c); err != nil {
		if errors.Is(err, db.ErrConflict) {
			return nil, nil, &InputError{Field: "name", Kind: KindConflict, Message: fmt.Sprintf("the tenant already has a connection named %q or one to IdP %q", name, up.EntityID), Err: err}
		}
		return nil, nil, fmt.Errorf("create connection: %w", err)
	}
	s.mu.Lock()
	s.upstreams[c.ID] = up
	s.mu.Unlock()
	return c, up, nil
}

// Upstream opens a stored connection (cached by connection ID; connections are immutable).
func (s *Service) Upstream(c *db.Connection) (*providers.Upstream, error) {
	s.mu.Lock()
	up, ok := s.upstreams[c.ID]
	s.mu.Unlock()
	if ok {
		return up, nil
	}
	p, ok := s.providers[c.Provider]
	if !ok {
		return nil, fmt.Errorf("connection %s uses provider %q, which this broker does not have", c.ID, c.Provider)
	}
	up, err := p.Load(c.Config, c.Metadata, s.env)
	if err != nil {
		return nil, fmt.Errorf("open connection %s: %w", c.ID, err)
	}
	s.mu.Lock()
	s.upstreams[c.ID] = up
	s.mu.Unlock()
	return up, nil
}

// LoginConnection returns the connection a tenant's users sign in through: its oldest one.
func (s *Service) LoginConnection(ctx context.Context, tenantID string) (*db.Connection, *providers.Upstream, error) {
	c, err := cachedLookup(s.rows, rowKey("login-connection", tenantID), copyConnection, func() (*db.Connection, error) {
		conns, err := s.store.ListConnections(ctx, tenantID)
		if err != nil {
			return nil, fmt.Errorf("list connections: %w", err)
		}
		if len(conns) == 0 {
			return nil, ErrNoConnection
		}
		return &conns[0], nil
	})
	if err != nil {
		return nil, nil, err
	}
	up, err := s.Upstream(c)
	if err != nil {
		return nil, nil, err
	}
	return c, up, nil
}

// Connection returns one of the tenant's connections, opened.
func (s *Service) Connection(ctx context.Context, tenantID, id string) (*db.Connection, *providers.Upstream, error) {
	c, err := cachedLookup(s.rows, rowKey("connection", tenantID, id), copyConnection, func() (*db.Connection, error) {
		return s.store.GetConnection(ctx, tenantID, id)
	})
	if err != nil {
		return nil, nil, err
	}
	up, err := s.Upstream(c)
	if err != nil {
		return nil, nil, err
	}
	return c, up, nil
}

// ListConnections returns the tenant's connections.
func (s *Service) ListConnections(ctx context.Context, tenantID string) ([]db.Connection, error) {
	return s.store.ListConnections(ctx, tenantID)
}

// DeleteConnection deletes one of the tenant's connections.
func (s *Service) DeleteConnection(ctx context.Context, tenantID, id string) error {
	defer s.rows.reset()
	if err := s.store.DeleteConnection(ctx, tenantID, id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.upstreams, id)
	s.mu.Unlock()
	return nil
}

// AppInput is what an admin gives to register an app.
type AppInput struct {
	Name         string
	MetadataURL  string
	MetadataXML  string
	SignResponse bool
	// NoFrameLogout: the app's logout page refuses to be framed (reached by a redirect step).
	NoFrameLogout bool
	// Provider is the product the app is ("" or "generic": any SAML SP; or a registered app
	// provider such as "salesforce"): its quirks apply to this app only.
	Provider string
	// LogoutSignatureAlgorithm is "" (the provider's default), "rsa-sha256" or "rsa-sha1".
	LogoutSignatureAlgorithm string
}

// CreateApp fetches and checks the app's metadata and stores the app. Nothing is stored when
// anything is wrong.
func (s *Service) CreateApp(ctx context.Context, t *db.Tenant, in AppInput) (*db.App, *metadata.SP, error) {
	name, err := checkName("name", in.Name)
	if err != nil {
		return nil, nil, err
	}
	provider := in.Provider
	if provider == "" {
		provider = "generic"
	}
	if _, ok := s.appProviders[provider]; !ok {
		return nil, nil, &InputError{Field: "provider", Kind: KindInvalid, Message: fmt.Sprintf("unknown app provider %q; known app providers: %s (or leave it out for any SAML SP)", in.Provider, strings.Join(s.AppProviders(), ", "))}
	}
	if _, err := providers.ParseSigAlgName(in.LogoutSignatureAlgorithm); err != nil {
		return nil, nil, &InputError{Field: "logout_signature_algorithm", Kind: KindInvalid, Message: "logout_signature_algorithm: " + err.Error()}
	}
	in.MetadataURL = strings.TrimSpace(in.MetadataURL)
	field := "metadata_xml"
	doc := []byte(in.MetadataXML)
	switch {
	case in.MetadataURL == "" && strings.TrimSpace(in.MetadataXML) == "":
		return nil, nil, &InputError{Field: "metadata_url", Kind: KindInvalid, Message: "give the app's metadata_url or its metadata_xml"}
	case in.MetadataURL != "" && in.MetadataXML != "":
		return nil, nil, &InputError{Field: "metadata_url", Kind: KindInvalid, Message: "give metadata_url or metadata_xml, not both"}
	case in.MetadataURL != "":
		field = "metadata_url"
		doc, err = metadata.Fetch(ctx, s.env.HTTPClient, in.MetadataURL, s.env.AllowHTTP)
		if err != nil {
			return nil, nil, metadataInputError(field, err)
		}
	}
	sp, err := metadata.ParseSP(doc, s.env.AllowHTTP)
	if err != nil {
		return nil, nil, metadataInputError(field, err)
	}
	a := &db.App{TenantID: t.ID, Name: name, EntityID: sp.EntityID, MetadataURL: in.MetadataURL, Metadata: doc, SignResponse: in.SignResponse, NoFrameLogout: in.NoFrameLogout,
		Provider: provider, LogoutSigAlg: in.LogoutSignatureAlgorithm}
	defer s.rows.reset()
	if err := s.store.CreateApp(ctx, a); err != nil {
		if errors.Is(err, db.ErrConflict) {
			return nil, nil, &InputError{Field: "name", Kind: KindConflict, Message: fmt.Sprintf("the tenant already has an app named %q or one with entity ID %q", name, sp.EntityID), Err: err}
		}
		return nil, nil, fmt.Errorf("create app: %w", err)
	}
	s.mu.Lock()
	s.apps[a.ID] = sp
	s.mu.Unlock()
	return a, sp, nil
}

func metadataInputError(field string, err error) error {
	var me *metadata.Error
	if errors.As(err, &me) {
		kind := KindInvalid
		if me.Unreachable {
			kind = KindUnprocessable
		}
		return &InputError{Field: field, Kind: kind, Message: me.Message, Err: err}
	}
	return err
}

// AppMetadata parses a stored app's metadata (cached by app ID; apps are immutable).
func (s *Service) AppMetadata(a *db.App) (*metadata.SP, error) {
	s.mu.Lock()
	sp, ok := s.apps[a.ID]
	s.mu.Unlock()
	if ok {
		return sp, nil
	}
	sp, err := metadata.ParseSP(a.Metadata, s.env.AllowHTTP)
	if err != nil {
		return nil, fmt.Errorf("open app %s: %w", a.ID, err)
	}
	s.mu.Lock()
	s.apps[a.ID] = sp
	s.mu.Unlock()
	return sp, nil
}

// AppQuirks are the app's quirks toward the broker: its provider's (generic when it names none),
// given the app's own settings.
func (s *Service) AppQuirks(a *db.App) (providers.Quirks, error) {
	name := a.Provider
	if name == "" {
		name = "generic"
	}
	p, ok := s.appProviders[name]
	if !ok {
		return providers.Quirks{}, fmt.Errorf("app %s uses app provider %q, which this broker does not have", a.ID, a.Provider)
	}
	alg, err := providers.ParseSigAlgName(a.LogoutSigAlg)
	if err != nil {
		return providers.Quirks{}, fmt.Errorf("app %s: %w", a.ID, err)
	}
	return p(providers.AppSettings{LogoutSigAlg: alg}), nil
}

// AppByEntityID returns the tenant's app with the entity ID and its metadata.
func (s *Service) AppByEntityID(ctx context.Context, tenantID, entityID string) (*db.App, *metadata.SP, error) {
	a, err := cachedLookup(s.rows, rowKey("app-entity", tenantID, entityID), copyApp, func() (*db.App, error) {
		return s.store.GetAppByEntityID(ctx, tenantID, entityID)
	})
	if err != nil {
		return nil, nil, err
	}
	sp, err := s.AppMetadata(a)
	if err != nil {
		return nil, nil, err
	}
	return a, sp, nil
}

// App returns one of the tenant's apps.
func (s *Service) App(ctx context.Context, tenantID, id string) (*db.App, error) {
	return cachedLookup(s.rows, rowKey("app", tenantID, id), copyApp, func() (*db.App, error) {
		return s.store.GetApp(ctx, tenantID, id)
	})
}

// ListApps returns the tenant's apps.
func (s *Service) ListApps(ctx context.Context, tenantID string) ([]db.App, error) {
	return s.store.ListApps(ctx, tenantID)
}

// DeleteApp deletes one of the tenant's apps.
func (s *Service) DeleteApp(ctx context.Context, tenantID, id string) error {
	defer s.rows.reset()
	if err := s.store.DeleteApp(ctx, tenantID, id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.apps, id)
	s.mu.Unlock()
	return nil
}
