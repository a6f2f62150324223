// Package local is the embedded default key backend: one RSA-2048 key per tenant, created on first
// use and kept as a 0600 PEM file in a 0700 directory of the data directory, with its self-signed
// certificate beside it. Keys are never logged.
package local

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/sloworks/broker/keys"
)

// KeyBits is the size of the RSA keys the local backend makes.
const KeyBits = 2048

// Source keeps tenants' keys in a directory.
type Source struct {
	dir string
	now func() time.Time

	mu    sync.Mutex
	cache map[string]*keys.KeyPair
}

var _ keys.Source = (*Source)(nil)

// New returns a Source keeping keys in dir (created with mode 0700). now is the clock used for
// certificate validity; nil means time.Now.
func New(dir string, now func() time.Time) (*Source, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict key directory: %w", err)
	}
	return &Source{dir: dir, now: now, cache: map[string]*keys.KeyPair{}}, nil
}

var safeID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func (s *Source) paths(tenantID string) (keyPath, certPath string, err error) {
	if !safeID.MatchString(tenantID) {
		return "", "", fmt.Errorf("tenant id %q is not usable as a key name", tenantID)
	}
	return filepath.Join(s.dir, tenantID+".key"), filepath.Join(s.dir, tenantID+".crt"), nil
}

// KeyPair returns the tenant's key pair, creating it on first use.
func (s *Source) KeyPair(ctx context.Context, tenantID string) (*keys.KeyPair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kp, ok := s.cache[tenantID]; ok {
		return kp, nil
	}
	keyPath, certPath, err := s.paths(tenantID)
	if err != nil {
		return nil, err
	}
	// Only a missing key file means a new tenant: a key is never overwritten, whatever else
	// is wrong beside it.
	var kp *keys.KeyPair
	if _, err = os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		kp, err = s.create(tenantID, keyPath, certPath)
	} else if err == nil {
		kp, err = load(keyPath, certPath)
	}
	if err != nil {
		return nil, err
	}
	s.cache[tenantID] = kp
	return kp, nil
}

// Forget deletes the tenant's key files.
func (s *Source) Forget(ctx context.Context, tenantID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, tenantID)
	keyPath, certPath, err := s.paths(tenantID)
	if err != nil {
		return err
	}
	for _, p := range []string{keyPath, certPath} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove key file: %w", err)
		}
	}
	return nil
}

func load(keyPath, certPath string) (*keys.KeyPair, error) {
	rk, err := loadKey(keyPath)
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("certificate file %s is missing beside its key; restore it from a backup (deleting %s as well starts over with a new key, and every app and IdP must then fetch the new metadata)", filepath.Base(certPath), filepath.Base(keyPath))
	}
	if err != nil {
		return nil, fmt.Errorf("read certificate of %s: %w", filepath.Base(keyPath), err)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certificate file %s holds no certificate", filepath.Base(certPath))
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate %s: %w", filepath.Base(certPath), err)
	}
	if !rk.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("certificate %s does not match its key", filepath.Base(certPath))
	}
	return &keys.KeyPair{Signer: rk, Certificate: cert}, nil
}

// loadKey reads a PKCS #8 RSA key file, refusing one that others can read.
func loadKey(keyPath string) (*rsa.PrivateKey, error) {
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(keyPath)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by others (mode %o); chmod 600 it", filepath.Base(keyPath), st.Mode().Perm())
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key file %s holds no PKCS#8 private key", filepath.Base(keyPath))
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key file %s: %w", filepath.Base(keyPath), err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key file %s does not hold an RSA key", filepath.Base(keyPath))
	}
	return rk, nil
}

func (s *Source) create(tenantID, keyPath, certPath string) (*keys.KeyPair, error) {
	k, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	cert, err := keys.SelfSignedCertificate(k, "broker tenant "+tenantID, s.now())
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	if err := writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return nil, err
	}
	// The key is written last: a key file on disk always has its certificate.
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return &keys.KeyPair{Signer: k, Certificate: cert}, nil
}

// writeFile writes atomically: a temporary file with the final mode, then a rename.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
