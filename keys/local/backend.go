package local

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/keys"
)

// The Source is also a keys.Backend for a keys.Ring: version 1 of a tenant's key is the file
// TENANT.key (the file the Source always kept, so existing keys are version 1), version N > 1 is
// TENANT.vN.key, each PKCS #8 PEM, 0600. Certificates are the ring's, in the store; the
// TENANT.crt beside version 1 is only read, to adopt a key made before the store held them.
var (
	_ keys.Backend  = (*Source)(nil)
	_ keys.Exporter = (*Source)(nil)
)

// Name is db.KeyBackendLocal.
func (s *Source) Name() string { return db.KeyBackendLocal }

func (s *Source) versionPath(tenantID string, v int) (string, error) {
	keyPath, _, err := s.paths(tenantID)
	if err != nil {
		return "", err
	}
	if v < 1 {
		return "", fmt.Errorf("local key version %d", v)
	}
	if v == 1 {
		return keyPath, nil
	}
	return filepath.Join(s.dir, tenantID+".v"+strconv.Itoa(v)+".key"), nil
}

// versions lists the tenant's key file versions.
func (s *Source) versions(tenantID string) ([]int, error) {
	if _, _, err := s.paths(tenantID); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read key directory: %w", err)
	}
	var out []int
	for _, e := range ents {
		name := e.Name()
		if name == tenantID+".key" {
			out = append(out, 1)
			continue
		}
		mid, ok := strings.CutPrefix(name, tenantID+".v")
		if !ok {
			continue
		}
		if n, ok := strings.CutSuffix(mid, ".key"); ok {
			if v, err := strconv.Atoi(n); err == nil && v > 1 {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// Existing returns version 1 with its certificate file, when the tenant has a key file.
func (s *Source) Existing(ctx context.Context, tenantID string) (*keys.Version, error) {
	keyPath, certPath, err := s.paths(tenantID)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	kp, err := load(keyPath, certPath)
	if err != nil {
		return nil, err
	}
	return &keys.Version{Number: 1, Signer: kp.Signer, Certificate: kp.Certificate}, nil
}

// NewVersion generates a key and writes it as the tenant's next version file.
func (s *Source) NewVersion(ctx context.Context, tenantID string) (*keys.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.versions(tenantID)
	if err != nil {
		return nil, err
	}
	next := 1
	for _, v := range vs {
		next = max(next, v+1)
	}
	k, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	// Another process on the same directory may take the number first: take the next one.
	for range 100 {
		path, err := s.versionPath(tenantID, next)
		if err != nil {
			return nil, err
		}
		if err = writeNew(path, data); err == nil {
			return &keys.Version{Number: next, Signer: k}, nil
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		next++
	}
	return nil, fmt.Errorf("no free key version number for tenant %s", tenantID)
}

// Signer returns the key of one version.
func (s *Source) Signer(ctx context.Context, tenantID string, version int) (crypto.Signer, error) {
	path, err := s.versionPath(tenantID, version)
	if err != nil {
		return nil, err
	}
	return loadKey(path)
}

// PrivateKey returns the key of one version, for a migration to another backend.
func (s *Source) PrivateKey(ctx context.Context, tenantID string, version int) (crypto.Signer, error) {
	return s.Signer(ctx, tenantID, version)
}

// DeleteKeys removes every key file of the tenant and its certificate file.
func (s *Source) DeleteKeys(ctx context.Context, tenantID string) error {
	if err := s.Forget(ctx, tenantID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.versions(tenantID)
	if err != nil {
		return err
	}
	for _, v := range vs {
		p, err := s.versionPath(tenantID, v)
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove key file: %w", err)
		}
	}
	return nil
}

// writeNew writes a 0600 file that must not exist yet (a key file is never overwritten): a
// temporary file, then a hard link, which fails with fs.ErrExist when the name is taken.
func writeNew(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
