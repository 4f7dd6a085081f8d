// Package app is the all-in-one Gemini Balance: an embedded NATS server
// (JetStream), an embedded FerretDB on SQLite unless MONGO_URI is set, and
// all five services in one process, with the public API and the admin on
// one HTTP listener.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/admind/discovery"
	admind "github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/deployments/embedded/ferret"
	"github.com/gemini-balance-go/deployments/embedded/natsd"
	"github.com/gemini-balance-go/edge/gateway"
	keyd "github.com/gemini-balance-go/keyd/service"
	"github.com/gemini-balance-go/logd/ingest"
	"github.com/gemini-balance-go/logd/logstore"
	logd "github.com/gemini-balance-go/logd/service"
	"github.com/gemini-balance-go/schedulerd/ticks"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/guard"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
	"github.com/gemini-balance-go/shared/seal"
)

// Options configure the all-in-one; main fills them from the environment.
type Options struct {
	Infra config.Infra
	// Settings seed the settings document on first start (the environment).
	Settings config.Settings
	// Listener, when set, replaces listening on Infra.Port (tests).
	Listener net.Listener
	// LogOutput receives every service's JSON log lines (default stderr).
	LogOutput io.Writer
	// Transport, when set, replaces edge's upstream transport.
	Transport http.RoundTripper
}

// App is a running all-in-one.
type App struct {
	// URL is the HTTP base URL, NATSURL the embedded server's client URL
	// (NATS_LISTEN), MongoURI the store's URI.
	URL, NATSURL, MongoURI string
	// MetricsURL is where /metrics is served (METRICS_ADDR); empty when off.
	MetricsURL string
	// TapURL and OperatorURL carry the embedded NATS server's generated
	// credentials of the read-only tap (gb.events.>) and of the operator
	// (everything); empty with NATS_URL or without a NATS listener. They are
	// also in DATA_DIR/nats-tap.url and DATA_DIR/nats-operator.url (0600).
	TapURL, OperatorURL string
	// Mongo is the process's MongoDB client.
	Mongo *mongo.Client

	log      *slog.Logger
	http     *http.Server
	cancel   context.CancelFunc // stops the services
	wg       sync.WaitGroup     // service goroutines
	conns    []*nats.Conn
	nats     *natsd.Server
	store    *ferret.Store
	failed   chan error // first service failure
	stopOnce sync.Once
	stopErr  error
}

