// Package obs sets up what every service exposes the same way: structured
// logs, /healthz and /readyz, and Prometheus /metrics on METRICS_ADDR.
package obs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gemini-balance-go/shared/redact"
)

// Level is the process-wide log level; SetLevel changes it live.
var Level = new(slog.LevelVar)

// NewLogger returns a JSON logger on w at the shared level, tagged with the service.
func NewLogger(w io.Writer, service string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewJSONHandler(w, HandlerOptions(Level))).With("svc", service)
}

// HandlerOptions are the options of every service's log handler: the level,
// and the redaction of every secret from messages and attributes (key
// shapes, client tokens registered with redact.Default), so no log line
// carries a full key or token whatever a caller passes.
func HandlerOptions(level slog.Leveler) *slog.HandlerOptions {
	return &slog.HandlerOptions{Level: level, ReplaceAttr: RedactAttr}
}

// RedactAttr masks secrets in a string, error or Stringer attribute.
func RedactAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); s != "" {
			if r := redact.Text(s); r != s {
				a.Value = slog.StringValue(r)
			}
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			a.Value = slog.StringValue(redact.Text(v.Error()))
		case fmt.Stringer:
			a.Value = slog.StringValue(redact.Text(v.String()))
		case []byte:
			a.Value = slog.StringValue(redact.Text(string(v)))
		}
	}
	return a
}

// SetLevel applies a gemini-balance LOG_LEVEL name (debug, info, warning, error, critical).
func SetLevel(name string) {
	switch strings.ToLower(name) {
	case "debug":
		Level.Set(slog.LevelDebug)
	case "warn", "warning":
		Level.Set(slog.LevelWarn)
	case "error", "critical":
		Level.Set(slog.LevelError)
	default:
		Level.Set(slog.LevelInfo)
	}
}

// Check is one readiness dependency.
type Check struct {
	Name  string
	Check func(context.Context) error
}

// Health serves liveness and readiness for a set of checks.
type Health struct {
	Service string
	Checks  []Check
}

// Healthz answers 200 while the process runs.
func (h *Health) Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok","service":"` + h.Service + `"}`))
}

// Readyz answers 200 when every check passes, 503 with the failures otherwise.
func (h *Health) Readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	res := map[string]string{}
	ok := true
	for _, c := range h.Checks {
		if err := c.Check(ctx); err != nil {
			res[c.Name] = err.Error()
			ok = false
		} else {
			res[c.Name] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"service": h.Service, "ready": ok, "checks": res})
}

// NewRegistry returns a Prometheus registry with Go and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// MetricsHandler serves a registry in the Prometheus text format.
func MetricsHandler(r *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{Registry: r})
}

// Mount adds /healthz and /readyz to a mux. /metrics is never on a
// service's own port (public on edge and admind): ListenMetrics serves it.
func Mount(mux *http.ServeMux, h *Health) {
	mux.HandleFunc("GET /healthz", h.Healthz)
	mux.HandleFunc("GET /readyz", h.Readyz)
}

// MetricsOff is the METRICS_ADDR value that serves no metrics.
const MetricsOff = "off"

// ListenMetrics serves h at /metrics on addr (METRICS_ADDR, loopback by
// default) until ctx ends, and returns the bound address; nil when addr is
// "off". A bind error is returned, naming the variable.
func ListenMetrics(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (net.Addr, error) {
	if addr == "" || addr == MetricsOff {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("config: METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "addr", addr, "err", err)
		}
	}()
	return ln.Addr(), nil
}
