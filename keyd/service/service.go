// Package service runs keyd: it loads the pool from MongoDB, serves the
// endpoints, keeps replicas in sync (sync.go), persists changes in batches
// and recovers keys on schedulerd's ticks. keyd's main and the all-in-one
// build it with New and run it with Run.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/keyd/endpoints"
	"github.com/gemini-balance-go/keyd/keystore"
	"github.com/gemini-balance-go/keyd/pool"
	"github.com/gemini-balance-go/keyd/recovery"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/natsx"
)

// Deps is everything keyd needs from its process.
type Deps struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	DB       *mongo.Database
	Settings *natsx.Settings
	// Seed holds the keys to import on first start: the environment's
	// API_KEYS, VERTEX_API_KEYS and PAID_KEY (admind's settings document
	// never carries keys). Nil means Settings.
	Seed     *config.Settings
	Infra    config.Infra
	Log      *slog.Logger
	Registry *prometheus.Registry // optional
	// HTTPClient makes verify calls upstream; nil means a client with TIME_OUT.
	HTTPClient *http.Client
	// FlushEvery is the period of the batched state writer (200 ms when zero).
	FlushEvery time.Duration
	// beforeLoad, when set (tests), runs between the sync subscription and
	// the pool load.
	beforeLoad func(*Service)
}

// Service is one running keyd replica.
type Service struct {
	d      Deps
	log    *slog.Logger
	pool   *pool.Pool
	store  *keystore.Store
	verify *recovery.Verifier
	// models caches the upstream model list (Models).
	modelsMu sync.Mutex
	models   keyapi.ModelsReply
	instance string
	metrics  *metrics
	added    *pendingKeys // key ids another replica added or updated, loaded in batches
	fwd      forwarder    // reports on their way to the other replicas
	bg       sync.WaitGroup
	serving  atomic.Bool
	// Replica sync is subscribed before the pool loads, so a change another
	// replica makes while this one reads MongoDB is not missed: until the
	// load is done, sync messages wait in syncBuf and are replayed after it.
	syncSub   *nats.Subscription
	syncMu    sync.Mutex
	syncBuf   []*nats.Msg
	buffering atomic.Bool
	// seen is the settings the pool was built from; followSettings applies
	// whatever is saved after it.
	seen *config.Settings
}

// New opens the store (refusing a missing or wrong ENCRYPTION_KEY), imports
// the configured keys on first start and loads the pool.
func New(ctx context.Context, d Deps) (*Service, error) {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.FlushEvery <= 0 {
		d.FlushEvery = 200 * time.Millisecond
	}
	log := d.Log
	store, err := keystore.Open(ctx, d.DB, d.Infra.EncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("keyd: %w", err)
	}
	settings := d.Settings.Get()
	client := d.HTTPClient
	if client == nil {
		client = recovery.NewClient(time.Duration(max(1, settings.TimeOut)) * time.Second)
	}
	s := &Service{
		d: d, log: log, store: store,
		pool:     pool.New(pool.PolicyFrom(*settings), time.Now),
		verify:   &recovery.Verifier{Client: client, Settings: d.Settings.Get},
		instance: nuid.Next(),
		metrics:  newMetrics(d.Registry),
		added:    newPendingKeys(1 << 16),
		seen:     settings,
	}
	if d.Infra.EncryptionKey == "" {
		log.Warn("ENCRYPTION_KEY is not set: API keys are stored in MongoDB in clear; set ENCRYPTION_KEY (a long random passphrase) to encrypt them")
	}
	seed := settings
	if d.Seed != nil {
		seed = d.Seed
	}
	if err := s.seed(ctx, seed); err != nil {
		return nil, err
	}
	if err := s.subscribeSync(); err != nil {
		return nil, err
	}
	keys, err := s.load(ctx)
	if err != nil {
		_ = s.syncSub.Unsubscribe()
		return nil, err
	}
	s.metrics.watchPool(s.pool)
	log.Info("key pool loaded", "keys", len(keys), "encrypted", store.Encrypted(), "replica", d.Infra.Replica)
	return s, nil
}

// seed imports API_KEYS, VERTEX_API_KEYS and PAID_KEY once, on first start.
// After that keys are managed through the admin endpoints.
func (s *Service) seed(ctx context.Context, st *config.Settings) error {
	done, err := s.store.Seeded(ctx)
	if err != nil || done {
		return err
	}
	keys := ConfiguredKeys(st, time.Now().UTC())
	ins, err := s.store.Insert(ctx, keys)
	if err != nil {
		return fmt.Errorf("keyd: import configured keys: %w", err)
	}
	if err := s.store.MarkSeeded(ctx); err != nil {
		return err
	}
	s.log.Info("imported configured keys", "configured", len(keys), "imported", len(ins))
	return nil
}