// Start brings everything up and returns once the HTTP listener serves.
// On error, whatever was started is stopped again.
func Start(ctx context.Context, o Options) (_ *App, err error) {
	if o.LogOutput == nil {
		o.LogOutput = os.Stderr
	}
	base := slog.New(slog.NewJSONHandler(o.LogOutput, obs.HandlerOptions(obs.Level)))
	logFor := func(svc string) *slog.Logger { return base.With("svc", svc) }
	a := &App{log: logFor("gemini-balance"), failed: make(chan error, 8)}
	defer func() {
		if err != nil {
			a.teardown()
		}
	}()
	obs.SetLevel(o.Settings.LogLevel)
	in := o.Infra

	dataDir, err := filepath.Abs(in.DataDir)
	if err != nil {
		return nil, fmt.Errorf("config: DATA_DIR: %w", err)
	}
	if err := privateDir(dataDir); err != nil {
		return nil, fmt.Errorf("config: DATA_DIR: %w", err)
	}

	// The bus: embedded unless NATS_URL points elsewhere.
	connOpts := natsx.Options{URL: in.NATSURL, User: in.NATSUser, Password: in.NATSPassword, Token: in.NATSToken, Creds: in.NATSCreds}
	if in.NATSURL == "" {
		// Fresh credentials on every start: the services' never leave the
		// process; the tap's and the operator's go to 0600 files in DATA_DIR
		// for the owner's `nats` CLI. No other local user can use the port.
		creds := newBusCreds()
		listen := in.NATSListen
		a.nats, err = natsd.Start(natsd.Options{StoreDir: filepath.Join(dataDir, "nats"), Listen: listen,
			NoListen: listen == "" || listen == "off", ServerName: "gemini-balance", Configure: creds.configure})
		if err != nil {
			return nil, fmt.Errorf("embedded nats (NATS_LISTEN=%s): %w", in.NATSListen, err)
		}
		a.NATSURL = a.nats.URL
		connOpts.InProcess = a.nats.Server // services talk in-process; NATS_LISTEN is for taps
		connOpts.User, connOpts.Password, connOpts.Token, connOpts.Creds = busServicesUser, creds.services, "", ""
		_ = os.Remove(filepath.Join(dataDir, TapURLFile)) // a previous start's, stale either way
		_ = os.Remove(filepath.Join(dataDir, OperatorURLFile))
		if a.NATSURL != "" {
			a.TapURL, a.OperatorURL = creds.url(a.NATSURL, busTapUser, creds.tap), creds.url(a.NATSURL, busOperatorUser, creds.operator)
			if err := writePrivate(filepath.Join(dataDir, TapURLFile), a.TapURL+"\n"); err != nil {
				return nil, err
			}
			if err := writePrivate(filepath.Join(dataDir, OperatorURLFile), a.OperatorURL+"\n"); err != nil {
				return nil, err
			}
		}
	}
	connect := func(svc string) (*nats.Conn, error) {
		co := connOpts
		co.Name, co.Logger = svc+"-"+in.Replica, logFor(svc)
		nc, err := natsx.Connect(co)
		if err == nil {
			a.conns = append(a.conns, nc)
		}
		return nc, err
	}

	// The store: embedded FerretDB on SQLite unless MONGO_URI is set.
	a.MongoURI = in.MongoURI
	if a.MongoURI == "" {
		// FerretDB is chatty below Error; its errors join the other JSON logs.
		storeLog := slog.New(slog.NewJSONHandler(o.LogOutput, obs.HandlerOptions(slog.LevelError))).With("svc", "store")
		// On a Unix socket inside the 0700 DATA_DIR: FerretDB on SQLite has
		// no authentication, so no TCP port another local user could reach.
		a.store, err = ferret.Start(context.Background(), ferret.Options{DataDir: filepath.Join(dataDir, "store"),
			Unix: filepath.Join(dataDir, "store.sock"), Logger: storeLog, NoIDIndex: logstore.InsertOnly})
		if err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
		a.MongoURI = a.store.URI
	}
	a.Mongo, err = mongox.Connect(ctx, a.MongoURI, "gemini-balance")
	if err != nil {
		return nil, err
	}
	db := a.Mongo.Database(in.MongoDB)

	conns := map[string]*nats.Conn{}
	for _, svc := range bus.AllServices {
		if conns[svc], err = connect(svc); err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(conns[bus.ServiceAdmind])
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	replicas := in.JetStreamReplicas
	if in.NATSURL == "" {
		replicas = 1 // the embedded server is a single node
	}
	if err := natsx.ProvisionWithRetry(ctx, js, replicas); err != nil {
		return nil, err
	}

	// One live settings object for the process: the stored document if the
	// bus has one (a restart), the environment otherwise.
	live := natsx.NewSettings(o.Settings)
	live.UseBox(seal.New(in.EncryptionKey), logFor("settings"))
	if cur, ok, err := natsx.FetchSettings(ctx, js); err == nil && ok {
		live.Set(cur)
	}

	// Metrics: one registry per service so their names never collide, one endpoint.
	regs := map[string]*prometheus.Registry{}
	gatherers := prometheus.Gatherers{obs.NewRegistry()}
	for _, svc := range bus.AllServices {
		regs[svc] = prometheus.NewRegistry()
		gatherers = append(gatherers, regs[svc])
	}

	// One process view per service: its own connection, logger and metrics
	// registry; the store, the live settings and the environment are shared.
	procFor := func(svc string) *boot.Process {
		j, _ := jetstream.New(conns[svc])
		return &boot.Process{Service: svc, Infra: in, Env: o.Settings, Log: logFor(svc), NC: conns[svc], JS: j,
			Settings: live, Registry: regs[svc], Mongo: a.Mongo}
	}
	// The services, wired as their binaries' mains do. All are built before
	// the settings watch starts: edge and admind register change callbacks.
	var edge *gateway.Gateway
	var admin *admind.Server
	var keys *keyd.Service
	services := []struct {
		name  string
		build boot.Build
	}{
		{bus.ServiceAdmind, func(_ context.Context, p *boot.Process) (_ boot.Service, err error) {
			admin, err = admind.New(admind.Deps{NC: p.NC, DB: db, Settings: p.Settings, Seed: &p.Env, Log: p.Log, Replica: p.Infra.Replica,
				EncryptionKey: p.Infra.EncryptionKey, TrustedProxies: p.Infra.TrustedProxies,
				Health: &obs.Health{Service: "gemini-balance", Checks: p.Checks()}})
			return admin, err
		}},
		{bus.ServiceKeyd, func(ctx context.Context, p *boot.Process) (_ boot.Service, err error) {
			keys, err = keyd.New(ctx, keyd.Deps{NC: p.NC, JS: p.JS, DB: db, Settings: p.Settings, Seed: &p.Env, Infra: p.Infra, Log: p.Log, Registry: p.Registry})
			return keys, err
		}},
		{bus.ServiceLogd, func(_ context.Context, p *boot.Process) (boot.Service, error) {
			return logd.New(logd.Deps{NC: p.NC, JS: p.JS, DB: db, Settings: p.Settings, Infra: p.Infra, Log: p.Log, Registry: p.Registry,
				Ingest: ingestOptions})
		}},
		{bus.ServiceSchedulerd, func(_ context.Context, p *boot.Process) (boot.Service, error) {
			return ticks.New(ticks.Deps{NC: p.NC, Settings: p.Settings, Log: p.Log, Registry: p.Registry, Interval: p.Infra.TickInterval, Replica: p.Infra.Replica})
		}},
		{bus.ServiceEdge, func(_ context.Context, p *boot.Process) (_ boot.Service, err error) {
			edge, err = gateway.New(gateway.Deps{NC: p.NC, JS: p.JS, Settings: p.Settings, Infra: p.Infra, Log: p.Log, Registry: p.Registry, Transport: o.Transport,
				Keys: localKeys{keys}})
			return edge, err
		}},
	}
	built := make([]boot.Service, len(services))
	for i, s := range services {
		if built[i], err = s.build(ctx, procFor(s.name)); err != nil {
			return nil, err
		}
	}
	live.OnChange(func(s config.Settings) { obs.SetLevel(s.LogLevel) })

	svcCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	// Metrics never share the public port (METRICS_ADDR, loopback by default).
	maddr, err := obs.ListenMetrics(svcCtx, in.MetricsAddr, promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}), a.log)
	if err != nil {
		return nil, err
	}
	if maddr != nil {
		a.MetricsURL = "http://" + loopback(maddr) + "/metrics"
	}
	if err := live.Watch(svcCtx, js, logFor("settings")); err != nil {
		return nil, err
	}
	for i, s := range services {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := built[i].Run(svcCtx); err != nil && svcCtx.Err() == nil {
				a.failed <- fmt.Errorf("%s: %w", s.name, err)
			} else if svcCtx.Err() == nil {
				a.failed <- fmt.Errorf("%s stopped unexpectedly", s.name)
			}
		}()
	}

	// Open the port only once every service answers on the bus, so the
	// first request does not race keyd's start.
	if err := waitForServices(ctx, conns[bus.ServiceAdmind]); err != nil {
		return nil, err
	}
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", ":"+strconv.Itoa(in.Port)); err != nil {
			return nil, fmt.Errorf("config: PORT: %w", err)
		}
	}
	a.URL = "http://" + loopback(ln.Addr())
	a.http = guard.Server(Route(edge.Handler(), admin.Handler())) // header, idle and body-stall timeouts
	a.http.RegisterOnShutdown(admin.CloseStreams)                 // Shutdown waits for open live streams otherwise
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.failed <- fmt.Errorf("http: %w", err)
		}
	}()
	a.log.Info("gemini-balance running", "url", a.URL, "nats", a.NATSURL, "data_dir", dataDir, "embedded_store", a.store != nil)
	return a, nil
}

