// Package ui serves the admin web UI: plain HTML, CSS and JavaScript ES
// modules embedded in the admind binary (no build step, no Node, no CDN).
// Every page path answers with the same index.html shell; the shell's router
// loads the page module, which talks to the REST API under /api only.
//
// admind hooks it in with one call:
//
//	ui.Register(r, ui.Deps{State: func(r *http.Request) (setupNeeded, authenticated bool, err error) {...}})
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

//go:embed static
var embedded embed.FS

// Static is the UI's files (index.html, app.js, lib/, pages/, ...), rooted at static/.
func Static() fs.FS {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		panic(err) // the embed directive guarantees static/ exists
	}
	return sub
}

// Pages are the UI's page paths; each serves the index.html shell.
var Pages = []string{"/login", "/setup", "/dashboard", "/keys", "/settings", "/logs", "/tokens", "/live"}

// Owns reports whether a route path registered on the engine is the UI's
// (pages and assets), not the REST API's: docs/openapi.yaml leaves these out.
func Owns(routePath string) bool {
	return routePath == "/" || routePath == "/favicon.ico" || strings.HasPrefix(routePath, "/assets/") || slices.Contains(Pages, routePath)
}

// Deps tell the UI who is asking, so page paths can redirect before the
// shell loads (a browser with no session never sees an empty page).
type Deps struct {
	// State reports whether no admin exists yet (setup needed) and whether
	// the request carries a valid admin session. An error (the admin store
	// is down) answers 503.
	State func(*http.Request) (setupNeeded, authenticated bool, err error)
}

type asset struct {
	body, gz []byte // gz is nil when compression does not pay
	etag     string
	ctype    string
}

type handler struct {
	d      Deps
	assets map[string]*asset
}

// Register serves /assets/... and the page paths on r, and redirects / to
// the page that fits: /setup, /login or /dashboard.
func Register(r *gin.Engine, d Deps) {
	h := &handler{d: d, assets: load(Static())}
	r.GET("/", h.root)
	r.HEAD("/", h.root)
	for _, p := range Pages {
		r.GET(p, h.page)
		r.HEAD(p, h.page)
	}
	r.GET("/assets/*file", h.asset)
	r.HEAD("/assets/*file", h.asset)
	r.GET("/favicon.ico", func(c *gin.Context) { h.serve(c, "favicon.svg") })
}

// load reads every embedded file once, with its ETag and a gzip copy.
func load(fsys fs.FS) map[string]*asset {
	m := map[string]*asset{}
	err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a := &asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: contentType(p)}
		if gz := gzipped(b); len(gz) < len(b)*9/10 {
			a.gz = gz
		}
		m[p] = a
		return nil
	})
	if err != nil {
		panic(err) // embedded files are always readable
	}
	return m
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" {
		return t
	}
	return "text/plain; charset=utf-8"
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func (h *handler) state(c *gin.Context) (setup, authed, ok bool) {
	if h.d.State == nil {
		return false, false, true
	}
	setup, authed, err := h.d.State(c.Request)
	if err != nil {
		c.String(http.StatusServiceUnavailable, "admin store unavailable: %v", err)
		return false, false, false
	}
	return setup, authed, true
}

func (h *handler) root(c *gin.Context) {
	setup, authed, ok := h.state(c)
	switch {
	case !ok:
	case setup:
		c.Redirect(http.StatusFound, "/setup")
	case !authed:
		c.Redirect(http.StatusFound, "/login")
	default:
		c.Redirect(http.StatusFound, "/dashboard")
	}
}

// page serves the shell, or sends the browser where it must go first:
// /setup while no admin exists, /login (remembering the page) without a
// session, and /login instead of /setup once an admin exists.
func (h *handler) page(c *gin.Context) {
	p := c.Request.URL.Path
	setup, authed, ok := h.state(c)
	switch {
	case !ok:
		return
	case p == "/setup" && !setup:
		c.Redirect(http.StatusFound, "/login")
		return
	case p != "/setup" && setup:
		c.Redirect(http.StatusFound, "/setup")
		return
	case p != "/setup" && p != "/login" && !authed:
		next := p
		if q := c.Request.URL.RawQuery; q != "" {
			next += "?" + q
		}
		c.Redirect(http.StatusFound, "/login?next="+url.QueryEscape(next))
		return
	}
	h.serve(c, "index.html")
}

func (h *handler) asset(c *gin.Context) {
	h.serve(c, strings.TrimPrefix(c.Param("file"), "/"))
}

// serve answers with an embedded file. Names are not content-hashed, so
// browsers revalidate (no-cache) and get a 304 while the ETag still holds.
func (h *handler) serve(c *gin.Context, name string) {
	a, ok := h.assets[name]
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such asset: " + name})
		return
	}
	hd := c.Writer.Header()
	hd.Set("ETag", a.etag)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Vary", "Accept-Encoding")
	if name == "index.html" {
		// The shell runs only our own scripts; uPlot sets inline styles.
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
	}
	if match := c.GetHeader("If-None-Match"); match != "" && strings.Contains(match, a.etag) {
		c.Status(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", a.ctype)
	body := a.body
	if a.gz != nil && strings.Contains(c.GetHeader("Accept-Encoding"), "gzip") {
		hd.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	c.Status(http.StatusOK)
	if c.Request.Method == http.MethodHead {
		return
	}
	_, _ = c.Writer.Write(body)
}
