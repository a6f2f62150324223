package slo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/providers"
)

// Initiator is who started a logout and how to answer them; it is kept with the logout (as
// JSON) so that any replica can answer when the browser comes back.
type Initiator struct {
	// Kind is "app" or "idp"; empty for logouts nobody is waiting for (admin, expiry, SOAP).
	Kind string `json:"kind,omitempty"`
	// PeerID is the app or connection ID.
	PeerID string `json:"peer_id,omitempty"`
	// Binding is how the answer goes back (Redirect or POST).
	Binding providers.Binding `json:"binding,omitempty"`
	// RequestID is the initiator's LogoutRequest ID (the answer's InResponseTo).
	RequestID   string `json:"request_id,omitempty"`
	RelayState  string `json:"relay_state,omitempty"`
	ResponseURL string `json:"response_url,omitempty"`
	// Issuer is the broker's entity ID toward the initiator.
	Issuer string `json:"issuer,omitempty"`
	SigAlg string `json:"sig_alg,omitempty"`
}

// FrontPeers finds a front-channel leg's peer by ID, when the browser brings the leg back.
type FrontPeers interface {
	AppPeer(ctx context.Context, tenantID, appID string) (*Peer, error)
	ConnectionPeer(ctx context.Context, tenantID, connectionID string) (*Peer, error)
}

// Outgoing is a message to send through the browser: a redirect URL, or a form to post.
type Outgoing struct {
	RedirectURL string
	Form        *binding.Form
}

func (e *Engine) legPeer(ctx context.Context, fp FrontPeers, tenantID string, leg *db.LogoutLeg) (*Peer, error) {
	if leg.Target == "upstream" {
		return fp.ConnectionPeer(ctx, tenantID, leg.TargetID)
	}
	return fp.AppPeer(ctx, tenantID, leg.TargetID)
}

// SendFront signs a front-channel leg's request, kept (unsigned) in the leg's Sent when the logout
// was planned, for its peer's Redirect or POST endpoint named by the request's Destination.
// relayState rides along (the logout ID, so the answer finds its way back).
func (e *Engine) SendFront(ctx context.Context, fp FrontPeers, tenantID string, leg *db.LogoutLeg, relayState string) (*Outgoing, error) {
	if leg.State != db.LegPending {
		return nil, fmt.Errorf("leg %s is already done", leg.ID)
	}
	peer, err := e.legPeer(ctx, fp, tenantID, leg)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(leg.Sent); err != nil {
		return nil, fmt.Errorf("leg %s: stored request: %w", leg.ID, err)
	}
	dest := doc.Root().SelectAttrValue("Destination", "")
	var ep *providers.Endpoint
	for i := range peer.SLO {
		if peer.SLO[i].Location == dest && peer.SLO[i].Binding != providers.BindingSOAP {
			ep = &peer.SLO[i]
			break
		}
	}
	if ep == nil {
		return nil, fmt.Errorf("leg %s: %s no longer has a front-channel SingleLogoutService at %s", leg.ID, peer.Name, dest)
	}
	s, err := e.Signers(ctx, tenantID, peer.Quirks.LogoutSigAlg)
	if err != nil {
		return nil, err
	}
	// The request is dated when it is sent, not when the logout was planned: the IdP's leg goes
	// out only after the apps' legs, and must not arrive already expired.
	now := e.now()
	root := doc.Root()
	root.CreateAttr("IssueInstant", now.Format(timeFormat))
	if root.SelectAttr("NotOnOrAfter") != nil {
		root.CreateAttr("NotOnOrAfter", now.Add(e.timeout()).Format(timeFormat))
	}
	fresh := binding.Serialize(root)
	leg.Sent = fresh
	if err := e.Store.UpdateLeg(ctx, leg); err != nil && !errors.Is(err, db.ErrConflict) {
		return nil, err
	}
	if ep.Binding == providers.BindingRedirect {
		u, err := binding.EncodeRedirect(dest, "SAMLRequest", fresh, relayState, s.Key, s.SigAlg)
		if err != nil {
			return nil, err
		}
		return &Outgoing{RedirectURL: u}, nil
	}
	el := root
	if err := binding.SignEnveloped(el, s.Key, s.Cert, s.SigAlg); err != nil {
		return nil, err
	}
	return &Outgoing{Form: &binding.Form{Action: dest, Param: "SAMLRequest", Message: binding.Serialize(el), RelayState: relayState}}, nil
}

