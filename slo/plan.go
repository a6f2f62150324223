package slo

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/sloworks/broker/providers"
)

// Channel is how a leg reaches its peer.
type Channel string

// Channels of a leg (the logout log shows them).
const (
	ChannelSOAP     Channel = "soap"     // back channel, server to server
	ChannelIframe   Channel = "iframe"   // front channel, in a parallel iframe of the logout page
	ChannelRedirect Channel = "redirect" // front channel, a redirect step of the browser
	ChannelPOST     Channel = "post"     // front channel, an auto-submitted form
	ChannelNone     Channel = "none"     // the peer cannot be reached now (e.g. no SLO, or no browser)
)

// Error classes of a failed leg (the logout log's error_class).
const (
	ClassTimeout            = "timeout"
	ClassBadSignature       = "bad_signature"
	ClassStatus             = "status"
	ClassUnreachable        = "unreachable"
	ClassNoAnswer           = "no_answer"
	ClassNotSupported       = "not_supported"
	ClassSigningUnavailable = "signing_unavailable"
	ClassRefused            = "refused"
)

// Peer is one party of a broker session that a logout must reach: an app (participant) or the
// tenant's IdP (upstream).
type Peer struct {
	// Upstream is true for the tenant's IdP.
	Upstream bool
	// ID is the app or connection ID; Name is what support staff read.
	ID, Name string
	// EntityID is the peer's entity ID: the Issuer its answers must carry.
	EntityID string
	// SLO are the peer's SingleLogoutService endpoints from its metadata.
	SLO []providers.Endpoint
	// Certs verify the peer's signed answers.
	Certs []*x509.Certificate
	// Quirks are the peer product's differences from the SAML default.
	Quirks providers.Quirks
	// NoFrame: the peer's logout page refuses to be framed; through the browser it is reached by
	// a redirect step, not an iframe.
	NoFrame bool
	// NameID and SessionIndexes are what this peer knows the user by: for an app, what the broker
	// issued to it; for the IdP, what it issued to the broker.
	NameID         NameID
	SessionIndexes []string
}

// Leg is one peer's part of a logout: the request to send and how.
type Leg struct {
	Peer     *Peer
	Channel  Channel
	Endpoint providers.Endpoint
	Request  *LogoutRequest
	// SigAlg signs the request (the peer's quirks; RSA-SHA256 by default).
	SigAlg string
	// Reason explains ChannelNone in plain words.
	Reason string
}

// PlanInput is what a plan is made from.
type PlanInput struct {
	// Apps are the session's app participants, except the one that started the logout.
	Apps []*Peer
	// Upstream is the tenant's IdP, nil when it did not start this session or started the
	// logout itself.
	Upstream *Peer
	// Browser is true when the end user's browser is part of the logout (front channel
	// possible); false for SOAP-initiated and broker-initiated logouts.
	Browser bool
	// Issuer is the broker's entity ID toward apps; UpstreamIssuer toward the IdP.
	Issuer, UpstreamIssuer string
	// Reason is the LogoutRequest Reason.
	Reason string
	Now    time.Time
	// Timeout is the per-leg time limit; requests carry NotOnOrAfter = Now + Timeout.
	Timeout time.Duration
	NewID   func() string
}

// Plan is the legs of one logout: back-channel legs run in parallel at once, front-channel legs
// in parallel in the browser, the upstream leg last.
type Plan struct {
	Back        []*Leg
	Front       []*Leg
	Unreachable []*Leg
	Upstream    *Leg
}

// All lists every leg in the order the log shows them.
func (p *Plan) All() []*Leg {
	out := append(append(append([]*Leg{}, p.Back...), p.Front...), p.Unreachable...)
	if p.Upstream != nil {
		out = append(out, p.Upstream)
	}
	return out
}

func endpoint(eps []providers.Endpoint, b providers.Binding) (providers.Endpoint, bool) {
	for _, e := range eps {
		if e.Binding == b {
			return e, true
		}
	}
	return providers.Endpoint{}, false
}

// frontEndpoint picks the front-channel endpoint: the quirks' preferred logout bindings first,
// then Redirect, then POST.
func frontEndpoint(p *Peer) (providers.Endpoint, Channel, bool) {
	prefs := append(append([]providers.Binding{}, p.Quirks.LogoutBindings...), providers.BindingRedirect, providers.BindingPOST)
	for _, b := range prefs {
		if b == providers.BindingSOAP {
			continue
		}
		if e, ok := endpoint(p.SLO, b); ok {
			if b == providers.BindingPOST {
				return e, ChannelPOST, true
			}
			return e, ChannelRedirect, true
		}
	}
	return providers.Endpoint{}, "", false
}

