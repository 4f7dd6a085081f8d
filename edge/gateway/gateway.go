// Package gateway assembles edge: the Gin HTTP surface (Gemini-native and
// OpenAI routes, /health, /healthz, /readyz; /metrics is on METRICS_ADDR), the request-event
// middleware, and the background workers (event publishing, the "edge"
// NATS micro service). The edge binary and the all-in-one both use it:
//
//	g, err := gateway.New(deps)
//	srv := &http.Server{Handler: g.Handler()}
//	go g.Run(ctx)
//
// In the all-in-one, the paths Public accepts go to edge and the rest to
// admind.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gemini-balance-go/edge/auth"
	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/edge/keydclient"
	"github.com/gemini-balance-go/edge/native"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
	"github.com/gemini-balance-go/shared/redact"
)

// Deps are what edge needs from its process.
type Deps struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Settings *natsx.Settings
	Infra    config.Infra
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Transport replaces the upstream transport (tests, benchmarks).
	Transport http.RoundTripper
	// Keys, when set, serves the relay's acquire and report in-process, in
	// place of the NATS round trip: the all-in-one passes the keyd running in
	// the same process. File bindings still go to keyd over NATS.
	Keys relay.Keys
}

// Gateway is one edge replica.
type Gateway struct {
	deps    Deps
	log     *slog.Logger
	engine  *gin.Engine
	Relay   *relay.Relay
	Keys    *keydclient.Client // file bindings; acquire and report too unless Deps.Keys
	keys    relay.Keys         // acquire and report
	Events  *events.Publisher
	Auth    *auth.Auth
	metrics requestMetrics
	// inflight counts admitted client requests (see limitConcurrency).
	inflight   atomic.Int64
	overloaded prometheus.Counter
}

// keydVia is keyd for the native routes: acquire and report through keys
// (in-process in the all-in-one), file bindings through the NATS client.
type keydVia struct {
	*keydclient.Client
	keys relay.Keys
}

func (k keydVia) Acquire(ctx context.Context, req bus.AcquireRequest) (bus.AcquireReply, error) {
	return k.keys.Acquire(ctx, req)
}

func (k keydVia) Report(r bus.Report) { k.keys.Report(r) }

// New builds the gateway and its routes. Nothing runs until Run.
func New(d Deps) (*Gateway, error) {
	if d.NC == nil || d.Settings == nil {
		return nil, fmt.Errorf("gateway: NATS connection and settings are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	wm, err := events.NewWatermillPublisher(d.NC)
	if err != nil {
		return nil, fmt.Errorf("gateway: event publisher: %w", err)
	}
	g := &Gateway{deps: d, log: d.Log}
	g.Keys = keydclient.New(d.NC, keydclient.Options{Logger: d.Log})
	g.keys = g.Keys
	if d.Keys != nil {
		g.keys = d.Keys
	}
	g.Events = events.New(wm, events.Options{Queue: d.Infra.EventQueue, Plain: d.Infra.EventCompression == "off",
		MaxBatchBytes: events.MaxBatchBytesFor(d.NC.MaxPayload()), Logger: d.Log, Registry: d.Registry})
	g.Relay = relay.New(relay.Options{Settings: d.Settings, Keys: g.keys, Errors: g.Events, Logger: d.Log, Transport: d.Transport})
	g.Auth = auth.New(d.Settings)
	// Every scrubber in the process (relay, events, logs) masks the client
	// tokens and the admin password literally, besides the key shapes.
	knownSecrets := func(s config.Settings) []string {
		return append(append([]string(nil), s.AllowedTokens...), s.AuthToken)
	}
	redact.Default.SetKnown(knownSecrets(*d.Settings.Get()))
	d.Settings.OnChange(func(next config.Settings) { redact.Default.SetKnown(knownSecrets(next)) })
	g.metrics.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gb_edge_requests_total", Help: "Client requests by route and status.",
	}, []string{"route", "code"})
	g.metrics.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gb_edge_request_seconds", Help: "Client request latency (whole stream for streams).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	}, []string{"route"})
	g.overloaded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gb_edge_overloaded_total", Help: "Client requests refused with 503 at MAX_CONCURRENT_REQUESTS.",
	})
	d.Registry.MustRegister(g.metrics.requests, g.metrics.latency, g.overloaded)
	g.engine = g.routes()
	return g, nil
}

// DrainGrace is how long open requests and streams may run on after the
// stop signal.
const DrainGrace = 30 * time.Second

// PublicPrefixes start every path of edge's client routes; /health is the
// one other path edge owns. The all-in-one routes by them (Public).
var PublicPrefixes = []string{"/v1beta/", "/v1/", "/hf/", "/openai/", "/gemini/", "/vertex-express/", "/upload/", "/download/"}

// Public reports whether path belongs to edge's public API (or /health)
// rather than to admind.
func Public(path string) bool {
	if path == "/health" {
		return true
	}
	for _, pre := range PublicPrefixes {
		if strings.HasPrefix(path, pre) {
			return true
		}
	}
	return false
}

// Handler is the HTTP surface; the all-in-one mounts it on its listener.
func (g *Gateway) Handler() http.Handler { return g.engine }

