package dbtest

import (
	"time"

	"github.com/sloworks/broker/db"
)

// generated checks the ID and CreatedAt a Create filled in: an ID and a time between before and
// after (give or take the microsecond a backend may drop), in UTC.
func (h *env) generated(id string, created, before, after time.Time) {
	h.Helper()
	if id == "" {
		h.Error("create left the ID empty")
	}
	if created.Before(before.Add(-time.Microsecond)) || created.After(after.Add(time.Microsecond)) {
		h.Errorf("generated CreatedAt %v is not between %v and %v", created, before, after)
	}
	if created.Location() != time.UTC {
		h.Errorf("generated CreatedAt %v is not in UTC", created)
	}
}

var tenantTests = []test{
	{"CreateGeneratesIDAndCreatedAt", func(h *env) {
		before := time.Now()
		a := db.Tenant{Slug: "acme", Name: "Acme"}
		h.ok("create", h.s.CreateTenant(h.ctx, &a))
		b := db.Tenant{Slug: "beta", Name: "Beta"}
		h.ok("create", h.s.CreateTenant(h.ctx, &b))
		h.generated(a.ID, a.CreatedAt, before, time.Now())
		if a.ID == b.ID {
			h.Errorf("two tenants got the same ID %q", a.ID)
		}
		got, err := h.s.GetTenant(h.ctx, a.ID)
		h.ok("get", err)
		h.equal("get", &a, got)
	}},
	{"CreateKeepsIDAndCreatedAt", func(h *env) {
		a := db.Tenant{ID: "tenant-a", Slug: "acme", Name: "Acme", CreatedAt: t0}
		h.ok("create", h.s.CreateTenant(h.ctx, &a))
		got, err := h.s.GetTenant(h.ctx, "tenant-a")
		h.ok("get", err)
		h.equal("get", &db.Tenant{ID: "tenant-a", Slug: "acme", Name: "Acme", CreatedAt: t0}, got)
	}},
	{"GetBySlug", func(h *env) {
		a := h.tenant("acme")
		h.tenant("beta")
		got, err := h.s.GetTenantBySlug(h.ctx, "acme")
		h.ok("get by slug", err)
		h.equal("get by slug", &a, got)
	}},
	{"ListOrder", func(h *env) {
		for _, t := range []db.Tenant{
			{ID: "t3", Slug: "c", CreatedAt: t0},
			{ID: "t1", Slug: "a", CreatedAt: t0.Add(time.Second)},
			{ID: "t2", Slug: "b", CreatedAt: t0},
		} {
			h.ok("create", h.s.CreateTenant(h.ctx, &t))
		}
		got, err := h.s.ListTenants(h.ctx)
		h.ok("list", err)
		h.equal("list", []db.Tenant{
			{ID: "t2", Slug: "b", CreatedAt: t0},
			{ID: "t3", Slug: "c", CreatedAt: t0},
			{ID: "t1", Slug: "a", CreatedAt: t0.Add(time.Second)},
		}, got)
	}},
	{"Conflicts", func(h *env) {
		a := h.tenant("acme")
		h.is("duplicate slug", h.s.CreateTenant(h.ctx, &db.Tenant{Slug: "acme"}), db.ErrConflict)
		h.is("duplicate ID", h.s.CreateTenant(h.ctx, &db.Tenant{ID: a.ID, Slug: "other"}), db.ErrConflict)
		got, err := h.s.ListTenants(h.ctx)
		h.ok("list", err)
		h.equal("list", []db.Tenant{a}, got)
	}},
	{"NotFound", func(h *env) {
		h.tenant("acme")
		_, err := h.s.GetTenant(h.ctx, "missing")
		h.is("get", err, db.ErrNotFound)
		_, err = h.s.GetTenantBySlug(h.ctx, "missing")
		h.is("get by slug", err, db.ErrNotFound)
		h.is("delete", h.s.DeleteTenant(h.ctx, "missing"), db.ErrNotFound)
	}},
	{"Delete", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		h.ok("delete", h.s.DeleteTenant(h.ctx, a.ID))
		_, err := h.s.GetTenant(h.ctx, a.ID)
		h.is("get deleted", err, db.ErrNotFound)
		h.is("delete again", h.s.DeleteTenant(h.ctx, a.ID), db.ErrNotFound)
		got, err := h.s.ListTenants(h.ctx)
		h.ok("list", err)
		h.equal("list", []db.Tenant{b}, got)
	}},
}

