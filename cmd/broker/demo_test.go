package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sloworks/broker/internal/syncbuf"
)

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// demoServer is `broker demo` running in the test.
type demoServer struct {
	base string
	out  *syncbuf.Buffer
	stop func() error // cancels the context and returns what serve returned
}

// startDemo does what run does for `broker demo --addr ADDR --data-dir dir`, with a context the
// test can cancel (run's own context only ends on a signal).
func startDemo(t *testing.T, dataDir string) *demoServer {
	t.Helper()
	addr := freeAddr(t)
	cfg, err := loadConfig("demo", []string{"--addr", addr, "--data-dir", dataDir}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	// As run does for the demo command: the demo IdP and app are on this http server.
	cfg.AllowHTTP = cfg.AllowHTTP || strings.HasPrefix(cfg.BaseURL, "http://")
	out := &syncbuf.Buffer{}
	logger := newLogger(cfg, out)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := newServer(ctx, cfg, logger, out)
	if err != nil {
		cancel()
		t.Fatalf("newServer: %v", err)
	}
	if err := srv.wireDemo(ctx, out, srv.keys); err != nil {
		cancel()
		srv.close()
		t.Fatalf("wireDemo: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.serve(ctx) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-errc:
			case <-time.After(30 * time.Second):
				t.Error("serve did not return 30s after its context was cancelled")
			}
			srv.close()
		})
		return serveErr
	}
	t.Cleanup(func() { stop() })
	d := &demoServer{base: "http://" + addr, out: out, stop: stop}
	// Ready when /healthz answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(d.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo server at %s is not ready: %v", d.base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

var (
	formRe  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRe  = regexp.MustCompile(`(?s)([a-zA-Z_:-]+)\s*=\s*"([^"]*)"`)
)

type htmlForm struct {
	method, action string // action resolved against the page URL
	fields         url.Values
	inputs         map[string]string // name -> type
}

func attrsOf(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

// onlyForm parses the single form of page (fetched from pageURL).
func onlyForm(t *testing.T, page string, pageURL *url.URL) htmlForm {
	t.Helper()
	forms := formRe.FindAllStringSubmatch(page, -1)
	if len(forms) != 1 {
		t.Fatalf("%s: want one form, found %d:\n%s", pageURL, len(forms), page)
	}
	fa := attrsOf(forms[0][1])
	action, err := pageURL.Parse(fa["action"])
	if err != nil {
		t.Fatalf("form action %q: %v", fa["action"], err)
	}
	f := htmlForm{method: strings.ToLower(fa["method"]), action: action.String(), fields: url.Values{}, inputs: map[string]string{}}
	for _, in := range inputRe.FindAllStringSubmatch(forms[0][2], -1) {
		a := attrsOf(in[1])
		if a["name"] == "" {
			continue
		}
		f.inputs[a["name"]] = strings.ToLower(a["type"])
		f.fields.Set(a["name"], a["value"])
	}
	return f
}

type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// do sends the request, follows redirects, and returns the final page and its URL.
func (b *browser) do(method, u string, form url.Values) (string, *url.URL) {
	b.t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = b.c.PostForm(u, form)
	} else {
		resp, err = b.c.Get(u)
	}
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("%s %s ended at %s with HTTP %d:\n%s", method, u, resp.Request.URL, resp.StatusCode, body)
	}
	return string(body), resp.Request.URL
}

// wantPostForm checks that f is an auto-submitted POST of a SAMLResponse to path under base.
func wantPostForm(t *testing.T, f htmlForm, base, path string) {
	t.Helper()
	if f.method != "post" || f.action != base+path {
		t.Fatalf("form %s %s; want post %s", f.method, f.action, base+path)
	}
	if f.inputs["SAMLResponse"] != "hidden" || f.fields.Get("SAMLResponse") == "" {
		t.Fatalf("form to %s has no hidden SAMLResponse: %v", path, f.inputs)
	}
	xml, err := base64.StdEncoding.DecodeString(f.fields.Get("SAMLResponse"))
	if err != nil || !bytes.Contains(xml, []byte("Response")) {
		t.Fatalf("SAMLResponse to %s is not a base64 Response (%v)", path, err)
	}
}

