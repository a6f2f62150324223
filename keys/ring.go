package keys

import (
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/sloworks/broker/db"
)

// Backend holds numbered versions of tenants' keys (local files, a Transit key). The Ring decides
// which version signs and which certificates are published; a Backend only keeps key material.
type Backend interface {
	// Name is the backend's name in the store (db.KeyBackendLocal, db.KeyBackendVault).
	Name() string
	// Existing returns the key the tenant had in this backend before the store knew of it (an
	// upgrade): the version that signed, pinned, and the certificate published for it when one is
	// kept beside the key (nil otherwise). Nil when the backend has no key for the tenant.
	Existing(ctx context.Context, tenantID string) (*Version, error)
	// NewVersion makes a new version of the tenant's key (the key itself on first use).
	NewVersion(ctx context.Context, tenantID string) (*Version, error)
	// Signer returns a signer pinned to one version of the tenant's key.
	Signer(ctx context.Context, tenantID string, version int) (crypto.Signer, error)
	// DeleteKeys deletes every version of the tenant's key; no key is not an error.
	DeleteKeys(ctx context.Context, tenantID string) error
}

// Version is one version of a tenant's key in a backend.
type Version struct {
	Number      int
	Signer      crypto.Signer
	Certificate *x509.Certificate // nil when the backend keeps none
}

// Exporter is a backend that can hand out a version's private key, for a migration.
type Exporter interface {
	PrivateKey(ctx context.Context, tenantID string, version int) (crypto.Signer, error)
}

// Importer is a backend that can take an existing private key as a new version of the tenant's
// key, keeping its public key (so its certificate stays valid).
type Importer interface {
	Import(ctx context.Context, tenantID string, key crypto.Signer) (*Version, error)
}

// ErrImportRefused wraps the reason a backend refused to import a key (not an outage).
var ErrImportRefused = errors.New("key import refused")

// ErrRotationPending is returned when a tenant's next key is already published and not yet
// signing: one rotation at a time.
var ErrRotationPending = errors.New("a rotation is already pending")

// Default ring settings.
const (
	DefaultOverlap  = 7 * 24 * time.Hour
	DefaultCacheTTL = 30 * time.Second
)

// Ring is the keys.Source over the store's signing_keys: the signing key of a tenant is its key
// with the latest ActivatesAt not after now, pinned to its backend version; the published
// certificates are those of every key not yet retired (a next key from its creation, the
// previous key until its RetiresAt). Each replica caches a tenant's pair for at most CacheTTL
// and never past the tenant's next activation or retirement, so replicas agree within CacheTTL
// on what they publish and exactly on when the switch happens.
type Ring struct {
	store    db.SigningKeys
	backends map[string]Backend
	order    []string // primary first
	overlap  time.Duration
	ttl      time.Duration
	now      func() time.Time
	logger   *slog.Logger

	mu      sync.Mutex
	entries map[string]*ringEntry
}

type ringEntry struct {
	mu      sync.Mutex
	kp      *KeyPair
	expires time.Time
}

var _ Source = (*Ring)(nil)