var connectionTests = []test{
	{"CRUD", func(h *env) {
		t := h.tenant("acme")
		c := h.conn(t.ID, "okta")
		got, err := h.s.GetConnection(h.ctx, t.ID, c.ID)
		h.ok("get", err)
		h.equal("get", &c, got)

		u := c
		u.Name, u.Provider, u.Config, u.EntityID, u.Metadata = "entra", "entra", []byte(`{}`), "https://login.example/x", nil
		u.CreatedAt = t0.Add(99 * time.Hour) // ignored: CreatedAt never changes
		h.ok("update", h.s.UpdateConnection(h.ctx, &u))
		want := u
		want.CreatedAt = c.CreatedAt
		got, err = h.s.GetConnection(h.ctx, t.ID, c.ID)
		h.ok("get updated", err)
		h.equal("get updated", &want, got)
		list, err := h.s.ListConnections(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list", []db.Connection{want}, list)

		h.ok("delete", h.s.DeleteConnection(h.ctx, t.ID, c.ID))
		_, err = h.s.GetConnection(h.ctx, t.ID, c.ID)
		h.is("get deleted", err, db.ErrNotFound)
		list, err = h.s.ListConnections(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list after delete", []db.Connection(nil), list)
	}},
	{"CreateGeneratesIDAndCreatedAt", func(h *env) {
		t := h.tenant("acme")
		before := time.Now()
		c := db.Connection{TenantID: t.ID, Name: "okta", EntityID: "https://okta.example"}
		h.ok("create", h.s.CreateConnection(h.ctx, &c))
		h.generated(c.ID, c.CreatedAt, before, time.Now())
		got, err := h.s.GetConnection(h.ctx, t.ID, c.ID)
		h.ok("get", err)
		h.equal("get", &c, got)
	}},
	{"ListOrder", func(h *env) {
		t := h.tenant("acme")
		// Names and entity IDs sort against the IDs, so an index on them cannot fake the order.
		for i, id := range []string{"c3", "c1", "c2"} {
			k := key[id]
			c := db.Connection{ID: id, TenantID: t.ID, Name: k, EntityID: k, CreatedAt: t0.Add(time.Duration(i%2) * time.Second)}
			h.ok("create", h.s.CreateConnection(h.ctx, &c))
		}
		list, err := h.s.ListConnections(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list", []db.Connection{
			{ID: "c2", TenantID: t.ID, Name: "k2", EntityID: "k2", CreatedAt: t0},
			{ID: "c3", TenantID: t.ID, Name: "k1", EntityID: "k1", CreatedAt: t0},
			{ID: "c1", TenantID: t.ID, Name: "k3", EntityID: "k3", CreatedAt: t0.Add(time.Second)},
		}, list)
	}},
	{"Conflicts", func(h *env) {
		t, o := h.tenant("acme"), h.tenant("other")
		c, d := h.conn(t.ID, "okta"), h.conn(t.ID, "entra")
		for _, tc := range []struct {
			name string
			c    db.Connection
		}{
			{"same name", db.Connection{TenantID: t.ID, Name: c.Name, EntityID: "https://new.example"}},
			{"same entity ID", db.Connection{TenantID: t.ID, Name: "new", EntityID: c.EntityID}},
			{"same ID", db.Connection{ID: c.ID, TenantID: t.ID, Name: "new", EntityID: "https://new.example"}},
		} {
			h.run(tc.name, func(h *env) {
				h.is("create", h.s.CreateConnection(h.ctx, &tc.c), db.ErrConflict)
			})
		}
		u := d
		u.Name = c.Name
		h.is("update to a taken name", h.s.UpdateConnection(h.ctx, &u), db.ErrConflict)
		u = d
		u.EntityID = c.EntityID
		h.is("update to a taken entity ID", h.s.UpdateConnection(h.ctx, &u), db.ErrConflict)
		h.conn(o.ID, "okta") // the same name and entity ID in another tenant
		list, err := h.s.ListConnections(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list", []db.Connection{c, d}, list)
	}},
	{"NotFound", func(h *env) {
		t := h.tenant("acme")
		h.conn(t.ID, "okta")
		_, err := h.s.GetConnection(h.ctx, t.ID, "missing")
		h.is("get", err, db.ErrNotFound)
		h.is("update", h.s.UpdateConnection(h.ctx, &db.Connection{ID: "missing", TenantID: t.ID, Name: "x"}), db.ErrNotFound)
		h.is("delete", h.s.DeleteConnection(h.ctx, t.ID, "missing"), db.ErrNotFound)
	}},
}

var appTests = []test{
	{"CRUD", func(h *env) {
		t := h.tenant("acme")
		a := h.app(t.ID, "wiki")
		got, err := h.s.GetApp(h.ctx, t.ID, a.ID)
		h.ok("get", err)
		h.equal("get", &a, got)
		got, err = h.s.GetAppByEntityID(h.ctx, t.ID, a.EntityID)
		h.ok("get by entity ID", err)
		h.equal("get by entity ID", &a, got)

		u := a
		u.Name, u.EntityID, u.MetadataURL, u.Metadata, u.SignResponse, u.NoFrameLogout = "docs", "https://docs.example", "", nil, false, false
		u.Provider, u.LogoutSigAlg = "", "rsa-sha256"
		u.CreatedAt = t0.Add(99 * time.Hour) // ignored: CreatedAt never changes
		h.ok("update", h.s.UpdateApp(h.ctx, &u))
		want := u
		want.CreatedAt = a.CreatedAt
		got, err = h.s.GetApp(h.ctx, t.ID, a.ID)
		h.ok("get updated", err)
		h.equal("get updated", &want, got)
		_, err = h.s.GetAppByEntityID(h.ctx, t.ID, a.EntityID)
		h.is("get by old entity ID", err, db.ErrNotFound)
		list, err := h.s.ListApps(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list", []db.App{want}, list)

		h.ok("delete", h.s.DeleteApp(h.ctx, t.ID, a.ID))
		_, err = h.s.GetApp(h.ctx, t.ID, a.ID)
		h.is("get deleted", err, db.ErrNotFound)
		list, err = h.s.ListApps(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list after delete", []db.App(nil), list)
	}},
	{"CreateGeneratesIDAndCreatedAt", func(h *env) {
		t := h.tenant("acme")
		before := time.Now()
		a := db.App{TenantID: t.ID, Name: "wiki", EntityID: "https://wiki.example"}
		h.ok("create", h.s.CreateApp(h.ctx, &a))
		h.generated(a.ID, a.CreatedAt, before, time.Now())
		got, err := h.s.GetApp(h.ctx, t.ID, a.ID)
		h.ok("get", err)
		h.equal("get", &a, got)
	}},
	{"ListOrder", func(h *env) {
		t := h.tenant("acme")
		// Names and entity IDs sort against the IDs, so an index on them cannot fake the order.
		for i, id := range []string{"a3", "a1", "a2"} {
			k := key[id]
			a := db.App{ID: id, TenantID: t.ID, Name: k, EntityID: k, CreatedAt: t0.Add(time.Duration(i%2) * time.Second)}
			h.ok("create", h.s.CreateApp(h.ctx, &a))
		}
		list, err := h.s.ListApps(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list", []db.App{
			{ID: "a2", TenantID: t.ID, Name: "k2", EntityID: "k2", CreatedAt: t0},
			{ID: "a3", TenantID: t.ID, Name: "k1", EntityID: "k1", CreatedAt: t0},
			{ID: "a1", TenantID: t.ID, Name: "k3", EntityID: "k3", CreatedAt: t0.Add(time.Second)},
		}, list)
	}},
	{"Conflicts", func(h *env) {
		t, o := h.tenant("acme"), h.tenant("other")
		a, b := h.app(t.ID, "wiki"), h.app(t.ID, "docs")
		for _, tc := range []struct {
			name string
			a    db.App
		}{
			{"same name", db.App{TenantID: t.ID, Name: a.Name, EntityID: "https://new.example"}},
			{"same entity ID", db.App{TenantID: t.ID, Name: "new", EntityID: a.EntityID}},
			{"same ID", db.App{ID: a.ID, TenantID: t.ID, Name: "new", EntityID: "https://new.example"}},
		} {
			h.run(tc.name, func(h *env) {
				h.is("create", h.s.CreateApp(h.ctx, &tc.a), db.ErrConflict)
			})
		}
		u := b
		u.Name = a.Name
		h.is("update to a taken name", h.s.UpdateApp(h.ctx, &u), db.ErrConflict)
		u = b
		u.EntityID = a.EntityID
		h.is("update to a taken entity ID", h.s.UpdateApp(h.ctx, &u), db.ErrConflict)
		oa := h.app(o.ID, "wiki") // the same name and entity ID in another tenant
		got, err := h.s.GetAppByEntityID(h.ctx, o.ID, a.EntityID)
		h.ok("get by entity ID in the other tenant", err)
		h.equal("get by entity ID in the other tenant", &oa, got)
		list, err := h.s.ListApps(h.ctx, t.ID)
		h.ok("list", err)
		h.equal("list", []db.App{a, b}, list)
	}},
	{"NotFound", func(h *env) {
		t := h.tenant("acme")
		h.app(t.ID, "wiki")
		_, err := h.s.GetApp(h.ctx, t.ID, "missing")
		h.is("get", err, db.ErrNotFound)
		_, err = h.s.GetAppByEntityID(h.ctx, t.ID, "https://missing.example")
		h.is("get by entity ID", err, db.ErrNotFound)
		h.is("update", h.s.UpdateApp(h.ctx, &db.App{ID: "missing", TenantID: t.ID, Name: "x"}), db.ErrNotFound)
		h.is("delete", h.s.DeleteApp(h.ctx, t.ID, "missing"), db.ErrNotFound)
	}},
}
