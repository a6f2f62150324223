package keys_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/keystest"
	"github.com/sloworks/broker/keys/local"
)

type fixture struct {
	store  *sqlite.Store
	keyDir string
	clock  *keystest.Clock
	tenant string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, tenant, dir := keystest.StoreWithTenant(t)
	return &fixture{store: s, keyDir: filepath.Join(dir, "keys"), clock: keystest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), tenant: tenant}
}

func (f *fixture) ring(t *testing.T, overlap time.Duration) *keys.Ring {
	t.Helper()
	ls, err := local.New(f.keyDir, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	r, err := keys.NewRing(keys.RingOptions{Store: f.store, Primary: ls, Overlap: overlap, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRotationLocal(t *testing.T) {
	f := newFixture(t)
	overlap := 7 * 24 * time.Hour
	keystest.Rotation(t, f.clock, overlap, f.tenant, func() *keys.Ring { return f.ring(t, overlap) })
	// One key file per version.
	for _, name := range []string{f.tenant + ".key", f.tenant + ".v2.key"} {
		st, err := os.Stat(filepath.Join(f.keyDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %o, want 600", name, st.Mode().Perm())
		}
	}
}

// TestAdoptLocalKeyFile: a tenant whose key file predates the store keeps its certificate.
func TestAdoptLocalKeyFile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	legacy, err := local.New(f.keyDir, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	before, err := legacy.KeyPair(ctx, f.tenant) // the key as an older broker made it
	if err != nil {
		t.Fatal(err)
	}
	r := f.ring(t, time.Hour)
	kp, err := r.KeyPair(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if !kp.Certificate.Equal(before.Certificate) || len(kp.Certificates()) != 1 {
		t.Fatal("adoption changed the published certificate")
	}
	keystest.SignAndVerify(t, kp, before.Certificate)
	rows, err := f.store.ListSigningKeys(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Backend != db.KeyBackendLocal || rows[0].Version != 1 {
		t.Fatalf("rows after adoption: %+v", rows)
	}
}

func TestRotateIfDue(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.ring(t, time.Hour)
	period := 30 * 24 * time.Hour
	if did, err := r.RotateIfDue(ctx, f.tenant, period); err != nil || did {
		t.Fatalf("tenant without keys: rotated %v, %v", did, err)
	}
	if _, err := r.KeyPair(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	t0 := f.clock.Now()
	f.clock.Set(t0.Add(period - time.Minute))
	if did, err := r.RotateIfDue(ctx, f.tenant, period); err != nil || did {
		t.Fatalf("before the period: rotated %v, %v", did, err)
	}
	f.clock.Set(t0.Add(period))
	if did, err := r.RotateIfDue(ctx, f.tenant, period); err != nil || !did {
		t.Fatalf("at the period: rotated %v, %v", did, err)
	}
	if did, err := r.RotateIfDue(ctx, f.tenant, period); err != nil || did {
		t.Fatalf("while pending: rotated %v, %v", did, err)
	}
	// The next rotation is a period after the new key's switch.
	f.clock.Set(t0.Add(period + time.Hour + period - time.Minute))
	if did, err := r.RotateIfDue(ctx, f.tenant, period); err != nil || did {
		t.Fatalf("before the next period: rotated %v, %v", did, err)
	}
}

func TestForgetDeletesEveryVersion(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.ring(t, time.Hour)
	if _, err := r.KeyPair(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if err := r.Forget(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(f.keyDir)
	for _, e := range ents {
		t.Errorf("left in the key directory: %s", e.Name())
	}
	rows, err := f.store.ListSigningKeys(ctx, f.tenant)
	if err != nil || len(rows) != 0 {
		t.Errorf("rows after Forget: %v, %v", rows, err)
	}
}

// TestConcurrentRotations: two replicas rotating at once publish exactly one next key.
func TestConcurrentRotations(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, b := f.ring(t, time.Hour), f.ring(t, time.Hour)
	if _, err := a.KeyPair(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, r := range []*keys.Ring{a, b} {
		go func() { _, err := r.Rotate(ctx, f.tenant); errs <- err }()
	}
	var ok, pending int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, keys.ErrRotationPending):
			pending++
		default:
			t.Fatalf("rotate: %v", err)
		}
	}
	if ok != 1 || pending != 1 {
		t.Errorf("%d rotations succeeded and %d were refused; want 1 and 1", ok, pending)
	}
	rows, err := f.store.ListSigningKeys(ctx, f.tenant)
	if err != nil || len(rows) != 2 {
		t.Errorf("rows: %v, %v", rows, err)
	}
}
