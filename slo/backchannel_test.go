package slo

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/providers"
)

// soapApp is an in-process app with a SOAP SingleLogoutService: it checks the broker's signed
// LogoutRequest and answers as its mode says.
type soapApp struct {
	name, entityID string
	mode           string // ok, partial, unsigned, wrong-id, hang, fault, html500
	delay          time.Duration
	key            *rsa.PrivateKey
	cert           *x509.Certificate
	brokerCert     *x509.Certificate
	srv            *httptest.Server

	mu       sync.Mutex
	received []*LogoutRequest
}

var (
	appKeyOnce sync.Once
	appKey     *rsa.PrivateKey
	appCert    *x509.Certificate
)

func testAppKey(t testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	appKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		c, err := keys.SelfSignedCertificate(k, "test app", time.Now())
		if err != nil {
			panic(err)
		}
		appKey, appCert = k, c
	})
	return appKey, appCert
}

func newSOAPApp(t testing.TB, name, mode string, brokerCert *x509.Certificate) *soapApp {
	k, c := testAppKey(t)
	a := &soapApp{name: name, entityID: "https://" + name + ".example/metadata", mode: mode, key: k, cert: c, brokerCert: brokerCert}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *soapApp) serve(w http.ResponseWriter, r *http.Request) {
	el, err := binding.ReadSOAPRequest(r)
	if err != nil {
		binding.WriteSOAPFault(w, binding.SOAPFaultClient, err.Error())
		return
	}
	rcv := ReadSOAP(el)
	if err := rcv.Verify([]*x509.Certificate{a.brokerCert}, true); err != nil {
		binding.WriteSOAPFault(w, binding.SOAPFaultClient, "bad signature: "+err.Error())
		return
	}
	req, err := ParseLogoutRequest(rcv.Element)
	if err != nil {
		binding.WriteSOAPFault(w, binding.SOAPFaultClient, err.Error())
		return
	}
	a.mu.Lock()
	a.received = append(a.received, req)
	a.mu.Unlock()
	if a.delay > 0 {
		time.Sleep(a.delay)
	}
	resp := &LogoutResponse{ID: "_r" + req.ID, InResponseTo: req.ID, IssueInstant: time.Now(), Issuer: a.entityID, Status: Status{Codes: []string{StatusSuccess}}}
	signer := &Signer{Key: a.key, Cert: a.cert}
	switch a.mode {
	case "hang":
		<-r.Context().Done()
		return
	case "fault":
		binding.WriteSOAPFault(w, binding.SOAPFaultServer, "database down")
		return
	case "html500":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(500)
		fmt.Fprint(w, "<html><body><h1>Internal Server Error</h1>lasso error -304</body></html>")
		return
	case "partial":
		resp.Status.Codes = []string{StatusSuccess, StatusPartialLogout}
	case "unsigned":
		signer = nil
	case "wrong-id":
		resp.InResponseTo = "_other"
	case "denied":
		resp.Status = Status{Codes: []string{StatusResponder, StatusRequestDenied}, Message: "not now"}
	}
	b, err := SignedXML(resp, signer)
	if err != nil {
		binding.WriteSOAPFault(w, binding.SOAPFaultServer, err.Error())
		return
	}
	binding.WriteSOAP(w, b)
}

func (a *soapApp) peer() *Peer {
	return &Peer{ID: a.name, Name: a.name, EntityID: a.entityID, Certs: []*x509.Certificate{a.cert},
		SLO: []providers.Endpoint{{Binding: providers.BindingSOAP, Location: a.srv.URL + "/slo/soap"}}, NameID: NameID{Value: "alice"}, SessionIndexes: []string{"_si-" + a.name}}
}

func brokerSigner(t testing.TB) *Signer {
	return goldenSigner(t, "")
}

