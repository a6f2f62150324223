// Command broker runs the multi-tenant SAML identity broker.
//
//	broker serve   the broker (embedded default: SQLite and local keys in the data directory)
//	broker demo    the same server with a demo tenant, a built-in demo IdP and a demo app
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/sloworks/broker/admin"
	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/local"
	"github.com/sloworks/broker/keys/vault"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/auth0"
	"github.com/sloworks/broker/providers/generic"
	"github.com/sloworks/broker/providers/salesforce"
	"github.com/sloworks/broker/slo"
	"github.com/sloworks/broker/sso"
	"github.com/sloworks/broker/tenants"
)

// catalogue is the explicit map of provider plugins (no init() registration).
func catalogue() map[string]providers.Provider {
	return map[string]providers.Provider{
		"generic":    generic.New(),
		"okta":       generic.Okta(),
		"entra":      generic.Entra(),
		"adfs":       generic.ADFS(),
		"google":     generic.Google(),
		"keycloak":   generic.Keycloak(),
		"salesforce": salesforce.New(),
		"auth0":      auth0.New(),
	}
}

// appCatalogue is the explicit map of app providers: products as apps behind the broker, whose
// quirks an app gets by naming one ("generic", any SAML SP, is always there).
func appCatalogue() map[string]providers.AppProvider {
	return map[string]providers.AppProvider{
		"salesforce": salesforce.App,
	}
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New("usage: broker serve|demo|keys [flags] (broker serve -h lists the settings)")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve", "demo":
	case "keys":
		return runKeys(rest, stdout, getenv)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "usage: broker serve|demo|keys [flags]\n\n  serve  run the broker\n  demo   run the broker with a demo tenant, IdP and app wired in\n  keys   "+keysUsage)
		return nil
	default:
		return fmt.Errorf("unknown command %q: want serve, demo or keys", cmd)
	}
	cfg, err := loadConfig(cmd, rest, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cmd == "demo" {
		// The demo IdP and app live on this very server, over plain http on loopback.
		cfg.AllowHTTP = cfg.AllowHTTP || strings.HasPrefix(cfg.BaseURL, "http://")
	}
	logger := newLogger(cfg, stdout)
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := newServer(ctx, cfg, logger, stdout)
	if err != nil {
		return err
	}
	defer srv.close()
	if cmd == "demo" {
		if err := srv.wireDemo(ctx, stdout, srv.keys); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return srv.serve(ctx)
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// server is the wired broker.
type server struct {
	cfg     *Config
	logger  *slog.Logger
	store   db.Store
	tenants *tenants.Service
	sso     *sso.Handler
	keys    keys.Source
	ring    *keys.Ring
	vault   *vault.Source // nil when keys are local
	engine  *slo.Engine
	echo    *echo.Echo
	ln      net.Listener
}

func newServer(ctx context.Context, cfg *Config, logger *slog.Logger, stdout io.Writer) (*server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	store, err := sqlite.Open(filepath.Join(cfg.DataDir, "broker.db"), sqlite.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	ks, err := openKeys(ctx, cfg, store, logger)
	if err != nil {
		store.Close()
		return nil, err
	}
	tokenHash, err := operatorToken(cfg, stdout)
	if err != nil {
		store.Close()
		return nil, err
	}
	base, _ := url.Parse(cfg.BaseURL)
	env := providers.Env{HTTPClient: &http.Client{Timeout: 10 * time.Second}, AllowHTTP: cfg.AllowHTTP}
	ts := tenants.New(store, ks.ring, catalogue(), env, logger).WithAppProviders(appCatalogue())
	h := sso.New(sso.Config{BaseURL: base, SessionLifetime: cfg.SessionLifetime}, ts, store, ks.ring, logger, nil)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = sso.HTTPErrorHandler(logger)
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimit("4M"))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{ContentTypeNosniff: "nosniff", XFrameOptions: "DENY", ReferrerPolicy: "no-referrer"}))
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", func(c echo.Context) error {
		ctx := c.Request().Context()
		if err := store.Ping(ctx); err != nil {
			logger.WarnContext(ctx, "not ready", "error", err)
			return c.String(http.StatusServiceUnavailable, "database unavailable\n")
		}
		// A key backend that can be down (Vault) says whether signing works.
		if err := ks.ring.Ping(ctx); err != nil {
			logger.WarnContext(ctx, "not ready", "error", err)
			return c.String(http.StatusServiceUnavailable, "signing keys unavailable (Vault)\n")
		}
		return c.String(http.StatusOK, "ok\n")
	})
	h.Register(e)
	engine := &slo.Engine{Store: store, Peers: h.Peers(), Signers: h.Signers(), SOAP: &binding.SOAPClient{HTTP: &http.Client{}},
		LegTimeout: cfg.LogoutLegTimeout, Logger: logger, Now: time.Now, NewID: sso.RandomID}
	h.SetLogout(engine)
	admin.New(ts, h, tokenHash, logger).WithSessions(store, engine).WithKeys(ks.ring).Register(e)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	return &server{cfg: cfg, logger: logger, store: store, tenants: ts, sso: h, keys: ks.ring, ring: ks.ring, vault: ks.vault, engine: engine, echo: e, ln: ln}, nil
}