// ErrUnknownResponse is returned for a LogoutResponse that answers no leg of the tenant.
var ErrUnknownResponse = errors.New("LogoutResponse answers no logout leg")

// FinishFront records a peer's LogoutResponse that came back through the browser: it finds the
// leg by InResponseTo, verifies the answer against that peer's keys, and settles the leg.
func (e *Engine) FinishFront(ctx context.Context, fp FrontPeers, tenantID string, rcv *Received) (*db.LogoutLeg, *Result, error) {
	inResponseTo := rcv.Element.SelectAttrValue("InResponseTo", "")
	leg, err := e.Store.GetLegByRequestID(ctx, tenantID, inResponseTo)
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: InResponseTo %q", ErrUnknownResponse, inResponseTo)
	}
	if err != nil {
		return nil, nil, err
	}
	if leg.State != db.LegPending {
		return leg, nil, nil // settled already (the deadline passed, or a replayed answer)
	}
	peer, err := e.legPeer(ctx, fp, tenantID, leg)
	if err != nil {
		return nil, nil, err
	}
	req := &LogoutRequest{ID: leg.RequestID}
	r := &Result{Leg: &Leg{Peer: peer, Request: req}, Latency: e.now().Sub(leg.StartedAt)}
	raw := binding.Serialize(rcv.Element)
	checkAnswer(r, rcv)
	r.Received = raw
	e.finish(ctx, leg, r)
	return leg, r, nil
}

// Step is what the browser does next in a front-channel logout.
type Step struct {
	// Wait: front-channel legs are still running; show the logout page.
	Wait bool
	// Send is the next message for the browser (the IdP's leg, or the answer to the initiator);
	// nil with Done when nobody waits for an answer.
	Send *Outgoing
	Done bool
	// Logout is the transaction as it stands.
	Logout *db.Logout
	Legs   []db.LogoutLeg
}

