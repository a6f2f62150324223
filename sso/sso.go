// Package sso serves the broker's public SAML endpoints for sign-in: both metadata documents, the
// IdP-side SSO endpoint that apps send AuthnRequests to, and the SP-side ACS that tenants' IdPs
// answer at. It is thin: decode, check, call the tenants service and the store, render.
package sso

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/slo"
	"github.com/sloworks/broker/tenants"
)

// Store is the part of the storage the SSO endpoints use.
type Store interface {
	db.Sessions
	db.PendingRequests
	db.Replay
}

// Config holds the SSO settings; zero fields take the defaults of Defaults.
type Config struct {
	// BaseURL is the broker's public URL; every entity ID and endpoint derives from it.
	BaseURL *url.URL
	// SessionLifetime is how long a broker session lasts after sign-in.
	SessionLifetime time.Duration
	// RequestLifetime is how long a pending AuthnRequest waits for the IdP's answer.
	RequestLifetime time.Duration
	// ClockSkew is the tolerance for peers' clocks.
	ClockSkew time.Duration
	// MaxIssueDelay is how old an incoming message may be.
	MaxIssueDelay time.Duration
	// AssertionLifetime is how long the assertions the broker issues are valid.
	AssertionLifetime time.Duration
	// NewID makes SAML IDs, SessionIndexes and transient NameIDs; nil: 160 random bits.
	// Tests inject a counter to get deterministic golden files.
	NewID func() string
}

// Defaults fills zero fields with the defaults.
func (c *Config) Defaults() {
	if c.SessionLifetime == 0 {
		c.SessionLifetime = 8 * time.Hour
	}
	if c.RequestLifetime == 0 {
		c.RequestLifetime = 10 * time.Minute
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = 3 * time.Minute
	}
	if c.MaxIssueDelay == 0 {
		c.MaxIssueDelay = 5 * time.Minute
	}
	if c.AssertionLifetime == 0 {
		c.AssertionLifetime = 5 * time.Minute
	}
	if c.NewID == nil {
		c.NewID = RandomID
	}
}

// Handler serves the SSO endpoints.
type Handler struct {
	tenants *tenants.Service
	store   Store
	keys    keys.Source
	logger  *slog.Logger
	now     func() time.Time
	cfg     Config
	// logout runs the logouts the SLO endpoints receive (SetLogout); nil: they answer a fault.
	logout *slo.Engine
}

// New returns a Handler. now is the clock (nil: time.Now).
func New(cfg Config, ts *tenants.Service, store Store, ks keys.Source, logger *slog.Logger, now func() time.Time) *Handler {
	cfg.Defaults()
	if now == nil {
		now = time.Now
	}
	return &Handler{tenants: ts, store: store, keys: ks, logger: logger, now: func() time.Time { return now().UTC() }, cfg: cfg}
}

// Register mounts the endpoints of the public contract.
func (h *Handler) Register(e *echo.Echo) {
	g := e.Group("/t/:tenant")
	g.GET("/idp/metadata", h.idpMetadata)
	g.GET("/sp/metadata", h.spMetadata)
	g.GET("/idp/sso", h.idpSSO)
	g.POST("/idp/sso", h.idpSSO)
	g.POST("/sp/acs", h.spACS)
	g.POST("/idp/slo/soap", h.idpSLOSOAP)
	g.POST("/sp/slo/soap", h.spSLOSOAP)
	g.GET("/idp/slo", h.idpSLO)
	g.POST("/idp/slo", h.idpSLO)
	g.GET("/sp/slo", h.spSLO)
	g.POST("/sp/slo", h.spSLO)
	g.GET("/logout/:id", h.logoutPage)
	g.GET("/logout/:id/leg/:leg", h.logoutLeg)
	g.GET("/logout/:id/status", h.logoutStatus)
}

// URLs of one tenant's endpoints (the public contract).
func (h *Handler) tenantURL(slug, path string) string {
	base := strings.TrimSuffix(h.cfg.BaseURL.String(), "/")
	return base + "/t/" + slug + path
}

// IdPEntityID is the broker's entity ID as an IdP for the tenant's apps.
func (h *Handler) IdPEntityID(slug string) string { return h.tenantURL(slug, "/idp/metadata") }

// SPEntityID is the broker's entity ID as an SP for the tenant's IdP.
func (h *Handler) SPEntityID(slug string) string { return h.tenantURL(slug, "/sp/metadata") }

func (h *Handler) ssoURL(slug string) string { return h.tenantURL(slug, "/idp/sso") }
func (h *Handler) acsURL(slug string) string { return h.tenantURL(slug, "/sp/acs") }

// tenant resolves the :tenant path parameter.
func (h *Handler) tenant(c echo.Context) (*db.Tenant, error) {
	t, err := h.tenants.TenantBySlug(c.Request().Context(), c.Param("tenant"))
	if errors.Is(err, db.ErrNotFound) {
		return nil, &PageError{Status: http.StatusNotFound, Message: "There is no organisation at this address.", Err: err}
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// RandomID returns a SAML ID: an NCName ("_" then 40 hex digits, 160 random bits).
func RandomID() string {
	b := make([]byte, 20)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return "_" + hex.EncodeToString(b)
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// keyPair returns the tenant's signing key, as a 503 page when the key backend is unavailable.
func (h *Handler) keyPair(ctx context.Context, t *db.Tenant) (*keys.KeyPair, error) {
	kp, err := h.keys.KeyPair(ctx, t.ID)
	if err != nil {
		return nil, &PageError{Status: http.StatusServiceUnavailable, Message: "Signing is unavailable right now. Try again in a minute.", Err: err}
	}
	return kp, nil
}
