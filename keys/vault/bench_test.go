package vault_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// BenchmarkSign compares one RSA-2048 PKCS #1 v1.5 signature through Transit (a real Vault dev
// server on loopback) with a local crypto/rsa signature, in the same run:
//
//	BROKER_TEST_VAULT_BIN=$(bash scripts/vault-dev.sh bin) go test -run '^$' -bench Sign ./keys/vault/
func BenchmarkSign(b *testing.B) {
	v := startVault(b)
	kp := keyPair(b, newSource(b, v.Root(b), ""), tenantA)
	local, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a SAML assertion's SignedInfo"))
	for _, c := range []struct {
		name   string
		signer crypto.Signer
	}{{"transit", kp.Signer}, {"local", local}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.signer.Sign(rand.Reader, sum[:], crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.signer.Sign(rand.Reader, sum[:], crypto.SHA256); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
		})
	}
}