// sessionIndexes applies the peer's SessionIndex quirks: a peer that keeps only the first gets
// only the first; none longer than the peer accepts (those are returned as tooLong: never
// truncated, since a shortened SessionIndex names no session).
func sessionIndexes(p *Peer) (out, tooLong []string) {
	out = p.SessionIndexes
	if p.Quirks.SessionIndex == providers.SessionIndexFirstOnly && len(out) > 1 {
		out = out[:1]
	}
	if max := p.Quirks.MaxSessionIndexLen; max > 0 {
		kept := out[:0:0]
		for _, si := range out {
			if len(si) <= max {
				kept = append(kept, si)
			} else {
				tooLong = append(tooLong, si)
			}
		}
		out = kept
	}
	return out, tooLong
}

// MakePlan decides each peer's channel: SOAP where its metadata has a SOAP SingleLogoutService and
// its quirks allow a back channel; otherwise the front channel when a browser is there; otherwise
// the peer is recorded as unreachable.
func MakePlan(in PlanInput) *Plan {
	p := &Plan{}
	tooLong := map[*Leg][]string{}
	leg := func(peer *Peer, issuer string) *Leg {
		sis, long := sessionIndexes(peer)
		l := &Leg{Peer: peer, SigAlg: peer.Quirks.LogoutSigAlg, Request: &LogoutRequest{
			ID: in.NewID(), Version: "2.0", IssueInstant: in.Now, Issuer: issuer, Reason: in.Reason,
			NotOnOrAfter: in.Now.Add(in.Timeout), NameID: peer.NameID, SessionIndexes: sis,
		}}
		if len(long) > 0 {
			tooLong[l] = long
		}
		return l
	}
	place := func(peer *Peer, l *Leg) {
		if peer.Quirks.NoSLO || len(peer.SLO) == 0 {
			l.Channel = ChannelNone
			l.Reason = fmt.Sprintf("%s has no SAML Single Logout; its own session was not ended", peer.Name)
			if peer.Quirks.NoSLO {
				l.Reason = fmt.Sprintf("%s does not support SAML Single Logout; its own session was not ended", peer.Name)
			}
			return
		}
		if long := tooLong[l]; peer.Quirks.RequireSessionIndex && len(l.Request.SessionIndexes) == 0 && len(long) > 0 {
			l.Channel = ChannelNone
			l.Reason = fmt.Sprintf("the SessionIndex of this session for %s is %d characters long, and %s refuses one over %d; "+
				"a shortened one would name no session, so nothing was sent and its own session was not ended", peer.Name, len(long[0]), peer.Name, peer.Quirks.MaxSessionIndexLen)
			return
		}
		if peer.Quirks.RequireSessionIndex && len(l.Request.SessionIndexes) == 0 {
			l.Channel = ChannelNone
			l.Reason = fmt.Sprintf("%s refuses a LogoutRequest without a SessionIndex, and none is known for this session; nothing was sent", peer.Name)
			return
		}
		if !peer.Quirks.FrontChannelOnly {
			if e, ok := endpoint(peer.SLO, providers.BindingSOAP); ok {
				l.Channel, l.Endpoint = ChannelSOAP, e
				return
			}
		}
		if !in.Browser {
			l.Channel = ChannelNone
			l.Reason = fmt.Sprintf("%s takes logout only through the browser (front channel), and this logout has no browser", peer.Name)
			return
		}
		if e, ch, ok := frontEndpoint(peer); ok {
			l.Channel, l.Endpoint = ch, e
			return
		}
		l.Channel = ChannelNone
		l.Reason = fmt.Sprintf("%s has no Redirect or POST SingleLogoutService", peer.Name)
	}
	for _, a := range in.Apps {
		l := leg(a, in.Issuer)
		place(a, l)
		switch {
		case l.Channel == ChannelSOAP:
			p.Back = append(p.Back, l)
		case l.Channel == ChannelNone:
			p.Unreachable = append(p.Unreachable, l)
		default:
			if in.Browser && !a.NoFrame {
				l.Channel = ChannelIframe // parallel iframes; a redirect step only for apps that refuse framing
			}
			p.Front = append(p.Front, l)
		}
	}
	if in.Upstream != nil {
		l := leg(in.Upstream, in.UpstreamIssuer)
		place(in.Upstream, l)
		l.Request.Destination = l.Endpoint.Location
		p.Upstream = l
	}
	for _, l := range p.All() {
		l.Request.Destination = l.Endpoint.Location
	}
	return p
}
