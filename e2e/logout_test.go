package e2e

import (
	"context"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"
	"github.com/crewjam/saml"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/slo"
)

// signIn signs the browser in to the app through the broker: the app's AuthnRequest (Redirect)
// to the broker, the broker's AuthnRequest to the IdP (for the first app only; later apps use the
// broker session), the IdP's and the broker's forms posted on by themselves — or, with
// JavaScript off, by pressing their Continue button.
func (w *world) signIn(t *testing.T, b *browser, a *app) *saml.Assertion {
	t.Helper()
	start := time.Now()
	b.navigate(a.loginURL(t))
	if b.scriptsOff {
		// Without script the forms stand still until their button is pressed: the IdP's (first
		// sign-in only) and the broker's.
		presses := 0
		for range 3 {
			if strings.HasPrefix(b.location(), a.acs) {
				break
			}
			b.pressContinue()
			presses++
		}
		if presses == 0 {
			t.Errorf("%s: the sign-in went through without pressing Continue: scripts ran", a.name)
		}
	}
	select {
	case <-a.signedIn:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no sign-in after 20 s; the browser is at %s", a.name, b.location())
	}
	b.waitLocation(a.acs, 10*time.Second)
	a.mu.Lock()
	defer a.mu.Unlock()
	t.Logf("signed in to %s in %s", a.name, time.Since(start).Round(time.Millisecond))
	return a.assertion
}

