package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/keys"
)

// KeyRing is what the keys endpoints need of the tenants' signing keys (keys.Ring).
type KeyRing interface {
	// List describes the tenant's keys: public data only.
	List(ctx context.Context, tenantID string) ([]keys.KeyInfo, error)
	// Rotate publishes a new key as the tenant's next key.
	Rotate(ctx context.Context, tenantID string) (*db.SigningKey, error)
}

// WithKeys enables the signing keys endpoints.
func (a *API) WithKeys(r KeyRing) *API {
	a.keys = r
	return a
}

func (a *API) registerKeys(g *echo.Group) {
	g.GET("/tenants/:slug/keys", a.listKeys)
	g.POST("/tenants/:slug/keys/rotate", a.rotateKey)
}

// listKeys answers {"keys":[...]}: version, backend, state (next, current, retiring,
// retired), fingerprints and times of each key, oldest first. Never private material.
func (a *API) listKeys(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	ks, err := a.keys.List(c.Request().Context(), t.ID)
	if err != nil {
		return a.keyFail(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": ks})
}

// rotateKey publishes a new key as next (it signs after the overlap) and answers 201 with the
// tenant's keys; 409 while a rotation is pending.
func (a *API) rotateKey(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	ctx := c.Request().Context()
	if _, err := a.keys.Rotate(ctx, t.ID); err != nil {
		return a.keyFail(c, err)
	}
	a.logger.InfoContext(ctx, "tenant key rotation started", "tenant", t.ID, "slug", t.Slug)
	ks, err := a.keys.List(ctx, t.ID)
	if err != nil {
		return a.keyFail(c, err)
	}
	return c.JSON(http.StatusCreated, map[string]any{"keys": ks})
}

func (a *API) keyFail(c echo.Context, err error) error {
	switch {
	case errors.Is(err, keys.ErrRotationPending):
		// The caller named the tenant by its slug: say what is pending, not the tenant's ID.
		msg := err.Error()
		if i := strings.Index(msg, keys.ErrRotationPending.Error()); i > 0 {
			msg = msg[i:]
		}
		return apiError(c, http.StatusConflict, codeConflict, "", msg)
	case errors.Is(err, keys.ErrUnavailable):
		return apiError(c, http.StatusServiceUnavailable, "unavailable", "", "signing keys are unavailable right now (Vault); try again later")
	}
	return a.fail(c, err)
}
