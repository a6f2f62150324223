package slo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/providers"
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

// ErrNameIDMismatch is returned when a LogoutRequest names a session with the NameID of another
// user: the request is refused and nothing is logged out.
var ErrNameIDMismatch = errors.New("the LogoutRequest's NameID is not the session's")

// EndSession ends a broker session from the broker's side (an admin, or expiry): the session
// ends at once and its session indexes are tombstoned, then every participant and the IdP are
// told over the back channel (there is no browser), in parallel, and the transaction is recorded
// leg by leg as it goes.
func (e *Engine) EndSession(ctx context.Context, tenantID, sessionID, trigger, triggerRef string) (*db.Logout, []db.LogoutLeg, error) {
	s, err := e.Store.GetSession(ctx, tenantID, sessionID)
	if err != nil {
		return nil, nil, err
	}
	lg := &logout{tenantID: tenantID, trigger: trigger, triggerRef: triggerRef, reason: ReasonAdmin, user: s.NameID, now: e.now()}
	if lg.issuer, lg.upstreamIssuer, err = e.Peers.Issuers(ctx, tenantID); err != nil {
		return nil, nil, err
	}
	if lg.sessions, err = e.endSessions(ctx, []*db.Session{s}, lg.now); err != nil {
		return nil, nil, err
	}
	if len(lg.sessions) == 0 {
		return nil, nil, ErrSessionGone
	}
	return e.run(ctx, lg)
}

// AppLogout is a logout an app started over the back channel (SOAP, no browser) with a
// LogoutRequest whose signature, issuer, destination, time and ID the caller has checked. The
// sessions are those in which the broker issued the request's SessionIndexes to the app — all
// of the app's live sessions with the request's NameID when it names none — and each must have
// been issued to the app under that NameID, else ErrNameIDMismatch and nothing is logged out.
// Each session ends at once, then every other participant and the IdP are told over the back
// channel (a peer without one is recorded as unreachable), and the answer for the app is
// returned: Success when every leg confirmed, else Success with a nested PartialLogout
// (saml-core 3.7.3.2). A session that is already gone or unknown is logged out as far as the
// broker knows: Success, recorded as a logout without legs.
func (e *Engine) AppLogout(ctx context.Context, tenantID string, app *Peer, req *LogoutRequest) (*db.Logout, *LogoutResponse, error) {
	lg, sessions, err := e.appLogout(ctx, tenantID, app, req)
	if err != nil {
		return nil, nil, err
	}
	return e.answered(ctx, lg, sessions, req)
}

// AppLogoutFront is a logout an app started through the browser (Redirect or POST): the same
// sessions as AppLogout end at once, back-channel legs start at once in the background, and the
// front-channel legs wait for the browser on the logout page; the initiator is answered when the
// browser comes back (Continue).
func (e *Engine) AppLogoutFront(ctx context.Context, tenantID string, app *Peer, req *LogoutRequest, ini *Initiator) (*db.Logout, error) {
	lg, sessions, err := e.appLogout(ctx, tenantID, app, req)
	if err != nil {
		return nil, err
	}
	lg.browser, lg.initiator = true, ini
	return e.started(ctx, lg, sessions)
}

