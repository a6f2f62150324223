package dbtest

import (
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
}

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
		// The names and entity IDs are free again.
		h.conn(tid, a.conn.Name)
		h.app(tid, a.app.Name)
	}},
}