func waitForServices(ctx context.Context, nc *nats.Conn) error {
	for {
		rep, err := discovery.Ping(ctx, nc, bus.AllServices, 100*time.Millisecond)
		if err == nil && rep.Status == "ok" {
			return nil
		}
		select {
		case <-ctx.Done():
			var down []string
			for _, s := range rep.Services {
				if s.Replicas == 0 {
					down = append(down, s.Name)
				}
			}
			return fmt.Errorf("services not up (see their logs): %s: %w", strings.Join(down, ", "), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Route sends the public API (gateway.Public) to edge, the rest to admind.
func Route(edge, admin http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gateway.Public(r.URL.Path) {
			edge.ServeHTTP(w, r)
			return
		}
		admin.ServeHTTP(w, r)
	})
}

// Failed delivers the first service failure; the caller should then Stop.
func (a *App) Failed() <-chan error { return a.failed }

// Stop drains in order: HTTP first (open streams may finish, services still
// answer them), then the services (edge flushes its event queue, keyd its
// state), then the connections, the store and NATS last.
func (a *App) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() {
		if a.http != nil {
			if err := a.http.Shutdown(ctx); err != nil {
				a.stopErr = fmt.Errorf("http shutdown: %w", err)
			}
		}
		a.teardown()
	})
	return a.stopErr
}

func (a *App) teardown() {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	for _, nc := range a.conns {
		_ = nc.Drain()
	}
	for _, nc := range a.conns {
		for nc.IsDraining() {
			time.Sleep(10 * time.Millisecond)
		}
		nc.Close()
	}
	if a.Mongo != nil {
		_ = a.Mongo.Disconnect(context.Background())
	}
	if a.store != nil {
		a.store.Stop()
	}
	if a.nats != nil {
		a.nats.Shutdown()
	}
	a.log.Info("gemini-balance stopped")
}

// loopback turns a wildcard listen address into one a local client can dial.
func loopback(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// ingestOptions keep fewer event messages in flight to logd than its
// default (256 request and 128 error messages, each a subscription with two
// goroutines whose stacks every GC cycle scans). Edge batches events into
// messages of up to bus.MaxBatchEvents under load, so 64 messages keep
// logd's writers fed; at low traffic a smaller batch costs nothing.
//
// Two log writers instead of four: the embedded store is one SQLite file,
// which takes one write at a time, so more concurrent inserts only wait
// inside FerretDB. Measured side by side (5 reps), two writers served more
// requests at a lower p99 and less CPU per request in every rep.
var ingestOptions = ingest.Options{RequestMessages: 64, ErrorMessages: 32, Writers: 2}
