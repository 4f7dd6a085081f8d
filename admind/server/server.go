// Package server runs admind: it owns the settings document (seeded from the
// environment on first start, mirrored to the KV bucket), serves the admin
// API behind AUTH_TOKEN, and reports the health of every service.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/admind/auth"
	"github.com/gemini-balance-go/admind/busclient"
	"github.com/gemini-balance-go/admind/settings"
	"github.com/gemini-balance-go/admind/tokens"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
	"github.com/gemini-balance-go/shared/seal"
)

// Deps are what admind needs. NC, DB and Settings are required.
type Deps struct {
	NC *nats.Conn
	DB *mongo.Database
	// Settings are the live settings of this process; admind updates them on save.
	Settings *natsx.Settings
	// Seed is written as the settings document when none exists (the
	// environment on first start). Defaults to Settings.Get().
	Seed    *config.Settings
	Log     *slog.Logger
	Replica string
	// Health, when set, is served at /healthz and /readyz. /metrics is never
	// on the public port: boot serves it on METRICS_ADDR.
	Health *obs.Health
	// PingWindow is how long GET /api/health gathers replica answers (default 300ms).
	PingWindow time.Duration
	// EncryptionKey seals proxy credentials in the settings document; empty
	// refuses them and makes GET /api/health warn.
	EncryptionKey string
	// TrustedProxies may set X-Forwarded-For and X-Forwarded-Proto (CIDRs).
	TrustedProxies []string
}

// Server is admind.
type Server struct {
	d      Deps
	js     jetstream.JetStream
	store  *settings.Store
	tokens *tokens.Store
	auth   *auth.Auth
	box    *seal.Box
	keyd   *busclient.Client
	router *gin.Engine
	// liveHub feeds GET /api/live from NATS.
	liveHub *liveHub
	// logd answers token usage for the token list.
	logd *busclient.Client
	// started is set once the settings and client tokens are published and
	// the micro service answers (Ready).
	started atomic.Bool
}

// New checks deps and builds the HTTP routes. It does no I/O; Run does.
func New(d Deps) (*Server, error) {
	if d.NC == nil || d.DB == nil || d.Settings == nil {
		return nil, errors.New("admind: NC, DB and Settings are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.PingWindow <= 0 {
		d.PingWindow = 300 * time.Millisecond
	}
	js, err := jetstream.New(d.NC)
	if err != nil {
		return nil, fmt.Errorf("admind: jetstream: %w", err)
	}
	trusted, err := config.ParseTrustedProxies(d.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("admind: %w", err)
	}
	s := &Server{d: d, js: js, store: settings.NewStore(d.DB, js, d.Settings), tokens: tokens.NewStore(d.DB, js),
		box: seal.New(d.EncryptionKey), keyd: busclient.New(d.NC, bus.ServiceKeyd, backendTimeout), liveHub: newLiveHub(d.NC, d.Log),
		logd: busclient.New(d.NC, bus.ServiceLogd, backendTimeout)}
	s.store.Box = s.box
	s.auth = auth.New(auth.NewStore(d.DB), auth.NewLimiter(d.DB),
		func() time.Duration { return time.Duration(d.Settings.Get().AdminSessionExpire) * time.Second },
		auth.Network{Trusted: trusted}, d.Log)
	s.router = s.routes()
	return s, nil
}

// Handler serves the admin API (and health endpoints when configured).
func (s *Server) Handler() http.Handler { return s.router }

// CloseStreams ends the open live streams (GET /api/live) and refuses new
// ones. A host whose http.Server shuts down before Run ends (the all-in-one)
// registers it with RegisterOnShutdown, since Shutdown waits for open
// streams; Run calls it when it ends.
func (s *Server) CloseStreams() { s.liveHub.close() }

// Ready is nil once Run has published the settings and client tokens and
// registered the micro service. The admin binary opens its port only then,
// so no request (a first-run setup, say) comes before AUTH_TOKEN is applied.
func (s *Server) Ready(context.Context) error {
	if !s.started.Load() {
		return errors.New("admind is starting")
	}
	return nil
}

// Run bootstraps the settings document and registers the "admind" micro
// service; it returns when ctx ends. Handler serves the HTTP side.
func (s *Server) Run(ctx context.Context) error {
	defer s.CloseStreams()
	seed := *s.d.Settings.Get()
	if s.d.Seed != nil {
		seed = *s.d.Seed
	}
	if !s.box.Enabled() {
		s.d.Log.Warn(NoEncryptionWarning)
	}
	if err := s.bootstrap(ctx, seed); err != nil {
		if ctx.Err() != nil {
			return nil // stopped during start-up: not a failure
		}
		return err
	}
	svc, err := micro.AddService(s.d.NC, micro.Config{
		Name: bus.ServiceAdmind, Version: "1.0.0", Description: "settings, auth and admin API",
		Metadata: map[string]string{"replica": s.d.Replica},
	})
	if err != nil {
		return fmt.Errorf("admind: register micro service: %w", err)
	}
	defer func() { _ = svc.Stop() }()
	s.started.Store(true)
	<-ctx.Done()
	return nil
}

// bootstrap publishes the stored settings and client tokens, retrying until
// MongoDB and NATS answer, so admind may start first.
func (s *Server) bootstrap(ctx context.Context, seed config.Settings) error {
	backoff := 200 * time.Millisecond
	settingsDone := false
	for {
		err := func() error {
			if !settingsDone {
				if err := s.auth.Limiter.EnsureIndexes(ctx); err != nil {
					return err
				}
				_, err := s.store.Bootstrap(ctx, seed, func(pw string) error {
					// The environment's (or an older document's) AUTH_TOKEN
					// becomes the admin hash unless an admin exists already.
					if _, err := s.auth.Setup(ctx, pw); err != nil && !errors.Is(err, auth.ErrAdminExists) {
						return err
					}
					return nil
				})
				if err != nil {
					return err
				}
				settingsDone = true
				configured, _ := s.auth.Configured(ctx)
				s.d.Log.Info("settings published", "admin_configured", configured)
			}
			n, err := s.tokens.Sync(ctx)
			if err != nil {
				return err
			}
			s.d.Log.Info("client tokens published", "tokens", n)
			return nil
		}()
		if err == nil {
			return nil
		}
		if errors.Is(err, settings.ErrInvalid) {
			return fmt.Errorf("admind: settings: %w", err) // retrying cannot fix the configuration
		}
		s.d.Log.Warn("publishing settings and client tokens failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("admind: publish settings and client tokens: %w", errors.Join(err, ctx.Err()))
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
