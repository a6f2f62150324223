package dbtest

import (
	"time"

	"github.com/sloworks/broker/db"
)

// signingKey adds a key of the tenant created at created and activating at activates.
func (h *env) signingKey(tenantID, backend string, version int, created, activates time.Time, retire *time.Time) db.SigningKey {
	h.Helper()
	k := db.SigningKey{TenantID: tenantID, Backend: backend, Version: version,
		Certificate: []byte{0x30, 0x82, byte(version)}, CreatedAt: created, ActivatesAt: activates}
	h.ok("add signing key", h.s.AddSigningKey(h.ctx, &k, retire))
	return k
}

var signingKeyTests = []test{
	{"AddAndList", func(h *env) {
		tn := h.tenant("acme")
		k1 := h.signingKey(tn.ID, db.KeyBackendLocal, 1, t0, t0, nil)
		if k1.ID == "" {
			h.Fatal("AddSigningKey left the ID empty")
		}
		got, err := h.s.ListSigningKeys(h.ctx, tn.ID)
		h.ok("list", err)
		h.equal("keys", []db.SigningKey{k1}, got)

		// A rotation: the next key activates in a week, the current one retires a week after.
		switchAt := t0.Add(time.Hour).Add(7 * 24 * time.Hour)
		retire := switchAt.Add(7 * 24 * time.Hour)
		k2 := h.signingKey(tn.ID, db.KeyBackendVault, 1, t0.Add(time.Hour), switchAt, &retire)
		got, err = h.s.ListSigningKeys(h.ctx, tn.ID)
		h.ok("list", err)
		k1.RetiresAt = &retire
		h.equal("keys after rotation", []db.SigningKey{k1, k2}, got)
	}},
	{"GeneratedCreatedAt", func(h *env) {
		tn := h.tenant("acme")
		k := db.SigningKey{TenantID: tn.ID, Backend: db.KeyBackendLocal, Version: 1, Certificate: []byte{1}, ActivatesAt: t0}
		before := time.Now().Add(-time.Second)
		h.ok("add", h.s.AddSigningKey(h.ctx, &k, nil))
		if k.CreatedAt.Before(before) || k.CreatedAt.Location() != time.UTC {
			h.Errorf("CreatedAt %v: want now, in UTC", k.CreatedAt)
		}
	}},
	{"Conflicts", func(h *env) {
		tn := h.tenant("acme")
		h.signingKey(tn.ID, db.KeyBackendLocal, 1, t0, t0, nil)
		dup := db.SigningKey{TenantID: tn.ID, Backend: db.KeyBackendLocal, Version: 1, Certificate: []byte{2}, CreatedAt: t0.Add(time.Minute), ActivatesAt: t0.Add(time.Minute)}
		h.is("same backend and version", h.s.AddSigningKey(h.ctx, &dup, nil), db.ErrConflict)
		// The same version number in another backend is another key.
		h.signingKey(tn.ID, db.KeyBackendVault, 1, t0.Add(time.Minute), t0.Add(time.Minute), nil)
		// A pending rotation: a second one is refused until the switch.
		h.signingKey(tn.ID, db.KeyBackendVault, 2, t0.Add(2*time.Minute), t0.Add(time.Hour), nil)
		next := db.SigningKey{TenantID: tn.ID, Backend: db.KeyBackendVault, Version: 3, Certificate: []byte{3}, CreatedAt: t0.Add(3 * time.Minute), ActivatesAt: t0.Add(2 * time.Hour)}
		h.is("second pending rotation", h.s.AddSigningKey(h.ctx, &next, nil), db.ErrConflict)
		got, err := h.s.ListSigningKeys(h.ctx, tn.ID)
		h.ok("list", err)
		if len(got) != 3 {
			h.Errorf("%d keys after refused adds, want 3", len(got))
		}
		// After the switch, the next rotation is allowed.
		next.CreatedAt = t0.Add(time.Hour)
		h.ok("rotation after the switch", h.s.AddSigningKey(h.ctx, &next, nil))
	}},
	{"RetireOnlyUnretired", func(h *env) {
		tn := h.tenant("acme")
		r1 := t0.Add(time.Hour)
		k1 := h.signingKey(tn.ID, db.KeyBackendLocal, 1, t0, t0, nil)
		k2 := h.signingKey(tn.ID, db.KeyBackendLocal, 2, t0.Add(time.Minute), t0.Add(time.Minute), &r1)
		r2 := t0.Add(2 * time.Hour)
		k3 := h.signingKey(tn.ID, db.KeyBackendLocal, 3, t0.Add(2*time.Minute), t0.Add(2*time.Minute), &r2)
		got, err := h.s.ListSigningKeys(h.ctx, tn.ID)
		h.ok("list", err)
		k1.RetiresAt, k2.RetiresAt = &r1, &r2
		h.equal("keys", []db.SigningKey{k1, k2, k3}, got)
	}},
	{"MissingTenant", func(h *env) {
		k := db.SigningKey{TenantID: "no-such-tenant", Backend: db.KeyBackendLocal, Version: 1, Certificate: []byte{1}, CreatedAt: t0, ActivatesAt: t0}
		h.is("add", h.s.AddSigningKey(h.ctx, &k, nil), db.ErrNotFound)
	}},
	{"TenantIsolation", func(h *env) {
		a, b := h.tenant("a"), h.tenant("b")
		ka := h.signingKey(a.ID, db.KeyBackendVault, 1, t0, t0, nil)
		kb := h.signingKey(b.ID, db.KeyBackendVault, 1, t0, t0, nil)
		// A pending key of b does not block a rotation of a; retiring a's keys leaves b's.
		h.signingKey(b.ID, db.KeyBackendVault, 2, t0.Add(time.Minute), t0.Add(time.Hour), nil)
		r := t0.Add(3 * time.Hour)
		ka2 := h.signingKey(a.ID, db.KeyBackendVault, 2, t0.Add(2*time.Minute), t0.Add(2*time.Hour), &r)
		got, err := h.s.ListSigningKeys(h.ctx, b.ID)
		h.ok("list b", err)
		if len(got) != 2 || got[0].ID != kb.ID || got[0].RetiresAt != nil {
			h.Errorf("tenant b's keys changed by tenant a's rotation: %+v", got)
		}
		n, err := h.s.DeleteSigningKeys(h.ctx, b.ID)
		h.ok("delete b", err)
		if n != 2 {
			h.Errorf("deleted %d of b's keys, want 2", n)
		}
		got, err = h.s.ListSigningKeys(h.ctx, a.ID)
		h.ok("list a", err)
		ka.RetiresAt = &r
		h.equal("a's keys after b's deleted", []db.SigningKey{ka, ka2}, got)
	}},
	{"DeleteTenant", func(h *env) {
		a, b := h.tenant("a"), h.tenant("b")
		h.signingKey(a.ID, db.KeyBackendLocal, 1, t0, t0, nil)
		kb := h.signingKey(b.ID, db.KeyBackendLocal, 1, t0, t0, nil)
		h.ok("delete tenant", h.s.DeleteTenant(h.ctx, a.ID))
		got, err := h.s.ListSigningKeys(h.ctx, a.ID)
		h.ok("list a", err)
		if len(got) != 0 {
			h.Errorf("deleted tenant keeps %d keys", len(got))
		}
		got, err = h.s.ListSigningKeys(h.ctx, b.ID)
		h.ok("list b", err)
		h.equal("b's keys", []db.SigningKey{kb}, got)
	}},
}
