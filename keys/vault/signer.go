package vault

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"
)

// ErrUnsupported is returned for signer options Transit signing is not used with here: a hash
// other than SHA-1 or SHA-256, or PSS.
var ErrUnsupported = errors.New("unsupported signature options")

// Signer signs with one version of a tenant's Transit key: PKCS #1 v1.5 over a digest the caller
// computed (prehashed), the key version pinned so that a rotation in Vault never signs with a
// key whose certificate is not yet published.
type Signer struct {
	src     *Source
	name    string
	version int
	pub     *rsa.PublicKey
}

var _ crypto.Signer = (*Signer)(nil)

// Public returns the public key of the pinned version.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// KeyName is the Transit key the signer uses.
func (s *Signer) KeyName() string { return s.name }

// KeyVersion is the pinned key version.
func (s *Signer) KeyVersion() int { return s.version }

// Sign signs digest (already hashed with opts.HashFunc(): SHA-1 or SHA-256) through
// transit/sign. The random source is not used: Vault signs. Errors reaching Vault wrap
// keys.ErrUnavailable.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), digest, opts)
}

// SignContext is Sign bounded by ctx as well as by the Source's timeout.
func (s *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, err := hashAlgorithm(digest, opts)
	if err != nil {
		return nil, err
	}
	path := s.src.mount + "/sign/" + s.name
	op := "sign " + s.name
	sec, err := s.src.call(ctx, op, func(ctx context.Context) (*api.Secret, error) {
		return s.src.client.Logical().WriteWithContext(ctx, path, map[string]any{
			"input":               base64.StdEncoding.EncodeToString(digest),
			"prehashed":           true,
			"hash_algorithm":      alg,
			"signature_algorithm": "pkcs1v15", // Transit's default is PSS, which XML-DSig cannot use
			"key_version":         s.version,
		})
	})
	if err != nil {
		return nil, err
	}
	var raw string
	if sec != nil {
		raw, _ = sec.Data["signature"].(string)
	}
	sig, err := decodeSignature(raw, s.version)
	if err != nil {
		return nil, unavailable(op, err)
	}
	// A key deleted and created again in Vault has a version 1 of its own: never hand out a
	// signature the published certificate does not verify.
	if err := rsa.VerifyPKCS1v15(s.pub, opts.HashFunc(), digest, sig); err != nil {
		return nil, unavailable(op, fmt.Errorf("the signature does not verify with version %d's public key (was the Transit key replaced?)", s.version))
	}
	return sig, nil
}

// hashAlgorithm is Transit's name for the digest's hash.
func hashAlgorithm(digest []byte, opts crypto.SignerOpts) (string, error) {
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return "", fmt.Errorf("vault signer: RSA-PSS: %w (the broker signs PKCS #1 v1.5)", ErrUnsupported)
	}
	var alg string
	switch h := opts.HashFunc(); h {
	case crypto.SHA1:
		alg = "sha1"
	case crypto.SHA256:
		alg = "sha2-256"
	default:
		return "", fmt.Errorf("vault signer: hash %v: %w (want SHA-1 or SHA-256)", h, ErrUnsupported)
	}
	if len(digest) != opts.HashFunc().Size() {
		return "", fmt.Errorf("vault signer: %d-byte digest for %v: %w", len(digest), opts.HashFunc(), ErrUnsupported)
	}
	return alg, nil
}

// decodeSignature decodes Transit's "vault:vN:BASE64" for the expected version N.
func decodeSignature(s string, version int) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, "vault:v")
	if !ok {
		return nil, fmt.Errorf("signature %q: want vault:vN:...", abbreviate(s))
	}
	vs, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, fmt.Errorf("signature %q: want vault:vN:...", abbreviate(s))
	}
	if vs != strconv.Itoa(version) {
		return nil, fmt.Errorf("signature by key version %q; want %d", abbreviate(vs), version)
	}
	if strings.ContainsAny(b64, "\r\n") { // the decoder would skip them
		return nil, errors.New("signature: line breaks in base64")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return sig, nil
}

func abbreviate(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}
