// Package admin serves the operator's admin JSON API under /api/v1 (and later the admin UI):
// decode, call the tenants service, render. Every request carries a bearer token.
package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/tenants"
)

// MaxBody is the largest request body accepted (metadata XML fits comfortably).
const MaxBody = 2 << 20

// URLs gives the public URLs of a tenant that admins paste into IdP and app consoles.
type URLs interface {
	IdPEntityID(slug string) string
	SPEntityID(slug string) string
}

// API is the admin JSON API.
type API struct {
	tenants   *tenants.Service
	urls      URLs
	tokenHash [32]byte
	logger    *slog.Logger
	sessions  SessionStore
	ender     SessionEnder
	keys      KeyRing
}

// New returns the API; operatorTokenHash is the SHA-256 of the operator's bearer token.
func New(ts *tenants.Service, urls URLs, operatorTokenHash [32]byte, logger *slog.Logger) *API {
	return &API{tenants: ts, urls: urls, tokenHash: operatorTokenHash, logger: logger}
}

// Register mounts the API.
func (a *API) Register(e *echo.Echo) {
	g := e.Group("/api/v1", a.authenticate)
	g.POST("/tenants", a.createTenant)
	g.GET("/tenants", a.listTenants)
	g.GET("/tenants/:slug", a.getTenant)
	g.DELETE("/tenants/:slug", a.deleteTenant)
	g.POST("/tenants/:slug/connections", a.createConnection)
	g.GET("/tenants/:slug/connections", a.listConnections)
	g.GET("/tenants/:slug/connections/:id", a.getConnection)
	g.DELETE("/tenants/:slug/connections/:id", a.deleteConnection)
	g.POST("/tenants/:slug/apps", a.createApp)
	g.GET("/tenants/:slug/apps", a.listApps)
	g.GET("/tenants/:slug/apps/:id", a.getApp)
	g.DELETE("/tenants/:slug/apps/:id", a.deleteApp)
	if a.sessions != nil {
		a.registerSessions(g)
	}
	if a.keys != nil {
		a.registerKeys(g)
	}
	g.Any("/*", func(c echo.Context) error {
		return apiError(c, http.StatusNotFound, "not_found", "", "no such API endpoint: "+c.Request().Method+" "+c.Request().URL.Path)
	})
}

// Error codes of the contract: {"error":{"code","message","field"}}.
const (
	codeInvalid       = "invalid_request"
	codeUnauthorized  = "unauthorized"
	codeNotFound      = "not_found"
	codeConflict      = "conflict"
	codeUnprocessable = "unprocessable"
)

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

func apiError(c echo.Context, status int, code, field, message string) error {
	var b errorBody
	b.Error.Code, b.Error.Field, b.Error.Message = code, field, message
	return c.JSON(status, b)
}

// authenticate checks the bearer token in constant time.
func (a *API) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="broker"`)
			return apiError(c, http.StatusUnauthorized, codeUnauthorized, "", "missing bearer token: send the header Authorization: Bearer TOKEN")
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if subtle.ConstantTimeCompare(sum[:], a.tokenHash[:]) != 1 {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="broker", error="invalid_token"`)
			return apiError(c, http.StatusUnauthorized, codeUnauthorized, "", "the bearer token is not valid")
		}
		return next(c)
	}
}

// decode strictly decodes a JSON body: unknown fields and trailing data are errors.
func decode(c echo.Context, v any) error {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &statusError{http.StatusUnsupportedMediaType, codeInvalid, "", "send the body as application/json"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return &statusError{http.StatusBadRequest, codeInvalid, "", "could not read the request body"}
	}
	if len(body) > MaxBody {
		return &statusError{http.StatusRequestEntityTooLarge, codeInvalid, "", fmt.Sprintf("the request body is larger than %d bytes", MaxBody)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var field string
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			field = ute.Field
		}
		if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field = strings.Trim(s, `"`)
		}
		return &statusError{http.StatusBadRequest, codeInvalid, field, "the request body is not valid JSON for this endpoint: " + err.Error()}
	}
	if dec.More() {
		return &statusError{http.StatusBadRequest, codeInvalid, "", "the request body has data after the JSON object"}
	}
	return nil
}

// statusError is an API error with its status, code, field and message.
type statusError struct {
	status               int
	code, field, message string
}

func (e *statusError) Error() string { return e.message }

// fail renders an error: API and input errors with their status, not-found as 404; anything
// else goes to the server's error handler (logged with an error ID, 500).
func (a *API) fail(c echo.Context, err error) error {
	var ie *tenants.InputError
	var se *statusError
	switch {
	case errors.As(err, &se):
		return apiError(c, se.status, se.code, se.field, se.message)
	case errors.As(err, &ie):
		switch ie.Kind {
		case tenants.KindConflict:
			return apiError(c, http.StatusConflict, codeConflict, ie.Field, ie.Message)
		case tenants.KindUnprocessable:
			return apiError(c, http.StatusUnprocessableEntity, codeUnprocessable, ie.Field, ie.Message)
		default:
			return apiError(c, http.StatusBadRequest, codeInvalid, ie.Field, ie.Message)
		}
	case errors.Is(err, db.ErrNotFound):
		return apiError(c, http.StatusNotFound, codeNotFound, "", "not found")
	}
	return err // the server's error handler logs it with an error ID
}

// tenant resolves :slug.
func (a *API) tenant(c echo.Context) (*db.Tenant, error) {
	t, err := a.tenants.TenantBySlug(c.Request().Context(), c.Param("slug"))
	if errors.Is(err, db.ErrNotFound) {
		return nil, &statusError{http.StatusNotFound, codeNotFound, "", fmt.Sprintf("there is no tenant %q", c.Param("slug"))}
	}
	return t, err
}
