package slo

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/providers"
)

func ep(b providers.Binding, loc string) providers.Endpoint {
	return providers.Endpoint{Binding: b, Location: loc}
}

func counter() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("_id%d", n) }
}

func TestMakePlanChannels(t *testing.T) {
	soapApp := &Peer{ID: "a1", Name: "wiki", SLO: []providers.Endpoint{ep(providers.BindingRedirect, "https://wiki/slo"), ep(providers.BindingSOAP, "https://wiki/soap")}, NameID: NameID{Value: "u1"}, SessionIndexes: []string{"_w"}}
	frontApp := &Peer{ID: "a2", Name: "crm", SLO: []providers.Endpoint{ep(providers.BindingPOST, "https://crm/slo")}, NameID: NameID{Value: "u2"}, SessionIndexes: []string{"_c"}}
	frontOnly := &Peer{ID: "a3", Name: "salesforce-like", SLO: []providers.Endpoint{ep(providers.BindingSOAP, "https://sf/soap"), ep(providers.BindingRedirect, "https://sf/slo")},
		Quirks: providers.Quirks{FrontChannelOnly: true, SessionIndex: providers.SessionIndexFirstOnly, MaxSessionIndexLen: 8, LogoutSigAlg: binding.SigAlgRSASHA1},
		NameID: NameID{Value: "u3"}, SessionIndexes: []string{"_short", "_second", "_x"}}
	noSLO := &Peer{ID: "a4", Name: "legacy", NameID: NameID{Value: "u4"}}
	idp := &Peer{Upstream: true, ID: "c1", Name: "idp", SLO: []providers.Endpoint{ep(providers.BindingRedirect, "https://idp/slo")},
		NameID: NameID{Value: "alice", Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:transient", NameQualifier: "https://idp", SPNameQualifier: "https://broker/sp"}, SessionIndexes: []string{"_idp"}}
	in := PlanInput{Apps: []*Peer{soapApp, frontApp, frontOnly, noSLO}, Upstream: idp, Browser: true, Issuer: "https://broker/idp", UpstreamIssuer: "https://broker/sp",
		Now: time.Unix(0, 0).UTC(), Timeout: 5 * time.Second, NewID: counter(), Reason: ReasonUser}

	p := MakePlan(in)
	if len(p.Back) != 1 || p.Back[0].Peer != soapApp || p.Back[0].Endpoint.Location != "https://wiki/soap" {
		t.Fatalf("back channel: %+v", p.Back)
	}
	if len(p.Front) != 2 || p.Front[0].Peer != frontApp || p.Front[1].Peer != frontOnly {
		t.Fatalf("front channel: %+v", p.Front)
	}
	for _, l := range p.Front {
		if l.Channel != ChannelIframe {
			t.Errorf("%s: channel %s; want iframe", l.Peer.Name, l.Channel)
		}
	}
	if p.Front[1].Endpoint.Location != "https://sf/slo" {
		t.Errorf("front-only peer planned at %s; never its SOAP endpoint", p.Front[1].Endpoint.Location)
	}
	if got := p.Front[1].Request.SessionIndexes; len(got) != 1 || got[0] != "_short" {
		t.Errorf("first-only peer gets %v; want exactly the first", got)
	}
	if p.Front[1].SigAlg != binding.SigAlgRSASHA1 {
		t.Errorf("quirk algorithm not used: %q", p.Front[1].SigAlg)
	}
	if len(p.Unreachable) != 1 || p.Unreachable[0].Peer != noSLO || p.Unreachable[0].Reason == "" {
		t.Fatalf("unreachable: %+v", p.Unreachable)
	}
	up := p.Upstream
	if up == nil || up.Request.Issuer != "https://broker/sp" || up.Request.Destination != "https://idp/slo" || up.Request.NameID != idp.NameID {
		t.Fatalf("upstream leg: %+v", up)
	}
	if up.Request.NotOnOrAfter != in.Now.Add(in.Timeout) || up.Request.Reason != ReasonUser {
		t.Errorf("upstream request times/reason: %+v", up.Request)
	}
	ids := map[string]bool{}
	for _, l := range p.All() {
		if ids[l.Request.ID] {
			t.Errorf("request ID %s used twice", l.Request.ID)
		}
		ids[l.Request.ID] = true
	}
	if len(p.All()) != 5 {
		t.Errorf("%d legs; want 5", len(p.All()))
	}

	// Without a browser, front-channel peers cannot be reached; SOAP still can.
	in.Browser, in.NewID = false, counter()
	p = MakePlan(in)
	if len(p.Back) != 1 || len(p.Front) != 0 || len(p.Unreachable) != 3 {
		t.Fatalf("no-browser plan: back %d front %d unreachable %d", len(p.Back), len(p.Front), len(p.Unreachable))
	}
	if p.Upstream.Channel != ChannelNone {
		t.Errorf("front-channel IdP without a browser: %s", p.Upstream.Channel)
	}

	// A length limit drops an over-long SessionIndex rather than sending one the peer refuses.
	long := &Peer{Name: "strict", SLO: []providers.Endpoint{ep(providers.BindingRedirect, "https://s/slo")}, Quirks: providers.Quirks{MaxSessionIndexLen: 4}, SessionIndexes: []string{"_toolong"}}
	p = MakePlan(PlanInput{Apps: []*Peer{long}, Browser: true, NewID: counter(), Timeout: time.Second})
	if n := len(p.Front[0].Request.SessionIndexes); n != 0 {
		t.Errorf("over-long SessionIndex sent")
	}
}

func TestMakePlanRequireSessionIndex(t *testing.T) {
	adfs := &Peer{Name: "adfs", SLO: []providers.Endpoint{ep(providers.BindingRedirect, "https://adfs/slo")}, Quirks: providers.Quirks{RequireSessionIndex: true}}
	p := MakePlan(PlanInput{Apps: []*Peer{adfs}, Browser: true, NewID: counter(), Timeout: time.Second})
	if len(p.Unreachable) != 1 || !strings.Contains(p.Unreachable[0].Reason, "without a SessionIndex") {
		t.Fatalf("a peer that requires a SessionIndex got a leg without one: %+v %+v", p.Front, p.Unreachable)
	}
	adfs.SessionIndexes = []string{"_s"}
	if p := MakePlan(PlanInput{Apps: []*Peer{adfs}, Browser: true, NewID: counter(), Timeout: time.Second}); len(p.Front) != 1 {
		t.Fatalf("with a SessionIndex the leg runs: %+v", p)
	}
}

func TestProviderDiagnosis(t *testing.T) {
	q := providers.Quirks{Diagnoses: []providers.Diagnosis{{Contains: "We are unable to log you out", Text: "Salesforce refuses an unsigned request or one without SessionIndex."}}}
	r := &Result{Leg: &Leg{Peer: &Peer{Quirks: q}}, ErrorClass: ClassRefused, Diagnosis: "sf answered HTTP 200.", Received: []byte("<html>We are unable to log you out.</html>")}
	addProviderDiagnosis(r)
	if !strings.HasSuffix(r.Diagnosis, "Salesforce refuses an unsigned request or one without SessionIndex.") {
		t.Errorf("diagnosis %q", r.Diagnosis)
	}
	ok := &Result{Leg: &Leg{Peer: &Peer{Quirks: q}}, Received: []byte("We are unable to log you out")}
	addProviderDiagnosis(ok)
	if ok.Diagnosis != "" {
		t.Errorf("a confirmed leg got a diagnosis: %q", ok.Diagnosis)
	}
}

// A Salesforce app (salesforce.AppQuirks) gets exactly one SessionIndex; one over 512 characters
// is neither truncated nor sent: the leg is not planned, and the log says why.
func TestMakePlanSessionIndexTooLong(t *testing.T) {
	q := providers.Quirks{SessionIndex: providers.SessionIndexFirstOnly, MaxSessionIndexLen: 512, RequireSessionIndex: true, FrontChannelOnly: true, LogoutSigAlg: binding.SigAlgRSASHA1}
	sf := &Peer{ID: "a1", Name: "crm", SLO: []providers.Endpoint{ep(providers.BindingSOAP, "https://crm/soap"), ep(providers.BindingRedirect, "https://crm/slo")}, Quirks: q,
		SessionIndexes: []string{strings.Repeat("s", 513)}}
	p := MakePlan(PlanInput{Apps: []*Peer{sf}, Browser: true, NewID: counter(), Timeout: time.Second})
	if len(p.Unreachable) != 1 || len(p.Front) != 0 || len(p.Back) != 0 {
		t.Fatalf("over-long SessionIndex planned: front %+v back %+v", p.Front, p.Back)
	}
	if r := p.Unreachable[0].Reason; !strings.Contains(r, "513 characters") || !strings.Contains(r, "over 512") {
		t.Errorf("reason %q does not say the SessionIndex is too long", r)
	}
	sf.SessionIndexes = []string{strings.Repeat("s", 512), "_second"}
	p = MakePlan(PlanInput{Apps: []*Peer{sf}, Browser: true, NewID: counter(), Timeout: time.Second})
	if len(p.Front) != 1 || p.Front[0].Channel != ChannelIframe || len(p.Front[0].Request.SessionIndexes) != 1 || len(p.Front[0].Request.SessionIndexes[0]) != 512 {
		t.Fatalf("512 characters is allowed, one SessionIndex, never SOAP: %+v", p.Front)
	}
	if p := MakePlan(PlanInput{Apps: []*Peer{sf}, Browser: false, NewID: counter(), Timeout: time.Second}); len(p.Back) != 0 || len(p.Unreachable) != 1 {
		t.Fatalf("front-channel-only app given a SOAP leg without a browser: %+v", p.Back)
	}
}