func settleGoroutines(base int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 100 && n > base; i++ {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

func TestRunBack(t *testing.T) {
	s := brokerSigner(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + ln.Addr().String() + "/slo/soap"
	ln.Close()

	modes := []struct{ mode, class, diag string }{
		{"ok", "", ""},
		{"partial", ClassStatus, "PartialLogout"},
		{"denied", ClassStatus, "RequestDenied: not now"},
		{"unsigned", ClassBadSignature, "unsigned"},
		{"wrong-id", ClassRefused, "InResponseTo"},
		{"hang", ClassTimeout, "did not answer within"},
		{"fault", ClassRefused, "SOAP fault"},
		{"html500", ClassRefused, "HTTP 500"},
	}
	var apps []*soapApp
	var peers []*Peer
	for _, m := range modes {
		a := newSOAPApp(t, "app-"+m.mode, m.mode, s.Cert)
		apps = append(apps, a)
		peers = append(peers, a.peer())
	}
	dead := &Peer{ID: "dead", Name: "dead-app", EntityID: "https://dead.example", SLO: []providers.Endpoint{{Binding: providers.BindingSOAP, Location: deadURL}}, NameID: NameID{Value: "alice"}}
	peers = append(peers, dead)

	base := runtime.NumGoroutine()
	timeout := 700 * time.Millisecond
	plan := MakePlan(PlanInput{Apps: peers, Issuer: "https://broker/idp", Now: time.Now(), Timeout: timeout, NewID: counter()})
	if len(plan.Back) != len(peers) {
		t.Fatalf("%d back-channel legs; want %d", len(plan.Back), len(peers))
	}
	client := &binding.SOAPClient{HTTP: &http.Client{}}
	start := time.Now()
	results := RunBack(context.Background(), plan.Back, client, func(string) (*Signer, error) { return s, nil }, timeout)
	elapsed := time.Since(start)
	// The hanging app would hold a sequential or unbounded fan-out forever; the precise bound
	// (about one timeout) is BenchmarkFanOut's metric, this only proves it is bounded.
	if elapsed > timeout+3*time.Second {
		t.Errorf("fan-out took %s; legs must run in parallel within the %s timeout", elapsed, timeout)
	}
	for i, m := range modes {
		r := results[i]
		if r.ErrorClass != m.class || !strings.Contains(r.Diagnosis, m.diag) {
			t.Errorf("%s: class %q diagnosis %q; want %q containing %q", m.mode, r.ErrorClass, r.Diagnosis, m.class, m.diag)
		}
		if len(r.Sent) == 0 {
			t.Errorf("%s: sent message not recorded", m.mode)
		}
		if (m.mode == "html500" && !strings.Contains(string(r.Received), "lasso error -304")) || (m.mode == "fault" && !strings.Contains(string(r.Received), "database down")) {
			t.Errorf("%s: the peer's answer is not kept for the log: %q", m.mode, r.Received)
		}
		if m.mode == "ok" && (len(r.Received) == 0 || r.Status.Top() != StatusSuccess) {
			t.Errorf("ok: received %q status %v", r.Received, r.Status)
		}
		apps[i].mu.Lock()
		got := apps[i].received
		apps[i].mu.Unlock()
		if len(got) != 1 || got[0].NameID.Value != "alice" || got[0].SessionIndexes[0] != "_si-"+apps[i].name {
			t.Errorf("%s: app received %+v", m.mode, got)
		}
	}
	if r := results[len(results)-1]; r.ErrorClass != ClassUnreachable || !strings.Contains(r.Diagnosis, "refused the connection") {
		t.Errorf("dead app: %q %q", r.ErrorClass, r.Diagnosis)
	}
	for _, a := range apps {
		a.srv.CloseClientConnections()
	}
	client.HTTP.CloseIdleConnections()
	if n := settleGoroutines(base); n > base {
		t.Errorf("%d goroutines after the fan-out; %d before", n, base)
	}
}

func TestRunBackSigningUnavailable(t *testing.T) {
	a := newSOAPApp(t, "wiki", "ok", brokerSigner(t).Cert)
	plan := MakePlan(PlanInput{Apps: []*Peer{a.peer()}, Now: time.Now(), Timeout: time.Second, NewID: counter()})
	res := RunBack(context.Background(), plan.Back, &binding.SOAPClient{HTTP: http.DefaultClient},
		func(string) (*Signer, error) { return nil, fmt.Errorf("%w: vault sealed", keys.ErrUnavailable) }, time.Second)
	if res[0].ErrorClass != ClassSigningUnavailable || len(a.received) != 0 {
		t.Fatalf("class %q, app got %d requests", res[0].ErrorClass, len(a.received))
	}
}

// BenchmarkFanOut: 50 in-process SOAP apps, each verifying the broker's signed LogoutRequest and
// signing its answer. With one hanging, the whole fan-out must take about one leg timeout
// (parallel, not a sum): metric total/timeout, target ≤ 1.1. With all answering (each after a
// 50 ms delay), total/slowest-leg, target ≤ 1.2, where the slowest leg is the slowest exchange
// (request sent to answer received, the latency the log shows), so the fan-out's own work (about
// 100 RSA signatures and 100 verifications shared by the machine's cores) counts against it.
// Reported as the worst over the iterations and as the mean, after one warm-up fan-out that
// opens the connections.
func BenchmarkFanOut(b *testing.B) {
	s := brokerSigner(b)
	signer := func(string) (*Signer, error) { return s, nil }
	mk := func(hang bool) []*Peer {
		var peers []*Peer
		for i := 0; i < 50; i++ {
			mode := "ok"
			if hang && i == 17 {
				mode = "hang"
			}
			a := newSOAPApp(b, fmt.Sprintf("app%02d", i), mode, s.Cert)
			a.delay = 50 * time.Millisecond
			peers = append(peers, a.peer())
		}
		return peers
	}
	client := &binding.SOAPClient{HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	b.Run("one-hanging", func(b *testing.B) {
		peers := mk(true)
		timeout := 500 * time.Millisecond
		run := func() float64 {
			plan := MakePlan(PlanInput{Apps: peers, Now: time.Now(), Timeout: timeout, NewID: counter()})
			start := time.Now()
			res := RunBack(context.Background(), plan.Back, client, signer, timeout)
			ratio := float64(time.Since(start)) / float64(timeout)
			if res[17].ErrorClass != ClassTimeout {
				b.Fatalf("hanging app: %q", res[17].ErrorClass)
			}
			return ratio
		}
		run()
		var worst float64
		for b.Loop() {
			worst = max(worst, run())
		}
		b.ReportMetric(worst, "total/timeout")
	})
	// The slowest leg is the slowest exchange, request sent to answer received: the latency the
	// logout log shows. Everything else the fan-out does (signing 50 requests, checking 50
	// answers, scheduling) counts against the ratio.
	b.Run("all-answering", func(b *testing.B) {
		peers := mk(false)
		run := func() (total, slowest time.Duration) {
			plan := MakePlan(PlanInput{Apps: peers, Now: time.Now(), Timeout: 5 * time.Second, NewID: counter()})
			start := time.Now()
			res := RunBack(context.Background(), plan.Back, client, signer, 5*time.Second)
			total = time.Since(start)
			for _, r := range res {
				if !r.OK() {
					b.Fatalf("%s: %s", r.Leg.Peer.Name, r.Diagnosis)
				}
				slowest = max(slowest, r.Latency)
			}
			return total, slowest
		}
		run() // opens the connections
		var worst float64
		var sumTotal, sumSlowest time.Duration
		n := 0
		for b.Loop() {
			total, slowest := run()
			worst = max(worst, float64(total)/float64(slowest))
			sumTotal, sumSlowest, n = sumTotal+total, sumSlowest+slowest, n+1
		}
		b.ReportMetric(worst, "worst-total/slowest-leg")
		b.ReportMetric(float64(sumTotal)/float64(sumSlowest), "mean-total/slowest-leg")
		b.ReportMetric(float64(sumTotal.Milliseconds())/float64(n), "total-ms")
		b.ReportMetric(float64(sumSlowest.Milliseconds())/float64(n), "slowest-leg-ms")
	})
}
