package slo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sloworks/broker/db"
)

// Triggers of a logout (the log's "trigger").
const (
	TriggerApp    = "app"
	TriggerIdP    = "idp"
	TriggerAdmin  = "admin"
	TriggerExpiry = "expiry"
)

// Outcomes of a logout.
const (
	OutcomeSuccess = "success" // every leg confirmed
	OutcomePartial = "partial" // some legs failed, timed out or could not be confirmed
	OutcomeFailed  = "failed"  // no leg confirmed
)

// Store is the storage the engine uses.
type Store interface {
	db.Sessions
	db.SessionLookup
	db.Logouts
	db.Replay
}

// Peers turns a session's parts into the peers a logout must reach (app metadata, the IdP
// connection and their quirks live in the tenants service).
type Peers interface {
	// App is the participant's app as a peer, with the NameID and SessionIndex issued to it.
	App(ctx context.Context, tenantID string, p *db.Participant) (*Peer, error)
	// Upstream is the session's IdP as a peer, with the NameID and SessionIndex it issued.
	Upstream(ctx context.Context, tenantID string, s *db.Session) (*Peer, error)
	// Issuers are the broker's entity IDs for the tenant: as IdP (to apps) and as SP (to the IdP).
	Issuers(ctx context.Context, tenantID string) (idp, sp string, err error)
}

// Signers gives a tenant's signer for an algorithm.
type Signers func(ctx context.Context, tenantID, sigAlg string) (*Signer, error)

// Engine runs logouts and records them.
type Engine struct {
	Store   Store
	Peers   Peers
	Signers Signers
	SOAP    SOAPCaller
	// LegTimeout bounds each leg (default 5 s).
	LegTimeout time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
	NewID      func() string
}

func (e *Engine) now() time.Time { return e.Now().UTC() }

func (e *Engine) timeout() time.Duration {
	if e.LegTimeout <= 0 {
		return 5 * time.Second
	}
	return e.LegTimeout
}

// ErrSessionGone is returned when the session to end was already ended.
var ErrSessionGone = errors.New("session already ended")

// EndSession ends a broker session from the broker's side (an admin, or expiry): the session
// ends at once and its session indexes are tombstoned, then every participant and the IdP are
// told over the back channel (there is no browser), in parallel, and the transaction is recorded
// leg by leg as it goes.
func (e *Engine) EndSession(ctx context.Context, tenantID, sessionID, trigger, triggerRef string) (*db.Logout, []db.LogoutLeg, error) {
	s, err := e.Store.GetSession(ctx, tenantID, sessionID)
	if err != nil {
		return nil, nil, err
	}
	now := e.now()
	ended, err := e.Store.EndSession(ctx, tenantID, sessionID, now)
	if err != nil {
		return nil, nil, err
	}
	if !ended {
		return nil, nil, ErrSessionGone
	}
	if err := e.tombstone(ctx, s); err != nil {
		return nil, nil, err
	}
	parts, err := e.Store.ListParticipants(ctx, tenantID, sessionID)
	if err != nil {
		return nil, nil, err
	}
	in := PlanInput{Browser: false, Reason: ReasonAdmin, Now: now, Timeout: e.timeout(), NewID: e.NewID}
	if in.Issuer, in.UpstreamIssuer, err = e.Peers.Issuers(ctx, tenantID); err != nil {
		return nil, nil, err
	}
	for i := range parts {
		p, err := e.Peers.App(ctx, tenantID, &parts[i])
		if err != nil {
			// An app deleted since sign-in is still a leg of the log, with nothing to send.
			p = &Peer{ID: parts[i].AppID, Name: "app " + parts[i].AppID}
		}
		in.Apps = append(in.Apps, p)
	}
	if up, err := e.Peers.Upstream(ctx, tenantID, s); err == nil {
		in.Upstream = up
	}
	plan := MakePlan(in)
	lo := &db.Logout{TenantID: tenantID, Trigger: trigger, TriggerRef: triggerRef, User: s.NameID, SessionIDs: []string{sessionID},
		State: db.LogoutRunning, StartedAt: now, Deadline: now.Add(e.timeout())}
	legs := make([]db.LogoutLeg, 0, len(plan.All()))
	for _, l := range plan.All() {
		legs = append(legs, legRecord(l, now))
	}
	if err := e.Store.CreateLogout(ctx, lo, legs); err != nil {
		return nil, nil, fmt.Errorf("record logout: %w", err)
	}
	byLeg := map[*Leg]*db.LogoutLeg{}
	for i, l := range plan.All() {
		byLeg[l] = &legs[i]
	}
	// Peers that cannot be reached are settled at once.
	for _, l := range plan.All() {
		if l.Channel == ChannelNone {
			e.finish(ctx, byLeg[l], &Result{Leg: l, ErrorClass: ClassNotSupported, Diagnosis: l.Reason})
		}
	}
	back := plan.Back
	if plan.Upstream != nil && plan.Upstream.Channel == ChannelSOAP {
		// No browser: the IdP's leg can run beside the apps'.
		back = append(append([]*Leg{}, back...), plan.Upstream)
	}
	signer := func(alg string) (*Signer, error) { return e.Signers(ctx, tenantID, alg) }
	for _, r := range RunBack(ctx, back, e.SOAP, signer, e.timeout()) {
		e.finish(ctx, byLeg[r.Leg], r)
	}
	return e.complete(ctx, lo)
}

