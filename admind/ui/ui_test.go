package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/storetest"
	"github.com/gemini-balance-go/testkit/wait"
)

// startAdmind runs a real admind on embedded NATS and FerretDB with no
// admin password yet (first run).
func startAdmind(t *testing.T) *httptest.Server {
	t.Helper()
	b := natstest.StartBus(t)
	nc, js := b.NC, b.JS
	db := storetest.Database(t, storetest.Start(t), "gb_ui_test")
	ctx, cancel := context.WithCancel(context.Background())
	sd := config.Defaults()
	srv, err := server.New(server.Deps{NC: nc, DB: db, Settings: natsx.NewSettings(sd), Seed: &sd,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Replica: "t1", PingWindow: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	wait.For(t, "admind publishes its settings", func() bool {
		_, ok, _ := natsx.FetchSettings(context.Background(), js)
		return ok
	})
	return hs
}

type client struct {
	t      *testing.T
	base   string
	cookie string
}

// get does one request without following redirects.
func (c *client) get(path string, hdr ...string) *http.Response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
	}
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (c *client) wantRedirect(path, to string) {
	c.t.Helper()
	resp := c.get(path)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != to {
		c.t.Errorf("GET %s: %d to %q, want 302 to %q", path, resp.StatusCode, resp.Header.Get("Location"), to)
	}
}

func (c *client) wantShell(path string) {
	c.t.Helper()
	resp := c.get(path)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `<main id="app"`) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		c.t.Errorf("GET %s: %d %s, want the UI shell", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// The browser lands where it must: setup while no admin exists, then login
// (remembering the page it asked for), then the page itself.
func TestPagesRedirectBySetupAndSession(t *testing.T) {
	hs := startAdmind(t)
	c := &client{t: t, base: hs.URL}

	// First run: everything leads to setup.
	c.wantRedirect("/", "/setup")
	c.wantRedirect("/dashboard", "/setup")
	c.wantRedirect("/login", "/setup")
	c.wantShell("/setup")

	resp, err := http.Post(hs.URL+"/api/setup", "application/json", strings.NewReader(`{"password":"ui-admin-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("setup: %d", resp.StatusCode)
	}
	session := resp.Cookies()

	// An admin exists, no session: login, with the page to come back to.
	c.wantRedirect("/", "/login")
	c.wantRedirect("/setup", "/login")
	c.wantRedirect("/keys?status=cooling", "/login?next=%2Fkeys%3Fstatus%3Dcooling")
	c.wantRedirect("/dashboard", "/login?next=%2Fdashboard")
	c.wantShell("/login")

	// A forged or expired cookie is no session.
	c.cookie = "auth_token=9999999999.deadbeef"
	c.wantRedirect("/settings", "/login?next=%2Fsettings")

	// Logged in: / is the dashboard and every page is the shell.
	c.cookie = session[0].Name + "=" + session[0].Value
	c.wantRedirect("/", "/dashboard")
	c.wantRedirect("/setup", "/login")
	for _, p := range []string{"/dashboard", "/keys", "/tokens", "/settings", "/logs", "/live", "/login"} {
		c.wantShell(p)
	}
}

// Assets are served with a type, an ETag that revalidates, gzip when asked,
// and a JSON 404 for what does not exist.
func TestAssetsAreCachedByETagAndGzipped(t *testing.T) {
	hs := startAdmind(t)
	c := &client{t: t, base: hs.URL}
	resp := c.get("/assets/app.js")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("app.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if r := c.get("/assets/app.js", "If-None-Match", etag); r.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", r.StatusCode)
	}
	if r := c.get("/assets/app.js", "Accept-Encoding", "gzip"); r.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("Accept-Encoding gzip: Content-Encoding %q", r.Header.Get("Content-Encoding"))
	}
	if r := c.get("/assets/vendor/uplot/uPlot.iife.min.js"); r.StatusCode != http.StatusOK {
		t.Errorf("uPlot: %d", r.StatusCode)
	}
	if r := c.get("/favicon.ico"); r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("favicon: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if r := c.get("/assets/nope.js"); r.StatusCode != http.StatusNotFound {
		t.Errorf("missing asset: %d, want 404", r.StatusCode)
	}
}
