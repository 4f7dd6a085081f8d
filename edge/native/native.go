// Package native serves the Gemini-native API: a faithful proxy that adds
// key rotation, failover and the documented injections (see Inject). Routes
// live under /v1beta, /gemini/v1beta and /gemini/v1 (upstream v1), with
// /vertex-express/v1beta on the vertex key pool, the Files API under
// /upload/v1beta/files and {prefix}/files, and the key-affine context caches,
// batches and long-running operations (see resources.go).
package native

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/guard"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/natsx"
)

// Keyd is what the Files API needs from keyd besides the relay's
// acquire/report; edge/keydclient.Client implements it.
type Keyd interface {
	relay.Keys
	BindFile(ctx context.Context, b bus.FileBinding) error
	LookupFile(ctx context.Context, q keyapi.FileQuery) (bus.FileBinding, error)
	ListFiles(ctx context.Context, q keyapi.FileQuery) ([]bus.FileBinding, error)
	ListBindings(ctx context.Context, req keyapi.FileListRequest) ([]bus.FileBinding, error)
	DeleteFile(ctx context.Context, q keyapi.FileQuery) error
}

// Deps are the native routes' collaborators.
type Deps struct {
	Relay    *relay.Relay
	Keyd     Keyd
	Settings *natsx.Settings
	Logger   *slog.Logger
	// Auth checks the client token (edge/auth middleware, Gemini error shape).
	Auth gin.HandlerFunc
	// Authenticate checks a request's token without rejecting it (uploads
	// may continue on an upload id alone); ok reports a valid token,
	// present that one was offered.
	Authenticate func(r *http.Request) (tokenID, tokenHint string, ok, present bool)
	// MaxUploadChunk overrides the MaxUploadChunk cap (tests); 0 keeps it.
	MaxUploadChunk int64
}

// MaxBody bounds a request body read into memory (inline media included);
// one byte more answers 413.
const MaxBody = 64 << 20

// MaxUploadChunk bounds one upload chunk, which is streamed upstream rather
// than held: Gemini's own limit for a whole file (2 GB).
const MaxUploadChunk = 2 << 30

type handlers struct {
	Deps
	log *slog.Logger
}

// Register mounts every Gemini-native route on r.
func Register(r gin.IRouter, d Deps) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	h := &handlers{Deps: d, log: d.Logger}
	for _, p := range []struct {
		prefix  string
		version string // upstream API version
	}{{"/v1beta", "v1beta"}, {"/gemini/v1beta", "v1beta"}, {"/gemini/v1", "v1"}} {
		g := r.Group(p.prefix, d.Auth)
		g.GET("/models", h.listModels(p.version))
		g.GET("/models/:model", h.getModel(p.version))
		g.POST("/models/:model", h.modelAction(p.version, bus.KindGemini))
		g.GET("/files", h.listFiles)
		g.GET("/files/:id", h.getFile(p.version)) // and files/{id}:download
		g.DELETE("/files/:id", h.deleteFile(p.version))
		h.registerResources(g, p.version)
	}
	// The download host form Google documents for curl.
	r.Group("/download/v1beta", d.Auth).GET("/files/:id", h.getFile("v1beta"))
	v := r.Group("/vertex-express/v1beta", d.Auth)
	v.GET("/models", h.listModels(""))
	v.GET("/models/:model", h.getModel(""))
	v.POST("/models/:model", h.modelAction("", bus.KindVertex))

	// The upload protocol authenticates itself: a chunk may carry only the
	// upload id Google issued (curl uses the URL literally).
	for _, p := range []string{"/upload/v1beta/files", "/gemini/upload/v1beta/files"} {
		r.POST(p, h.upload(p))
		r.PUT(p, h.upload(p))
	}
}

// readBody reads the request body (at most MaxBody) and refuses JSON nested
// deeper than guard.MaxDepth before any parser sees it; other malformed
// JSON goes upstream to be judged, as the faithful proxy promises. Reading
// the body whole also lets the HTTP/1 server notice a client that
// disconnects while we wait upstream.
func readBody(c *gin.Context) ([]byte, bool) {
	body, berr := guard.ReadBody(c.Writer, c.Request, MaxBody)
	if berr != nil {
		relay.WriteError(c.Writer, berr.Status, berr.Msg)
		return nil, false
	}
	if err := guard.CheckJSON(body); guard.TooDeep(err) {
		relay.WriteError(c.Writer, http.StatusBadRequest, "invalid request body: "+err.Error())
		return nil, false
	}
	return body, true
}

// chunkBody is an upload chunk's body, bounded by MaxUploadChunk, that
// remembers why reading it failed: a chunk cut by the client is the
// client's fault (413, 408, 400), not the upstream key's.
type chunkBody struct {
	io.ReadCloser
	err error
}

func (b *chunkBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// limitChunk bounds the request body of an upload chunk; a declared length
// over the cap is refused before a byte is read.
func limitChunk(c *gin.Context, limit int64) (*chunkBody, *guard.BodyError) {
	if c.Request.ContentLength > limit {
		return nil, guard.ReadError(&http.MaxBytesError{Limit: limit}, limit)
	}
	b := &chunkBody{ReadCloser: http.MaxBytesReader(c.Writer, c.Request.Body, limit)}
	c.Request.Body = b
	return b, nil
}

func (h *handlers) maxChunk() int64 {
	if h.MaxUploadChunk > 0 {
		return h.MaxUploadChunk
	}
	return MaxUploadChunk
}

// clientFault is the client's share of a failed chunk forward, nil when the
// body was read whole.
func (b *chunkBody) clientFault(limit int64) *guard.BodyError {
	if b == nil || b.err == nil {
		return nil
	}
	return guard.ReadError(b.err, limit)
}

// writeResponse sends a relay answer (success or failure) as Gemini would.
func writeResponse(c *gin.Context, resp *relay.Response) {
	h := c.Writer.Header()
	ct := ""
	if resp.Header != nil && !resp.Local {
		ct = resp.Header.Get("Content-Type")
	}
	if ct == "" {
		ct = "application/json; charset=UTF-8"
	}
	h.Set("Content-Type", ct)
	if ra := resp.RetryAfterHeader(); ra != "" {
		h.Set("Retry-After", ra)
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	status := resp.Status
	if status == 499 {
		status = http.StatusRequestTimeout // client is gone; nobody reads this
	}
	c.Writer.WriteHeader(status)
	_, _ = c.Writer.Write(resp.Body)
}

// record returns the request event of c and names its route and model.
func record(c *gin.Context, route, model string) *events.Record {
	rec := events.From(c.Request.Context())
	rec.Route, rec.Model = route, model
	return rec
}
