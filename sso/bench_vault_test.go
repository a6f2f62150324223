package sso_test

import (
	"testing"
	"time"

	"github.com/sloworks/broker/keys/vault"
	"github.com/sloworks/broker/keys/vault/vaulttest"
)

// BenchmarkVaultLogin compares whole sign-ins (as BenchmarkBrokeredLogin) by a broker whose keys
// are in a real Vault dev server's Transit engine with sign-ins by a broker with local keys, in
// the same run: each iteration is one login with each, interleaved so that drift in the machine's
// speed touches both alike. Metrics: logins/s with each, and vault/local, the ratio of the two.
func BenchmarkVaultLogin(b *testing.B) {
	v := vaulttest.Start(b)
	ks, err := vault.Open(vault.Settings{Addr: v.Addr, Token: v.BrokerToken(b)}.WithDefaults(), b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	hv := newHarnessKeys(b, ks)
	hl := newHarness(b)
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
