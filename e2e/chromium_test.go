package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/sloworks/broker/internal/syncbuf"
)

// chromiumPath finds the browser: $CHROMIUM, else chromium, chromium-browser, google-chrome on
// PATH. Without one the test skips (naming e2e/install.sh), or fails when CI is set.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "Chromium is not installed: run e2e/install.sh (apt-get install chromium), or set CHROMIUM to the browser's path"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium with one tab, for one test.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab
	out *syncbuf.Buffer // the browser's own output
	// scriptsOff: JavaScript is disabled in the tab.
	scriptsOff bool

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// consoleProblems fails the test on what the pages put on the console: uncaught exceptions and
// errors (a refused script or style, a CSP violation, a failed load, but for the favicon); it
// logs the rest.
func (b *browser) consoleProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		where := m.URL
		if i := strings.IndexByte(where, '?'); i >= 0 {
			where = where[:i] + "?…"
		}
		// The browser asks every server for /favicon.ico; none of the test servers has one.
		favicon := strings.HasSuffix(m.URL, "/favicon.ico")
		if m.IsException() || (m.Type == chromedp.ConsoleError && !favicon) {
			b.t.Errorf("console %s at %s: %s", m.Type, where, m)
		} else {
			b.t.Logf("console %s at %s: %s", m.Type, where, m)
		}
	}
}

// startChromium starts a headless Chromium with a fresh profile directory. At cleanup it closes
// the browser, makes sure no process of it is left (killing any, and failing the test), and
// removes the profile.
func startChromium(t *testing.T, scriptsOff bool) *browser {
	t.Helper()
	path := chromiumPath(t)
	dir, err := os.MkdirTemp("", "broker-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, out: &syncbuf.Buffer{}, scriptsOff: scriptsOff}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Keep the browser off the network: on a closed network, background requests flood it
		// with refused connections.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Nothing in the real home directory: the profile directory is the browser's home too.
		chromedp.Env("HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"), "XDG_CACHE_HOME="+filepath.Join(dir, ".cache")),
		chromedp.WindowSize(800, 600),
		chromedp.CombinedOutput(b.out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var logMu sync.Mutex
	ended := false
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		if !ended {
			t.Logf("chromedp: "+format, args...)
		}
	}
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logf))
	t.Cleanup(func() {
		// Close the tab and the browser gracefully (bounded), then kill whatever is left.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		chromedp.Cancel(cctx)
		cancel()
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		logMu.Lock()
		ended = true
		logMu.Unlock()
		if left := leftovers(dir); len(left) > 0 {
			t.Errorf("Chromium processes left behind (killed): %v", left)
		}
		os.RemoveAll(dir)
		if t.Failed() {
			t.Logf("Chromium output:\n%s", b.output())
		}
	})
	b.ctx = ctx
	// Start the browser with no deadline: the first Run binds the browser's life to its context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium (%s): %v\n%s", path, err, b.output())
	}
	// Keep what the pages say on the console: script errors, CSP violations, failed loads.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	if scriptsOff {
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
	}
	if p := chromedp.FromContext(ctx).Browser.Process(); p != nil {
		t.Logf("Chromium pid %d, profile %s, scripts disabled: %v", p.Pid, dir, scriptsOff)
	}
	return b
}

// output is what the browser printed, without the complaints about the missing D-Bus.
func (b *browser) output() string {
	var keep []string
	for _, l := range strings.Split(b.out.String(), "\n") {
		if !strings.Contains(l, ":ERROR:dbus/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// leftovers waits a moment for the processes that name the profile directory (the browser's,
// its children's and crashpad's, whose database is in the profile's home) to exit, then kills
// those still there and returns them.
func leftovers(dir string) []string {
	deadline := time.Now().Add(3 * time.Second)
	for len(processesUsing(dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var left []string
	for range 3 {
		ps := processesUsing(dir)
		if len(ps) == 0 {
			break
		}
		for pid, cmd := range ps {
			left = append(left, strconv.Itoa(pid)+" "+cmd)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return left
}

// processesUsing are the processes whose command line names dir (their pid and program).
func processesUsing(dir string) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte(dir)) {
			continue
		}
		prog, _, _ := bytes.Cut(cmd, []byte{0})
		out[pid] = string(prog)
	}
	return out
}

// run runs an action on the tab with a time limit.
func run[T any](b *browser, d time.Duration, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// navigate starts a navigation and returns when it is committed, without waiting for the page
// (and its iframes) to load.
func (b *browser) navigate(u string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, page.Navigate, page.NavigateParams{URL: u})
	if err == nil && res.ErrorText != "" {
		err = errors.New(res.ErrorText)
	}
	if err != nil {
		b.t.Fatalf("navigate to %s: %v", u, err)
	}
}

// location is the URL of the page the tab shows (its current history entry; no script needed).
func (b *browser) location() string {
	b.t.Helper()
	e := b.entry()
	return e.URL
}

// entry is the tab's current history entry. While a navigation swaps the page's renderer
// ("Not attached to an active page"), it asks again.
func (b *browser) entry() page.NavigationEntry {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h, err := run(b, 5*time.Second, chromedp.NavigationEntries())
		if err == nil && h.CurrentIndex >= 0 && int(h.CurrentIndex) < len(h.Entries) {
			return *h.Entries[h.CurrentIndex]
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("navigation history: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLocation waits until the tab shows a page whose URL has the prefix.
func (b *browser) waitLocation(prefix string, d time.Duration) string {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		u := b.location()
		if strings.HasPrefix(u, prefix) {
			return u
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the browser is at %s after %s; want %s…", u, d, prefix)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodes are the elements the CSS selector matches, at least n of them.
func (b *browser) nodes(sel string, n int) []*chromedp.Node {
	b.t.Helper()
	ns, err := run(b, 5*time.Second, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(n)))
	if err != nil {
		b.t.Fatalf("%s: %v (the browser is at %s)", sel, err, b.location())
	}
	return ns
}

// screenshot saves the tab's viewport as a PNG in dir (and in $E2E_ARTIFACTS when set) and
// returns its path.
func (b *browser) screenshot(dir, name string) string {
	b.t.Helper()
	png, err := run(b, 5*time.Second, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Errorf("screenshot: %v", err)
		return ""
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if keep := os.Getenv("E2E_ARTIFACTS"); keep != "" {
		if err := os.MkdirAll(keep, 0o755); err == nil {
			os.WriteFile(filepath.Join(keep, name), png, 0o644)
		}
	}
	return p
}
