package sso

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/slo"
)

// LogoutCookie binds a front-channel logout to the browser that started it: only that browser
// sees and moves on its logout page.
const LogoutCookie = "broker_logout"

func (h *Handler) setLogoutCookie(c echo.Context, slug, logoutID string, deadline time.Time) {
	ck := &http.Cookie{Name: LogoutCookie, Value: logoutID, Path: "/t/" + slug + "/logout/", Expires: deadline.Add(10 * time.Minute), HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if h.cfg.BaseURL.Scheme == "https" {
		ck.Secure = true
	}
	c.SetCookie(ck)
}

// frontLogout loads the tenant and the logout of the path, for the browser that started it.
func (h *Handler) frontLogout(c echo.Context) (*db.Tenant, string, error) {
	t, err := h.tenant(c)
	if err != nil {
		return nil, "", err
	}
	id := c.Param("id")
	if ck, err := c.Cookie(LogoutCookie); err != nil || ck.Value != id {
		return nil, "", &PageError{Status: http.StatusNotFound, Message: "This sign-out page belongs to another browser, or it has expired."}
	}
	if h.logout == nil {
		return nil, "", &PageError{Status: http.StatusNotFound, Message: "Sign-out is not available."}
	}
	return t, id, nil
}

// logoutPage is the end user's logout page: while front-channel legs run it shows each app's
// state (iframes do the work; with JavaScript the list updates as legs settle; without, a meta
// refresh comes back when their time is up); then it sends the browser on to the IdP, or back to
// the app that started the logout with its answer.
func (h *Handler) logoutPage(c echo.Context) error {
	t, id, err := h.frontLogout(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	step, err := h.logout.Continue(ctx, h.Peers(), t.ID, id)
	if errors.Is(err, db.ErrNotFound) {
		return &PageError{Status: http.StatusNotFound, Message: "There is no such sign-out.", Err: err}
	}
	if err != nil {
		return err
	}
	if step.Send != nil {
		return h.sendOutgoing(c, step.Send)
	}
	return h.renderLogoutPage(c, t.Slug, step)
}

// sendOutgoing sends the browser on with a message.
func (h *Handler) sendOutgoing(c echo.Context, out *slo.Outgoing) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if out.Form != nil {
		return postForm(c, out.Form)
	}
	return c.Redirect(http.StatusFound, out.RedirectURL)
}

// logoutLeg is the content of one app's iframe: its signed LogoutRequest, by Redirect or POST.
func (h *Handler) logoutLeg(c echo.Context) error {
	t, id, err := h.frontLogout(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	_, legs, err := h.logout.Store.GetLogout(ctx, t.ID, id)
	if err != nil {
		return err
	}
	for i := range legs {
		l := &legs[i]
		if l.ID != c.Param("leg") || l.Target != "app" {
			continue
		}
		frameable(c)
		if l.State != db.LegPending {
			return legDonePage(c, l)
		}
		out, err := h.logout.SendFront(ctx, h.Peers(), t.ID, l, id)
		if err != nil {
			return err
		}
		return h.sendOutgoing(c, out)
	}
	return &PageError{Status: http.StatusNotFound, Message: "There is no such sign-out step."}
}

// frameable lets the broker's own logout page frame this answer (and nobody else).
func frameable(c echo.Context) {
	c.Response().Header().Set("X-Frame-Options", "SAMEORIGIN")
	c.Response().Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; form-action *")
}

var legDone = template.Must(template.New("leg").Parse(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{{.}}</title></head><body>{{.}}</body></html>`))

func legDonePage(c echo.Context, l *db.LogoutLeg) error {
	msg := "Signed out of " + l.TargetName + "."
	if l.ErrorClass != "" {
		msg = "Could not confirm the sign-out of " + l.TargetName + "."
	}
	c.Response().Header().Set("Content-Type", "text/html; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	return legDone.Execute(c.Response(), msg)
}

// legState is one leg as the logout page's script reads it.
type legState struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Channel string `json:"channel"`
	State   string `json:"state"` // pending, done, failed
	Note    string `json:"note,omitempty"`
}

func legStates(legs []db.LogoutLeg) []legState {
	out := make([]legState, 0, len(legs))
	for _, l := range legs {
		st := "pending"
		if l.State == db.LegDone {
			st = "done"
			if l.ErrorClass != "" {
				st = "failed"
			}
		}
		note := ""
		if l.ErrorClass != "" {
			note = publicLegNote(l.ErrorClass)
		}
		out = append(out, legState{ID: l.ID, Name: l.TargetName, Channel: l.Channel, State: st, Note: note})
	}
	return out
}

// publicLegNote is what the end user reads about a failed leg; the detail is for support.
func publicLegNote(class string) string {
	switch class {
	case slo.ClassNotSupported:
		return "does not support single sign-out: sign out there yourself"
	case slo.ClassTimeout, slo.ClassNoAnswer:
		return "did not answer: sign out there yourself to be sure"
	default:
		return "could not be confirmed: sign out there yourself to be sure"
	}
}

// logoutStatus serves the legs' states to the logout page's script.
func (h *Handler) logoutStatus(c echo.Context) error {
	t, id, err := h.frontLogout(c)
	if err != nil {
		return err
	}
	lo, legs, err := h.logout.Store.GetLogout(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	pending := 0
	for _, l := range legs {
		if l.State == db.LegPending && l.Target == "app" && !slo.IsStep(&l) {
			pending++ // the parallel legs the page waits for; steps come after
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"legs": legStates(legs), "pending": pending, "deadline": lo.Deadline, "state": lo.State})
}

var logoutTemplate = template.Must(template.New("logout").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{if .Done}}Signed out{{else}}Signing out…{{end}}</title>
{{if not .Done}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<style nonce="{{.Nonce}}">body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}
li{margin:.3rem 0}.pending::after{content:" …"}.done{color:#176d2f}.failed{color:#9a3412}iframe{display:none}</style></head>
<body><h1>{{if .Done}}You are signed out{{else}}Signing you out…{{end}}</h1>
<ul id="legs">{{range .Legs}}<li id="leg-{{.ID}}" class="{{.State}}" data-state="{{.State}}">{{.Name}}{{if eq .State "done"}}: signed out{{end}}{{if .Note}}: {{.Note}}{{end}}</li>{{end}}</ul>
{{if .Done}}<p>{{if .Partial}}Some applications could not confirm the sign-out; close your browser to be sure.{{else}}You can close this window.{{end}}</p>{{end}}
{{range .Frames}}<iframe title="sign-out of {{.Name}}" src="{{.Src}}"></iframe>{{end}}
{{if not .Done}}<script nonce="{{.Nonce}}">
(function(){
  var deadline = Date.now() + {{.WaitMS}};
  function poll(){
    fetch({{.StatusURL}}, {credentials:"same-origin"}).then(function(r){return r.json()}).then(function(s){
      s.legs.forEach(function(l){
        var li = document.getElementById("leg-"+l.id); if(!li) return;
        li.className = l.state; li.dataset.state = l.state;
        li.textContent = l.name + (l.state==="done" ? ": signed out" : "") + (l.note ? ": "+l.note : "");
      });
      if (s.pending === 0 || Date.now() > deadline) { location.replace({{.PageURL}}); return; }
      setTimeout(poll, 400);
    }).catch(function(){ setTimeout(poll, 1000); });
  }
  setTimeout(poll, 300);
})();
</script>{{end}}
</body></html>
`))

func (h *Handler) renderLogoutPage(c echo.Context, slug string, step *slo.Step) error {
	base := h.tenantURL(slug, "/logout/"+step.Logout.ID)
	type frame struct{ Name, Src string }
	var frames []frame
	var visible []db.LogoutLeg
	for _, l := range step.Legs {
		if l.Target == "app" {
			visible = append(visible, l)
		}
		if step.Wait && l.Target == "app" && l.State == db.LegPending && l.Channel == string(slo.ChannelIframe) {
			frames = append(frames, frame{Name: l.TargetName, Src: base + "/leg/" + l.ID})
		}
	}
	wait := time.Until(step.Logout.Deadline)
	if wait < 0 {
		wait = 0
	}
	nonce := newSecret()[:32]
	data := map[string]any{
		"Done": !step.Wait, "Partial": step.Logout.Outcome != slo.OutcomeSuccess, "Legs": legStates(visible), "Frames": frames, "Nonce": nonce,
		"WaitMS": wait.Milliseconds() + 500, "Refresh": strconv.Itoa(int(wait.Seconds())+1) + ";url=" + base,
		"StatusURL": base + "/status", "PageURL": base,
	}
	hd := c.Response().Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; connect-src 'self'; frame-src *; form-action *; frame-ancestors 'none'")
	c.Response().WriteHeader(http.StatusOK)
	return logoutTemplate.Execute(c.Response(), data)
}
