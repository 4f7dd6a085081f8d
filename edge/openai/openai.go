// Package openai serves the OpenAI-compatible API. Under /v1 and /hf/v1 the
// requests are converted to Gemini (edge/convert) and sent through the same
// relay as the native routes, so failover, events and token accounting are
// shared; under /openai/v1 they are passed whole to the upstream's own
// OpenAI-compatible endpoint.
package openai

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/edge/files"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/guard"
	"github.com/gemini-balance-go/shared/natsx"
)

// Deps are the OpenAI routes' collaborators.
type Deps struct {
	Relay    *relay.Relay
	Settings *natsx.Settings
	Logger   *slog.Logger
	// Auth checks the client token; build it with the gateway's
	// AuthWith(WriteAuthError) so rejections come in OpenAI's shape.
	Auth gin.HandlerFunc
	// Fetcher downloads http(s) image URLs in chat messages; nil means
	// NewFetcher(FetcherOptions{}) (public addresses only, 20 MiB, 15 s).
	Fetcher convert.Fetcher
	// Registerer, when set, gets the gb_edge_openai_dropped_total counter.
	Registerer prometheus.Registerer
	// Now is the clock of "created" stamps (tests); nil means time.Now.
	Now func() time.Time
	// Files looks up uploaded files (keyd) for the file-ownership check of
	// chat and the passthrough; nil refuses every file reference under
	// FILES_USER_ISOLATION_ENABLED.
	Files files.Lookup
}

// MaxBody bounds a request body read into memory (inline media included).
const MaxBody = 64 << 20

type handlers struct {
	Deps
	log     *slog.Logger
	dropped *prometheus.CounterVec
}

// Register mounts the converted routes under /v1 and /hf/v1 and the
// passthrough under /openai/v1.
func Register(r gin.IRouter, d Deps) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Fetcher == nil {
		d.Fetcher = NewFetcher(FetcherOptions{})
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Auth == nil {
		d.Auth = func(c *gin.Context) { c.Next() }
	}
	h := &handlers{Deps: d, log: d.Logger}
	h.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gb_edge_openai_dropped_total",
		Help: "Parts of OpenAI requests Gemini cannot take, left out by the conversion, by field kind.",
	}, []string{"route", "field"})
	if d.Registerer != nil {
		if err := d.Registerer.Register(h.dropped); err != nil {
			h.log.Warn("register openai drop counter", "err", err)
		}
	}
	for _, prefix := range []string{"/v1", "/hf/v1"} {
		g := r.Group(prefix, d.Auth)
		g.POST("/chat/completions", h.chat)
		g.POST("/responses", h.responses)
		g.GET("/responses/:id", h.storedResponse)
		g.DELETE("/responses/:id", h.storedResponse)
		g.POST("/responses/:id/cancel", h.storedResponse)
		g.POST("/embeddings", h.embeddings)
		g.POST("/images/generations", h.images)
		g.POST("/audio/speech", h.speech)
		g.GET("/models", h.listModels)
		g.GET("/models/:id", h.getModel)
	}
	p := r.Group("/openai/v1", d.Auth)
	p.Any("/*path", h.passthrough)
}

// readBody reads the request body (at most MaxBody) and refuses JSON nested
// deeper than guard.MaxDepth before any parser sees it.
func readBody(c *gin.Context) ([]byte, bool) {
	body, berr := guard.ReadBody(c.Writer, c.Request, MaxBody)
	if berr != nil {
		code := "invalid_value"
		switch berr.Status {
		case http.StatusRequestEntityTooLarge:
			code = "request_too_large"
		case http.StatusRequestTimeout:
			code = "request_timeout"
		}
		WriteError(c, berr.Status, berr.Msg, "invalid_request_error", "", code)
		return nil, false
	}
	if err := guard.CheckJSON(body); guard.TooDeep(err) {
		WriteError(c, http.StatusBadRequest, "invalid request body: "+err.Error(), "invalid_request_error", "", "invalid_value")
		return nil, false
	}
	return body, true
}

// readJSON reads the body into v, answering 413 or 400 itself when it can't.
func readJSON(c *gin.Context, v any) bool {
	body, ok := readBody(c)
	if !ok {
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		WriteError(c, http.StatusBadRequest, "invalid JSON body: "+err.Error(), "invalid_request_error", "", "invalid_value")
		return false
	}
	return true
}

// record names the route and model of the request event.
func record(c *gin.Context, route, model string) *events.Record {
	rec := events.From(c.Request.Context())
	rec.Route, rec.Model = route, model
	return rec
}

// logDrops logs and counts what a conversion left out.
func (h *handlers) logDrops(route string, drops []convert.Drop) {
	for _, d := range drops {
		h.log.Info("openai conversion dropped a field", "route", route, "field", d.Field, "reason", d.Reason)
		h.dropped.WithLabelValues(route, fieldKind(d.Field)).Inc()
	}
}

// fieldKind keeps metric labels bounded: "tools[3].function.parameters.x.y"
// becomes "tools.function.parameters".
func fieldKind(field string) string {
	out := make([]byte, 0, len(field))
	depth := 0
	for i := 0; i < len(field); i++ {
		ch := field[i]
		switch {
		case ch == '[':
			for i < len(field) && field[i] != ']' {
				i++
			}
		case ch == '.':
			depth++
			if depth >= 3 {
				return string(out)
			}
			out = append(out, ch)
		default:
			out = append(out, ch)
		}
	}
	return string(out)
}

// checkFiles is the one file-ownership check (edge/files) in OpenAI's error
// shape: it answers the refusal itself, or returns the key to pin the
// request to (the one that uploaded the referenced files).
func (h *handlers) checkFiles(c *gin.Context, body []byte, tokenID string) (pin string, ok bool) {
	st := h.Settings.Get()
	pin, deny := files.Check(c.Request.Context(), h.Files, body, files.Options{TokenID: tokenID, Isolation: st.FilesUserIsolation, BaseURL: st.BaseURL})
	if deny != nil {
		typ, code := "invalid_request_error", "invalid_value"
		switch deny.Status {
		case http.StatusForbidden:
			typ, code = "permission_error", "permission_denied"
		case http.StatusServiceUnavailable:
			typ, code = "server_error", ""
		}
		WriteError(c, deny.Status, deny.Message, typ, "", code)
		return "", false
	}
	return pin, true
}