// ConfiguredKeys lists the keys of the settings, de-duplicated (keyd seeds
// them on first start, the importer brings them over); a secret
// listed twice keeps its first kind.
func ConfiguredKeys(st *config.Settings, now time.Time) []pool.Key {
	seen := map[string]bool{}
	var out []pool.Key
	add := func(secret, kind string) {
		k := pool.NewKey(secret, kind, now)
		if k.Secret == "" || seen[k.ID] {
			return
		}
		seen[k.ID] = true
		out = append(out, k)
	}
	for _, sec := range st.APIKeys {
		add(sec, bus.KindGemini)
	}
	for _, sec := range st.VertexAPIKeys {
		add(sec, bus.KindVertex)
	}
	add(st.PaidKey, bus.KindPaid)
	return out
}

// Ready reports whether the replica answers on NATS, for /readyz.
func (s *Service) Ready(context.Context) error {
	if !s.serving.Load() {
		return errors.New("keyd is not serving yet")
	}
	return nil
}

// Pool exposes the in-memory pool (for benchmarks and tests in this module).
func (s *Service) Pool() *pool.Pool { return s.pool }

// Run registers the endpoints, starts the batched writer, the recover-tick
// consumer and the settings follower, and blocks until ctx ends; then it
// stops answering and flushes pending state.
func (s *Service) Run(ctx context.Context) error {
	defer func() { _ = s.syncSub.Unsubscribe() }()
	svc, err := endpoints.Register(ctx, s.d.NC, s, endpoints.Options{Replica: s.d.Infra.Replica})
	if err != nil {
		return fmt.Errorf("keyd: register micro service: %w", err)
	}
	if err := recovery.ConsumeTicks(ctx, s.d.NC, s.log, s.onRecoverTick); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("keyd: %w", err)
	}
	// micro answers $SRV.PING before the endpoints are subscribed at the
	// server; a report sent in that gap has no subscriber and is lost. Ready
	// waits for the server to have every subscription.
	if err := s.d.NC.FlushTimeout(10 * time.Second); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("keyd: subscribe endpoints: %w", err)
	}
	s.goBG(func() { s.flushLoop(ctx) })
	s.goBG(func() { s.loadAddedLoop(ctx) })
	s.goBG(func() { s.followSettings(ctx) })
	s.serving.Store(true)
	<-ctx.Done()
	// Stop answering first so edge's retries reach another replica, then
	// write what is still dirty.
	s.serving.Store(false)
	_ = svc.Stop()
	s.bg.Wait()
	s.flushReports()
	s.flush(context.Background())
	return nil
}

func (s *Service) goBG(f func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
}

// flushLoop writes dirty keys in one bulk write per period, so no acquire or
// report waits for the database.
func (s *Service) flushLoop(ctx context.Context) {
	t := time.NewTicker(s.d.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flush(ctx)
		}
	}
}

func (s *Service) flush(ctx context.Context) {
	keys := s.pool.TakeDirty()
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.store.SaveState(ctx, keys); err != nil {
		ids := make([]string, len(keys))
		for i, k := range keys {
			ids[i] = k.ID
		}
		s.pool.MarkDirty(ids...) // try again next period
		s.metrics.flushErrors.Inc()
		s.log.Warn("persist key state failed; will retry", "keys", len(keys), "err", err)
		return
	}
	s.metrics.flushed.Add(float64(len(keys)))
}

// persistNow writes the given keys at once, for admin actions whose reply
// promises the change is stored.
func (s *Service) persistNow(ctx context.Context, ids []string) error {
	keys := make([]pool.Key, 0, len(ids))
	for _, id := range ids {
		if k, ok := s.pool.Get(id); ok {
			keys = append(keys, k)
		}
	}
	return s.store.SaveState(ctx, keys)
}

// followSettings applies saved settings live: policy numbers, and keys newly
// listed in API_KEYS, VERTEX_API_KEYS or PAID_KEY (keys are never deleted
// because a list shrank; deleting is an explicit admin action).
func (s *Service) followSettings(ctx context.Context) {
	last := s.seen
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := s.d.Settings.Get()
		if last == nil {
			last = cur
		}
		if cur == last {
			continue
		}
		s.pool.SetPolicy(pool.PolicyFrom(*cur))
		before := map[string]bool{}
		for _, k := range ConfiguredKeys(last, time.Time{}) {
			before[k.ID] = true
		}
		var fresh []pool.Key
		for _, k := range ConfiguredKeys(cur, time.Now().UTC()) {
			if !before[k.ID] {
				fresh = append(fresh, k)
			}
		}
		last = cur
		if len(fresh) > 0 {
			if _, err := s.addKeys(ctx, fresh); err != nil {
				s.log.Warn("import keys from settings failed", "err", err)
			}
		}
	}
}

// Acquire answers an acquire from the pool; it never waits for the database.
func (s *Service) Acquire(req bus.AcquireRequest) bus.AcquireReply {
	rep := s.pool.Acquire(req)
	result := "ok"
	if rep.ID == "" {
		result = rep.NoKey
	}
	s.metrics.acquires.WithLabelValues(rep.Kind, result).Inc()
	return rep
}

// Report applies an attempt's outcome, publishes what changed and forwards
// the report to the other replicas.
func (s *Service) Report(r bus.Report) {
	s.metrics.reports.WithLabelValues(r.Class).Inc()
	evs := s.pool.Report(r, true)
	s.publish(evs...)
	s.forwardReport(r)
}