// keySet is what openKeys opens: the ring every signature goes through, and the Vault
// backend when Vault is configured.
type keySet struct {
	ring  *keys.Ring
	vault *vault.Source
}

// openKeys returns the tenants' key ring over the store: new keys in Vault Transit when Vault
// is configured, else in local key files in the data directory; local keys made before Vault
// was configured are adopted and keep signing until they are migrated (docs/keys.md). A Vault
// that is down or sealed at start is logged, not fatal: signing answers 503 until it is back.
func openKeys(ctx context.Context, cfg *Config, store db.SigningKeys, logger *slog.Logger) (*keySet, error) {
	ls, err := local.New(filepath.Join(cfg.DataDir, "keys"), nil)
	if err != nil {
		return nil, err
	}
	o := keys.RingOptions{Store: store, Primary: ls, Overlap: cfg.KeyRotationOverlap, Logger: logger}
	var vs *vault.Source
	if cfg.Vault.Enabled() {
		if vs, err = vault.Open(cfg.Vault, filepath.Join(cfg.DataDir, "vault-certs"), logger); err != nil {
			return nil, fmt.Errorf("vault keys: %w", err)
		}
		logger.InfoContext(ctx, "tenant keys in vault transit", "addr", cfg.Vault.Addr, "mount", cfg.Vault.Mount, "key_prefix", cfg.Vault.KeyPrefix)
		if err := vs.Ping(ctx); err != nil {
			logger.WarnContext(ctx, "vault not usable at start; signing is unavailable until it is", "error", err)
		}
		o.Primary, o.Others = vs, []keys.Backend{ls}
	}
	ring, err := keys.NewRing(o)
	if err != nil {
		return nil, err
	}
	return &keySet{ring: ring, vault: vs}, nil
}

// operatorToken returns the SHA-256 of the operator's API token: BROKER_BOOTSTRAP_TOKEN when
// set; else a token generated on first start, printed once, whose hash is kept in the data dir.
func operatorToken(cfg *Config, stdout io.Writer) ([32]byte, error) {
	if cfg.BootstrapToken != "" {
		return sha256.Sum256([]byte(cfg.BootstrapToken)), nil
	}
	path := filepath.Join(cfg.DataDir, "operator-token.sha256")
	b, err := os.ReadFile(path)
	if err == nil {
		var sum [32]byte
		raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(raw) != 32 {
			return sum, fmt.Errorf("%s is damaged; delete it to generate a new operator token", path)
		}
		copy(sum[:], raw)
		return sum, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return [32]byte{}, fmt.Errorf("read operator token hash: %w", err)
	}
	secret := make([]byte, 24)
	rand.Read(secret)
	token := "brk_" + hex.EncodeToString(secret)
	sum := sha256.Sum256([]byte(token))
	if err := os.WriteFile(path, []byte(hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		return sum, fmt.Errorf("store operator token hash: %w", err)
	}
	fmt.Fprintf(stdout, "\nOperator API token (shown once; only its hash is stored in %s):\n\n    %s\n\n", path, token)
	return sum, nil
}

// serve runs until ctx is done, with a janitor for expired state, then shuts down gracefully.
func (s *server) serve(ctx context.Context) error {
	hs := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.ln) }()
	janitorDone := make(chan struct{})
	go func() { defer close(janitorDone); s.janitor(ctx, time.Minute) }()
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		if s.vault != nil { // a renewable Vault token is renewed until shutdown
			s.vault.RenewToken(ctx)
		}
	}()
	s.logger.Info("broker listening", "addr", s.ln.Addr().String(), "base_url", s.cfg.BaseURL)
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.logger.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		err = hs.Shutdown(sctx)
	}
	<-janitorDone
	<-renewDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// janitor deletes expired pending requests, replay entries and sessions, so that state stays
