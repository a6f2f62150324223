package vault

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/hashicorp/vault/api"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/keys"
)

// The Source is also a keys.Backend for a keys.Ring: a tenant's Transit key versions are the
// ring's versions; certificates are the ring's, in the store. The certificate file an older
// broker kept in the certificate directory is only read, to adopt the version it names.
var (
	_ keys.Backend  = (*Source)(nil)
	_ keys.Importer = (*Source)(nil)
)

// Name is db.KeyBackendVault.
func (s *Source) Name() string { return db.KeyBackendVault }

// Existing returns the tenant's Transit key, when there is one: the version the old
// certificate file names, with that certificate, else the latest version (no certificate).
func (s *Source) Existing(ctx context.Context, tenantID string) (*keys.Version, error) {
	name, err := s.KeyName(tenantID)
	if err != nil {
		return nil, err
	}
	info, err := s.readKey(ctx, name)
	if err != nil || info == nil {
		return nil, err
	}
	if err := info.usable(name); err != nil {
		return nil, err
	}
	s.remember(name, info)
	certPath := s.certPath(name)
	cert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	v := info.latest
	if cert != nil {
		if v = info.versionOf(cert.PublicKey); v == 0 {
			return nil, fmt.Errorf("certificate file %s matches no version of Transit key %s on mount %s: was the key replaced, or is this another Vault?", filepath.Base(certPath), name, s.mount)
		}
	}
	return &keys.Version{Number: v, Signer: &Signer{src: s, name: name, version: v, pub: info.public[v]}, Certificate: cert}, nil
}