// RingOptions configure a Ring.
type RingOptions struct {
	Store db.SigningKeys
	// Primary is where new keys and rotations go; Others are backends that may still hold
	// tenants' keys (adopted as they are, and signing until a migration or rotation).
	Primary Backend
	Others  []Backend
	// Overlap is how long a next key is published before it signs, and how long the previous
	// key stays published after the switch (DefaultOverlap when zero).
	Overlap time.Duration
	// CacheTTL bounds how long a tenant's pair is cached (DefaultCacheTTL when zero; negative
	// means no cache).
	CacheTTL time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// NewRing returns a Ring.
func NewRing(o RingOptions) (*Ring, error) {
	if o.Store == nil || o.Primary == nil {
		return nil, errors.New("key ring: a store and a primary backend are required")
	}
	r := &Ring{store: o.Store, backends: map[string]Backend{}, overlap: o.Overlap, ttl: o.CacheTTL, now: o.Now, logger: o.Logger, entries: map[string]*ringEntry{}}
	for _, b := range append([]Backend{o.Primary}, o.Others...) {
		if _, dup := r.backends[b.Name()]; dup {
			return nil, fmt.Errorf("key ring: backend %q given twice", b.Name())
		}
		r.backends[b.Name()] = b
		r.order = append(r.order, b.Name())
	}
	if r.overlap == 0 {
		r.overlap = DefaultOverlap
	}
	if r.overlap < 0 {
		return nil, errors.New("key ring: negative overlap")
	}
	if r.ttl == 0 {
		r.ttl = DefaultCacheTTL
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Overlap is the ring's overlap.
func (r *Ring) Overlap() time.Duration { return r.overlap }

// Primary is the name of the backend new keys go to.
func (r *Ring) Primary() string { return r.order[0] }

func (r *Ring) entry(tenantID string) *ringEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[tenantID]
	if e == nil {
		e = &ringEntry{}
		r.entries[tenantID] = e
	}
	return e
}

// invalidate drops the tenant's cached pair on this replica.
func (r *Ring) invalidate(tenantID string) {
	r.mu.Lock()
	delete(r.entries, tenantID)
	r.mu.Unlock()
}

// KeyPair returns the tenant's signing key and the certificates its metadata publishes,
// adopting an existing key or creating one on first use.
func (r *Ring) KeyPair(ctx context.Context, tenantID string) (*KeyPair, error) {
	e := r.entry(tenantID)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := r.now().UTC()
	if e.kp != nil && now.Before(e.expires) {
		return e.kp, nil
	}
	rows, err := r.rows(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	now = r.now().UTC() // after a first key was adopted or created just now
	kp, expires, err := r.pair(ctx, tenantID, rows, now)
	if err != nil {
		return nil, err
	}
	if r.ttl > 0 {
		e.kp, e.expires = kp, expires
	}
	return kp, nil
}

// rows returns the tenant's keys, adopting or creating the first one when there is none.
func (r *Ring) rows(ctx context.Context, tenantID string) ([]db.SigningKey, error) {
	rows, err := r.store.ListSigningKeys(ctx, tenantID)
	if err != nil || len(rows) > 0 {
		return rows, err
	}
	if err := r.adopt(ctx, tenantID); err != nil {
		return nil, err
	}
	return r.store.ListSigningKeys(ctx, tenantID)
}

// adopt gives a tenant without rows its first row: the key it already has in a backend (the
// primary first), with the certificate published for it, so an upgrade never changes a
// published certificate; else a new key in the primary backend.
func (r *Ring) adopt(ctx context.Context, tenantID string) error {
	var (
		b   Backend
		v   *Version
		err error
	)
	for _, name := range r.order {
		if v, err = r.backends[name].Existing(ctx, tenantID); err != nil {
			return err
		}
		if v != nil {
			b = r.backends[name]
			break
		}
	}
	what := "tenant key adopted"
	if v == nil {
		b = r.backends[r.order[0]]
		if v, err = b.NewVersion(ctx, tenantID); err != nil {
			return err
		}
		what = "tenant key created"
	}
	now := r.now().UTC()
	cert := v.Certificate
	if cert == nil {
		if cert, err = SelfSignedCertificate(v.Signer, "broker tenant "+tenantID, now); err != nil {
			return err
		}
	}
	k := db.SigningKey{TenantID: tenantID, Backend: b.Name(), Version: v.Number, Certificate: cert.Raw, CreatedAt: now, ActivatesAt: now}
	if err := r.store.AddSigningKey(ctx, &k, nil); err != nil && !errors.Is(err, db.ErrConflict) {
		return err // a conflict: another replica adopted it first; its row is the one
	}
	r.logger.InfoContext(ctx, what, "tenant", tenantID, "backend", b.Name(), "version", v.Number, "sha256", Fingerprint(cert.Raw))
	return nil
}

// pair builds the key pair from the tenant's rows at now, and says until when it holds.
func (r *Ring) pair(ctx context.Context, tenantID string, rows []db.SigningKey, now time.Time) (*KeyPair, time.Time, error) {
	expires := now.Add(r.ttl)
	for _, k := range rows {
		if k.ActivatesAt.After(now) && k.ActivatesAt.Before(expires) {
			expires = k.ActivatesAt
		}
		if k.RetiresAt != nil && k.RetiresAt.After(now) && k.RetiresAt.Before(expires) {
			expires = *k.RetiresAt
		}
	}
	active := current(rows, now)
	if active < 0 {
		return nil, time.Time{}, fmt.Errorf("tenant %s has no signing key active at %s", tenantID, now.Format(time.RFC3339))
	}
	cur := rows[active]
	cert, err := x509.ParseCertificate(cur.Certificate)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("tenant %s: stored certificate of %s key version %d: %w", tenantID, cur.Backend, cur.Version, err)
	}
	b, ok := r.backends[cur.Backend]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("tenant %s signs with a %s key, and that backend is not configured", tenantID, cur.Backend)
	}
	signer, err := b.Signer(ctx, tenantID, cur.Version)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !publicEqual(signer.Public(), cert.PublicKey) {
		return nil, time.Time{}, fmt.Errorf("tenant %s: %s key version %d does not match its published certificate (was the key replaced?)", tenantID, cur.Backend, cur.Version)
	}
	kp := &KeyPair{Signer: signer, Certificate: cert, Published: []*x509.Certificate{cert}}
	seen := map[string]bool{string(cert.Raw): true}
	for _, k := range rows {
		if published(k, now) && !seen[string(k.Certificate)] {
			c, err := x509.ParseCertificate(k.Certificate)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("tenant %s: stored certificate of %s key version %d: %w", tenantID, k.Backend, k.Version, err)
			}
			seen[string(k.Certificate)] = true
			kp.Published = append(kp.Published, c)
		}
	}
	return kp, expires, nil
}

