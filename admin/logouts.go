package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/slo"
)

// SessionStore is what the sessions and logouts endpoints read.
type SessionStore interface {
	ListSessions(ctx context.Context, tenantID string) ([]db.Session, error)
	ListParticipants(ctx context.Context, tenantID, sessionID string) ([]db.Participant, error)
	ListLogouts(ctx context.Context, tenantID string, f db.LogoutFilter) ([]db.Logout, error)
	GetLogout(ctx context.Context, tenantID, id string) (*db.Logout, []db.LogoutLeg, error)
}

// SessionEnder ends a broker session and logs the user out of its apps and IdP.
type SessionEnder interface {
	EndSession(ctx context.Context, tenantID, sessionID, trigger, triggerRef string) (*db.Logout, []db.LogoutLeg, error)
}

// WithSessions enables the sessions and logouts endpoints.
func (a *API) WithSessions(store SessionStore, ender SessionEnder) *API {
	a.sessions, a.ender = store, ender
	return a
}

func (a *API) registerSessions(g *echo.Group) {
	g.GET("/tenants/:slug/sessions", a.listSessions)
	g.DELETE("/tenants/:slug/sessions/:id", a.endSession)
	g.GET("/tenants/:slug/logouts", a.listLogouts)
	g.GET("/tenants/:slug/logouts/:id", a.getLogout)
}

type participantView struct {
	AppID        string    `json:"app_id"`
	NameID       string    `json:"name_id"`
	SessionIndex string    `json:"session_index"`
	SignedInAt   time.Time `json:"signed_in_at"`
}

type sessionView struct {
	ID           string            `json:"id"`
	User         string            `json:"user"`
	ConnectionID string            `json:"connection_id"`
	CreatedAt    time.Time         `json:"created_at"`
	ExpiresAt    time.Time         `json:"expires_at"`
	EndedAt      *time.Time        `json:"ended_at,omitempty"`
	Apps         []participantView `json:"apps"`
}

func (a *API) listSessions(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	ctx := c.Request().Context()
	ss, err := a.sessions.ListSessions(ctx, t.ID)
	if err != nil {
		return a.fail(c, err)
	}
	out := make([]sessionView, 0, len(ss))
	for _, s := range ss {
		if s.EndedAt != nil && c.QueryParam("ended") != "true" {
			continue
		}
		v := sessionView{ID: s.ID, User: s.NameID, ConnectionID: s.ConnectionID, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, EndedAt: s.EndedAt, Apps: []participantView{}}
		ps, err := a.sessions.ListParticipants(ctx, t.ID, s.ID)
		if err != nil {
			return a.fail(c, err)
		}
		for _, p := range ps {
			v.Apps = append(v.Apps, participantView{AppID: p.AppID, NameID: p.NameID, SessionIndex: p.SessionIndex, SignedInAt: p.CreatedAt})
		}
		out = append(out, v)
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": out})
}

func (a *API) endSession(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	lo, legs, err := a.ender.EndSession(c.Request().Context(), t.ID, c.Param("id"), "admin", "operator")
	if errors.Is(err, slo.ErrSessionGone) {
		return a.fail(c, &statusError{http.StatusConflict, codeConflict, "", "the session has already ended"})
	}
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, newLogoutView(lo, legs))
}

// legView is one leg as the logout log shows it.
type legView struct {
	Target     string     `json:"target"`
	TargetID   string     `json:"target_id"`
	Kind       string     `json:"kind"`
	Channel    string     `json:"channel"`
	RequestID  string     `json:"request_id,omitempty"`
	State      string     `json:"state"`
	Status     string     `json:"status,omitempty"`
	SubStatus  string     `json:"sub_status,omitempty"`
	LatencyMS  int64      `json:"latency_ms"`
	ErrorClass string     `json:"error_class,omitempty"`
	Diagnosis  string     `json:"diagnosis,omitempty"`
	Sent       string     `json:"sent,omitempty"`
	Received   string     `json:"received,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

type logoutView struct {
	ID         string     `json:"id"`
	Trigger    string     `json:"trigger"`
	TriggerRef string     `json:"trigger_ref,omitempty"`
	User       string     `json:"user"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	State      string     `json:"state"`
	Outcome    string     `json:"outcome,omitempty"`
	Legs       []legView  `json:"legs,omitempty"`
}

func newLogoutView(lo *db.Logout, legs []db.LogoutLeg) logoutView {
	v := logoutView{ID: lo.ID, Trigger: lo.Trigger, TriggerRef: lo.TriggerRef, User: lo.User, StartedAt: lo.StartedAt, FinishedAt: lo.FinishedAt, State: lo.State, Outcome: lo.Outcome}
	for _, l := range legs {
		v.Legs = append(v.Legs, legView{Target: l.TargetName, TargetID: l.TargetID, Kind: l.Target, Channel: l.Channel, RequestID: l.RequestID, State: l.State,
			Status: l.Status, SubStatus: l.SubStatus, LatencyMS: l.LatencyMS, ErrorClass: l.ErrorClass, Diagnosis: l.Diagnosis,
			Sent: string(l.Sent), Received: string(l.Received), StartedAt: l.StartedAt, FinishedAt: l.FinishedAt})
	}
	return v
}

func (a *API) listLogouts(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	f := db.LogoutFilter{User: c.QueryParam("user"), AppID: c.QueryParam("app"), Outcome: c.QueryParam("outcome")}
	switch f.Outcome {
	case "", "success", "partial", "failed":
	default:
		return a.fail(c, &statusError{http.StatusBadRequest, codeInvalid, "outcome", "outcome must be success, partial or failed"})
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := c.QueryParam(p.name); v != "" {
			tm, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return a.fail(c, &statusError{http.StatusBadRequest, codeInvalid, p.name, p.name + " must be an RFC 3339 time, e.g. 2026-11-21T09:00:00Z"})
			}
			*p.dst = tm.UTC()
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > db.MaxLogoutLimit {
			return a.fail(c, &statusError{http.StatusBadRequest, codeInvalid, "limit", "limit must be a number from 1 to " + strconv.Itoa(db.MaxLogoutLimit)})
		}
		f.Limit = n
	}
	los, err := a.sessions.ListLogouts(c.Request().Context(), t.ID, f)
	if err != nil {
		return a.fail(c, err)
	}
	out := make([]logoutView, 0, len(los))
	for i := range los {
		out = append(out, newLogoutView(&los[i], nil))
	}
	return c.JSON(http.StatusOK, map[string]any{"logouts": out})
}

func (a *API) getLogout(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	lo, legs, err := a.sessions.GetLogout(c.Request().Context(), t.ID, c.Param("id"))
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, newLogoutView(lo, legs))
}