// signIn drives the README's promise: open the demo app, sign in as alice at the demo IdP,
// come back through the broker, and be signed in.
func signIn(t *testing.T, base string) *browser {
	b := newBrowser(t)

	// App → broker (IdP side) → demo IdP: the login form.
	page, at := b.do(http.MethodGet, base+"/demo/app/", nil)
	login := onlyForm(t, page, at)
	if login.method != "post" || login.action != base+"/demo/idp/sso" {
		t.Fatalf("login form %s %s; want post %s/demo/idp/sso\n%s", login.method, login.action, base, page)
	}
	for name, typ := range map[string]string{"user": "text", "password": "password", "SAMLRequest": "hidden", "RelayState": "hidden"} {
		if got, ok := login.inputs[name]; !ok || (typ == "hidden" && got != typ) || (name == "password" && got != typ) {
			t.Errorf("login form input %q: type %q present=%v; want %q", name, got, ok, typ)
		}
	}
	if login.fields.Get("SAMLRequest") == "" {
		t.Fatal("login form carries no SAMLRequest")
	}

	// The IdP answers the broker with a signed Response.
	login.fields.Set("user", "alice")
	login.fields.Set("password", "wonderland")
	page, at = b.do(http.MethodPost, login.action, login.fields)
	toBroker := onlyForm(t, page, at)
	wantPostForm(t, toBroker, base, "/t/demo/sp/acs")

	// The broker answers the app with its own Response.
	page, at = b.do(http.MethodPost, toBroker.action, toBroker.fields)
	toApp := onlyForm(t, page, at)
	wantPostForm(t, toApp, base, "/demo/app/saml/acs")

	// The app takes it and sends the browser back to where it started.
	b.do(http.MethodPost, toApp.action, toApp.fields)
	page, at = b.do(http.MethodGet, base+"/demo/app/", nil)
	if at.String() != base+"/demo/app/" {
		t.Errorf("GET /demo/app/ ended at %s", at)
	}
	for _, want := range []string{"You are signed in", "alice@demo.example", "Sign out everywhere"} {
		if !strings.Contains(page, want) {
			t.Errorf("the demo app page lacks %q:\n%s", want, page)
		}
	}
	return b
}

// TestDemoSignOut: "Sign out everywhere" in the demo app signs the user out of the app, the
// broker and the demo IdP (whose login form comes back), and the broker logs it as a success.
func TestDemoSignOut(t *testing.T) {
	d := startDemo(t, filepath.Join(t.TempDir(), "data"))
	b := signIn(t, d.base)
	page, at := b.do(http.MethodGet, d.base+"/demo/app/logout", nil)
	if at.Path != "/demo/app/saml/slo" || !strings.Contains(page, "You are signed out of the demo app, the broker and every app of your session") {
		t.Fatalf("sign-out ended at %s:\n%s", at, page)
	}
	// Signed out everywhere: the app sends the browser to the broker, the broker to the IdP, and
	// the IdP asks for the password again.
	page, at = b.do(http.MethodGet, d.base+"/demo/app/", nil)
	if at.Path != "/demo/idp/sso" || !strings.Contains(page, `type="password"`) {
		t.Fatalf("after sign-out, the app page ended at %s:\n%s", at, page)
	}
}

var tokenRe = regexp.MustCompile(`\bbrk_[0-9a-f]{48}\b`)

func TestDemoSignIn(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")

	d := startDemo(t, dataDir)
	out := d.out.String()
	if want := "Open " + d.base + "/demo/ and sign in as alice / wonderland"; !strings.Contains(out, want) {
		t.Errorf("first start does not print %q:\n%s", want, out)
	}
	if !strings.Contains(out, "Operator API token (shown once") {
		t.Errorf("first start does not print the operator token line:\n%s", out)
	}
	token := tokenRe.FindString(out)
	if token == "" {
		t.Fatalf("no token in the output:\n%s", out)
	}
	// Only the hash is stored, and it is the hash of the printed token.
	stored, err := os.ReadFile(filepath.Join(dataDir, "operator-token.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	if strings.TrimSpace(string(stored)) != hex.EncodeToString(sum[:]) {
		t.Errorf("stored %q is not the SHA-256 of the printed token", stored)
	}
	if bytes.Contains(stored, []byte(token)) {
		t.Error("the token itself is stored")
	}
	if st, err := os.Stat(filepath.Join(dataDir, "operator-token.sha256")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("token hash file: %v %v; want mode 600", st.Mode(), err)
	}
	// The printed token opens the admin API.
	req, _ := http.NewRequest(http.MethodGet, d.base+"/api/v1/tenants/demo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("admin API with the printed token: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}

	t.Run("sign in", func(t *testing.T) { signIn(t, d.base) })

	if err := d.stop(); err != nil {
		t.Fatalf("serve after cancel = %v; want nil (graceful shutdown)", err)
	}
	if _, err := http.Get(d.base + "/healthz"); err == nil {
		t.Error("the server still answers after shutdown")
	}

	// A second start on the same data directory: no new token, the demo works again.
	d2 := startDemo(t, dataDir)
	out2 := d2.out.String()
	if strings.Contains(out2, "Operator API token") || tokenRe.MatchString(out2) {
		t.Errorf("second start prints a token again:\n%s", out2)
	}
	if !strings.Contains(out2, "Open "+d2.base+"/demo/ and sign in") {
		t.Errorf("second start does not print the demo URL:\n%s", out2)
	}
	if stored2, _ := os.ReadFile(filepath.Join(dataDir, "operator-token.sha256")); !bytes.Equal(stored, stored2) {
		t.Error("the stored token hash changed on the second start")
	}
	req, _ = http.NewRequest(http.MethodGet, d2.base+"/api/v1/tenants", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("admin API with the first start's token after a restart: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	t.Run("sign in after restart", func(t *testing.T) { signIn(t, d2.base) })
	if err := d2.stop(); err != nil {
		t.Fatalf("serve after cancel = %v; want nil", err)
	}
}
