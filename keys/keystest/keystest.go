// Package keystest holds the rotation scenario every key backend runs through a keys.Ring.
package keystest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
)

// Clock is a settable clock for rings under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// SignAndVerify signs a digest with the pair's signer and verifies it with want, which must be
// among the published certificates.
func SignAndVerify(t *testing.T, kp *keys.KeyPair, want *x509.Certificate) {
	t.Helper()
	found := false
	for _, c := range kp.Certificates() {
		found = found || c.Equal(want)
	}
	if !found {
		t.Fatalf("certificate %s is not published", keys.Fingerprint(want.Raw)[:16])
	}
	d := sha256.Sum256([]byte("message " + time.Now().String()))
	sig, err := kp.Signer.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	pub, ok := want.PublicKey.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("certificate key is %T", want.PublicKey)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
		t.Fatalf("signature does not verify with certificate %s: %v", keys.Fingerprint(want.Raw)[:16], err)
	}
}

func fingerprints(cs []*x509.Certificate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, keys.Fingerprint(c.Raw)[:16])
	}
	return out
}

func samePublished(t *testing.T, stage string, kp *keys.KeyPair, want ...*x509.Certificate) {
	t.Helper()
	got := kp.Certificates()
	if len(got) != len(want) {
		t.Fatalf("%s: published %v, want %v", stage, fingerprints(got), fingerprints(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("%s: published %v, want %v", stage, fingerprints(got), fingerprints(want))
		}
	}
}

// Rotation runs a rotation across the overlap with a fake clock: newRing returns a ring on
// the clock (called twice: two replicas on one store), and the tenant must be new.
func Rotation(t *testing.T, clock *Clock, overlap time.Duration, tenantID string, newRing func() *keys.Ring) {
	ctx := context.Background()
	a, b := newRing(), newRing()
	t0 := clock.Now()

	kp, err := a.KeyPair(ctx, tenantID)
	if err != nil {
		t.Fatalf("first key pair: %v", err)
	}
	old := kp.Certificate
	samePublished(t, "before rotation", kp, old)
	SignAndVerify(t, kp, old)

	clock.Set(t0.Add(time.Hour))
	k, err := a.Rotate(ctx, tenantID)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if want := t0.Add(time.Hour).Add(overlap); !k.ActivatesAt.Equal(want) {
		t.Errorf("next key activates at %v, want %v", k.ActivatesAt, want)
	}
	if _, err := a.Rotate(ctx, tenantID); !errors.Is(err, keys.ErrRotationPending) {
		t.Errorf("second rotation while one is pending: %v, want ErrRotationPending", err)
	}
	next, err := x509.ParseCertificate(k.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if next.Equal(old) {
		t.Fatal("rotation kept the certificate")
	}
	switchAt := k.ActivatesAt

	// The replica that rotated publishes the next key at once; the old key still signs.
	kp, err = a.KeyPair(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	samePublished(t, "after rotation (rotating replica)", kp, old, next)
	SignAndVerify(t, kp, old)

	// The other replica, past its cache TTL, sees the same.
	clock.Set(t0.Add(time.Hour + time.Minute))
	for _, r := range []*keys.Ring{a, b} {
		kp, err = r.KeyPair(ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		samePublished(t, "during the first overlap", kp, old, next)
		SignAndVerify(t, kp, old)
	}

	clock.Set(switchAt.Add(-time.Second))
	for _, r := range []*keys.Ring{a, b} {
		if kp, err = r.KeyPair(ctx, tenantID); err != nil {
			t.Fatal(err)
		}
		samePublished(t, "a second before the switch", kp, old, next)
		SignAndVerify(t, kp, old)
	}

	// At the switch, cached pairs are not used: the cache ends at the next activation.
	clock.Set(switchAt)
	for _, r := range []*keys.Ring{a, b} {
		if kp, err = r.KeyPair(ctx, tenantID); err != nil {
			t.Fatal(err)
		}
		samePublished(t, "at the switch", kp, next, old)
		SignAndVerify(t, kp, next)
	}
	infos, err := a.List(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].State != keys.StateRetiring || infos[1].State != keys.StateCurrent {
		t.Errorf("states after the switch: %+v", infos)
	}

	clock.Set(switchAt.Add(overlap - time.Second))
	for _, r := range []*keys.Ring{a, b} {
		if kp, err = r.KeyPair(ctx, tenantID); err != nil {
			t.Fatal(err)
		}
		samePublished(t, "end of the second overlap", kp, next, old)
		SignAndVerify(t, kp, next)
	}

	clock.Set(switchAt.Add(overlap))
	for _, r := range []*keys.Ring{a, b} {
		if kp, err = r.KeyPair(ctx, tenantID); err != nil {
			t.Fatal(err)
		}
		samePublished(t, "after the overlap", kp, next)
		SignAndVerify(t, kp, next)
	}
	if infos, err = b.List(ctx, tenantID); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].State != keys.StateRetired || infos[1].State != keys.StateCurrent {
		t.Errorf("states after the overlap: %+v", infos)
	}
}

// StoreWithTenant opens a SQLite store in a temporary directory with one tenant, acme, and
// returns the store, the tenant's ID and the directory (for key files beside it).
func StoreWithTenant(t testing.TB) (store *sqlite.Store, tenantID, dir string) {
	t.Helper()
	dir = t.TempDir()
	s, err := sqlite.Open(filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tn := db.Tenant{Slug: "acme", Name: "Acme"}
	if err := s.CreateTenant(context.Background(), &tn); err != nil {
		t.Fatal(err)
	}
	return s, tn.ID, dir
}