// NewVersion creates the tenant's Transit key (version 1), or rotates it
// (transit/keys/NAME/rotate) and returns the new latest version. The key's min_decryption and
// min_available versions are left as they are: older versions keep signing until the ring
// switches.
func (s *Source) NewVersion(ctx context.Context, tenantID string) (*keys.Version, error) {
	name, err := s.KeyName(tenantID)
	if err != nil {
		return nil, err
	}
	info, err := s.readKey(ctx, name)
	if err != nil {
		return nil, err
	}
	if info == nil {
		info, err = s.createKey(ctx, name)
	} else {
		path := s.mount + "/keys/" + name + "/rotate"
		if _, err = s.call(ctx, "rotate key "+name, func(ctx context.Context) (*api.Secret, error) {
			return s.client.Logical().WriteWithContext(ctx, path, nil)
		}); err == nil {
			info, err = s.readKey(ctx, name)
		}
		if err == nil && info == nil {
			err = unavailable("read key "+name, errors.New("the key just rotated is not there"))
		}
		if err == nil {
			s.logger.InfoContext(ctx, "tenant key rotated in vault", "mount", s.mount, "key", name, "version", info.latest)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := info.usable(name); err != nil {
		return nil, err
	}
	s.remember(name, info)
	v := info.latest
	return &keys.Version{Number: v, Signer: &Signer{src: s, name: name, version: v, pub: info.public[v]}}, nil
}

// Signer returns a signer pinned to one version of the tenant's Transit key.
func (s *Source) Signer(ctx context.Context, tenantID string, version int) (crypto.Signer, error) {
	name, err := s.KeyName(tenantID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	pub := s.pubs[name][version]
	s.mu.Unlock()
	if pub == nil {
		info, err := s.readKey(ctx, name)
		if err != nil {
			return nil, err
		}
		if info == nil {
			return nil, fmt.Errorf("Transit key %s does not exist on mount %s, but the store has a certificate for its version %d: is this another Vault or mount, or was Vault's storage lost?", name, s.mount, version)
		}
		if err := info.usable(name); err != nil {
			return nil, err
		}
		s.remember(name, info)
		if pub = info.public[version]; pub == nil {
			return nil, fmt.Errorf("Transit key %s on mount %s has no version %d (trimmed, or another key of that name?)", name, s.mount, version)
		}
	}
	return &Signer{src: s, name: name, version: version, pub: pub}, nil
}

// remember caches the public keys of a Transit key's versions.
func (s *Source) remember(name string, info *keyInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pubs == nil {
		s.pubs = map[string]map[int]*rsa.PublicKey{}
	}
	s.pubs[name] = info.public
}

// DeleteKeys deletes the tenant's Transit key (deletion_allowed, then delete: every version)
// and the old certificate file. A policy that refuses deletion (403) is logged with the
// commands an operator runs instead, and is not an error: the tenant is gone either way.
func (s *Source) DeleteKeys(ctx context.Context, tenantID string) error {
	name, err := s.KeyName(tenantID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.entries, tenantID)
	delete(s.pubs, name)
	s.mu.Unlock()
	if err := os.Remove(s.certPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove certificate file: %w", err)
	}
	info, err := s.readKey(ctx, name)
	if err != nil || info == nil {
		return err
	}
	cfg := s.mount + "/keys/" + name + "/config"
	_, err = s.call(ctx, "allow deletion of "+name, func(ctx context.Context) (*api.Secret, error) {
		return s.client.Logical().WriteWithContext(ctx, cfg, map[string]any{"deletion_allowed": true})
	})
	if err == nil {
		path := s.mount + "/keys/" + name
		_, err = s.call(ctx, "delete key "+name, func(ctx context.Context) (*api.Secret, error) {
			return s.client.Logical().DeleteWithContext(ctx, path)
		})
	}
	if status(err) == http.StatusForbidden {
		s.logger.WarnContext(ctx, "vault policy refuses key deletion; the tenant's transit key stays in vault", "tenant", tenantID, "mount", s.mount, "key", name)
		return nil
	}
	if err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "tenant key deleted in vault", "tenant", tenantID, "mount", s.mount, "key", name)
	return nil
}

// Import brings an RSA private key into the tenant's Transit key (BYOK): the key material is
// wrapped with an ephemeral AES-256 key (AES-KWP, RFC 5649), which is itself encrypted with
// Transit's wrapping key (RSA-OAEP, SHA-256), and sent to transit/keys/NAME/import, not
// exportable, as version 1 of a new key; or to import_version when an imported key of that
// name exists. Refusals (the key exists and was not imported, the policy) wrap
// keys.ErrImportRefused.
func (s *Source) Import(ctx context.Context, tenantID string, key crypto.Signer) (*keys.Version, error) {
	name, err := s.KeyName(tenantID)
	if err != nil {
		return nil, err
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("import %s: %T: %w (RSA keys only)", name, key, keys.ErrImportRefused)
	}
	typ := fmt.Sprintf("rsa-%d", rk.N.BitLen())
	if !validKeyType(typ) {
		return nil, fmt.Errorf("import %s: key type %s: %w", name, typ, keys.ErrImportRefused)
	}
	existing, err := s.readKey(ctx, name)
	if err != nil {
		return nil, err
	}
	if existing != nil && !existing.imported {
		// Transit adds versions by import only to keys that were imported in the first place.
		return nil, fmt.Errorf("import %s: the Transit key exists and was not imported: %w", name, keys.ErrImportRefused)
	}
	sec, err := s.call(ctx, "read wrapping key", func(ctx context.Context) (*api.Secret, error) {
		return s.client.Logical().ReadWithContext(ctx, s.mount+"/wrapping_key")
	})
	if err != nil {
		return nil, refusedOr(err)
	}
	var wpem string
	if sec != nil {
		wpem, _ = sec.Data["public_key"].(string)
	}
	block, _ := pem.Decode([]byte(wpem))
	if block == nil {
		return nil, fmt.Errorf("import %s: wrapping key is not PEM: %w", name, keys.ErrImportRefused)
	}
	wk, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("import %s: wrapping key: %w", name, err)
	}
	wrsa, ok := wk.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("import %s: wrapping key is %T", name, wk)
	}
	der, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	ephemeral := make([]byte, 32)
	rand.Read(ephemeral)
	wrappedAES, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, wrsa, ephemeral, nil)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	wrappedKey, err := wrapKWP(ephemeral, der)
	clear(ephemeral)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	ciphertext := base64.StdEncoding.EncodeToString(append(wrappedAES, wrappedKey...))
	path, params := s.mount+"/keys/"+name+"/import", map[string]any{
		"ciphertext": ciphertext, "hash_function": "SHA256", "type": typ,
		"exportable": false, "allow_plaintext_backup": false, "allow_rotation": true,
	}
	if existing != nil {
		path, params = s.mount+"/keys/"+name+"/import_version", map[string]any{"ciphertext": ciphertext, "hash_function": "SHA256"}
	}
	if _, err := s.call(ctx, "import key "+name, func(ctx context.Context) (*api.Secret, error) {
		return s.client.Logical().WriteWithContext(ctx, path, params)
	}); err != nil {
		return nil, refusedOr(err)
	}
	info, err := s.readKey(ctx, name)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, unavailable("read key "+name, errors.New("the key just imported is not there"))
	}
	if err := info.usable(name); err != nil {
		return nil, err
	}
	s.remember(name, info)
	v := info.versionOf(&rk.PublicKey)
	if v == 0 {
		return nil, fmt.Errorf("import %s: no version of the key holds the imported key", name)
	}
	s.logger.InfoContext(ctx, "tenant key imported into vault", "tenant", tenantID, "mount", s.mount, "key", name, "version", v)
	return &keys.Version{Number: v, Signer: &Signer{src: s, name: name, version: v, pub: info.public[v]}}, nil
}

// refusedOr marks Vault's 4xx answers as a refused import; anything else stays an outage.
func refusedOr(err error) error {
	if st := status(err); st >= 400 && st < 500 {
		return fmt.Errorf("%w: %w", keys.ErrImportRefused, err)
	}
	return err
}