// bounded however many sign-ins pass.
func (s *server) janitor(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now().UTC()
			// Expired sessions are logged out of their apps first (trigger "expiry"), then swept.
			if n, err := s.engine.EndExpired(ctx, now, 100); err != nil {
				s.logger.WarnContext(ctx, "ending expired sessions failed", "error", err)
			} else if n > 0 {
				s.logger.InfoContext(ctx, "expired sessions logged out", "count", n)
			}
			// Logouts whose browser never came back are settled as "no answer".
			if n, err := s.engine.SettleAbandoned(ctx, now); err != nil {
				s.logger.WarnContext(ctx, "settling abandoned logouts failed", "error", err)
			} else if n > 0 {
				s.logger.InfoContext(ctx, "abandoned logouts settled", "count", n)
			}
			sweep(ctx, s.store, s.logger, now, s.cfg.LogoutRetention)
			if s.cfg.KeyRotationPeriod > 0 {
				rotateDue(ctx, s.store, s.ring, s.logger, s.cfg.KeyRotationPeriod)
			}
		}
	}
}

// rotateDue rotates the keys of the tenants whose current key has signed for period (scheduled
// rotation). Replicas may run it at once: the store allows one pending rotation per tenant.
func rotateDue(ctx context.Context, store db.Tenants, ring *keys.Ring, logger *slog.Logger, period time.Duration) {
	ts, err := store.ListTenants(ctx)
	if err != nil {
		logger.WarnContext(ctx, "scheduled key rotation failed", "error", err)
		return
	}
	for _, t := range ts {
		if did, err := ring.RotateIfDue(ctx, t.ID, period); err != nil {
			logger.WarnContext(ctx, "scheduled key rotation failed", "tenant", t.ID, "error", err)
		} else if did {
			logger.InfoContext(ctx, "scheduled key rotation", "tenant", t.ID, "slug", t.Slug)
		}
	}
}

// timeNow is the clock of the binary.
func timeNow() time.Time { return time.Now().UTC() }

func sweep(ctx context.Context, store db.Store, logger *slog.Logger, now time.Time, retention time.Duration) {
	p, err1 := store.DeleteExpiredPendingRequests(ctx, now)
	r, err2 := store.DeleteExpiredReplay(ctx, now)
	// Ended sessions stay an hour, so a late LogoutRequest still finds what it names.
	se, err3 := store.DeleteExpiredSessions(ctx, now.Add(-time.Hour))
	lo, err4 := store.DeleteLogoutsBefore(ctx, now.Add(-retention))
	if lo > 0 {
		logger.InfoContext(ctx, "logout log entries past retention deleted", "count", lo)
	}
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		logger.WarnContext(ctx, "sweep failed", "error", err)
		return
	}
	if p+r+se > 0 {
		logger.DebugContext(ctx, "swept expired state", "pending", p, "replay", r, "sessions", se)
	}
}

func (s *server) close() {
	if err := s.store.Close(); err != nil {
		s.logger.Warn("close database", "error", err)
	}
}
