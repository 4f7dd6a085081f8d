// Package browser drives Debian's headless Chromium through chromedp for the
// admin UI tests. One Browser per test; its tabs record every console error,
// uncaught exception, failed request and unexpected HTTP error status, and
// Clean fails the test with what they saw. One concern, kept whole.
//
//	b := browser.Launch(t)                 // skips without chromium, unless CI=true
//	tab := b.NewTab(t, s.AdminURL())
//	tab.Go("/keys"); tab.Click("#keys-add-submit"); tab.Clean()
//	tab.Shot("keys-desktop-light")          // PNG under b.ShotDir
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// DefaultPath is where Debian's chromium package puts the browser.
const DefaultPath = "/usr/bin/chromium"

// Browser is one headless Chromium process with a fresh profile.
type Browser struct {
	ctx context.Context // the browser (its first tab, kept blank)
	// ShotDir is where Shot writes PNGs: $GB_SCREENSHOTS, or a directory
	// removed after the test.
	ShotDir string
}

// Launch starts Chromium (CHROMIUM, else /usr/bin/chromium) for t and stops it
// at cleanup. Without a browser the test is skipped, except under CI=true,
// where a missing browser is a failure: CI must run these tests.
func Launch(t testing.TB) *Browser {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = DefaultPath
	}
	if _, err := exec.LookPath(path); err != nil {
		msg := fmt.Sprintf("browser: no Chromium at %s (apt-get install chromium, or set CHROMIUM): %v", path, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// A fresh profile, removed once the browser and its helpers are gone
	// (not t.TempDir: its removal races the renderers' last writes).
	profile, err := os.MkdirTemp("", "gb-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox, // CI containers run as root, where the sandbox refuses to start
		chromedp.Flag("disable-gpu", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(func(f string, a ...any) {
		// cdproto knows events chromedp's DOM tracking does not handle (a
		// <dialog> entering the top layer); harmless noise.
		if !strings.HasPrefix(f, "unhandled node event") {
			t.Logf("chromedp: "+f, a...)
		}
	}))
	if err := chromedp.Run(ctx); err != nil { // starts the process
		cancel()
		acancel()
		_ = os.RemoveAll(profile)
		t.Fatalf("browser: start %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()  // closes the browser
		acancel() // and waits for its process
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	var version string
	_ = chromedp.Run(ctx, chromedp.Evaluate(`navigator.userAgent`, &version))
	t.Logf("browser: %s", version)
	dir := os.Getenv("GB_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &Browser{ctx: ctx, ShotDir: dir}
}

// Allow is an HTTP error answer a step expects (Path is the URL path, exact;
// Method empty matches any method).
type Allow struct {
	Method string
	Path   string
	Status int
}

func (a Allow) String() string { return fmt.Sprintf("%s %s → %d", a.Method, a.Path, a.Status) }

type request struct {
	method, url string
	loader      cdp.LoaderID // the document that sent it
	stream      bool         // EventSource: open for the page's life, not part of "idle"
}

// Tab is one browser tab bound to a base URL and a test.
type Tab struct {
	t    testing.TB // the test (or subtest) now driving the tab; see Use
	ctx  context.Context
	base string
	// Timeout bounds each action (default 20 s).
	Timeout time.Duration
	b       *Browser

	mu       sync.Mutex
	problems []string
	allowed  []Allow
	reqs     map[network.RequestID]request
	inflight map[network.RequestID]bool
	judged   map[network.RequestID]bool // error answers already allowed or reported
	page     string                     // the page on screen, to say where a problem happened
	netLogs  []*log.Entry               // Chrome's network error lines, matched to judged at Clean
}

// NewTab opens a tab that records problems from now on. The tab is closed at
// the test's cleanup; call Clean at the end of each step to fail on problems.
func (b *Browser) NewTab(t testing.TB, base string) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tab := &Tab{t: t, ctx: ctx, base: strings.TrimRight(base, "/"), Timeout: 20 * time.Second, b: b,
		reqs: map[network.RequestID]request{}, inflight: map[network.RequestID]bool{}, judged: map[network.RequestID]bool{}}
	chromedp.ListenTarget(ctx, tab.event)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("browser: new tab: %v", err)
	}
	t.Cleanup(func() {
		tab.t = t // a subtest that used it has ended
		tab.Clean()
		cancel()
	})
	return tab
}

// Use makes t (a subtest, say) the test the tab reports to and fails.
func (tab *Tab) Use(t testing.TB) { tab.t = t }

// event runs on chromedp's event loop: record, never block.
func (tab *Tab) event(ev any) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	n := len(tab.problems)
	defer func() { // each new problem names the page it happened on
		for i := n; i < len(tab.problems); i++ {
			tab.problems[i] = tab.page + ": " + tab.problems[i]
		}
	}()
	switch ev := ev.(type) {
	case *page.EventNavigatedWithinDocument:
		tab.page = tab.path(ev.URL)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
			tab.problems = append(tab.problems, "console."+string(ev.Type)+": "+remoteText(ev.Args)+stackText(ev.StackTrace))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		tab.problems = append(tab.problems, fmt.Sprintf("uncaught exception: %s (%s:%d)", msg, d.URL, d.LineNumber+1))
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.LevelError {
			return
		}
		if ev.Entry.Source == log.SourceNetwork && ev.Entry.NetworkRequestID != "" {
			tab.netLogs = append(tab.netLogs, ev.Entry) // the answer may not be judged yet
			return
		}
		tab.problems = append(tab.problems, fmt.Sprintf("log %s error: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
	case *network.EventRequestWillBeSent:
		stream := ev.Type == network.ResourceTypeEventSource
		tab.reqs[ev.RequestID] = request{method: ev.Request.Method, url: ev.Request.URL, loader: ev.LoaderID, stream: stream}
		if !stream && !strings.HasPrefix(ev.Request.URL, "data:") {
			tab.inflight[ev.RequestID] = true
		}
	case *network.EventResponseReceived:
		r := tab.reqs[ev.RequestID]
		if ev.Response.Status < 400 {
			return
		}
		tab.judged[ev.RequestID] = true
		u, _ := url.Parse(ev.Response.URL)
		path := ""
		if u != nil {
			path = u.Path
		}
		for _, a := range tab.allowed {
			if a.Status == int(ev.Response.Status) && a.Path == path && (a.Method == "" || a.Method == r.method) {
				return
			}
		}
		tab.problems = append(tab.problems, fmt.Sprintf("unexpected HTTP %d: %s %s", ev.Response.Status, r.method, ev.Response.URL))
	case *page.EventFrameNavigated:
		// The old document's requests end with it, without always an event.
		if ev.Frame.ParentID == "" {
			tab.page = tab.path(ev.Frame.URL)
			for id := range tab.inflight {
				if tab.reqs[id].loader != ev.Frame.LoaderID {
					delete(tab.inflight, id)
				}
			}
		}
	case *network.EventLoadingFinished:
		delete(tab.inflight, ev.RequestID)
	case *network.EventLoadingFailed:
		delete(tab.inflight, ev.RequestID)
		// A navigation or a page's own abort (closing its EventSource on
		// unmount) cancels requests; that is not a failure.
		if ev.Canceled {
			return
		}
		r := tab.reqs[ev.RequestID]
		tab.problems = append(tab.problems, fmt.Sprintf("request failed: %s %s: %s %s", r.method, r.url, ev.ErrorText, ev.BlockedReason))
	}
}

func remoteText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		switch {
		case a.Value != nil:
			parts = append(parts, strings.Trim(string(a.Value), `"`))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

func stackText(st *runtime.StackTrace) string {
	if st == nil || len(st.CallFrames) == 0 {
		return ""
	}
	f := st.CallFrames[0]
	return fmt.Sprintf(" (%s:%d)", f.URL, f.LineNumber+1)
}

// Expect runs fn with the given error answers allowed; outside fn they are
// problems again. Keep these few and explicit.
func (tab *Tab) Expect(allow []Allow, fn func()) {
	tab.t.Helper()
	tab.mu.Lock()
	n := len(tab.allowed)
	tab.allowed = append(tab.allowed, allow...)
	tab.mu.Unlock()
	defer func() {
		tab.mu.Lock()
		tab.allowed = tab.allowed[:n]
		tab.mu.Unlock()
	}()
	fn()
}

// Problems returns (and forgets) what the tab saw go wrong so far.
func (tab *Tab) Problems() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	all := tab.problems
	for _, e := range tab.netLogs {
		// An error answer is judged (allowed or reported) by its status;
		// Chrome's "Failed to load resource" line about it says no more.
		if !tab.judged[e.NetworkRequestID] {
			all = append(all, fmt.Sprintf("log network error: %s %s", e.Text, e.URL))
		}
	}
	tab.problems, tab.netLogs = nil, nil
	// The same problem on every reload is reported once, with its count.
	var out []string
	seen := map[string]int{}
	for _, p := range all {
		if seen[p] == 0 {
			out = append(out, p)
		}
		seen[p]++
	}
	for i, p := range out {
		if seen[p] > 1 {
			out[i] = fmt.Sprintf("%s (×%d)", p, seen[p])
		}
	}
	return out
}

// Clean fails the test (without stopping it) for every problem seen so far.
func (tab *Tab) Clean() {
	tab.t.Helper()
	for _, p := range tab.Problems() {
		tab.t.Errorf("browser: %s", p)
	}
}

// path is u without the tab's base URL.
func (tab *Tab) path(u string) string {
	if p := strings.TrimPrefix(u, tab.base); p != "" && p != u {
		return p
	}
	return u
}

func (tab *Tab) location() string {
	var loc string
	ctx, cancel := context.WithTimeout(tab.ctx, 2*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.Location(&loc)); err != nil {
		return "?"
	}
	return tab.path(loc)
}

// Run runs actions with the tab's timeout; an error fails the test now,
// with the problems seen so far (they usually say why).
func (tab *Tab) Run(what string, actions ...chromedp.Action) {
	tab.t.Helper()
	if err := tab.TryRun(actions...); err != nil {
		tab.Clean()
		tab.t.Fatalf("browser: %s (at %s): %v", what, tab.location(), err)
	}
}

// TryRun runs actions with the tab's timeout and returns the error.
func (tab *Tab) TryRun(actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(tab.ctx, tab.Timeout)
	defer cancel()
	return chromedp.Run(ctx, actions...)
}

// Go navigates to base+path and waits for the page and its requests to settle.
func (tab *Tab) Go(path string) {
	tab.t.Helper()
	tab.Run("open "+path, chromedp.Navigate(tab.base+path))
	tab.Idle()
}

// Reload reloads the page and waits for it to settle.
func (tab *Tab) Reload() {
	tab.t.Helper()
	tab.Run("reload", chromedp.Reload())
	tab.Idle()
}

// Idle waits until no request (EventSource streams aside) has been in flight
// for 250 ms and the fonts are loaded: the page has drawn its data.
func (tab *Tab) Idle() {
	tab.t.Helper()
	deadline := time.Now().Add(tab.Timeout)
	quietSince := time.Time{}
	for time.Now().Before(deadline) {
		tab.mu.Lock()
		busy := len(tab.inflight) > 0
		tab.mu.Unlock()
		switch {
		case busy:
			quietSince = time.Time{}
		case quietSince.IsZero():
			quietSince = time.Now()
		case time.Since(quietSince) >= 250*time.Millisecond:
			var ok bool
			tab.Run("wait for fonts", chromedp.Evaluate(`document.fonts.ready.then(() => true)`, &ok, awaitPromise))
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	tab.mu.Lock()
	var pending []string
	for id := range tab.inflight {
		pending = append(pending, tab.reqs[id].method+" "+tab.reqs[id].url)
	}
	tab.mu.Unlock()
	tab.t.Fatalf("browser: requests still in flight after %s: %v", tab.Timeout, pending)
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// Eval evaluates a JavaScript expression (promises awaited) into out.
func (tab *Tab) Eval(js string, out any) {
	tab.t.Helper()
	tab.Run("eval "+js, chromedp.Evaluate(js, out, awaitPromise))
}

// Fetch calls the admin API from the page (same origin, the session cookie)
// and decodes the JSON answer into out; it returns the HTTP status.
func (tab *Tab) Fetch(method, path string, body string, out any) int {
	tab.t.Helper()
	var res struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	js := fmt.Sprintf(`fetch(%q, {method: %q, headers: {"content-type": "application/json"}, body: %s})
		.then(async r => ({status: r.status, body: await r.text()}))`, path, method, jsBody(body))
	tab.Eval(js, &res)
	if out != nil && res.Status < 300 {
		if err := json.Unmarshal([]byte(res.Body), out); err != nil {
			tab.t.Fatalf("browser: %s %s: %v in %s", method, path, err, res.Body)
		}
	}
	return res.Status
}

func jsBody(body string) string {
	if body == "" {
		return "undefined"
	}
	return fmt.Sprintf("%q", body)
}

// Viewport sets the window's CSS size; mobile makes it a touch phone.
func (tab *Tab) Viewport(width, height int64, mobile bool) {
	tab.t.Helper()
	tab.Run("viewport", emulation.SetDeviceMetricsOverride(width, height, 1, mobile),
		emulation.SetTouchEmulationEnabled(mobile))
}

// ColorScheme emulates the system's prefers-color-scheme ("light", "dark", or
// "" for none).
func (tab *Tab) ColorScheme(scheme string) {
	tab.t.Helper()
	var features []*emulation.MediaFeature
	if scheme != "" {
		features = append(features, &emulation.MediaFeature{Name: "prefers-color-scheme", Value: scheme})
	}
	tab.Run("color scheme", emulation.SetEmulatedMedia().WithFeatures(features))
}

// Shot saves a PNG of the viewport as <ShotDir>/<name>.png and returns its path.
func (tab *Tab) Shot(name string) string {
	tab.t.Helper()
	var png []byte
	tab.Run("screenshot "+name, chromedp.ActionFunc(func(ctx context.Context) error {
		// A background tab draws no frames: the capture would wait forever.
		if err := page.BringToFront().Do(ctx); err != nil {
			return err
		}
		var err error
		png, err = page.CaptureScreenshot().WithFormat(page.CaptureScreenshotFormatPng).WithOptimizeForSpeed(true).Do(ctx)
		return err
	}))
	path := filepath.Join(tab.b.ShotDir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tab.t.Fatal(err)
	}
	return path
}

// HorizontalOverflow returns how many CSS pixels the page is wider than the
// window (0 when it needs no horizontal scrolling) and the widest element
// sticking out, to name the culprit.
func (tab *Tab) HorizontalOverflow() (int, string) {
	tab.t.Helper()
	var res struct {
		Over    int    `json:"over"`
		Culprit string `json:"culprit"`
	}
	tab.Eval(`(() => {
		const d = document.documentElement, w = d.clientWidth;
		let culprit = "", max = w;
		for (const el of document.querySelectorAll("body *")) {
			const r = el.getBoundingClientRect();
			if (r.right > max + 0.5) {
				max = r.right;
				culprit = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
					(el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "");
			}
		}
		return {over: Math.max(0, d.scrollWidth - w), culprit};
	})()`, &res)
	return res.Over, res.Culprit
}

// Ctx is the tab's chromedp context, for actions the helpers lack.
func (tab *Tab) Ctx() context.Context { return tab.ctx }

// Fill replaces the value of the input or textarea at sel as a user would
// paste it: focus, clear, insert the text (input events fire).
func (tab *Tab) Fill(sel, text string) {
	tab.t.Helper()
	tab.Run("fill "+sel,
		chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.focus(); try { e.select(); } catch { e.value = ""; } return true; })()`, sel), nil),
		input.InsertText(text))
}

// Click waits for sel to be visible and clicks it.
func (tab *Tab) Click(sel string) {
	tab.t.Helper()
	tab.Run("click "+sel, chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Click(sel, chromedp.ByQuery))
}

// Text waits for sel to be visible and returns its text.
func (tab *Tab) Text(sel string) string {
	tab.t.Helper()
	var s string
	tab.Run("text of "+sel, chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// Wait polls the JavaScript condition until it is truthy (within the tab's
// timeout); what names it in the failure. Navigations in between are fine:
// the condition is evaluated again on the new page.
func (tab *Tab) Wait(what, cond string) {
	tab.t.Helper()
	deadline := time.Now().Add(tab.Timeout)
	var last error
	for time.Now().Before(deadline) {
		var ok bool
		ctx, cancel := context.WithTimeout(tab.ctx, 2*time.Second)
		last = chromedp.Run(ctx, chromedp.Evaluate("!!("+cond+")", &ok))
		cancel()
		if last == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tab.Clean()
	if last != nil {
		tab.t.Fatalf("browser: waiting until %s (at %s): %v", what, tab.location(), last)
	}
	tab.t.Fatalf("browser: waited %s in vain until %s (at %s)", tab.Timeout, what, tab.location())
}