// current is the index of the signing key at now: the latest ActivatesAt not after now among
// keys not retired (a key a migration replaced retires the moment its successor activates),
// else among all; -1 when no key is active yet.
func current(rows []db.SigningKey, now time.Time) int {
	active, any := -1, -1
	for i, k := range rows { // ordered by ActivatesAt
		if k.ActivatesAt.After(now) {
			continue
		}
		any = i
		if published(k, now) {
			active = i
		}
	}
	if active < 0 {
		return any
	}
	return active
}

func published(k db.SigningKey, now time.Time) bool {
	return k.RetiresAt == nil || k.RetiresAt.After(now)
}

func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// Forget deletes the tenant's keys in every backend and its rows. Every backend is asked, not
// only those the rows name: the rows may be gone with the tenant already.
func (r *Ring) Forget(ctx context.Context, tenantID string) error {
	r.invalidate(tenantID)
	var errs []error
	for _, name := range r.order {
		if err := r.backends[name].DeleteKeys(ctx, tenantID); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if _, err := r.store.DeleteSigningKeys(ctx, tenantID); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.logger.InfoContext(ctx, "tenant keys deleted", "tenant", tenantID)
	return nil
}

// Rotate makes a new key in the primary backend and publishes it as the tenant's next key: it
// signs from now + overlap, and the keys it replaces leave the metadata an overlap after that.
func (r *Ring) Rotate(ctx context.Context, tenantID string) (*db.SigningKey, error) {
	return r.rotateTo(ctx, tenantID, r.backends[r.order[0]])
}

func (r *Ring) rotateTo(ctx context.Context, tenantID string, b Backend) (*db.SigningKey, error) {
	e := r.entry(tenantID)
	e.mu.Lock()
	defer e.mu.Unlock()
	rows, err := r.rows(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	if p := pending(rows, now); p != nil {
		return nil, fmt.Errorf("tenant %s: %w (the next key signs from %s)", tenantID, ErrRotationPending, p.ActivatesAt.Format(time.RFC3339))
	}
	v, err := b.NewVersion(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	cert, err := SelfSignedCertificate(v.Signer, "broker tenant "+tenantID, now)
	if err != nil {
		return nil, err
	}
	switchAt := now.Add(r.overlap)
	retire := switchAt.Add(r.overlap)
	k := db.SigningKey{TenantID: tenantID, Backend: b.Name(), Version: v.Number, Certificate: cert.Raw, CreatedAt: now, ActivatesAt: switchAt}
	if err := r.store.AddSigningKey(ctx, &k, &retire); err != nil {
		if errors.Is(err, db.ErrConflict) {
			return nil, fmt.Errorf("tenant %s: %w (another replica rotated at the same time)", tenantID, ErrRotationPending)
		}
		return nil, err
	}
	e.kp = nil
	r.logger.InfoContext(ctx, "tenant key rotated", "tenant", tenantID, "backend", b.Name(), "version", v.Number,
		"signs_from", switchAt, "previous_retires", retire, "sha256", Fingerprint(cert.Raw))
	return &k, nil
}

func pending(rows []db.SigningKey, now time.Time) *db.SigningKey {
	for i := range rows {
		if rows[i].ActivatesAt.After(now) {
			return &rows[i]
		}
	}
	return nil
}

// RotateIfDue rotates the tenant's key when its current key has signed for period or longer
// and no rotation is pending. A tenant without keys yet is left alone. It reports whether it
// rotated.
func (r *Ring) RotateIfDue(ctx context.Context, tenantID string, period time.Duration) (bool, error) {
	rows, err := r.store.ListSigningKeys(ctx, tenantID)
	if err != nil || len(rows) == 0 {
		return false, err
	}
	now := r.now().UTC()
	if pending(rows, now) != nil {
		return false, nil
	}
	cur := rows[current(rows, now)] // rows exist and none is pending: one is current
	if now.Before(cur.ActivatesAt.Add(period)) {
		return false, nil
	}
	if _, err := r.Rotate(ctx, tenantID); err != nil {
		if errors.Is(err, ErrRotationPending) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Migrate moves the tenant's signing key into the primary backend. The current key is
// imported when its backend can export it and the primary can import it, so the published
// certificate does not change and the imported version signs at once; when the import is
// refused, it rotates into the primary instead (the new key published as next, the old one
// signing until the switch). It returns the new row and whether the key was imported.
func (r *Ring) Migrate(ctx context.Context, tenantID string) (*db.SigningKey, bool, error) {
	target := r.backends[r.order[0]]
	e := r.entry(tenantID)
	e.mu.Lock()
	rows, err := r.rows(ctx, tenantID)
	if err != nil {
		e.mu.Unlock()
		return nil, false, err
	}
	now := r.now().UTC()
	if p := pending(rows, now); p != nil {
		e.mu.Unlock()
		if p.Backend == target.Name() {
			return p, false, nil // already on its way
		}
		return nil, false, fmt.Errorf("tenant %s: %w (the next key signs from %s; migrate after that)", tenantID, ErrRotationPending, p.ActivatesAt.Format(time.RFC3339))
	}
	cur := rows[current(rows, now)]
	if cur.Backend == target.Name() {
		e.mu.Unlock()
		return &cur, false, nil
	}
	exp, okExp := r.backends[cur.Backend].(Exporter)
	imp, okImp := target.(Importer)
	if !okExp || !okImp {
		e.mu.Unlock()
		k, err := r.rotateTo(ctx, tenantID, target)
		return k, false, err
	}
	k, err := r.importKey(ctx, tenantID, cur, exp, imp, target, now)
	e.kp = nil
	e.mu.Unlock()
	if errors.Is(err, ErrImportRefused) {
		r.logger.WarnContext(ctx, "key import refused; migrating by rotation", "tenant", tenantID, "backend", target.Name(), "error", err)
		k, err := r.rotateTo(ctx, tenantID, target)
		return k, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return k, true, nil
}

func (r *Ring) importKey(ctx context.Context, tenantID string, cur db.SigningKey, exp Exporter, imp Importer, target Backend, now time.Time) (*db.SigningKey, error) {
	cert, err := x509.ParseCertificate(cur.Certificate)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: stored certificate: %w", tenantID, err)
	}
	priv, err := exp.PrivateKey(ctx, tenantID, cur.Version)
	if err != nil {
		return nil, err
	}
	v, err := imp.Import(ctx, tenantID, priv)
	if err != nil {
		return nil, err
	}
	if !publicEqual(v.Signer.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("tenant %s: the imported key does not match the published certificate", tenantID)
	}
	// The same certificate, now held by the target: it signs at once, and the old row retires
	// at once (its certificate stays published through the new row).
	k := db.SigningKey{TenantID: tenantID, Backend: target.Name(), Version: v.Number, Certificate: cur.Certificate, CreatedAt: now, ActivatesAt: now}
	if err := r.store.AddSigningKey(ctx, &k, &now); err != nil {
		return nil, err
	}
	r.logger.InfoContext(ctx, "tenant key migrated", "tenant", tenantID, "from", cur.Backend, "to", target.Name(), "version", v.Number, "sha256", Fingerprint(cur.Certificate))
	return &k, nil
}

// Key states in a KeyInfo.
const (
	StateNext     = "next"
	StateCurrent  = "current"
	StateRetiring = "retiring"
	StateRetired  = "retired"
)

// KeyInfo describes one of a tenant's keys, public data only.
type KeyInfo struct {
	Backend     string     `json:"backend"`
	Version     int        `json:"version"`
	State       string     `json:"state"`
	SHA256      string     `json:"sha256_fingerprint"`
	SHA1        string     `json:"sha1_fingerprint"`
	NotAfter    time.Time  `json:"certificate_not_after"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiresAt   *time.Time `json:"retires_at,omitempty"`
}

// List describes the tenant's keys, oldest first (adopting or creating the first one).
func (r *Ring) List(ctx context.Context, tenantID string) ([]KeyInfo, error) {
	e := r.entry(tenantID)
	e.mu.Lock()
	rows, err := r.rows(ctx, tenantID)
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	now := r.now().UTC() // after a first key was adopted or created just now
	active := current(rows, now)
	out := make([]KeyInfo, 0, len(rows))
	for i, k := range rows {
		info := KeyInfo{Backend: k.Backend, Version: k.Version, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiresAt: k.RetiresAt,
			SHA256: Fingerprint(k.Certificate)}
		s1 := sha1.Sum(k.Certificate)
		info.SHA1 = hex.EncodeToString(s1[:])
		if c, err := x509.ParseCertificate(k.Certificate); err == nil {
			info.NotAfter = c.NotAfter
		}
		switch {
		case i == active:
			info.State = StateCurrent
		case k.ActivatesAt.After(now):
			info.State = StateNext
		case published(k, now):
			info.State = StateRetiring
		default:
			info.State = StateRetired
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ActivatesAt.Before(out[j].ActivatesAt) })
	return out, nil
}

// Fingerprint is the hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// Ping checks the backends that can be down (Vault): nil when each that has a Ping answers.
func (r *Ring) Ping(ctx context.Context) error {
	for _, name := range r.order {
		if p, ok := r.backends[name].(interface{ Ping(context.Context) error }); ok {
			if err := p.Ping(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}
