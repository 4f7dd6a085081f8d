// Package boot is what every service binary does before its own wiring: read
// the environment, connect to NATS (and MongoDB where the service owns
// collections), provision the bus, follow the live settings, serve /metrics
// on METRICS_ADDR, and offer /healthz /readyz for the service's port. Main
// does all of it around the one thing a main.go says: how its service is
// wired (a Build):
//
//	func main() {
//		boot.Main(bus.ServiceLogd, func(ctx context.Context, p *boot.Process) (boot.Service, error) {
//			db, err := p.ConnectMongo(ctx)
//			...
//			return service.New(service.Deps{NC: p.NC, JS: p.JS, DB: db, Log: p.Log, ...})
//		})
//	}
package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/guard"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
	"github.com/gemini-balance-go/shared/seal"
)

// Process holds what a started service process has.
type Process struct {
	Service  string
	Infra    config.Infra
	Env      config.Settings // the environment's settings: the first-start seed
	Log      *slog.Logger
	NC       *nats.Conn
	JS       jetstream.JetStream
	Settings *natsx.Settings // live: the stored document once admind published one
	Registry *prometheus.Registry
	Mongo    *mongo.Client // nil unless ConnectMongo was called
	// Drain is how long open requests may run on after the stop signal
	// (Run, Serve); a Build may raise it (edge's streams).
	Drain time.Duration
}

// Start reads the environment, connects to NATS, provisions the streams and
// bucket, and starts following the settings bucket. LOG_LEVEL applies live.
// A bad environment value fails with the variable's name.
func Start(ctx context.Context, service string) (*Process, error) {
	infra, err := config.LoadInfra()
	if err != nil {
		return nil, err
	}
	env, err := config.LoadSettings()
	if err != nil {
		return nil, err
	}
	log := obs.NewLogger(os.Stderr, service)
	obs.SetLevel(env.LogLevel)
	// gemini-balance's own variables this gateway does not read, by name.
	for _, u := range config.Unsupported(os.LookupEnv) {
		log.Warn("not supported, ignored: " + u)
	}
	p := &Process{Service: service, Infra: infra, Env: env, Log: log, Registry: obs.NewRegistry(), Drain: DefaultDrain}
	p.NC, err = natsx.Connect(natsx.Options{URL: infra.NATSURL, Name: service + "-" + infra.Replica,
		User: infra.NATSUser, Password: infra.NATSPassword, Token: infra.NATSToken, Creds: infra.NATSCreds,
		InboxPrefix: natsx.InboxPrefix(service), Logger: log})
	if err != nil {
		return nil, err
	}
	if p.JS, err = jetstream.New(p.NC); err != nil {
		p.NC.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := natsx.ProvisionForWithRetry(ctx, p.JS, service, infra.JetStreamReplicas); err != nil {
		p.NC.Close()
		return nil, err
	}
	p.Settings = natsx.NewSettings(env)
	p.Settings.UseBox(seal.New(infra.EncryptionKey), log)
	if infra.EncryptionKey == "" && service == "edge" {
		log.Warn("ENCRYPTION_KEY is not set: proxies with credentials, which admind seals, cannot be opened here; set the ENCRYPTION_KEY admind uses")
	}
	p.Settings.OnChange(func(s config.Settings) { obs.SetLevel(s.LogLevel) })
	if stored, ok, err := natsx.FetchSettings(ctx, p.JS); err == nil && ok {
		p.Settings.Set(stored)
	}
	if err := natsx.Retry(ctx, func() error { return p.Settings.Watch(ctx, p.JS, log) }); err != nil {
		p.NC.Close()
		return nil, err
	}
	addr, err := obs.ListenMetrics(ctx, infra.MetricsAddr, obs.MetricsHandler(p.Registry), log)
	if err != nil {
		p.NC.Close()
		return nil, err
	}
	if addr != nil {
		log.Info("metrics", "addr", addr.String())
	}
	return p, nil
}

// DefaultDrain is Process.Drain unless a Build changes it.
const DefaultDrain = 10 * time.Second

// ConnectMongo connects to MONGO_URI, which a service that owns collections
// requires.
func (p *Process) ConnectMongo(ctx context.Context) (*mongo.Database, error) {
	if p.Infra.MongoURI == "" {
		return nil, fmt.Errorf("config: MONGO_URI: %s needs MongoDB", p.Service)
	}
	cl, err := mongox.Connect(ctx, p.Infra.MongoURI, p.Service)
	if err != nil {
		return nil, err
	}
	p.Mongo = cl
	return cl.Database(p.Infra.MongoDB), nil
}

// Checks are the readiness checks of the process's connections: NATS, and
// MongoDB when connected.
func (p *Process) Checks() []obs.Check {
	checks := []obs.Check{{Name: "nats", Check: func(context.Context) error {
		if !p.NC.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	}}}
	if p.Mongo != nil {
		checks = append(checks, obs.Check{Name: "mongo", Check: func(ctx context.Context) error { return mongox.Ping(ctx, p.Mongo) }})
	}
	return checks
}

// HealthMux serves /healthz and /readyz (the process's checks plus extra);
// /metrics is on METRICS_ADDR (started by Start).
func (p *Process) HealthMux(extra ...obs.Check) *http.ServeMux {
	mux := http.NewServeMux()
	obs.Mount(mux, &obs.Health{Service: p.Service, Checks: append(p.Checks(), extra...)})
	return mux
}

// Serve serves h on PORT until ctx ends, then shuts down, giving open
// requests (streams included) up to grace to finish. It returns when the
// server has stopped.
func (p *Process) Serve(ctx context.Context, h http.Handler, grace time.Duration) error {
	srv := guard.Server(h) // header, idle and body-stall timeouts
	srv.Addr = ":" + strconv.Itoa(p.Infra.Port)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	p.Log.Info("listening", "port", p.Infra.Port)
	err := srv.ListenAndServe()
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return fmt.Errorf("serve :%d: %w", p.Infra.Port, err)
}

// Close drains NATS and disconnects MongoDB.
func (p *Process) Close() {
	_ = p.NC.Drain()
	if p.Mongo != nil {
		_ = p.Mongo.Disconnect(context.Background())
	}
}
