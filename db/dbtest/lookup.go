package dbtest

import (
	"fmt"
	"time"

	"github.com/sloworks/broker/db"
)

// sessionOf creates a live session on the connection for nameID with the upstream session
// index, created at the given time (zero: a time of the sequence).
func (h *env) sessionOf(tenantID, connectionID, nameID, index string, created time.Time) db.Session {
	h.Helper()
	n := h.seq()
	if created.IsZero() {
		created = t0.Add(time.Duration(n) * time.Second)
	}
	s := db.Session{
		TenantID: tenantID, ConnectionID: connectionID, CookieHash: fmt.Sprintf("lookup-%d", n),
		NameID: nameID, NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
		UpstreamSessionIndex: index, CreatedAt: created, ExpiresAt: t0.Add(8 * time.Hour),
	}
	h.ok("create session", h.s.CreateSession(h.ctx, &s))
	return s
}

// end ends the session at the given time.
func (h *env) end(s *db.Session, at time.Time) {
	h.Helper()
	ok, err := h.s.EndSession(h.ctx, s.TenantID, s.ID, at)
	h.ok("end session", err)
	if !ok {
		h.Fatalf("EndSession of live session %s returned false", s.ID)
	}
	s.EndedAt = &at
}

var lookupTests = []test{
	{"ListExpiredSessions", func(h *env) {
		a, b := h.tenant("acme"), h.tenant("beta")
		mk := func(tenantID string, expires time.Time) db.Session {
			s := h.sessionOf(tenantID, "c1", "alice", fmt.Sprintf("x%d", h.seq()), time.Time{})
			s.ExpiresAt = expires
			h.ok("update session", h.s.UpdateSession(h.ctx, &s))
			return s
		}
		e2 := mk(a.ID, t0.Add(2*time.Minute))
		e1 := mk(b.ID, t0.Add(time.Minute))
		mk(a.ID, t0.Add(time.Hour)) // not yet expired
		ended := mk(a.ID, t0)       // expired but already ended
		h.end(&ended, t0)
		got, err := h.s.ListExpiredSessions(h.ctx, t0.Add(30*time.Minute), 10)
		h.ok("list", err)
		h.equal("expired live sessions across tenants, earliest first", []db.Session{e1, e2}, got)
		got, err = h.s.ListExpiredSessions(h.ctx, t0.Add(30*time.Minute), 1)
		h.ok("list", err)
		h.equal("limit", []db.Session{e1}, got)
	}},
	{"FindSessionsByNameID", func(h *env) {
		t := h.tenant("acme")
		// Created in an order that IDs cannot fake: the list is ordered by CreatedAt, then ID.
		s2 := h.sessionOf(t.ID, "c1", "alice", "i2", t0.Add(2*time.Second))
		s1 := h.sessionOf(t.ID, "c1", "alice", "i1", t0.Add(time.Second))
		ended := h.sessionOf(t.ID, "c1", "alice", "i3", time.Time{})
		h.end(&ended, t0)
		h.sessionOf(t.ID, "c2", "alice", "i1", time.Time{}) // another connection
		h.sessionOf(t.ID, "c1", "bob", "i1", time.Time{})   // another user
		h.sessionOf(t.ID, "c1", "Alice", "i1", time.Time{}) // NameIDs match exactly
		got, err := h.s.FindSessionsByNameID(h.ctx, t.ID, "c1", "alice")
		h.ok("find", err)
		h.equal("live sessions of alice on c1", []db.Session{s1, s2}, got)
		got, err = h.s.FindSessionsByNameID(h.ctx, t.ID, "c1", "carol")
		h.ok("find", err)
		h.equal("sessions of an unknown user", []db.Session(nil), got)
	}},
	{"FindSessionByUpstreamIndex", func(h *env) {
		t := h.tenant("acme")
		only := h.sessionOf(t.ID, "c1", "alice", "only", time.Time{})
		got, err := h.s.FindSessionByUpstreamIndex(h.ctx, t.ID, "c1", "only")
		h.ok("find", err)
		h.equal("the one session", &only, got)

		// Of sessions sharing an index: the newest live one, else the newest ended one.
		oldLive := h.sessionOf(t.ID, "c1", "alice", "shared", t0.Add(time.Second))
		newLive := h.sessionOf(t.ID, "c1", "alice", "shared", t0.Add(2*time.Second))
		newEnded := h.sessionOf(t.ID, "c1", "alice", "shared", t0.Add(3*time.Second))
		h.end(&newEnded, t0.Add(4*time.Second))
		got, err = h.s.FindSessionByUpstreamIndex(h.ctx, t.ID, "c1", "shared")
		h.ok("find", err)
		h.equal("the newest live session", &newLive, got)
		h.end(&newLive, t0.Add(5*time.Second))
		got, err = h.s.FindSessionByUpstreamIndex(h.ctx, t.ID, "c1", "shared")
		h.ok("find", err)
		h.equal("the only live session", &oldLive, got)
		h.end(&oldLive, t0.Add(6*time.Second))
		got, err = h.s.FindSessionByUpstreamIndex(h.ctx, t.ID, "c1", "shared")
		h.ok("find", err)
		h.equal("the newest ended session", &newEnded, got)

		h.sessionOf(t.ID, "c1", "bob", "", time.Time{}) // a session without an index
		for _, tc := range []struct{ name, conn, index string }{
			{"another connection", "c2", "only"},
			{"unknown index", "c1", "missing"},
			{"empty index", "c1", ""},
		} {
			_, err := h.s.FindSessionByUpstreamIndex(h.ctx, t.ID, tc.conn, tc.index)
			h.is(tc.name, err, db.ErrNotFound)
		}
	}},
	{"GetParticipantBySessionIndex", func(h *env) {
		t := h.tenant("acme")
		s := h.session(t.ID, "c1")
		p1 := h.participant(t.ID, s.ID, "app1")
		p2 := h.participant(t.ID, s.ID, "app2")
		got, err := h.s.GetParticipantBySessionIndex(h.ctx, t.ID, "app1", p1.SessionIndex)
		h.ok("get", err)
		h.equal("get", &p1, got)
		_, err = h.s.GetParticipantBySessionIndex(h.ctx, t.ID, "app1", p2.SessionIndex)
		h.is("another app's index", err, db.ErrNotFound)
		_, err = h.s.GetParticipantBySessionIndex(h.ctx, t.ID, "app1", "missing")
		h.is("unknown index", err, db.ErrNotFound)
		noIndex := db.Participant{TenantID: t.ID, SessionID: s.ID, AppID: "app1"}
		h.ok("add a participant without index", h.s.AddParticipant(h.ctx, &noIndex))
		_, err = h.s.GetParticipantBySessionIndex(h.ctx, t.ID, "app1", "")
		h.is("empty index", err, db.ErrNotFound)

		// Found after its session ended: a late LogoutRequest still finds what it names.
		h.end(&s, t0)
		got, err = h.s.GetParticipantBySessionIndex(h.ctx, t.ID, "app1", p1.SessionIndex)
		h.ok("get after the session ended", err)
		h.equal("get after the session ended", &p1, got)
	}},
	{"ListParticipantsOfApp", func(h *env) {
		t := h.tenant("acme")
		s1, s2, s3 := h.session(t.ID, "c1"), h.session(t.ID, "c2"), h.session(t.ID, "c1")
		add := func(sessionID, appID, nameID string, created time.Time) db.Participant {
			p := db.Participant{TenantID: t.ID, SessionID: sessionID, AppID: appID, NameID: nameID,
				SessionIndex: "idx-" + sessionID + appID, CreatedAt: created}
			h.ok("add participant", h.s.AddParticipant(h.ctx, &p))
			return p
		}
		b := add(s2.ID, "app1", "alice", t0.Add(2*time.Second))
		a := add(s1.ID, "app1", "alice", t0.Add(time.Second))
		add(s1.ID, "app2", "alice", t0) // another app
		add(s1.ID, "app1", "bob", t0)   // another NameID
		add(s1.ID, "app1", "ALICE", t0) // NameIDs match exactly
		add(s3.ID, "app1", "alice", t0) // an ended session
		h.end(&s3, t0)
		got, err := h.s.ListParticipantsOfApp(h.ctx, t.ID, "app1", "alice")
		h.ok("list", err)
		h.equal("alice's participants of app1 in live sessions", []db.Participant{a, b}, got)
		got, err = h.s.ListParticipantsOfApp(h.ctx, t.ID, "app3", "alice")
		h.ok("list", err)
		h.equal("an app without participants", []db.Participant(nil), got)
	}},
	{"EndSession", func(h *env) {
		t := h.tenant("acme")
		s := h.session(t.ID, "c1")
		other := h.session(t.ID, "c1")
		at := t0.Add(time.Hour)
		ok, err := h.s.EndSession(h.ctx, t.ID, s.ID, at)
		h.ok("end", err)
		if !ok {
			h.Error("the first EndSession returned false")
		}
		ok, err = h.s.EndSession(h.ctx, t.ID, s.ID, at.Add(time.Hour))
		h.ok("end again", err)
		if ok {
			h.Error("the second EndSession returned true")
		}
		want := s
		want.EndedAt = &at // the first end stays
		got, err := h.s.GetSession(h.ctx, t.ID, s.ID)
		h.ok("get", err)
		h.equal("ended session", &want, got)
		got, err = h.s.GetSession(h.ctx, t.ID, other.ID)
		h.ok("get the other", err)
		h.equal("the other session", &other, got)

		live, err := h.s.FindSessionsByNameID(h.ctx, t.ID, "c1", s.NameID)
		h.ok("find", err)
		h.equal("live sessions of the ended session's user", []db.Session(nil), live)

		// A session ended through UpdateSession is ended too.
		ended := other
		ended.EndedAt = &at
		h.ok("update", h.s.UpdateSession(h.ctx, &ended))
		ok, err = h.s.EndSession(h.ctx, t.ID, other.ID, at.Add(time.Hour))
		h.ok("end a session ended by update", err)
		if ok {
			h.Error("EndSession of a session ended by UpdateSession returned true")
		}

		ok, err = h.s.EndSession(h.ctx, t.ID, "missing", at)
		h.is("end a missing session", err, db.ErrNotFound)
		if ok {
			h.Error("EndSession of a missing session returned true")
		}
	}},
}
