package sso_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/local"
	"github.com/sloworks/broker/keys/vault"
	"github.com/sloworks/broker/keys/vault/vaulttest"
)

// BenchmarkVaultLogin compares whole sign-ins (as BenchmarkBrokeredLogin) by a broker whose keys
// are in a real Vault dev server's Transit engine with sign-ins by a broker with local keys, in
// the same run: each iteration is one login with each, interleaved so that drift in the machine's
// speed touches both alike. Metrics: logins/s with each, and vault/local, the ratio of the two.
func BenchmarkVaultLogin(b *testing.B) {
	v := vaulttest.Start(b)
	token := v.BrokerToken(b)
	// Both brokers sign through the key ring, as the broker does.
	ring := func(backend func(dir string) (keys.Backend, error)) func(*sqlite.Store, string) keys.Source {
		return func(store *sqlite.Store, dir string) keys.Source {
			be, err := backend(dir)
			if err != nil {
				b.Fatal(err)
			}
			r, err := keys.NewRing(keys.RingOptions{Store: store, Primary: be})
			if err != nil {
				b.Fatal(err)
			}
			return r
		}
	}
	hv := newHarnessWith(b, ring(func(dir string) (keys.Backend, error) {
		return vault.Open(vault.Settings{Addr: v.Addr, Token: token}.WithDefaults(), filepath.Join(dir, "vault-certs"), nil)
	}))
	hl := newHarnessWith(b, ring(func(dir string) (keys.Backend, error) {
		return local.New(filepath.Join(dir, "keys"), nil)
	}))
	certV, certL := hv.brokerCert("acme"), hl.brokerCert("acme")
	oneLogin(b, hv, certV, hv.inProcessBrowser()) // warm caches, create the Transit key
	oneLogin(b, hl, certL, hl.inProcessBrowser())
	var tv, tl time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		oneLogin(b, hv, certV, hv.inProcessBrowser())
		t1 := time.Now()
		oneLogin(b, hl, certL, hl.inProcessBrowser())
		tv += t1.Sub(t0)
		tl += time.Since(t1)
		n++
	}
	vaultPerSec, localPerSec := float64(n)/tv.Seconds(), float64(n)/tl.Seconds()
	b.ReportMetric(vaultPerSec, "vault-logins/s")
	b.ReportMetric(localPerSec, "local-logins/s")
	b.ReportMetric(vaultPerSec/localPerSec, "vault/local")
}