// tombstone records the session's upstream SessionIndex as ended until the session would have
// expired, so that a late assertion cannot open it again.
func (e *Engine) tombstone(ctx context.Context, s *db.Session) error {
	if s.UpstreamSessionIndex == "" {
		return nil
	}
	until := s.ExpiresAt
	if min := e.now().Add(time.Hour); until.Before(min) {
		until = min
	}
	_, err := e.Store.MarkSeen(ctx, s.TenantID, TombstoneKey(s.ConnectionID, s.UpstreamSessionIndex), until)
	return err
}

// TombstoneKey is the replay-cache key that marks an IdP session index as logged out.
func TombstoneKey(connectionID, sessionIndex string) string {
	return "tombstone|" + connectionID + "|" + sessionIndex
}

func legRecord(l *Leg, now time.Time) db.LogoutLeg {
	rec := db.LogoutLeg{Target: "app", TargetID: l.Peer.ID, TargetName: l.Peer.Name, Channel: string(l.Channel), State: db.LegPending, StartedAt: now}
	if l.Peer.Upstream {
		rec.Target = "upstream"
	}
	if l.Channel != ChannelNone && l.Request != nil {
		rec.RequestID = l.Request.ID
	}
	return rec
}

// finish records a leg's result (once: another replica may have been first).
func (e *Engine) finish(ctx context.Context, rec *db.LogoutLeg, r *Result) {
	fin := e.now()
	upd := db.LogoutLeg{Status: r.Status.Top(), SubStatus: r.Status.Sub(), LatencyMS: r.Latency.Milliseconds(), ErrorClass: r.ErrorClass,
		Diagnosis: r.Diagnosis, Received: r.Received, FinishedAt: &fin}
	if len(r.Sent) > 0 && len(rec.Sent) == 0 {
		rec.Sent = r.Sent
		if err := e.Store.UpdateLeg(ctx, rec); err != nil && !errors.Is(err, db.ErrConflict) {
			e.Logger.WarnContext(ctx, "record sent message failed", "leg", rec.ID, "error", err)
		}
	}
	if ok, err := e.Store.FinishLeg(ctx, rec.TenantID, rec.ID, &upd); err != nil {
		e.Logger.WarnContext(ctx, "record leg failed", "leg", rec.ID, "error", err)
	} else if ok {
		*rec = upd
	}
	e.Logger.InfoContext(ctx, "logout leg finished", "tenant", rec.TenantID, "target", rec.TargetName, "channel", rec.Channel,
		"error_class", r.ErrorClass, "latency_ms", r.Latency.Milliseconds())
}

// complete sets the outcome from the legs, once every leg is done.
func (e *Engine) complete(ctx context.Context, lo *db.Logout) (*db.Logout, []db.LogoutLeg, error) {
	stored, legs, err := e.Store.GetLogout(ctx, lo.TenantID, lo.ID)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range legs {
		if l.State != db.LegDone {
			return stored, legs, nil // front-channel legs still running
		}
	}
	fin := e.now()
	stored.State, stored.Outcome, stored.FinishedAt = db.LogoutFinished, Outcome(legs), &fin
	if err := e.Store.UpdateLogout(ctx, stored); err != nil && !errors.Is(err, db.ErrConflict) {
		return nil, nil, err
	}
	e.Logger.InfoContext(ctx, "logout finished", "tenant", stored.TenantID, "logout", stored.ID, "trigger", stored.Trigger, "outcome", stored.Outcome, "legs", len(legs))
	return stored, legs, nil
}

// Outcome is success when every leg confirmed, failed when none did, partial otherwise.
func Outcome(legs []db.LogoutLeg) string {
	ok := 0
	for _, l := range legs {
		if l.ErrorClass == "" {
			ok++
		}
	}
	switch {
	case ok == len(legs):
		return OutcomeSuccess
	case ok == 0:
		return OutcomeFailed
	default:
		return OutcomePartial
	}
}