// Ready is nil while edge is connected to NATS (/readyz): without it, no key
// can be acquired.
func (g *Gateway) Ready(context.Context) error {
	if !g.deps.NC.IsConnected() {
		return fmt.Errorf("nats %s", g.deps.NC.Status())
	}
	return nil
}

// Run runs the background workers until ctx ends: the event publisher (which
// drains its queue on the way out), the watch on admind's client tokens, and
// the "edge" micro service that makes replicas visible to `nats micro ls` and
// admind's health page.
func (g *Gateway) Run(ctx context.Context) error {
	svc, err := micro.AddService(g.deps.NC, micro.Config{
		Name:        bus.ServiceEdge,
		Version:     "0.1.0",
		Description: "Gemini Balance edge: public API gateway",
		Metadata:    map[string]string{"replica": g.deps.Infra.Replica},
	})
	if err != nil {
		g.log.Warn("register edge micro service", "err", err)
	} else {
		defer func() { _ = svc.Stop() }()
	}
	js := g.deps.JS
	if js == nil {
		if js, err = jetstream.New(g.deps.NC); err != nil {
			return fmt.Errorf("gateway: jetstream: %w", err)
		}
	}
	g.Auth.Watch(ctx, js, g.log) // admind's client tokens, live
	return g.Events.Run(ctx)
}

// GeminiAuth is the client-token check with Gemini's error shape.
func (g *Gateway) GeminiAuth() gin.HandlerFunc {
	return g.AuthWith(func(c *gin.Context, status int, msg string) { relay.WriteError(c.Writer, status, msg) })
}

// AuthWith is the client-token check with a route family's own error writer
// (the OpenAI routes answer in OpenAI's shape). It also stamps the request
// event with the token id and hint.
func (g *Gateway) AuthWith(reject func(c *gin.Context, status int, msg string)) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := events.From(c.Request.Context())
		cl, ok, present := g.Auth.Authenticate(c.Request)
		if !ok {
			rec.Route = "auth.rejected"
			msg := "missing client token: pass it as ?key=, x-goog-api-key or Authorization: Bearer"
			if present {
				msg = "invalid client token"
			}
			reject(c, http.StatusUnauthorized, msg)
			c.Abort()
			return
		}
		rec.TokenID, rec.TokenHint = cl.TokenID, cl.TokenHint
		auth.Set(c, cl)
		c.Next()
	}
}

func (g *Gateway) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.Use(gin.CustomRecovery(func(c *gin.Context, err any) {
		g.log.Error("handler panic", "path", c.Request.URL.Path, "err", err)
		if !c.Writer.Written() {
			relay.WriteError(c.Writer, http.StatusInternalServerError, "internal error in the gateway")
		}
	}))
	e.Use(cors, g.limitConcurrency, g.recordRequest)

	e.GET("/health", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "healthy"}) })
	h := &obs.Health{Service: bus.ServiceEdge, Checks: []obs.Check{{Name: "nats", Check: g.Ready}}}
	e.GET("/healthz", gin.WrapF(h.Healthz))
	e.GET("/readyz", gin.WrapF(h.Readyz))

	native.Register(e, native.Deps{
		Relay: g.Relay, Keyd: keydVia{Client: g.Keys, keys: g.keys}, Settings: g.deps.Settings, Logger: g.log, Auth: g.GeminiAuth(),
		Authenticate: func(r *http.Request) (string, string, bool, bool) {
			cl, ok, present := g.Auth.Authenticate(r)
			return cl.TokenID, cl.TokenHint, ok, present
		},
	})
	g.mountOpenAI(e)
	g.mountMessages(e)
	e.NoRoute(func(c *gin.Context) {
		relay.WriteError(c.Writer, http.StatusNotFound, "no route for "+c.Request.Method+" "+c.Request.URL.Path)
	})
	return e
}

// recordRequest creates the request event, lets the handler fill it in, and
// publishes it (never blocking).
//
// golang/go#40747 (an HTTP/1 response cut while the request body is unread)
// cannot bite here: every handler reads the whole request body before it
// writes a byte, and an upload chunk is streamed upstream completely before
// the answer. Full duplex is not switched on: with Go 1.26.8, a full-duplex
// handler that returns without reading the body (a 401, say) on a keep-alive
// connection makes net/http panic with "invalid concurrent Body.Read call"
// when the next request arrives (seen in TestAllClientTokenForms...).
func (g *Gateway) recordRequest(c *gin.Context) {
	rec := events.NewRecord(c.Request.Method, c.Request.URL.Path, g.deps.Infra.Replica)
	req := c.Request
	rec.SetCallerTokens(func() []string { return auth.Tokens(req) })
	c.Request = c.Request.WithContext(events.WithRecord(c.Request.Context(), rec))
	c.Next()
	if rec.Route == "" {
		return // health, metrics, unknown paths
	}
	ev := rec.Finish(c.Writer.Status())
	g.metrics.observe(ev.Route, ev.Status, time.Since(rec.Start).Seconds())
	g.Events.Request(ev)
}

// cors answers browsers as gemini-balance does: any origin, common methods,
// any header.
func cors(c *gin.Context) {
	h := c.Writer.Header()
	if o := c.GetHeader("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Expose-Headers", "*")
		h.Add("Vary", "Origin")
	}
	if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		if rh := c.GetHeader("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", "600")
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Next()
}
