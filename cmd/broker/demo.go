package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/demo"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/tenants"
)

// DemoTenant is the slug of the demo tenant.
const DemoTenant = "demo"

// wireDemo creates (or refreshes) the demo tenant, its connection to the built-in demo IdP and
// its demo app, and mounts the demo under /demo/. The demo IdP and app get new keys on every
// start, so their connection and app are replaced each time.
func (s *server) wireDemo(ctx context.Context, stdout io.Writer, ks keys.Source) error {
	t, err := s.tenants.TenantBySlug(ctx, DemoTenant)
	if errors.Is(err, db.ErrNotFound) {
		t, err = s.tenants.CreateTenant(ctx, DemoTenant, "Demo")
	}
	if err != nil {
		return err
	}
	conns, err := s.tenants.ListConnections(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, c := range conns {
		if err := s.tenants.DeleteConnection(ctx, t.ID, c.ID); err != nil {
			return err
		}
	}
	apps, err := s.tenants.ListApps(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, a := range apps {
		if err := s.tenants.DeleteApp(ctx, t.ID, a.ID); err != nil {
			return err
		}
	}
	kp, err := ks.KeyPair(ctx, t.ID)
	if err != nil {
		return err
	}
	base, _ := url.Parse(s.cfg.BaseURL)
	now := timeNow()
	d, err := demo.New(base, s.sso.IdPMetadata(t.Slug, kp.Certificates(), now), s.sso.SPMetadata(t.Slug, kp.Certificates(), now))
	if err != nil {
		return err
	}
	idpMD, err := d.IdPMetadata()
	if err != nil {
		return err
	}
	cfg, _ := json.Marshal(map[string]string{"metadata_xml": string(idpMD)})
	if _, _, err := s.tenants.CreateConnection(ctx, t, "generic", "demo-idp", cfg); err != nil {
		return fmt.Errorf("connect demo idp: %w", err)
	}
	appMD, err := d.AppMetadata()
	if err != nil {
		return err
	}
	if _, _, err := s.tenants.CreateApp(ctx, t, tenants.AppInput{Name: "demo-app", MetadataXML: string(appMD)}); err != nil {
		return fmt.Errorf("register demo app: %w", err)
	}
	s.echo.Any("/demo/*", echo.WrapHandler(d.Handler()))
	s.echo.GET("/demo", func(c echo.Context) error { return c.Redirect(302, "/demo/") })
	s.echo.GET("/", func(c echo.Context) error { return c.Redirect(302, "/demo/") })
	fmt.Fprintf(stdout, "\nDemo ready. Open %s and sign in as alice / %s\n\n", d.URL(), demo.Users["alice"])
	return nil
}
