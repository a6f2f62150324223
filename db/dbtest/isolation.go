package dbtest

import (
	"slices"
	"time"

	"github.com/sloworks/broker/db"
)

// world is one tenant with a row of every kind.
type world struct {
	tenant      db.Tenant
	conn        db.Connection
	app         db.App
	session     db.Session
	participant db.Participant
	pending     db.PendingRequest
	messageID   string // marked seen until an hour from now
	logout      db.Logout
	legs        []db.LogoutLeg // to the app (request ID sharedRequestID) and upstream
}

// sharedRequestID is the request ID of every world's app leg: request IDs are unique per tenant
// only.
const sharedRequestID = "_lr-shared"

// sharedUser is the user of every world's logout.
const sharedUser = "alice@example.com"

// populate creates a tenant and a row of every kind in it.
func (h *env) populate(slug string) world {
	h.Helper()
	w := world{tenant: h.tenant(slug), messageID: "_msg-" + slug}
	w.conn = h.conn(w.tenant.ID, "okta")
	w.app = h.app(w.tenant.ID, "wiki")
	w.session = h.session(w.tenant.ID, w.conn.ID)
	w.participant = h.participant(w.tenant.ID, w.session.ID, w.app.ID)
	w.pending = h.pending(w.tenant.ID, t0.Add(time.Hour))
	seen, err := h.s.MarkSeen(h.ctx, w.tenant.ID, w.messageID, time.Now().Add(time.Hour))
	h.ok("mark seen", err)
	if !seen {
		h.Fatal("first MarkSeen returned false")
	}
	l := h.newLogout(w.tenant.ID, w.app.ID, sharedUser)
	l.SessionIDs = []string{w.session.ID}
	appLeg, upLeg := h.newLeg("app", w.app.ID), h.newLeg("upstream", w.conn.ID)
	appLeg.RequestID, upLeg.RequestID = sharedRequestID, "_lr-"+slug
	w.logout, w.legs = h.createLogout(l, appLeg, upLeg)
	return w
}

// intact fails the test unless every row of w is as created.
func (h *env) intact(w world) {
	h.Helper()
	tid := w.tenant.ID
	t, err := h.s.GetTenant(h.ctx, tid)
	h.ok("get tenant", err)
	h.equal("tenant", &w.tenant, t)
	conns, err := h.s.ListConnections(h.ctx, tid)
	h.ok("list connections", err)
	h.equal("connections", []db.Connection{w.conn}, conns)
	apps, err := h.s.ListApps(h.ctx, tid)
	h.ok("list apps", err)
	h.equal("apps", []db.App{w.app}, apps)
	sessions, err := h.s.ListSessions(h.ctx, tid)
	h.ok("list sessions", err)
	h.equal("sessions", []db.Session{w.session}, sessions)
	ps, err := h.s.ListParticipants(h.ctx, tid, w.session.ID)
	h.ok("list participants", err)
	h.equal("participants", []db.Participant{w.participant}, ps)
	seen, err := h.s.MarkSeen(h.ctx, tid, w.messageID, time.Now().Add(time.Hour))
	h.ok("mark seen", err)
	if seen {
		h.Error("the replay entry is gone")
	}
	p, err := h.s.TakePendingRequest(h.ctx, tid, w.pending.ID, t0)
	h.ok("take pending request", err)
	h.equal("pending request", &w.pending, p)

	seen, err = h.s.Seen(h.ctx, tid, w.messageID, time.Now())
	h.ok("seen", err)
	if !seen {
		h.Error("the replay entry is not seen")
	}
	found, err := h.s.FindSessionsByNameID(h.ctx, tid, w.conn.ID, w.session.NameID)
	h.ok("find sessions by NameID", err)
	h.equal("sessions by NameID", []db.Session{w.session}, found)
	se, err := h.s.FindSessionByUpstreamIndex(h.ctx, tid, w.conn.ID, w.session.UpstreamSessionIndex)
	h.ok("find session by upstream index", err)
	h.equal("session by upstream index", &w.session, se)
	pa, err := h.s.GetParticipantBySessionIndex(h.ctx, tid, w.app.ID, w.participant.SessionIndex)
	h.ok("get participant by session index", err)
	h.equal("participant by session index", &w.participant, pa)
	ps, err = h.s.ListParticipantsOfApp(h.ctx, tid, w.app.ID, w.participant.NameID)
	h.ok("list participants of app", err)
	h.equal("participants of app", []db.Participant{w.participant}, ps)

	h.logoutIs("logout", w.logout, w.legs)
	for _, g := range w.legs {
		got, err := h.s.GetLegByRequestID(h.ctx, tid, g.RequestID)
		h.ok("get leg by request ID", err)
		h.equal("leg by request ID", &g, got)
	}
	logouts, err := h.s.ListLogouts(h.ctx, tid, db.LogoutFilter{})
	h.ok("list logouts", err)
	h.equal("logouts", []db.Logout{w.logout}, logouts)
}