// appLogout finds the sessions of an app's LogoutRequest (see AppLogout).
func (e *Engine) appLogout(ctx context.Context, tenantID string, app *Peer, req *LogoutRequest) (*logout, []*db.Session, error) {
	var parts []db.Participant
	if len(req.SessionIndexes) == 0 {
		ps, err := e.Store.ListParticipantsOfApp(ctx, tenantID, app.ID, req.NameID.Value)
		if err != nil {
			return nil, nil, err
		}
		parts = ps
	}
	for _, si := range req.SessionIndexes {
		p, err := e.Store.GetParticipantBySessionIndex(ctx, tenantID, app.ID, si)
		if errors.Is(err, db.ErrNotFound) {
			continue // unknown, or its session is long gone
		}
		if err != nil {
			return nil, nil, err
		}
		if p.NameID != req.NameID.Value {
			return nil, nil, fmt.Errorf("%w: SessionIndex %s was issued to %s for another NameID", ErrNameIDMismatch, si, app.Name)
		}
		parts = append(parts, *p)
	}
	var sessions []*db.Session
	seen := map[string]bool{}
	for _, p := range parts {
		if seen[p.SessionID] {
			continue
		}
		seen[p.SessionID] = true
		s, err := e.Store.GetSession(ctx, tenantID, p.SessionID)
		if errors.Is(err, db.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		sessions = append(sessions, s)
	}
	// The log names the user as the IdP issued the NameID; only when no session is known, as the
	// app sent it.
	user := req.NameID.Value
	if len(sessions) > 0 {
		user = sessions[0].NameID
	}
	lg := &logout{tenantID: tenantID, trigger: TriggerApp, triggerRef: app.ID, reason: forwardedReason(req.Reason), user: user,
		exceptApp: app.ID, now: e.now()}
	return lg, sessions, nil
}

// IdPLogout is a logout the tenant's IdP (the connection's upstream) started over the back
// channel (SOAP, no browser) with a LogoutRequest the caller has checked. The sessions are the
// live ones of the connection whose IdP SessionIndex the request names — every live session of
// the request's NameID on the connection when it names none — and each must be of that NameID,
// else ErrNameIDMismatch and nothing is logged out. Each session ends at once, every app of them
// is told over the back channel (the IdP itself is not), and the answer for the IdP is returned,
// with the status rules of AppLogout.
func (e *Engine) IdPLogout(ctx context.Context, tenantID string, upstream *Peer, connectionID string, req *LogoutRequest) (*db.Logout, *LogoutResponse, error) {
	lg, sessions, err := e.idpLogout(ctx, tenantID, upstream, connectionID, req)
	if err != nil {
		return nil, nil, err
	}
	return e.answered(ctx, lg, sessions, req)
}

// IdPLogoutFront is a logout the IdP started through the browser: the sessions end at once, their
// apps are told (back channel at once, front channel on the logout page), and the IdP is
// answered when the browser comes back (Continue).
func (e *Engine) IdPLogoutFront(ctx context.Context, tenantID string, upstream *Peer, connectionID string, req *LogoutRequest, ini *Initiator) (*db.Logout, error) {
	lg, sessions, err := e.idpLogout(ctx, tenantID, upstream, connectionID, req)
	if err != nil {
		return nil, err
	}
	lg.browser, lg.initiator = true, ini
	return e.started(ctx, lg, sessions)
}

// idpLogout finds the sessions of the IdP's LogoutRequest (see IdPLogout).
func (e *Engine) idpLogout(ctx context.Context, tenantID string, upstream *Peer, connectionID string, req *LogoutRequest) (*logout, []*db.Session, error) {
	var sessions []*db.Session
	if len(req.SessionIndexes) == 0 {
		ss, err := e.Store.FindSessionsByNameID(ctx, tenantID, connectionID, req.NameID.Value)
		if err != nil {
			return nil, nil, err
		}
		for i := range ss {
			sessions = append(sessions, &ss[i])
		}
	}
	seen := map[string]bool{}
	var unknown []string
	for _, si := range req.SessionIndexes {
		s, err := e.Store.FindSessionByUpstreamIndex(ctx, tenantID, connectionID, si)
		if errors.Is(err, db.ErrNotFound) {
			unknown = append(unknown, si)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if s.NameID != req.NameID.Value {
			return nil, nil, fmt.Errorf("%w: the session with SessionIndex %s at %s is another NameID's", ErrNameIDMismatch, si, upstream.Name)
		}
		if s.EndedAt != nil || seen[s.ID] {
			continue
		}
		seen[s.ID] = true
		sessions = append(sessions, s)
	}
	lg := &logout{tenantID: tenantID, trigger: TriggerIdP, triggerRef: connectionID, reason: forwardedReason(req.Reason), user: req.NameID.Value,
		noUpstream: true, now: e.now()}
	// The IdP says these of its sessions are over: tombstone those the broker has no session of
	// (yet), so that an assertion of one still on its way cannot open it. (Ending a session
	// tombstones its own.)
	for _, si := range unknown {
		if err := e.tombstoneIndex(ctx, e.Store, tenantID, connectionID, si, time.Time{}); err != nil {
			return nil, nil, err
		}
	}
	return lg, sessions, nil
}

// answered ends the sessions, runs the logout and makes the LogoutResponse for the peer that
// started it: from the broker as IdP to an app, as SP to the IdP.
func (e *Engine) answered(ctx context.Context, lg *logout, sessions []*db.Session, req *LogoutRequest) (*db.Logout, *LogoutResponse, error) {
	var err error
	if lg.issuer, lg.upstreamIssuer, err = e.Peers.Issuers(ctx, lg.tenantID); err != nil {
		return nil, nil, err
	}
	if lg.sessions, err = e.endSessions(ctx, sessions, lg.now); err != nil {
		return nil, nil, err
	}
	lo, legs, err := e.run(ctx, lg)
	if err != nil {
		return nil, nil, err
	}
	// saml-core 3.7.3.2: Success when every party confirmed; PartialLogout (a second-level code
	// under Success, 3.2.2.2: the broker session did end) when any could not be.
	st := AnswerStatus(lo, legs)
	// SOAP: the answer goes back in the same HTTP exchange, so no Destination (saml-bindings 3.2).
	issuer := lg.issuer
	if lg.noUpstream {
		issuer = lg.upstreamIssuer
	}
	resp := &LogoutResponse{ID: e.NewID(), InResponseTo: req.ID, Version: "2.0", IssueInstant: e.now(), Issuer: issuer, Status: st}
	return lo, resp, nil
}

// started ends the sessions and starts a front-channel logout (the browser takes it on).
func (e *Engine) started(ctx context.Context, lg *logout, sessions []*db.Session) (*db.Logout, error) {
	var err error
	if lg.issuer, lg.upstreamIssuer, err = e.Peers.Issuers(ctx, lg.tenantID); err != nil {
		return nil, err
	}
	if lg.sessions, err = e.endSessions(ctx, sessions, lg.now); err != nil {
		return nil, err
	}
	lo, _, err := e.run(ctx, lg)
	return lo, err
}

// forwardedReason is the Reason the legs carry for a logout a peer started (saml-core 3.7.3):
// admin when the peer said admin, else user.
func forwardedReason(r string) string {
	if r == ReasonAdmin {
		return r
	}
	return ReasonUser
}

// logout is one logout transaction to run.
type logout struct {
	tenantID            string
	trigger, triggerRef string
	// reason is the Reason of the LogoutRequests sent; user names the user in the log.
	reason, user string
	// issuer and upstreamIssuer are the broker's entity IDs toward apps and toward the IdP.
	issuer, upstreamIssuer string
	// sessions are the sessions this logout ended (endSessions); none makes a logout without legs.
	sessions []*db.Session
	// exceptApp is the app that started the logout: it gets no leg.
	exceptApp string
	// noUpstream is set when the IdP started the logout: it gets no leg, and the answer is the
	// broker's as SP.
	noUpstream bool
	// browser: the user's browser is part of the logout (front channel possible); the
	// initiator is answered through it.
	browser   bool
	initiator *Initiator
	now       time.Time
}

// endSessions ends each session that is still live, atomically, and tombstones its IdP session
// index. It returns the sessions it ended: one another logout ended first is left to that one.
func (e *Engine) endSessions(ctx context.Context, ss []*db.Session, now time.Time) ([]*db.Session, error) {
	var out []*db.Session
	for _, s := range ss {
		// Two writes to different tables: a shared transaction would save no page write, and
		// gorm prepares a statement anew in every transaction.
		ended, err := e.Store.EndSession(ctx, s.TenantID, s.ID, now)
		if err != nil {
			return nil, err
		}
		if !ended {
			continue
		}
		if err := e.tombstone(ctx, e.Store, s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// run plans the legs of the ended sessions — every participant but the app that started the
// logout, and each session's IdP unless it started the logout — records the transaction, and
// runs the legs over the back channel (there is no browser), in parallel, recording each as it
// settles.
func (e *Engine) run(ctx context.Context, lg *logout) (*db.Logout, []db.LogoutLeg, error) {
	now := lg.now
	var all, back []*Leg
	ids := make([]string, 0, len(lg.sessions))
	for _, s := range lg.sessions {
		ids = append(ids, s.ID)
		parts, err := e.Store.ListParticipants(ctx, lg.tenantID, s.ID)
		if err != nil {
			return nil, nil, err
		}
		in := PlanInput{Browser: lg.browser, Reason: lg.reason, Now: now, Timeout: e.timeout(), NewID: e.NewID, Issuer: lg.issuer, UpstreamIssuer: lg.upstreamIssuer}
		for i := range parts {
			if parts[i].AppID == lg.exceptApp {
				continue
			}
			p, err := e.Peers.App(ctx, lg.tenantID, &parts[i])
			if err != nil {
				// An app deleted since sign-in is still a leg of the log, with nothing to send.
				p = &Peer{ID: parts[i].AppID, Name: "app " + parts[i].AppID}
			}
			in.Apps = append(in.Apps, p)
		}
		if !lg.noUpstream {
			if up, err := e.Peers.Upstream(ctx, lg.tenantID, s); err == nil {
				in.Upstream = up
			}
		}
		plan := MakePlan(in)
		all = append(all, plan.All()...)
		back = append(back, plan.Back...)
		if plan.Upstream != nil && plan.Upstream.Channel == ChannelSOAP && !lg.browser {
			// No browser: the IdP's leg can run beside the apps'. With one, it runs last.
			back = append(back, plan.Upstream)
		}
	}
	lo := &db.Logout{TenantID: lg.tenantID, Trigger: lg.trigger, TriggerRef: lg.triggerRef, User: lg.user, SessionIDs: ids,
		State: db.LogoutRunning, StartedAt: now, Deadline: now.Add(e.timeout())}
	if lg.initiator != nil {
		ini, err := json.Marshal(lg.initiator)
		if err != nil {
			return nil, nil, err
		}
		lo.Initiator = ini
	}
	legs := make([]db.LogoutLeg, 0, len(all))
	for _, l := range all {
		rec := legRecord(l, now)
		switch {
		case l.Channel == ChannelNone:
			// A peer that cannot be reached is settled at once: its leg is created done.
			e.settled(&rec, &Result{Leg: l, ErrorClass: ClassNotSupported, Diagnosis: l.Reason}, now)
		case l.Channel == ChannelSOAP && !(lg.browser && l.Peer.Upstream):
			// A back-channel leg is recorded with its result, message included.
		default:
			// A front-channel request is kept unsigned; it is signed when the browser fetches it.
			// So is the IdP's SOAP leg of a logout with a browser: it runs last, when the browser
			// comes back from the apps' legs (Continue).
			rec.Sent = binding.Serialize(l.Request.Element())
		}
		legs = append(legs, rec)
	}
	if err := e.Store.CreateLogout(ctx, lo, legs); err != nil {
		return nil, nil, fmt.Errorf("record logout: %w", err)
	}
	byLeg := map[*Leg]*db.LogoutLeg{}
	for i, l := range all {
		byLeg[l] = &legs[i]
		if l.Channel == ChannelNone {
			e.logLeg(ctx, &legs[i], legs[i].ErrorClass, 0)
		}
	}
	if lg.browser {
		// The browser goes on to the logout page now; the back channel settles meanwhile, within
		// the deadline, whatever becomes of this request.
		bctx := context.WithoutCancel(ctx)
		go func() {
			signer := func(alg string) (*Signer, error) { return e.Signers(bctx, lg.tenantID, alg) }
			for _, r := range RunBack(bctx, back, e.SOAP, signer, e.timeout()) {
				e.finish(bctx, byLeg[r.Leg], r)
			}
		}()
		return lo, legs, nil
	}
	signer := func(alg string) (*Signer, error) { return e.Signers(ctx, lg.tenantID, alg) }
	results := RunBack(ctx, back, e.SOAP, signer, e.timeout())
	// RunBack returns once every leg has settled: their results and the outcome are recorded in
	// one transaction (one commit). Should it fail, each is recorded on its own.
	var out *db.Logout
	var outLegs []db.LogoutLeg
	record := func(st Store) error {
		current := true // every leg in memory is as stored: no other replica finished one first
		for _, r := range results {
			current = e.finishIn(ctx, st, byLeg[r.Leg], r) && current
		}
		var err error
		if current {
			out, outLegs, err = e.completeWith(ctx, st, lo, legs)
		} else {
			out, outLegs, err = e.completeIn(ctx, st, lo)
		}
		return err
	}
	before := append([]db.LogoutLeg(nil), legs...)
	if err := db.Batch(ctx, e.Store, record); err != nil {
		e.Logger.WarnContext(ctx, "record logout in one transaction failed", "logout", lo.ID, "error", err)
		copy(legs, before) // the transaction's writes are undone: so are its write-backs
		if err := record(e.Store); err != nil {
			return nil, nil, err
		}
	}
	return out, outLegs, nil
}

// tombstone records the session's upstream SessionIndex as ended until the session would have
// expired, so that a late assertion cannot open it again.
func (e *Engine) tombstone(ctx context.Context, st db.Replay, s *db.Session) error {
	return e.tombstoneIndex(ctx, st, s.TenantID, s.ConnectionID, s.UpstreamSessionIndex, s.ExpiresAt)
}

// tombstoneIndex marks the IdP session index as logged out until the given time, and for at
// least an hour (longer than any assertion of it is valid).
func (e *Engine) tombstoneIndex(ctx context.Context, st db.Replay, tenantID, connectionID, sessionIndex string, until time.Time) error {
	if sessionIndex == "" {
		return nil
	}
	if min := e.now().Add(time.Hour); until.Before(min) {
		until = min
	}
	_, err := st.MarkSeen(ctx, tenantID, TombstoneKey(connectionID, sessionIndex), until)
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

// finish records a leg's result (once: another replica may have been first), with the message
// sent when the leg's record has none yet, in one write. It reports whether rec is now the stored
// leg (the result was recorded here).
func (e *Engine) finish(ctx context.Context, rec *db.LogoutLeg, r *Result) bool {
	return e.finishIn(ctx, e.Store, rec, r)
}

// finishIn is finish through st.
func (e *Engine) finishIn(ctx context.Context, st Store, rec *db.LogoutLeg, r *Result) bool {
	upd := e.result(r, e.now())
	if len(r.Sent) > 0 && len(rec.Sent) == 0 {
		upd.Sent = r.Sent
	}
	ok, err := st.FinishLeg(ctx, rec.TenantID, rec.ID, &upd)
	if err != nil {
		e.Logger.WarnContext(ctx, "record leg failed", "leg", rec.ID, "error", err)
	} else if ok {
		*rec = upd
	}
	e.logLeg(ctx, rec, r.ErrorClass, r.Latency)
	return ok && err == nil
}

// settled fills a leg record that is created done with its result.
func (e *Engine) settled(rec *db.LogoutLeg, r *Result, at time.Time) {
	upd := e.result(r, at)
	rec.State, rec.Status, rec.SubStatus, rec.LatencyMS = db.LegDone, upd.Status, upd.SubStatus, upd.LatencyMS
	rec.ErrorClass, rec.Diagnosis, rec.Received, rec.FinishedAt = upd.ErrorClass, upd.Diagnosis, upd.Received, upd.FinishedAt
	if len(r.Sent) > 0 {
		rec.Sent = r.Sent
	}
}

// result is the leg fields of a result, finished at the given time.
func (e *Engine) result(r *Result, at time.Time) db.LogoutLeg {
	addProviderDiagnosis(r)
	return db.LogoutLeg{Status: r.Status.Top(), SubStatus: r.Status.Sub(), LatencyMS: r.Latency.Milliseconds(), ErrorClass: r.ErrorClass,
		Diagnosis: r.Diagnosis, Received: r.Received, FinishedAt: &at}
}

func (e *Engine) logLeg(ctx context.Context, rec *db.LogoutLeg, class string, latency time.Duration) {
	e.Logger.InfoContext(ctx, "logout leg finished", "tenant", rec.TenantID, "target", rec.TargetName, "channel", rec.Channel,
		"error_class", class, "latency_ms", latency.Milliseconds())
}

// addProviderDiagnosis appends what the peer's product says a failure means (e.g. Salesforce's
// "We are unable to log you out.") to the engine's own diagnosis of a failed leg.
func addProviderDiagnosis(r *Result) {
	if r.ErrorClass == "" || r.Leg == nil || r.Leg.Peer == nil {
		return
	}
	o := providers.Observation{ErrorClass: r.ErrorClass, Answer: string(r.Received), Status: append([]string{}, r.Status.Codes...)}
	if r.HTTPStatus != 0 {
		o.Status = append(o.Status, strconv.Itoa(r.HTTPStatus))
	}
	if d := r.Leg.Peer.Quirks.Diagnose(o); d != "" {
		r.Diagnosis += " " + d
	}
}

// complete sets the outcome from the legs, once every leg is done.
func (e *Engine) complete(ctx context.Context, lo *db.Logout) (*db.Logout, []db.LogoutLeg, error) {
	return e.completeIn(ctx, e.Store, lo)
}

// completeIn is complete through st.
func (e *Engine) completeIn(ctx context.Context, st Store, lo *db.Logout) (*db.Logout, []db.LogoutLeg, error) {
	stored, legs, err := st.GetLogout(ctx, lo.TenantID, lo.ID)
	if err != nil {
		return nil, nil, err
	}
	return e.finishLogout(ctx, st, stored, legs, false)
}

// completeWith is complete for a logout whose record and legs in memory are as stored (this
// process created it and recorded every leg's result), without reading them back.
func (e *Engine) completeWith(ctx context.Context, st Store, lo *db.Logout, legs []db.LogoutLeg) (*db.Logout, []db.LogoutLeg, error) {
	// Times as the store keeps them (and GetLogout would return them): microseconds, UTC.
	cur := *lo
	cur.StartedAt, cur.Deadline = storedTime(cur.StartedAt), storedTime(cur.Deadline)
	cur.FinishedAt = storedTimePtr(cur.FinishedAt)
	out := append([]db.LogoutLeg(nil), legs...)
	for i := range out {
		out[i].StartedAt, out[i].FinishedAt = storedTime(out[i].StartedAt), storedTimePtr(out[i].FinishedAt)
	}
	return e.finishLogout(ctx, st, &cur, out, true)
}

func storedTime(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func storedTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	s := storedTime(*t)
	return &s
}

// finishLogout records the outcome of stored once every leg is done. When the logout was finished
// elsewhere meanwhile (a conflict) and stored is only this process's copy, the stored one is read.
func (e *Engine) finishLogout(ctx context.Context, st Store, stored *db.Logout, legs []db.LogoutLeg, inMemory bool) (*db.Logout, []db.LogoutLeg, error) {
	for _, l := range legs {
		if l.State != db.LegDone {
			return stored, legs, nil // front-channel legs still running
		}
	}
	fin := e.now()
	stored.State, stored.Outcome, stored.FinishedAt = db.LogoutFinished, Outcome(legs), &fin
	if err := st.UpdateLogout(ctx, stored); err != nil {
		if !errors.Is(err, db.ErrConflict) {
			return nil, nil, err
		}
		if inMemory {
			return e.completeIn(ctx, st, stored)
		}
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
