package e2e_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/browser"
	"github.com/gemini-balance-go/deployments/e2e/stack"
)

// uiPages are the admin UI's pages; setup and login are shot while they are
// reachable (before setup, after logout).
var uiPages = []string{"dashboard", "keys", "tokens", "logs", "live", "settings"}

// A first-time admin's whole afternoon in the admin UI, in one headless
// Chromium against the real processes (the fake Gemini upstream aside):
// setup, login, pasting keys, verifying them (one turns disabled), a token
// that then serves a genai request through edge, that request in the live
// tail, the logs and the dashboard, a setting saved live, Chinese and dark
// remembered, no horizontal scrolling at 390 px, and screenshots of every
// page. Any console error, uncaught exception, failed request or unexpected
// HTTP error in the browser fails the step it happened in.
func TestAdminUIRunsTheGatewayFromABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	b := browser.Launch(t) // first: without Chromium there is no point starting the stack
	good := []string{
		"AIzaSyUI-browser-key-good-0000000000001",
		"AIzaSyUI-browser-key-good-0000000000002",
	}
	// Unknown to the fake upstream, so it answers API_KEY_INVALID.
	bad := "AIzaSyUI-browser-key-bad-00000000000009"
	const password = "browser-admin-password-1234"
	s := stack.Start(t, stack.Options{
		Edges: 1, Keys: good,
		// No admin yet (setup page) and no keys yet (pasted in the UI).
		Env: map[string]string{"AUTH_TOKEN": "", "API_KEYS": "[]"},
	})
	base := s.AdminURL()
	tab := b.NewTab(t, base)
	if os.Getenv("GB_SCREENSHOTS") == "" {
		t.Logf("screenshots: %s, removed after the test (GB_SCREENSHOTS=<dir> keeps them)", b.ShotDir)
	} else {
		t.Logf("screenshots: %s", b.ShotDir)
	}

	// step runs one part of the story as a subtest. A step that could not
	// finish (t.Fatal) stops the story, since the next ones build on it; one
	// that finished with errors (a console error, say) does not.
	stopped := ""
	step := func(name string, fn func(t *testing.T)) {
		if stopped != "" {
			t.Run(name, func(t *testing.T) { t.Skipf("skipped: step %q could not finish", stopped) })
			return
		}
		finished := false
		t.Run(name, func(t *testing.T) {
			tab.Use(t)
			fn(t)
			tab.Clean()
			finished = true
		})
		tab.Use(t)
		if !finished {
			stopped = name
		}
	}

	step("setup", func(t *testing.T) {
		tab.Go("/")
		waitPath(tab, "/setup")
		shots(t, tab, "setup")
		tab.Fill("#setup-password", password)
		tab.Fill("#setup-confirm", password)
		tab.Click("#setup-submit")
		tab.Wait("setup leaves for the dashboard", `location.pathname === "/dashboard"`)
		tab.Idle()
		// Setup is over: its page now sends the browser to the login.
		tab.Go("/setup")
		waitPath(tab, "/login")
	})

	step("login returns to the page asked for", func(t *testing.T) {
		tab.Go("/dashboard")
		tab.Click("#logout")
		waitPath(tab, "/login")
		tab.Idle()
		shots(t, tab, "login")
		tab.Go("/keys")
		tab.Wait("a page without a session asks to log in", `location.pathname === "/login" && new URLSearchParams(location.search).get("next") === "/keys"`)
		tab.Idle()
		// A wrong password is refused with a message, and the page stays.
		tab.Expect([]browser.Allow{{Method: "POST", Path: "/auth", Status: 401}}, func() {
			tab.Fill("#login-password", "not-the-password")
			tab.Click("#login-submit")
			tab.Wait("the wrong-password message", `!document.querySelector("#login-error").hidden && document.querySelector("#login-error").textContent.trim() !== ""`)
		})
		tab.Fill("#login-password", password)
		tab.Click("#login-submit")
		waitPath(tab, "/keys")
		tab.Idle()
	})

	step("bulk add keys from pasted text", func(t *testing.T) {
		tab.Go("/keys")
		pasted := fmt.Sprintf("my keys:\n%s\n%s, %s\nnot-a-key-at-all\n%s\n", good[0], good[1], bad, good[0])
		tab.Fill("#keys-add-text", pasted)
		tab.Click("#keys-add-submit")
		tab.Wait("the add result", `document.querySelector("#keys-add-result") && document.querySelector("#keys-add-result").textContent.trim() !== ""`)
		var counts struct{ Added, Duplicate, Invalid string }
		tab.Eval(`(() => { const r = document.querySelector("#keys-add-result");
			const n = (k) => ((r.querySelector("[data-count='" + k + "']") || {}).textContent || "").replace(/[^0-9]/g, "");
			return {Added: n("added"), Duplicate: n("duplicate"), Invalid: n("invalid")}; })()`, &counts)
		if counts.Added != "3" || counts.Duplicate != "1" || counts.Invalid != "1" {
			t.Errorf("add result says added %q, duplicate %q, invalid %q; want 3, 1, 1 (%s)", counts.Added, counts.Duplicate, counts.Invalid, tab.Text("#keys-add-result"))
		}
		tab.Wait("three keys in the table", `document.querySelectorAll("#keys-table [data-id]").length === 3`)
		for _, k := range append(good, bad) {
			hint := k[len(k)-4:]
			var shown bool
			tab.Eval(fmt.Sprintf(`document.querySelector("#keys-table").textContent.includes(%q)`, hint), &shown)
			if !shown {
				t.Errorf("key …%s not in the table", hint)
			}
		}
		var full bool
		tab.Eval(fmt.Sprintf(`document.body.textContent.includes(%q)`, good[0]), &full)
		if full {
			t.Errorf("the key table shows a full key")
		}
	})

	step("verify all keys: the invalid one turns disabled", func(t *testing.T) {
		tab.Click("#keys-verify-all")
		tab.Click("#confirm-ok")
		hint := bad[len(bad)-4:]
		tab.Wait("the invalid key disabled", fmt.Sprintf(`[...document.querySelectorAll("#keys-table [data-id]")].some(r =>
			r.textContent.includes(%q) && r.querySelector('[data-status="disabled"]'))`, hint))
		var disabled int
		tab.Eval(`document.querySelectorAll('#keys-table [data-id] [data-status="disabled"]').length`, &disabled)
		if disabled != 1 {
			t.Errorf("%d keys disabled after verify, want 1 (the invalid one)", disabled)
		}
		tab.Idle()
	})

	var secret string
	step("create a token and read its secret once", func(t *testing.T) {
		tab.Go("/tokens")
		tab.Fill("#tokens-create-name", "browser story")
		tab.Click("#tokens-create-submit")
		tab.Wait("the shown-once secret", `(() => { const e = document.querySelector("#tokens-secret");
			return e && (e.value || e.textContent).trim().length > 10; })()`)
		tab.Eval(`(() => { const e = document.querySelector("#tokens-secret"); return (e.value || e.textContent).trim(); })()`, &secret)
		tab.Idle()
		// Shown once: the list after a reload has the token, not its secret.
		tab.Reload()
		tab.Wait("the token in the list", `[...document.querySelectorAll("#tokens-table [data-id]")].some(r => r.textContent.includes("browser story"))`)
		var shown bool
		tab.Eval(fmt.Sprintf(`document.body.textContent.includes(%q) || [...document.querySelectorAll("input")].some(i => i.value.includes(%q))`, secret, secret), &shown)
		if shown {
			t.Errorf("the token's secret is still on the page after a reload")
		}
	})

	live := b.NewTab(t, base)
	step("a request with the token appears live, in the logs, on the dashboard and in the token's usage", func(t *testing.T) {
		live.Use(t)
		live.Go("/live")
		live.Wait("the live table", `!!document.querySelector("#live-table")`)
		before := 0
		live.Eval(`document.querySelectorAll("#live-table [data-id]").length`, &before)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := genai.NewClient(ctx, &genai.ClientConfig{
			APIKey: secret, Backend: genai.BackendGeminiAPI,
			HTTPOptions: genai.HTTPOptions{BaseURL: s.EdgeURL(0) + "/", APIVersion: "v1beta"},
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hello from the browser story"), nil)
		if err != nil {
			t.Fatalf("request with the UI's token through edge: %v", err)
		}
		if res.Text() == "" {
			t.Fatalf("empty answer through edge: %+v", res)
		}

		live.Wait("the request in the live tail", fmt.Sprintf(`[...document.querySelectorAll("#live-table [data-id]")].length > %d &&
			document.querySelector("#live-table").textContent.includes("gemini-2.5-flash")`, before))
		// The live tail with the request in it, light then dark (the theme
		// follows the system: no reload, which would empty the tail).
		live.Shot("live-request-desktop-light")
		live.ColorScheme("dark")
		live.Wait("the dark theme from the system", `document.documentElement.dataset.theme === "dark"`)
		live.Shot("live-request-desktop-dark")
		live.ColorScheme("")
		live.Clean()

		// logd writes in batches: the pages are reloaded until it has.
		tab.Go("/logs")
		waitReloading(tab, "the request in the request logs", `[...document.querySelectorAll("#logs-requests-table [data-id]")].some(r => r.textContent.includes("gemini-2.5-flash"))`)
		tab.Go("/dashboard")
		waitReloading(tab, "the request counted on the dashboard (last hour: requests and successes)", `(() => {
			const n = (f) => Number((document.querySelector('#dashboard-counters [data-window="hour"] [data-field="' + f + '"]') || {textContent: ""}).textContent.replace(/[^0-9]/g, "") || 0);
			return n("requests") >= 1 && n("successes") >= 1; })()`)
		tab.Go("/tokens")
		waitReloading(tab, "the request in the token's 24 h usage", `[...document.querySelectorAll('#tokens-table [data-id] a[href^="/logs?tab=requests&token="]')].some(a => /^1\b/.test(a.textContent.trim()))`)
	})
	live.Use(t)

	step("MAX_RETRIES saved in settings applies live", func(t *testing.T) {
		tab.Go("/settings")
		tab.Fill("#settings-MAX_RETRIES", "7")
		tab.Click("#settings-save")
		tab.Wait("a saved confirmation", `!!document.querySelector(".toast.ok")`)
		tab.Reload()
		tab.Wait("the saved value after reload", `document.querySelector("#settings-MAX_RETRIES") && document.querySelector("#settings-MAX_RETRIES").value === "7"`)
		var cfg struct {
			MaxRetries int `json:"MAX_RETRIES"`
		}
		if code := tab.Fetch("GET", "/api/config", "", &cfg); code != 200 || cfg.MaxRetries != 7 {
			t.Errorf("GET /api/config: %d, MAX_RETRIES %d, want 7", code, cfg.MaxRetries)
		}
	})

	step("Chinese and dark are remembered", func(t *testing.T) {
		tab.Go("/dashboard")
		selectOption(tab, "#lang-switch", "zh")
		tab.Wait("the page in Chinese", `document.documentElement.lang.startsWith("zh") && /[\u4e00-\u9fff]/.test(document.querySelector("#nav").textContent)`)
		selectOption(tab, "#theme-switch", "dark")
		tab.Wait("the dark theme", `document.documentElement.dataset.theme === "dark"`)
		tab.Reload()
		tab.Wait("Chinese after reload", `document.documentElement.lang.startsWith("zh") && /[\u4e00-\u9fff]/.test(document.querySelector("#nav").textContent)`)
		tab.Wait("dark after reload", `document.documentElement.dataset.theme === "dark" && document.querySelector("#theme-switch").value === "dark"`)
		// Dark is on screen, not just an attribute: the page background is dark.
		var lum float64
		tab.Eval(`(() => { const c = getComputedStyle(document.body).backgroundColor.match(/[\d.]+/g).map(Number);
			return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255; })()`, &lum)
		if lum > 0.3 {
			t.Errorf("dark theme: body background luminance %.2f, want a dark background", lum)
		}
		shots(t, tab, "dashboard-zh")
		selectOption(tab, "#lang-switch", "en")
		selectOption(tab, "#theme-switch", "system")
		tab.Idle()
	})

	step("every page fits 390 px and is shot at both widths and themes", func(t *testing.T) {
		for _, p := range uiPages {
			tab.Go("/" + p)
			shots(t, tab, p)
		}
	})

	// Last: it locks this address out of logging in for a while.
	step("too many failed logins show when to try again", func(t *testing.T) {
		tab.Go("/dashboard")
		tab.Click("#logout")
		waitPath(tab, "/login")
		tab.Idle()
		tab.Expect([]browser.Allow{{Method: "POST", Path: "/auth", Status: 401}, {Method: "POST", Path: "/auth", Status: 429}}, func() {
			throttled := false
			for i := 0; i < 12 && !throttled; i++ {
				throttled = tab.Fetch("POST", "/auth", `{"auth_token": "still-not-the-password"}`, nil) == 429
			}
			if !throttled {
				t.Fatal("12 wrong passwords in a row were never answered 429")
			}
			tab.Fill("#login-password", password) // even the right one waits now
			tab.Click("#login-submit")
			tab.Wait("the throttling message", `/Too many failed attempts\. Try again in ([1-9]|1[0-5]) min/.test(document.querySelector("#login-error").textContent)`)
		})
		waitPath(tab, "/login")
	})
}

// shots saves the page at desktop (1280×800) and phone (390×844) widths in
// light and dark, and fails when the phone width scrolls sideways. The theme
// is set as the user would (localStorage gb.theme, then reload).
func shots(t *testing.T, tab *browser.Tab, name string) {
	t.Helper()
	path := ""
	tab.Eval(`location.pathname + location.search`, &path)
	for _, theme := range []string{"light", "dark"} {
		tab.Eval(fmt.Sprintf(`localStorage.setItem("gb.theme", %q)`, theme), nil)
		for _, vp := range []struct {
			name          string
			width, height int64
			mobile        bool
		}{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}} {
			tab.Viewport(vp.width, vp.height, vp.mobile)
			tab.Reload()
			if vp.mobile {
				if over, culprit := tab.HorizontalOverflow(); over > 0 {
					t.Errorf("%s at 390 px (%s) scrolls sideways by %d px; widest: %s", path, theme, over, culprit)
				}
			}
			tab.Shot(fmt.Sprintf("%s-%s-%s", name, vp.name, theme))
		}
	}
	tab.Eval(`localStorage.removeItem("gb.theme")`, nil)
	tab.Viewport(1280, 800, false)
	tab.Reload()
}

// waitReloading waits for cond, reloading the page every few seconds: for
// data that arrives asynchronously on pages that do not refresh themselves.
func waitReloading(tab *browser.Tab, what, cond string) {
	for i := 0; ; i++ {
		var ok bool
		tab.Eval("!!("+cond+")", &ok)
		if ok {
			return
		}
		if i == 6 {
			tab.Wait(what, cond) // the last try fails with the usual message
			return
		}
		time.Sleep(2 * time.Second)
		tab.Reload()
	}
}

func waitPath(tab *browser.Tab, path string) {
	tab.Wait("location "+path, fmt.Sprintf(`location.pathname === %q`, path))
}

// selectOption picks a <select>'s option as a user would (change event).
func selectOption(tab *browser.Tab, sel, value string) {
	tab.Eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q;
		e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`, sel, value), nil)
}
