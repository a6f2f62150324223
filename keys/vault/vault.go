// Package vault is the production key backend: one Vault Transit key per tenant, created on first
// use as a non-exportable RSA key, signing through transit/sign with PKCS #1 v1.5 over a digest
// the broker computes, so the private key never leaves Vault. The broker uses a Source as a
// keys.Backend of a keys.Ring (backend.go: versions, rotation, BYOK import, deletion), which keeps
// the certificates in the store; used alone as a keys.Source, a Source keeps each certificate as
// a public 0644 file per tenant (the layout of earlier versions, still read to adopt keys; see
// docs/keys.md). Every failure to reach Vault wraps keys.ErrUnavailable. Tokens and secret IDs
// are never logged.
package vault

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/sloworks/broker/keys"
)

// Options configure a Source.
type Options struct {
	// Client reaches Vault. It carries a token unless Login is set.
	Client *api.Client
	// Login (optional, AppRole) authenticates Client before its first request and again when
	// Vault refuses the token (403), e.g. because it expired.
	Login Login
	// Mount is the Transit mount path (DefaultMount when empty).
	Mount string
	// KeyPrefix starts every key name: KeyPrefix + tenant ID (DefaultKeyPrefix when empty).
	KeyPrefix string
	// KeyType is the type of keys the Source creates (DefaultKeyType when empty).
	KeyType string
	// Timeout bounds each Vault request, retries included (DefaultTimeout when zero).
	Timeout time.Duration
	// CertDir keeps the tenants' certificates, one public file per key (created 0755).
	CertDir string
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
	// Logger gets key creation and deletion events; nil means none.
	Logger *slog.Logger
}

// Source gives each tenant a Transit key. Key pairs (public data and the key name only) are
// cached per tenant; a cached tenant still needs Vault for every signature.
type Source struct {
	client  *api.Client
	login   Login
	mount   string
	prefix  string
	keyType string
	timeout time.Duration
	certDir string
	now     func() time.Time
	logger  *slog.Logger

	authMu   sync.Mutex
	loggedIn bool

	mu      sync.Mutex
	entries map[string]*entry
	pubs    map[string]map[int]*rsa.PublicKey // Transit key name → version → public key
}

// entry is one tenant's cache slot; its own lock keeps a slow Vault call for one tenant from
// holding up the others.
type entry struct {
	mu sync.Mutex
	kp *keys.KeyPair
}

var _ keys.Source = (*Source)(nil)