// Tenant B tries to read, change and delete each of tenant A's rows, by ID and by every other
// key; every attempt is ErrNotFound (or an empty list) and leaves A's rows as they were.
var isolationTests = []test{
	{"Connections", func(h *env) {
		a, b := h.populate("a"), h.populate("b")
		_, err := h.s.GetConnection(h.ctx, b.tenant.ID, a.conn.ID)
		h.is("get", err, db.ErrNotFound)
		list, err := h.s.ListConnections(h.ctx, b.tenant.ID)
		h.ok("list", err)
		h.equal("B's list", []db.Connection{b.conn}, list)
		u := a.conn
		u.TenantID, u.Name, u.EntityID = b.tenant.ID, "hijack", "https://evil.example"
		h.is("update", h.s.UpdateConnection(h.ctx, &u), db.ErrNotFound)
		h.is("delete", h.s.DeleteConnection(h.ctx, b.tenant.ID, a.conn.ID), db.ErrNotFound)
		h.intact(a)
	}},
	{"Apps", func(h *env) {
		a, b := h.populate("a"), h.populate("b")
		_, err := h.s.GetApp(h.ctx, b.tenant.ID, a.app.ID)
		h.is("get", err, db.ErrNotFound)
		// B's own app has the same entity ID as A's: without it, a lookup by entity ID under B
		// can only find A's.
		h.ok("delete B's own app", h.s.DeleteApp(h.ctx, b.tenant.ID, b.app.ID))
		_, err = h.s.GetAppByEntityID(h.ctx, b.tenant.ID, a.app.EntityID)
		h.is("get by entity ID", err, db.ErrNotFound)
		list, err := h.s.ListApps(h.ctx, b.tenant.ID)
		h.ok("list", err)
		h.equal("B's list", []db.App(nil), list)
		u := a.app
		u.TenantID, u.Name, u.EntityID, u.SignResponse = b.tenant.ID, "hijack", "https://evil.example", false
		h.is("update", h.s.UpdateApp(h.ctx, &u), db.ErrNotFound)
		h.is("delete", h.s.DeleteApp(h.ctx, b.tenant.ID, a.app.ID), db.ErrNotFound)
		h.intact(a)
	}},
	{"Sessions", func(h *env) {
		a, b := h.populate("a"), h.populate("b")
		_, err := h.s.GetSession(h.ctx, b.tenant.ID, a.session.ID)
		h.is("get", err, db.ErrNotFound)
		_, err = h.s.GetSessionByCookie(h.ctx, b.tenant.ID, a.session.CookieHash)
		h.is("get by cookie", err, db.ErrNotFound)
		list, err := h.s.ListSessions(h.ctx, b.tenant.ID)
		h.ok("list", err)
		h.equal("B's list", []db.Session{b.session}, list)
		ended := t0
		u := a.session
		u.TenantID, u.EndedAt, u.NameID = b.tenant.ID, &ended, "hijack"
		h.is("update", h.s.UpdateSession(h.ctx, &u), db.ErrNotFound)
		h.is("delete", h.s.DeleteSession(h.ctx, b.tenant.ID, a.session.ID), db.ErrNotFound)
		h.intact(a)
	}},
	{"Participants", func(h *env) {
		a, b := h.populate("a"), h.populate("b")
		ps, err := h.s.ListParticipants(h.ctx, b.tenant.ID, a.session.ID)
		h.ok("list", err)
		h.equal("B's list of A's session", []db.Participant(nil), ps)
		p := db.Participant{TenantID: b.tenant.ID, SessionID: a.session.ID, AppID: b.app.ID}
		h.is("add to A's session", h.s.AddParticipant(h.ctx, &p), db.ErrNotFound)
		p = db.Participant{TenantID: a.tenant.ID, SessionID: b.session.ID, AppID: a.app.ID}
		h.is("add as A to B's session", h.s.AddParticipant(h.ctx, &p), db.ErrNotFound)
		h.ok("delete B's session", h.s.DeleteSession(h.ctx, b.tenant.ID, b.session.ID))
		h.intact(a)
	}},
	{"PendingRequests", func(h *env) {
		a, b := h.populate("a"), h.populate("b")
		_, err := h.s.TakePendingRequest(h.ctx, b.tenant.ID, a.pending.ID, t0)
		h.is("take", err, db.ErrNotFound)
		h.intact(a) // A can still take it
		h.intact(b)
	}},
	{"Replay", func(h *env) {
		a, b := h.populate("a"), h.populate("b")
		seen, err := h.s.MarkSeen(h.ctx, b.tenant.ID, a.messageID, time.Now().Add(time.Hour))
		h.ok("mark A's message ID as B", err)
		if !seen {
			h.Error("B's first MarkSeen of A's message ID returned false")
		}
		h.intact(a)
	}},
	{"Logouts", func(h *env) {
		a, b := h.populate("a"), h.populate("b")
		_, _, err := h.s.GetLogout(h.ctx, b.tenant.ID, a.logout.ID)
		h.is("get", err, db.ErrNotFound)
		_, err = h.s.GetLegByRequestID(h.ctx, b.tenant.ID, a.legs[1].RequestID)
		h.is("get leg by A's request ID", err, db.ErrNotFound)
		// Both tenants have a leg of the same request ID: B finds its own.
		g, err := h.s.GetLegByRequestID(h.ctx, b.tenant.ID, sharedRequestID)
		h.ok("get leg by the shared request ID", err)
		h.equal("B's leg by the shared request ID", &b.legs[0], g)
		for _, tc := range []struct {
			name string
			f    db.LogoutFilter
			want []db.Logout
		}{
			{"all", db.LogoutFilter{}, []db.Logout{b.logout}},
			{"by the shared user", db.LogoutFilter{User: sharedUser}, []db.Logout{b.logout}},
			{"by A's app", db.LogoutFilter{AppID: a.app.ID}, nil},
		} {
			list, err := h.s.ListLogouts(h.ctx, b.tenant.ID, tc.f)
			h.ok("list "+tc.name, err)
			h.equal("B's list "+tc.name, tc.want, list)
		}

		u := a.logout
		u.TenantID, u.State, u.Outcome, u.User = b.tenant.ID, db.LogoutFinished, "failed", "hijack"
		h.is("update logout", h.s.UpdateLogout(h.ctx, &u), db.ErrNotFound)
		ug := a.legs[0]
		ug.TenantID, ug.State, ug.Diagnosis, ug.RequestID = b.tenant.ID, db.LegDone, "hijack", "_hijack"
		h.is("update leg", h.s.UpdateLeg(h.ctx, &ug), db.ErrNotFound)
		for _, leg := range a.legs {
			ok, err := h.s.FinishLeg(h.ctx, b.tenant.ID, leg.ID, &db.LogoutLeg{Diagnosis: "hijack"})
			h.is("finish leg", err, db.ErrNotFound)
			if ok {
				h.Error("B finished A's leg")
			}
		}
		// A leg given to B's logout with A's logout ID stays B's.
		stray := db.LogoutLeg{TenantID: a.tenant.ID, LogoutID: a.logout.ID, RequestID: "_stray"}
		l, legs := h.createLogout(db.Logout{TenantID: b.tenant.ID, Deadline: t0}, stray)
		if legs[0].TenantID != b.tenant.ID || legs[0].LogoutID != l.ID {
			h.Errorf("the leg was stored as tenant %q, logout %q", legs[0].TenantID, legs[0].LogoutID)
		}
		_, err = h.s.GetLegByRequestID(h.ctx, a.tenant.ID, "_stray")
		h.is("get the stray leg as A", err, db.ErrNotFound)
		h.intact(a)
	}},
	{"SessionLookup", func(h *env) {
		a, b := h.populate("a"), h.populate("b")
		found, err := h.s.FindSessionsByNameID(h.ctx, b.tenant.ID, a.conn.ID, a.session.NameID)
		h.ok("find sessions by NameID", err)
		h.equal("B's sessions by A's NameID", []db.Session(nil), found)
		_, err = h.s.FindSessionByUpstreamIndex(h.ctx, b.tenant.ID, a.conn.ID, a.session.UpstreamSessionIndex)
		h.is("find session by upstream index", err, db.ErrNotFound)
		_, err = h.s.GetParticipantBySessionIndex(h.ctx, b.tenant.ID, a.app.ID, a.participant.SessionIndex)
		h.is("get participant by session index", err, db.ErrNotFound)
		ps, err := h.s.ListParticipantsOfApp(h.ctx, b.tenant.ID, a.app.ID, a.participant.NameID)
		h.ok("list participants of app", err)
		h.equal("B's participants of A's app", []db.Participant(nil), ps)
		ok, err := h.s.EndSession(h.ctx, b.tenant.ID, a.session.ID, t0)
		h.is("end session", err, db.ErrNotFound)
		if ok {
			h.Error("B ended A's session")
		}
		seen, err := h.s.Seen(h.ctx, b.tenant.ID, a.messageID, time.Now())
		h.ok("seen", err)
		if seen {
			h.Error("B sees A's replay entry")
		}
		h.intact(a) // A's session is still live
	}},
	// Sweeps run across tenants; nothing else does. Writes naming a tenant that does not
	// exist fail rather than create orphans.
	{"MissingTenant", func(h *env) {
		a := h.populate("a")
		const missing = "missing-tenant"
		h.is("create connection", h.s.CreateConnection(h.ctx, &db.Connection{TenantID: missing, Name: "x", EntityID: "x"}), db.ErrNotFound)
		h.is("create app", h.s.CreateApp(h.ctx, &db.App{TenantID: missing, Name: "x", EntityID: "x"}), db.ErrNotFound)
		h.is("create session", h.s.CreateSession(h.ctx, &db.Session{TenantID: missing, CookieHash: "x"}), db.ErrNotFound)
		h.is("add participant", h.s.AddParticipant(h.ctx, &db.Participant{TenantID: missing, SessionID: a.session.ID}), db.ErrNotFound)
		h.is("create pending request", h.s.CreatePendingRequest(h.ctx, &db.PendingRequest{TenantID: missing, ExpiresAt: t0}), db.ErrNotFound)
		_, err := h.s.MarkSeen(h.ctx, missing, "_x", time.Now().Add(time.Hour))
		h.is("mark seen", err, db.ErrNotFound)
		h.is("create logout", h.s.CreateLogout(h.ctx, &db.Logout{TenantID: missing}, []db.LogoutLeg{{RequestID: "_x"}}), db.ErrNotFound)
		h.intact(a)
	}},
}