// Continue moves a front-channel logout on when the browser comes back to it: app legs still
// pending past the deadline are settled as "no answer"; then the IdP's front-channel leg, if any,
// is sent; then the initiator gets its answer (Success, or PartialLogout when any leg failed).
func (e *Engine) Continue(ctx context.Context, fp FrontPeers, tenantID, logoutID string) (*Step, error) {
	lo, legs, err := e.Store.GetLogout(ctx, tenantID, logoutID)
	if err != nil {
		return nil, err
	}
	now := e.now()
	// Steps are the legs the browser itself goes through, one after the other, after the
	// parallel ones: apps that refuse to be framed, then the IdP.
	var steps []*db.LogoutLeg
	waiting := false
	for i := range legs {
		l := &legs[i]
		if IsStep(l) {
			if l.Target != "upstream" {
				steps = append(steps, l)
			}
			continue
		}
		if l.Target == "upstream" && l.Channel == string(ChannelSOAP) {
			continue // the IdP's back-channel leg runs after the apps' legs, below
		}
		if l.State == db.LegPending {
			if now.Before(lo.Deadline) {
				waiting = true
				continue
			}
			e.settleNoAnswer(ctx, fp, l, now.Sub(l.StartedAt),
				fmt.Sprintf("%s did not answer in the browser within the logout's time limit (its logout page may refuse to be framed, or need its own cookie)", l.TargetName))
		}
	}
	if waiting {
		return &Step{Wait: true, Logout: lo, Legs: legs}, nil
	}
	for i := range legs {
		if legs[i].Target == "upstream" && IsStep(&legs[i]) {
			steps = append(steps, &legs[i]) // the IdP's step comes last
		}
		if l := &legs[i]; l.Target == "upstream" && l.Channel == string(ChannelSOAP) && l.State == db.LegPending {
			// The IdP over SOAP, last: while this browser request waits (one leg timeout at most).
			e.runUpstreamSOAP(ctx, fp, tenantID, l)
		}
	}
	for _, l := range steps {
		if l.State != db.LegPending {
			continue
		}
		switch {
		case e.sentBefore(l, lo.StartedAt):
			// The browser came back here without the peer's answer.
			e.settleNoAnswer(ctx, fp, l, now.Sub(l.StartedAt), l.TargetName+" did not send the browser back with its LogoutResponse")
		case now.After(lo.Deadline.Add(e.timeout())):
			e.settleNoAnswer(ctx, fp, l, now.Sub(l.StartedAt), l.TargetName+" was not reached within the logout's time limit")
		default:
			out, err := e.SendFront(ctx, fp, tenantID, l, lo.ID)
			if err == nil {
				return &Step{Send: out, Logout: lo, Legs: legs}, nil
			}
			e.finish(ctx, l, &Result{ErrorClass: ClassSigningUnavailable, Diagnosis: "the LogoutRequest to " + l.TargetName + " could not be sent: " + err.Error()})
		}
	}
	lo, legs, err = e.complete(ctx, lo)
	if err != nil {
		return nil, err
	}
	var ini Initiator
	if len(lo.Initiator) > 0 {
		if err := json.Unmarshal(lo.Initiator, &ini); err != nil {
			return nil, fmt.Errorf("logout %s: initiator: %w", lo.ID, err)
		}
	}
	if ini.Kind == "" || ini.ResponseURL == "" {
		return &Step{Done: true, Logout: lo, Legs: legs}, nil
	}
	out, err := e.answer(ctx, tenantID, &ini, AnswerStatus(lo, legs))
	if err != nil {
		return nil, err
	}
	return &Step{Send: out, Done: true, Logout: lo, Legs: legs}, nil
}