// New returns a Source over Transit.
func New(o Options) (*Source, error) {
	if o.Client == nil {
		return nil, errors.New("vault source: no client")
	}
	st := Settings{Mount: o.Mount, KeyPrefix: o.KeyPrefix, KeyType: o.KeyType, Timeout: o.Timeout}.WithDefaults()
	if err := errors.Join(st.transitErrors()...); err != nil {
		return nil, err
	}
	if o.CertDir == "" {
		return nil, errors.New("vault source: no certificate directory")
	}
	if err := os.MkdirAll(o.CertDir, 0o755); err != nil {
		return nil, fmt.Errorf("create certificate directory: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Source{
		client: o.Client, login: o.Login, mount: st.Mount, prefix: st.KeyPrefix, keyType: st.KeyType,
		timeout: st.Timeout, certDir: o.CertDir, now: o.Now, logger: o.Logger, entries: map[string]*entry{},
	}, nil
}

// Open returns a Source for validated settings (with defaults applied), keeping certificates
// in certDir.
func Open(s Settings, certDir string, logger *slog.Logger) (*Source, error) {
	c, login, err := s.Client()
	if err != nil {
		return nil, err
	}
	return New(Options{Client: c, Login: login, Mount: s.Mount, KeyPrefix: s.KeyPrefix, KeyType: s.KeyType,
		Timeout: s.Timeout, CertDir: certDir, Logger: logger})
}

// tenantRE is what a tenant ID may be to end a Transit key name (it must end with a word
// character); the store's IDs are 32 hex digits.
var tenantRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,126}[A-Za-z0-9_])?$`)

// KeyName is the Transit key name of the tenant.
func (s *Source) KeyName(tenantID string) (string, error) {
	if !tenantRE.MatchString(tenantID) {
		return "", fmt.Errorf("tenant id %q is not usable in a Transit key name", tenantID)
	}
	return s.prefix + tenantID, nil
}

// KeyPair returns the tenant's key pair, creating the Transit key on first use. The signer is
// pinned to the key version whose certificate is published: the version the stored certificate
// names, else (a new tenant) the latest version, for which a certificate is made and stored.
func (s *Source) KeyPair(ctx context.Context, tenantID string) (*keys.KeyPair, error) {
	name, err := s.KeyName(tenantID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	e := s.entries[tenantID]
	if e == nil {
		e = &entry{}
		s.entries[tenantID] = e
	}
	s.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kp != nil {
		return e.kp, nil
	}
	kp, err := s.load(ctx, tenantID, name)
	if err != nil {
		return nil, err
	}
	e.kp = kp
	return kp, nil
}

// Forget drops the tenant's cached pair and its certificate file. The Transit key stays in
// Vault: the broker's policy cannot delete keys (least privilege; deletion is irreversible),
// and tenant IDs are never reused, so no later tenant can sign with it. docs/keys.md says how
// an operator deletes it.
func (s *Source) Forget(ctx context.Context, tenantID string) error {
	name, err := s.KeyName(tenantID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.entries, tenantID)
	s.mu.Unlock()
	if err := os.Remove(s.certPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove certificate file: %w", err)
	}
	s.logger.InfoContext(ctx, "tenant forgotten; its transit key stays in vault", "tenant", tenantID, "mount", s.mount, "key", name)
	return nil
}

// Ping reports whether Vault answers, is unsealed, and (AppRole) lets the broker log in.
func (s *Source) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	h, err := s.client.Sys().HealthWithContext(ctx)
	if err != nil {
		return unavailable("health", err)
	}
	if h.Sealed {
		return unavailable("health", errors.New("vault is sealed"))
	}
	if err := s.ensureLogin(ctx, ""); err != nil {
		return unavailable("login", err)
	}
	return nil
}

func (s *Source) load(ctx context.Context, tenantID, name string) (*keys.KeyPair, error) {
	certPath := s.certPath(name)
	cert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	info, err := s.readKey(ctx, name)
	if err != nil {
		return nil, err
	}
	if info == nil {
		if cert != nil {
			// Never a new key behind a published certificate: apps would reject its signatures.
			return nil, fmt.Errorf("Transit key %s does not exist on mount %s, but its certificate %s is published: is this another Vault or mount, or was Vault's storage lost? If the key is gone for good, delete the file (a new key and certificate are made; every app and IdP must then fetch the new metadata)", name, s.mount, filepath.Base(certPath))
		}
		if info, err = s.createKey(ctx, name); err != nil {
			return nil, err
		}
	}
	if err := info.usable(name); err != nil {
		return nil, err
	}
	if cert != nil {
		v := info.versionOf(cert.PublicKey)
		if v == 0 {
			return nil, fmt.Errorf("certificate file %s matches no version of Transit key %s on mount %s: was the key replaced, or is this another Vault? If the key was replaced on purpose, delete the file (a new certificate is made; every app and IdP must then fetch the new metadata)", filepath.Base(certPath), name, s.mount)
		}
		return &keys.KeyPair{Signer: &Signer{src: s, name: name, version: v, pub: info.public[v]}, Certificate: cert}, nil
	}
	v := info.latest
	signer := &Signer{src: s, name: name, version: v, pub: info.public[v]}
	cert, err = keys.SelfSignedCertificate(signer, "broker tenant "+tenantID, s.now())
	if err != nil {
		return nil, err
	}
	stored, err := storeCert(certPath, cert)
	if err != nil {
		return nil, err
	}
	if !stored.Equal(cert) { // another process stored one first: publish that one
		if v = info.versionOf(stored.PublicKey); v == 0 {
			return nil, fmt.Errorf("certificate file %s appeared meanwhile for another key", filepath.Base(certPath))
		}
		signer = &Signer{src: s, name: name, version: v, pub: info.public[v]}
	}
	return &keys.KeyPair{Signer: signer, Certificate: stored}, nil
}

func (s *Source) certPath(name string) string { return filepath.Join(s.certDir, name+".crt") }

// keyInfo is what the broker reads of a Transit key (GET transit/keys/NAME).
type keyInfo struct {
	typ             string
	exportable      bool
	supportsSigning bool
	imported        bool
	latest          int
	public          map[int]*rsa.PublicKey
}

func (k *keyInfo) usable(name string) error {
	switch {
	case k.exportable:
		return fmt.Errorf("Transit key %s is exportable; the broker signs only with keys that cannot leave Vault", name)
	case !k.supportsSigning || k.public[k.latest] == nil:
		return fmt.Errorf("Transit key %s is of type %s; the broker signs with RSA keys (%v)", name, k.typ, KeyTypes)
	}
	return nil
}

// versionOf is the key version whose public key is pub, 0 when none.
func (k *keyInfo) versionOf(pub any) int {
	for v, p := range k.public {
		if p.Equal(pub) {
			return v
		}
	}
	return 0
}

// readKey returns the key's description, nil when the key does not exist.
func (s *Source) readKey(ctx context.Context, name string) (*keyInfo, error) {
	path := s.mount + "/keys/" + name
	sec, err := s.call(ctx, "read key "+name, func(ctx context.Context) (*api.Secret, error) {
		return s.client.Logical().ReadWithContext(ctx, path)
	})
	if err != nil || sec == nil {
		return nil, err
	}
	return parseKeyInfo(name, sec)
}

// createKey creates the tenant's key, not exportable. Vault answers a write to an existing key
// with that key unchanged, so two replicas creating the same key at once get the same one.
func (s *Source) createKey(ctx context.Context, name string) (*keyInfo, error) {
	path := s.mount + "/keys/" + name
	sec, err := s.call(ctx, "create key "+name, func(ctx context.Context) (*api.Secret, error) {
		return s.client.Logical().WriteWithContext(ctx, path, map[string]any{"type": s.keyType, "exportable": false, "allow_plaintext_backup": false})
	})
	if err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "tenant key created in vault", "mount", s.mount, "key", name, "type", s.keyType)
	if sec == nil || sec.Data == nil {
		// Older Transit versions answer the write with no body.
		if sec, err = s.call(ctx, "read key "+name, func(ctx context.Context) (*api.Secret, error) {
			return s.client.Logical().ReadWithContext(ctx, path)
		}); err != nil {
			return nil, err
		}
		if sec == nil {
			return nil, unavailable("read key "+name, errors.New("the key just created is not there"))
		}
	}
	return parseKeyInfo(name, sec)
}

// parseKeyInfo reads Transit's description of a key (the answer to GET transit/keys/NAME).
func parseKeyInfo(name string, sec *api.Secret) (*keyInfo, error) {
	var raw struct {
		Type            string `json:"type"`
		Exportable      bool   `json:"exportable"`
		SupportsSigning bool   `json:"supports_signing"`
		Imported        bool   `json:"imported_key"`
		LatestVersion   int    `json:"latest_version"`
		// Version → {"public_key": PEM, ...} for asymmetric keys; a creation time otherwise.
		Keys map[string]json.RawMessage `json:"keys"`
	}
	b, err := json.Marshal(sec.Data)
	if err == nil {
		err = json.Unmarshal(b, &raw)
	}
	if err != nil {
		return nil, fmt.Errorf("vault key %s: %w", name, err)
	}
	info := &keyInfo{typ: raw.Type, exportable: raw.Exportable, supportsSigning: raw.SupportsSigning, imported: raw.Imported, latest: raw.LatestVersion, public: map[int]*rsa.PublicKey{}}
	for vs, rk := range raw.Keys {
		var k struct {
			PublicKey string `json:"public_key"`
		}
		if json.Unmarshal(rk, &k) != nil || k.PublicKey == "" {
			continue // not an asymmetric key
		}
		v, err := strconv.Atoi(vs)
		if err != nil {
			return nil, fmt.Errorf("vault key %s: version %q: %w", name, vs, err)
		}
		block, _ := pem.Decode([]byte(k.PublicKey))
		if block == nil {
			return nil, fmt.Errorf("vault key %s: version %d: public key is not PEM", name, v)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("vault key %s: version %d: %w", name, v, err)
		}
		if rp, ok := pub.(*rsa.PublicKey); ok {
			info.public[v] = rp
		}
	}
	return info, nil
}

// call makes one Vault request within the timeout, logging in first when needed, and once more
// after a fresh login when Vault refuses the token. Every error wraps keys.ErrUnavailable.
func (s *Source) call(ctx context.Context, op string, f func(context.Context) (*api.Secret, error)) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.ensureLogin(ctx, ""); err != nil {
		return nil, unavailable(op, err)
	}
	token := s.client.Token()
	sec, err := f(ctx)
	if err != nil && s.login != nil && status(err) == http.StatusForbidden {
		if lerr := s.ensureLogin(ctx, token); lerr != nil {
			return nil, unavailable(op, errors.Join(err, lerr))
		}
		sec, err = f(ctx)
	}
	if err != nil {
		return nil, unavailable(op, err)
	}
	return sec, nil
}

// ensureLogin logs in (when the Source has a Login) if it never did, or if refused is the
// token Vault just refused and no other caller has replaced it yet.
func (s *Source) ensureLogin(ctx context.Context, refused string) error {
	if s.login == nil {
		return nil
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.loggedIn && (refused == "" || s.client.Token() != refused) {
		return nil
	}
	if err := s.login(ctx, s.client); err != nil {
		return err
	}
	s.loggedIn = true
	return nil
}

func unavailable(op string, err error) error {
	return fmt.Errorf("vault %s: %w: %w", op, keys.ErrUnavailable, plain(err))
}

// plain keeps err (for errors.Is and As) but says it in one line a support person can read:
// Vault's own error texts instead of the client's multi-line dump, the network failure without
// the request's method and URL.
func plain(err error) error {
	var re *api.ResponseError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		msg := strings.Join(re.Errors, "; ")
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return &plainError{fmt.Sprintf("Vault answered HTTP %d: %s", re.StatusCode, msg), err}
	case errors.Is(err, context.DeadlineExceeded):
		return &plainError{"Vault did not answer in time", err}
	case errors.As(err, &ue):
		return &plainError{"cannot reach Vault: " + ue.Err.Error(), err}
	}
	return err
}

type plainError struct {
	msg string
	err error
}

func (e *plainError) Error() string { return e.msg }
func (e *plainError) Unwrap() error { return e.err }

// status is the HTTP status of a Vault error answer, 0 for other errors.
func status(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// readCert reads a stored certificate, nil when there is none.
func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certificate file %s holds no certificate", filepath.Base(path))
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate %s: %w", filepath.Base(path), err)
	}
	return cert, nil
}

// storeCert writes the certificate (public: 0644) unless a file is already there, and returns
// what the file holds: a published certificate is never overwritten.
func storeCert(path string, cert *x509.Certificate) (*x509.Certificate, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write certificate: %w", err)
	}
	defer os.Remove(tmp.Name())
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write certificate: %w", err)
	}
	// A hard link fails when the name exists, where a rename would replace it.
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return readCert(path)
	} else if err != nil {
		return nil, fmt.Errorf("write certificate: %w", err)
	}
	return cert, nil
}
