package sso_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/sloworks/broker/db"
)

// BenchmarkBackChannelLogout: broker-initiated logouts of sessions with three SOAP apps (in
// process, on loopback, each verifying the broker's signature and signing its answer). Metrics:
// logouts/s, RSA signatures per logout (broker and apps), RSA signs/s in the same run, and
// ratio = logouts/s ÷ (signs/s ÷ signatures per logout). Run with -cpu 1 for per-core numbers.
func BenchmarkBackChannelLogout(b *testing.B) {
	h := newHarness(b)
	apps := []*soapSP{h.addSOAPAppB(b, "acme", "s1"), h.addSOAPAppB(b, "acme", "s2"), h.addSOAPAppB(b, "acme", "s3")}
	// Each app is configured with the broker's IdP metadata once, as a real one is: it verifies
	// every LogoutRequest against that certificate without fetching the metadata again.
	cert := h.brokerCert("acme")
	for _, a := range apps {
		a.brokerCert = func() *x509.Certificate { return cert }
	}
	ctx := context.Background()
	tn := h.fx["acme"].tenant
	conns, _ := h.store.ListConnections(ctx, tn.ID)
	appRows, _ := h.store.ListApps(ctx, tn.ID)
	var appIDs []string
	for _, a := range appRows {
		for _, s := range apps {
			if a.EntityID == s.entityID {
				appIDs = append(appIDs, a.ID)
			}
		}
	}
	e := h.engine()
	newSession := func() string {
		now := time.Now().UTC()
		s := &db.Session{TenantID: tn.ID, ConnectionID: conns[0].ID, CookieHash: randHex(), NameID: "alice", UpstreamSessionIndex: "_u" + randHex(), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := h.store.CreateSession(ctx, s); err != nil {
			b.Fatal(err)
		}
		for _, id := range appIDs {
			if err := h.store.AddParticipant(ctx, &db.Participant{TenantID: tn.ID, SessionID: s.ID, AppID: id, NameID: "alice", SessionIndex: "_p" + randHex()}); err != nil {
				b.Fatal(err)
			}
		}
		return s.ID
	}
	e.EndSession(ctx, tn.ID, newSession(), "admin", "bench") // warm up
	h.brokerSigs.Store(0)
	var elapsed, cpu time.Duration
	n := 0
	rsaM := newRSAMeter(b)
	rsaM.burst(b, 100)
	for b.Loop() {
		b.StopTimer()
		id := newSession()
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		lo, _, err := e.EndSession(ctx, tn.ID, id, "admin", "bench")
		elapsed += time.Since(start)
		cpu += processCPU() - cpu0
		if err != nil || lo.Outcome != "partial" { // the test IdP has no SLO: its leg is not_supported
			b.Fatalf("logout: %v %+v", err, lo)
		}
		n++
		rsaM.between(b, n)
	}
	rsaM.burst(b, 100)
	perSec := float64(n) / elapsed.Seconds()
	sigs := float64(h.brokerSigs.Load())/float64(n) + 3 // + each app's signed answer
	signs, signsCPU := rsaM.perSec(), rsaM.perCPUSec()
	b.ReportMetric(perSec, "logouts/s")
	b.ReportMetric(sigs, "sigs/logout")
	b.ReportMetric(signs, "rsa-signs/s")
	b.ReportMetric(perSec/(signs/sigs), "ratio")
	// What is not RSA signing: the logout's time less its signatures at the measured speed.
	b.ReportMetric((elapsed.Seconds()/float64(n)-sigs/signs)*1e6, "nonsign-us/logout")
	// Per CPU-second: logouts over the CPU time the process used during them (every thread).
	perCPU := float64(n) / cpu.Seconds()
	b.ReportMetric(perCPU, "logouts/cpu-s")
	b.ReportMetric(perCPU/(signsCPU/sigs), "cpu-ratio")
}