// runUpstreamSOAP runs the IdP's back-channel leg of a logout with a browser, after the apps'
// legs: its request, kept unsigned when the logout was planned, is dated now, signed and sent.
func (e *Engine) runUpstreamSOAP(ctx context.Context, fp FrontPeers, tenantID string, rec *db.LogoutLeg) {
	fail := func(format string, args ...any) {
		e.finish(ctx, rec, &Result{ErrorClass: ClassSigningUnavailable, Diagnosis: fmt.Sprintf(format, args...)})
	}
	peer, err := e.legPeer(ctx, fp, tenantID, rec)
	if err != nil {
		fail("the LogoutRequest to %s could not be sent: %v", rec.TargetName, err)
		return
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(rec.Sent); err != nil || doc.Root() == nil {
		fail("the LogoutRequest to %s could not be sent: stored request: %v", rec.TargetName, err)
		return
	}
	req, err := ParseLogoutRequest(doc.Root())
	if err != nil {
		fail("the LogoutRequest to %s could not be sent: stored request: %v", rec.TargetName, err)
		return
	}
	ep, ok := endpoint(peer.SLO, providers.BindingSOAP)
	if !ok {
		fail("%s no longer has a SOAP SingleLogoutService", rec.TargetName)
		return
	}
	now := e.now()
	req.IssueInstant, req.NotOnOrAfter = now, now.Add(e.timeout())
	l := &Leg{Peer: peer, Channel: ChannelSOAP, Endpoint: ep, Request: req, SigAlg: peer.Quirks.LogoutSigAlg}
	signer := func(alg string) (*Signer, error) { return e.Signers(ctx, tenantID, alg) }
	for _, r := range RunBack(ctx, []*Leg{l}, e.SOAP, signer, e.timeout()) {
		rec.Sent = nil // the signed request replaces the planned one
		e.finish(ctx, rec, r)
	}
}

// settleNoAnswer records a leg whose answer never came back through the browser, with what the
// peer's product says that means (e.g. Salesforce's "We are unable to log you out.") when the peer
// can still be found.
func (e *Engine) settleNoAnswer(ctx context.Context, fp FrontPeers, l *db.LogoutLeg, latency time.Duration, diagnosis string) {
	r := &Result{ErrorClass: ClassNoAnswer, Latency: latency, Diagnosis: diagnosis}
	if fp != nil {
		if peer, err := e.legPeer(ctx, fp, l.TenantID, l); err == nil {
			r.Leg = &Leg{Peer: peer}
		}
	}
	e.finish(ctx, l, r)
}

// IsStep reports whether a leg is a step of the browser (Redirect or POST, one after the other)
// rather than a parallel leg (an iframe or the back channel).
func IsStep(l *db.LogoutLeg) bool {
	return l.Channel == string(ChannelRedirect) || l.Channel == string(ChannelPOST)
}

// sentBefore reports whether the leg's request was already sent once: SendFront dates it anew,
// after the logout started.
func (e *Engine) sentBefore(l *db.LogoutLeg, started time.Time) bool {
	doc := etree.NewDocument()
	if doc.ReadFromBytes(l.Sent) != nil || doc.Root() == nil {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, doc.Root().SelectAttrValue("IssueInstant", ""))
	return err == nil && t.After(started)
}

// AnswerStatus is the status the initiator of a logout gets: Success when every leg confirmed,
// else Success with a nested PartialLogout (saml-core 3.7.3.2; a second-level code under Success,
// 3.2.2.2: the broker session did end) saying how many parties could not be confirmed.
func AnswerStatus(lo *db.Logout, legs []db.LogoutLeg) Status {
	if lo.Outcome == OutcomeSuccess {
		return Status{Codes: []string{StatusSuccess}}
	}
	failed := 0
	for _, l := range legs {
		if l.ErrorClass != "" {
			failed++
		}
	}
	return Status{Codes: []string{StatusSuccess, StatusPartialLogout},
		Message: fmt.Sprintf("%d of %d parties could not be confirmed as logged out (logout %s)", failed, len(legs), lo.ID)}
}

// answer signs the LogoutResponse for the initiator, in its binding.
func (e *Engine) answer(ctx context.Context, tenantID string, ini *Initiator, st Status) (*Outgoing, error) {
	resp := &LogoutResponse{ID: e.NewID(), InResponseTo: ini.RequestID, IssueInstant: e.now(), Destination: ini.ResponseURL, Issuer: ini.Issuer, Status: st}
	s, err := e.Signers(ctx, tenantID, ini.SigAlg)
	if err != nil {
		return nil, err
	}
	if ini.Binding == providers.BindingPOST {
		f, err := POSTForm(ini.ResponseURL, resp, ini.RelayState, s)
		if err != nil {
			return nil, err
		}
		return &Outgoing{Form: f}, nil
	}
	u, err := RedirectURL(ini.ResponseURL, resp, ini.RelayState, s)
	if err != nil {
		return nil, err
	}
	return &Outgoing{RedirectURL: u}, nil
}

// SettleAbandoned finishes, across tenants, logouts whose browser never came back: once their
// deadline (plus one more leg timeout for the IdP's leg) has passed, every leg still pending is
// settled as "no answer" and the outcome is set. Nobody is waiting for an answer any more. The
// janitor calls it; it returns how many logouts it finished.
func (e *Engine) SettleAbandoned(ctx context.Context, now time.Time) (int, error) {
	los, err := e.Store.ListUnfinishedLogouts(ctx, now.Add(-e.timeout()))
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, lo := range los {
		_, legs, err := e.Store.GetLogout(ctx, lo.TenantID, lo.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i := range legs {
			l := &legs[i]
			if l.State == db.LegPending {
				fp, _ := e.Peers.(FrontPeers)
				e.settleNoAnswer(ctx, fp, l, now.Sub(l.StartedAt),
					fmt.Sprintf("%s never answered: the user's browser left the logout before this leg was done", l.TargetName))
			}
		}
		if _, _, err := e.complete(ctx, &lo); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