var deleteTenantTests = []test{
	{"RemovesOnlyTheTenantsRows", func(h *env) {
		a, b := h.populate("a"), h.populate("b")
		h.participant(a.tenant.ID, a.session.ID, "other-app")
		h.ok("delete tenant", h.s.DeleteTenant(h.ctx, a.tenant.ID))
		h.intact(b)

		tid := a.tenant.ID
		_, err := h.s.GetTenant(h.ctx, tid)
		h.is("get", err, db.ErrNotFound)
		_, err = h.s.GetTenantBySlug(h.ctx, a.tenant.Slug)
		h.is("get by slug", err, db.ErrNotFound)
		tenants, err := h.s.ListTenants(h.ctx)
		h.ok("list tenants", err)
		h.equal("tenants", []db.Tenant{b.tenant}, tenants)

		// A tenant of the same ID and slug starts empty: nothing of the old one survived.
		again := a.tenant
		h.ok("create the tenant again", h.s.CreateTenant(h.ctx, &again))
		_, err = h.s.GetConnection(h.ctx, tid, a.conn.ID)
		h.is("get connection", err, db.ErrNotFound)
		_, err = h.s.GetApp(h.ctx, tid, a.app.ID)
		h.is("get app", err, db.ErrNotFound)
		_, err = h.s.GetSession(h.ctx, tid, a.session.ID)
		h.is("get session", err, db.ErrNotFound)
		_, err = h.s.GetSessionByCookie(h.ctx, tid, a.session.CookieHash)
		h.is("get session by cookie", err, db.ErrNotFound)
		ps, err := h.s.ListParticipants(h.ctx, tid, a.session.ID)
		h.ok("list participants", err)
		h.equal("participants", []db.Participant(nil), ps)
		_, err = h.s.TakePendingRequest(h.ctx, tid, a.pending.ID, t0)
		h.is("take pending request", err, db.ErrNotFound)
		seen, err := h.s.MarkSeen(h.ctx, tid, a.messageID, time.Now().Add(time.Hour))
		h.ok("mark seen", err)
		if !seen {
			h.Error("the deleted tenant's replay entry survived")
		}
		conns, err := h.s.ListConnections(h.ctx, tid)
		h.ok("list connections", err)
		apps, err := h.s.ListApps(h.ctx, tid)
		h.ok("list apps", err)
		sessions, err := h.s.ListSessions(h.ctx, tid)
		h.ok("list sessions", err)
		if len(conns)+len(apps)+len(sessions) != 0 {
			h.Errorf("left %d connections, %d apps, %d sessions", len(conns), len(apps), len(sessions))
		}
		_, _, err = h.s.GetLogout(h.ctx, tid, a.logout.ID)
		h.is("get logout", err, db.ErrNotFound)
		for _, g := range a.legs {
			_, err = h.s.GetLegByRequestID(h.ctx, tid, g.RequestID)
			h.is("get leg by request ID", err, db.ErrNotFound)
		}
		logouts, err := h.s.ListLogouts(h.ctx, tid, db.LogoutFilter{})
		h.ok("list logouts", err)
		h.equal("logouts", []db.Logout(nil), logouts)
		// The names, entity IDs, logout and leg IDs and request IDs are free again.
		h.conn(tid, a.conn.Name)
		h.app(tid, a.app.Name)
		h.createLogout(a.logout, slices.Clone(a.legs)...)
	}},
}