// pressContinue presses the Continue button of the page's form (no script needed) and waits
// for the next page.
func (b *browser) pressContinue() {
	b.t.Helper()
	before := b.entry().ID
	if _, err := run(b, 5*time.Second, chromedp.Click(chromedp.CSS(`form button[type="submit"]`))); err != nil {
		b.t.Fatalf("Continue at %s: %v", b.location(), err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b.entry().ID != before {
			return
		}
	}
	b.t.Fatalf("Continue at %s led nowhere", b.location())
}

// legItem is one app on the logout page, as its list item says.
type legItem struct {
	id, name, state string
}

var legItemRE = regexp.MustCompile(`<li id="(leg-[^"]+)" class="[^"]*" data-state="([^"]*)">([^<]*)</li>`)

// legItems reads the logout page's list of apps.
func (b *browser) legItems() []legItem {
	b.t.Helper()
	items, err := b.tryLegItems()
	if err != nil {
		b.t.Fatalf("the logout page's list: %v (the browser is at %s)", err, b.location())
	}
	return items
}

// tryLegItems reads the logout page's list of apps, if the tab still shows it.
func (b *browser) tryLegItems() ([]legItem, error) {
	html, err := run(b, 5*time.Second, chromedp.OuterHTML(chromedp.CSS("#legs")))
	if err != nil {
		return nil, err
	}
	var out []legItem
	for _, m := range legItemRE.FindAllStringSubmatch(html, -1) {
		name, _, _ := strings.Cut(m[3], ":")
		out = append(out, legItem{id: m[1], name: name, state: m[2]})
	}
	return out, nil
}

// stateChange is a change of an item's data-state, as Chromium reported it (DOM.attributeModified).
type stateChange struct {
	node  cdp.NodeID
	value string
	at    time.Time
}

// watchStates reports every change of a data-state attribute in the tab, from now on, for the
// elements the test has looked up (Chromium reports changes of the nodes it has sent).
func (b *browser) watchStates() <-chan stateChange {
	b.t.Helper()
	ch := make(chan stateChange, 1024)
	err := chromedp.Listen(b.ctx, func(ev any) {
		if ev, ok := ev.(*dom.EventAttributeModified); ok && ev.Name == "data-state" {
			select {
			case ch <- stateChange{node: ev.NodeID, value: ev.Value, at: time.Now()}:
			default:
			}
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return ch
}

// signInAll signs the browser in to every app and checks that one broker session holds them.
func (w *world) signInAll(t *testing.T, b *browser) {
	t.Helper()
	for _, a := range w.apps {
		w.signIn(t, b, a)
	}
	ss, err := w.store.ListSessions(context.Background(), w.tenant.ID)
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions after sign-in: %d, %v", len(ss), err)
	}
	parts, err := w.store.ListParticipants(context.Background(), w.tenant.ID, ss[0].ID)
	if err != nil || len(parts) != len(w.apps) {
		t.Fatalf("participants of the session: %d, %v; want %d", len(parts), err, len(w.apps))
	}
	w.idp.mu.Lock()
	defer w.idp.mu.Unlock()
	if len(w.idp.sessionIndexes) != 1 {
		t.Fatalf("the IdP was asked %d times; want once (the broker session serves the other apps)", len(w.idp.sessionIndexes))
	}
}

// checkOutcome checks what everybody got once the logout is over: each app but the initiator
// exactly one LogoutRequest naming what the broker issued to it, the IdP one naming its session,
// the initiator a Success answer without PartialLogout; and the log: outcome success, an iframe
// leg per app and the IdP's leg by Redirect, all confirmed.
func (w *world) checkOutcome(t *testing.T, initiator *app, requestID, logoutID string) {
	t.Helper()
	ctx := context.Background()
	for _, a := range w.apps {
		a.mu.Lock()
		switch {
		case a == initiator:
			if len(a.logouts) != 0 {
				t.Errorf("%s, which started the logout, was sent %d LogoutRequests", a.name, len(a.logouts))
			}
			if len(a.answers) != 1 {
				t.Errorf("%s got %d answers; want 1", a.name, len(a.answers))
			} else if r := a.answers[0]; r.InResponseTo != requestID || r.Status.Top() != slo.StatusSuccess || r.Status.Sub() != "" ||
				r.Issuer != w.url("/idp/metadata") || r.Destination != a.srv.URL+"/slo" {
				t.Errorf("%s's answer: %+v; want Success (no PartialLogout) to %s", a.name, r, requestID)
			}
		default:
			as := a.assertion
			if len(a.logouts) != 1 {
				t.Errorf("%s got %d LogoutRequests; want 1", a.name, len(a.logouts))
			} else if r := a.logouts[0]; r.NameID.Value != as.Subject.NameID.Value || r.NameID.Format != as.Subject.NameID.Format ||
				!slices.Equal(r.SessionIndexes, []string{as.AuthnStatements[0].SessionIndex}) || r.Issuer != w.url("/idp/metadata") {
				t.Errorf("%s's LogoutRequest names %+v %v; it was issued %s %q", a.name, r.NameID, r.SessionIndexes, as.Subject.NameID.Value, as.AuthnStatements[0].SessionIndex)
			}
		}
		a.mu.Unlock()
	}
	w.idp.mu.Lock()
	if len(w.idp.logouts) != 1 {
		t.Errorf("the IdP got %d LogoutRequests; want 1", len(w.idp.logouts))
	} else if r := w.idp.logouts[0]; r.NameID.Value != user || !slices.Equal(r.SessionIndexes, w.idp.sessionIndexes[:1]) {
		t.Errorf("the IdP's LogoutRequest names %+v %v; it issued %s %v", r.NameID, r.SessionIndexes, user, w.idp.sessionIndexes)
	} else if late := w.idp.receivedAt[0].Sub(r.NotOnOrAfter); late > 0 {
		// Known broker issue (reported, not asserted): the IdP's request is planned with the
		// app legs (NotOnOrAfter = start + leg timeout) but sent only once they settle, which
		// can be after that; a strict IdP (no clock skew) refuses it as expired.
		t.Logf("NOTE: the IdP received the broker's LogoutRequest %s after its NotOnOrAfter %s (IssueInstant %s)",
			late.Round(time.Millisecond), r.NotOnOrAfter.Format("15:04:05.000"), r.IssueInstant.Format("15:04:05.000"))
	}
	w.idp.mu.Unlock()
	w.problems(t)

	lo, legs, err := w.store.GetLogout(ctx, w.tenant.ID, logoutID)
	if err != nil {
		t.Fatal(err)
	}
	if lo.State != db.LogoutFinished || lo.Outcome != slo.OutcomeSuccess || lo.Trigger != slo.TriggerApp {
		t.Errorf("logout %s: state %s, outcome %s, trigger %s; want finished, success, app", lo.ID, lo.State, lo.Outcome, lo.Trigger)
	}
	apps := 0
	for _, l := range legs {
		t.Logf("leg %-8s target %-8s channel %-8s state %-5s status %s error %q latency %d ms", l.TargetName, l.Target, l.Channel, l.State,
			strings.TrimPrefix(l.Status, "urn:oasis:names:tc:SAML:2.0:status:"), l.ErrorClass, l.LatencyMS)
		want := string(slo.ChannelIframe)
		if l.Target == "upstream" {
			want = string(slo.ChannelRedirect)
		} else {
			apps++
		}
		if l.Channel != want || l.State != db.LegDone || l.ErrorClass != "" || l.Status != slo.StatusSuccess || len(l.Received) == 0 {
			t.Errorf("leg of %s: channel %s, state %s, status %s, error %q (%s); want %s, confirmed", l.TargetName, l.Channel, l.State, l.Status, l.ErrorClass, l.Diagnosis, want)
		}
	}
	if apps != len(w.apps)-1 || len(legs) != len(w.apps) {
		t.Errorf("%d legs (%d apps); want %d app legs and the IdP's", len(legs), apps, len(w.apps)-1)
	}
	ss, _ := w.store.ListSessions(ctx, w.tenant.ID)
	for _, s := range ss {
		if s.EndedAt == nil {
			t.Errorf("session %s was not ended", s.ID)
		}
	}
}

// TestLogoutPageInChromium: Chromium signs in to four apps through the broker, then signs out of
// one of them. The logout page lists the other three, reaches them in parallel hidden iframes
// (one answers slowly) and its script shows each one signed out as its iframe completes; then
// the browser goes on to the IdP's Redirect SLO and back, and lands at the initiator with a
// Success: every leg confirmed.
func TestLogoutPageInChromium(t *testing.T) {
	const slowDelay = 800 * time.Millisecond
	chromiumPath(t) // skip (or fail on CI) before building anything
	w := newWorld(t, 5*time.Second, appSpec{name: "portal"}, appSpec{name: "wiki"}, appSpec{name: "crm"}, appSpec{name: "payroll", delay: slowDelay})
	b := startChromium(t, false)
	portal, slow := w.apps[0], w.apps[3]
	w.signInAll(t, b)

	states := b.watchStates()
	start := time.Now()
	b.navigate(portal.logoutURL(t, "_portal-logout-1", "back-to-portal"))
	pageURL := b.waitLocation(w.url("/logout/"), 5*time.Second)
	logoutID := path.Base(pageURL)
	// Look the items up at once (the page's first poll is 300 ms away): from now on Chromium
	// reports every change of their data-state.
	nodes := b.nodes("#legs li", 3)
	items := b.legItems()
	t.Logf("logout page %s after %s: %+v", pageURL, time.Since(start).Round(time.Millisecond), items)
	nameOf := map[string]string{}
	for _, it := range items {
		nameOf[it.id] = it.name
	}
	var got, want []string
	for _, it := range items {
		got = append(got, it.name)
	}
	for _, a := range w.apps[1:] {
		want = append(want, a.name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the logout page lists %v; want the other three apps %v", got, want)
	}
	state := map[string]string{}
	nodeName := map[cdp.NodeID]string{}
	doneAt := map[string]time.Duration{}
	for _, n := range nodes {
		name := nameOf[n.AttributeValue("id")]
		nodeName[n.NodeID] = name
		state[name] = n.AttributeValue("data-state")
		if state[name] == "done" { // already: the lookup came after the page's first poll
			doneAt[name] = time.Since(start)
		}
	}
	t.Logf("states when first seen: %v", state)

	var history []string
	sawIntermediate := false
	shot := ""
	apply := func(c stateChange) {
		name, ok := nodeName[c.node]
		if !ok {
			return
		}
		history = append(history, name+"="+c.value+"@"+c.at.Sub(start).Round(time.Millisecond).String())
		if c.value == "done" && state[name] != "done" {
			doneAt[name] = c.at.Sub(start)
		}
		state[name] = c.value
	}
	fastDone := func() bool {
		for _, a := range w.apps[1:] {
			if a != slow && state[a.name] != "done" {
				return false
			}
		}
		return true
	}
	timeout := time.After(30 * time.Second)
wait:
	for {
		select {
		case c := <-states:
			apply(c)
			if !sawIntermediate && fastDone() && state[slow.name] == "pending" {
				sawIntermediate = true
				at := time.Since(start).Round(time.Millisecond)
				shot = b.screenshot(t.TempDir(), "logout-page-midway.png")
				now, err := b.tryLegItems()
				t.Logf("mid-way at %s (%s still pending): screenshot %s; list after it: %+v %v", at, slow.name, shot, now, err)
			}
		case <-portal.answered:
			break wait
		case <-timeout:
			t.Fatalf("no answer to %s after 30 s; the browser is at %s; states %v (%v)", portal.name, b.location(), state, history)
		}
	}
	landed := time.Since(start)
	// The last changes may still be on their way from Chromium.
	for drain := time.After(300 * time.Millisecond); ; {
		select {
		case c := <-states:
			apply(c)
			continue
		case <-drain:
		}
		break
	}
	final := b.waitLocation(portal.srv.URL+"/slo?", 10*time.Second)
	t.Logf("data-state changes: %v", history)
	t.Logf("landed at %s after %s", strings.SplitN(final, "?", 2)[0], landed.Round(time.Millisecond))

	// Each item shows done once its iframe has completed: after the app sent the browser back
	// with its answer and the broker recorded the leg.
	_, legs, err := w.store.GetLogout(context.Background(), w.tenant.ID, logoutID)
	if err != nil {
		t.Fatal(err)
	}
	finished := map[string]time.Time{}
	for _, l := range legs {
		if l.FinishedAt != nil {
			finished[l.TargetName] = *l.FinishedAt
		}
	}
	for _, a := range w.apps[1:] {
		at, ok := doneAt[a.name]
		if !ok {
			t.Errorf("%s never showed done (states seen: %v)", a.name, history)
			continue
		}
		a.mu.Lock()
		var answered time.Duration
		if len(a.answeredAt) == 1 {
			answered = a.answeredAt[0].Sub(start)
		}
		a.mu.Unlock()
		recorded := finished[a.name].Sub(start)
		if answered == 0 || at < answered || at < recorded {
			t.Errorf("%s showed done at %s; its iframe answered at %s, the broker recorded it at %s", a.name, at, answered, recorded)
		}
		t.Logf("%s: answered in its iframe at %s, recorded at %s, shown done at %s", a.name,
			answered.Round(time.Millisecond), recorded.Round(time.Millisecond), at.Round(time.Millisecond))
	}
	if !sawIntermediate {
		t.Errorf("never saw the other apps done while %s was pending: %v", slow.name, history)
	}
	for _, a := range w.apps[1:] {
		if a != slow && doneAt[a.name] >= doneAt[slow.name] {
			t.Errorf("%s (slow) settled at %s, not after %s (%s)", slow.name, doneAt[slow.name], a.name, doneAt[a.name])
		}
	}
	if doneAt[slow.name] < slowDelay {
		t.Errorf("%s showed done after %s, before it could have answered (%s)", slow.name, doneAt[slow.name], slowDelay)
	}
	if u, err := url.Parse(final); err != nil || u.Query().Get("RelayState") != "back-to-portal" {
		t.Errorf("final URL %s: RelayState not carried back", final)
	}
	if shot == "" {
		t.Error("no mid-way screenshot")
	}
	w.checkOutcome(t, portal, "_portal-logout-1", logoutID)
	b.consoleProblems()
}

// TestLogoutPageWithoutJavaScript: the same sign-ins and logout with JavaScript disabled in
// Chromium. The iframes still reach every app (Redirect legs need no script), and the page's
// meta refresh moves it on after the deadline, through the IdP to the initiator's answer.
func TestLogoutPageWithoutJavaScript(t *testing.T) {
	const legTimeout = time.Second
	chromiumPath(t)
	// The slow app answers well within the leg timeout, so that every leg is confirmed.
	w := newWorld(t, legTimeout, appSpec{name: "portal"}, appSpec{name: "wiki"}, appSpec{name: "crm"}, appSpec{name: "payroll", delay: 300 * time.Millisecond})
	b := startChromium(t, true)
	portal := w.apps[0]
	w.signInAll(t, b)

	states := b.watchStates()
	start := time.Now()
	b.navigate(portal.logoutURL(t, "_portal-logout-2", "back-to-portal"))
	pageURL := b.waitLocation(w.url("/logout/"), 5*time.Second)
	logoutID := path.Base(pageURL)
	nodes := b.nodes("#legs li", 3)
	items := b.legItems()
	t.Logf("logout page %s after %s: %+v", pageURL, time.Since(start).Round(time.Millisecond), items)
	for _, it := range items {
		if it.state != "pending" {
			t.Errorf("%s is %s on the first page; want pending", it.name, it.state)
		}
	}
	if len(nodes) != 3 || len(items) != 3 {
		t.Fatalf("the logout page lists %d apps; want 3: %+v", len(items), items)
	}
	refresh, err := run(b, 5*time.Second, chromedp.AttributeValue(chromedp.CSS(`meta[http-equiv="refresh"]`), "content"))
	if err != nil || !refresh.Exists {
		t.Fatalf("no meta refresh on the logout page: %v", err)
	}
	secs, target, _ := strings.Cut(refresh.Value, ";url=")
	if target != pageURL || secs == "" {
		t.Errorf("meta refresh %q; want N;url=%s", refresh.Value, pageURL)
	}
	t.Logf("meta refresh: %q", refresh.Value)
	frames := b.nodes("iframe", 3)
	if len(frames) != 3 {
		t.Errorf("%d iframes; want 3", len(frames))
	}

	// The iframes do their work without script: every app answers.
	for _, a := range w.apps[1:] {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			a.mu.Lock()
			n := len(a.answeredAt)
			a.mu.Unlock()
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s was not reached through its iframe", a.name)
			}
		}
	}
	answered := time.Since(start)
	t.Logf("every app answered through its iframe after %s", answered.Round(time.Millisecond))
	shot := b.screenshot(t.TempDir(), "logout-page-no-js.png")
	t.Logf("screenshot without JavaScript: %s", shot)
	// Without script nothing moves the page on before its refresh.
	if time.Since(start) < legTimeout-100*time.Millisecond {
		if loc := b.location(); loc != pageURL {
			t.Errorf("the page moved on to %s before the deadline, without script", loc)
		}
	}
	select {
	case <-portal.answered:
	case <-time.After(15 * time.Second):
		t.Fatalf("no answer to %s; the browser is at %s", portal.name, b.location())
	}
	landed := time.Since(start)
	final := b.waitLocation(portal.srv.URL+"/slo?", 10*time.Second)
	t.Logf("landed at %s after %s", strings.SplitN(final, "?", 2)[0], landed.Round(time.Millisecond))
	if landed < legTimeout {
		t.Errorf("the page moved on after %s, before the deadline (%s): not by its meta refresh", landed, legTimeout)
	}
	select {
	case c := <-states:
		t.Errorf("a data-state changed without JavaScript (%+v): scripts ran", c)
	default:
	}
	w.checkOutcome(t, portal, "_portal-logout-2", logoutID)
	b.consoleProblems()
}
