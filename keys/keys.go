// Package keys holds the contract for tenants' signing keys. Every signature the broker makes goes
// through a crypto.Signer from a Source, so a Vault Transit backend can replace the local one with
// no change to callers.
package keys

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ErrUnavailable is returned (wrapped) when a backend cannot sign right now, e.g. Vault is down.
var ErrUnavailable = errors.New("signing unavailable")

// KeyPair is a tenant's current signing key and the certificate published for it.
type KeyPair struct {
	Signer      crypto.Signer
	Certificate *x509.Certificate
	// Published are the certificates the tenant's metadata lists, Certificate first: during a
	// rotation also the next key's and the previous key's. Empty means Certificate only.
	Published []*x509.Certificate
}

// Certificates are the certificates to publish in metadata, the signing one first.
func (kp *KeyPair) Certificates() []*x509.Certificate {
	if len(kp.Published) == 0 {
		return []*x509.Certificate{kp.Certificate}
	}
	return kp.Published
}

// Source gives each tenant's signing key, creating it on first use.
type Source interface {
	// KeyPair returns the tenant's current key pair.
	KeyPair(ctx context.Context, tenantID string) (*KeyPair, error)
	// Forget deletes the tenant's keys (the tenant is gone).
	Forget(ctx context.Context, tenantID string) error
}

// CertificateValidity is how long a self-signed signing certificate is valid.
const CertificateValidity = 10 * 365 * 24 * time.Hour

// SelfSignedCertificate makes a certificate for the signer's public key, signed through the signer
// itself, so it works the same for a local key and a key that never leaves Vault.
func SelfSignedCertificate(signer crypto.Signer, commonName string, now time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	ski := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.Add(CertificateValidity).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:20],
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}
