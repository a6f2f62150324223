package vault_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/keystest"
	"github.com/sloworks/broker/keys/local"
	"github.com/sloworks/broker/keys/vault"
)

// ringFixture is a store with one tenant, and rings over Vault (and local keys) on a fake clock.
type ringFixture struct {
	store  *sqlite.Store
	dir    string
	clock  *keystest.Clock
	tenant string
}

func newRingFixture(t *testing.T) *ringFixture {
	t.Helper()
	s, tenant, dir := keystest.StoreWithTenant(t)
	return &ringFixture{store: s, dir: dir, clock: keystest.NewClock(clock), tenant: tenant}
}

func (f *ringFixture) local(t *testing.T) *local.Source {
	t.Helper()
	ls, err := local.New(filepath.Join(f.dir, "keys"), f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// ring is a ring with Vault (client c) as primary and local keys beside it.
func (f *ringFixture) ring(t *testing.T, c *api.Client, overlap time.Duration) *keys.Ring {
	t.Helper()
	vs := newSource(t, c, filepath.Join(f.dir, "vault-certs"), func(o *vault.Options) { o.Now = f.clock.Now })
	r, err := keys.NewRing(keys.RingOptions{Store: f.store, Primary: vs, Others: []keys.Backend{f.local(t)}, Overlap: overlap, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRotationVault rotates a tenant's Transit key across the overlap, with the broker's
// least-privilege policy: the new version is published first, the old version keeps signing
// (pinned) until the switch, and Transit's minimum versions are untouched.
func TestRotationVault(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	c := v.Client(t, brokerToken(t, root))
	f := newRingFixture(t)
	overlap := 24 * time.Hour
	keystest.Rotation(t, f.clock, overlap, f.tenant, func() *keys.Ring { return f.ring(t, c, overlap) })

	k := readTransitKey(t, root, "broker-"+f.tenant)
	if k.LatestVersion != 2 {
		t.Errorf("Transit key at version %d, want 2", k.LatestVersion)
	}
	sec, err := root.Logical().Read("transit/keys/broker-" + f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"min_decryption_version", "min_available_version"} {
		if got := sec.Data[field]; got != nil && got.(interface{ String() string }).String() != "1" && got.(interface{ String() string }).String() != "0" {
			t.Errorf("%s = %v after rotation; want untouched", field, got)
		}
	}
	rows, err := f.store.ListSigningKeys(context.Background(), f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Backend != db.KeyBackendVault || rows[0].Version != 1 || rows[1].Version != 2 {
		t.Errorf("rows: %+v", rows)
	}
}

// TestAdoptVaultCertificateFile: a tenant whose Transit key and certificate file predate the
// store keeps its certificate, read once from the old file location into the store.
func TestAdoptVaultCertificateFile(t *testing.T) {
	v := startVault(t)
	c := v.Root(t)
	f := newRingFixture(t)
	old := newSource(t, c, filepath.Join(f.dir, "vault-certs"))
	before := keyPair(t, old, f.tenant) // as an older broker made it
	r := f.ring(t, c, time.Hour)
	kp, err := r.KeyPair(context.Background(), f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if !kp.Certificate.Equal(before.Certificate) {
		t.Fatal("adoption changed the published certificate")
	}
	keystest.SignAndVerify(t, kp, before.Certificate)
	rows, _ := f.store.ListSigningKeys(context.Background(), f.tenant)
	if len(rows) != 1 || !before.Certificate.Equal(mustParse(t, rows[0].Certificate)) {
		t.Fatalf("the store does not hold the adopted certificate: %+v", rows)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMigrateLocalToVault imports a tenant's local key into Transit (BYOK) with the broker's
// policy: the Vault-held key signs at once, and its signatures verify with the unchanged
// certificate.
func TestMigrateLocalToVault(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	c := v.Client(t, brokerToken(t, root))
	f := newRingFixture(t)
	ctx := context.Background()
	before, err := f.local(t).KeyPair(ctx, f.tenant) // the tenant's local key, as an older broker made it
	if err != nil {
		t.Fatal(err)
	}
	r := f.ring(t, c, time.Hour)
	kp, err := r.KeyPair(ctx, f.tenant) // adopted: still local
	if err != nil {
		t.Fatal(err)
	}
	if _, isVault := kp.Signer.(*vault.Signer); isVault || !kp.Certificate.Equal(before.Certificate) {
		t.Fatal("adoption did not keep the local key")
	}
	k, imported, err := r.Migrate(ctx, f.tenant)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !imported || k.Backend != db.KeyBackendVault {
		t.Fatalf("migrate: imported %v, key %+v", imported, k)
	}
	kp, err = r.KeyPair(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	vsig, ok := kp.Signer.(*vault.Signer)
	if !ok {
		t.Fatalf("signer after migration is %T; want the Vault signer", kp.Signer)
	}
	if vsig.KeyName() != "broker-"+f.tenant || vsig.KeyVersion() != k.Version {
		t.Errorf("signer %s v%d", vsig.KeyName(), vsig.KeyVersion())
	}
	if len(kp.Certificates()) != 1 || !kp.Certificate.Equal(before.Certificate) {
		t.Fatal("migration changed the published certificate")
	}
	keystest.SignAndVerify(t, kp, before.Certificate)
	if tk := readTransitKey(t, root, "broker-"+f.tenant); tk.Exportable {
		t.Error("the imported key is exportable")
	}
	// A second migration is a no-op.
	if k2, imported, err := r.Migrate(ctx, f.tenant); err != nil || imported || k2.ID != k.ID {
		t.Errorf("second migration: %+v, %v, %v", k2, imported, err)
	}
	// Rotation still works on an imported key.
	if _, err := r.Rotate(ctx, f.tenant); err != nil {
		t.Errorf("rotate the imported key: %v", err)
	}
	// Deleting the tenant deletes its keys in both backends that hold versions.
	if err := r.Forget(ctx, f.tenant); err != nil {
		t.Fatalf("forget: %v", err)
	}
	if sec, err := root.Logical().Read("transit/keys/broker-" + f.tenant); err != nil || sec != nil {
		t.Errorf("the Transit key is still there: %v, %v", sec, err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "keys", f.tenant+".key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the local key file is still there: %v", err)
	}
}

// TestMigrateByRotation: when Transit refuses the import (a key of that name exists that was
// not imported), the migration publishes a new Vault key as next and the local key signs until
// the switch.
func TestMigrateByRotation(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	f := newRingFixture(t)
	ctx := context.Background()
	before, err := f.local(t).KeyPair(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("transit/keys/broker-"+f.tenant, map[string]any{"type": "rsa-2048"}); err != nil {
		t.Fatal(err)
	}
	overlap := time.Hour
	r := f.ring(t, v.Client(t, brokerToken(t, root)), overlap)
	if _, err := r.KeyPair(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	// The Vault key exists, so the ring adopted it: start from the local key instead.
	if _, err := f.store.DeleteSigningKeys(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	lr, err := keys.NewRing(keys.RingOptions{Store: f.store, Primary: f.local(t), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lr.KeyPair(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	k, imported, err := r.Migrate(ctx, f.tenant)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if imported || k.Backend != db.KeyBackendVault {
		t.Fatalf("migrate: imported %v, key %+v; want a rotation into Vault", imported, k)
	}
	kp, err := r.KeyPair(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	next := mustParse(t, k.Certificate)
	if len(kp.Certificates()) != 2 || !kp.Certificates()[1].Equal(next) {
		t.Fatal("the new Vault key is not published as next")
	}
	keystest.SignAndVerify(t, kp, before.Certificate)
	f.clock.Set(k.ActivatesAt)
	if kp, err = r.KeyPair(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if _, ok := kp.Signer.(*vault.Signer); !ok {
		t.Fatalf("after the switch the signer is %T", kp.Signer)
	}
	keystest.SignAndVerify(t, kp, next)
}

// TestForgetDeletesTransitKey: deleting a tenant deletes its Transit key (every version) with
// the broker's policy, and its rows.
func TestForgetDeletesTransitKey(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	f := newRingFixture(t)
	ctx := context.Background()
	r := f.ring(t, v.Client(t, brokerToken(t, root)), time.Hour)
	if _, err := r.KeyPair(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if err := r.Forget(ctx, f.tenant); err != nil {
		t.Fatalf("forget: %v", err)
	}
	sec, err := root.Logical().Read("transit/keys/broker-" + f.tenant)
	if err != nil || sec != nil {
		t.Errorf("the Transit key is still there: %v, %v", sec, err)
	}
	rows, err := f.store.ListSigningKeys(ctx, f.tenant)
	if err != nil || len(rows) != 0 {
		t.Errorf("rows after Forget: %v, %v", rows, err)
	}
	// Forgetting again (nothing left) is fine.
	if err := r.Forget(ctx, f.tenant); err != nil && !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("second forget: %v", err)
	}
}
