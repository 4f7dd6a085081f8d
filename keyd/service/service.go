// Package service runs keyd: it loads the pool from MongoDB, serves the
// endpoints, keeps replicas in sync, persists changes in batches and recovers
// keys on schedulerd's ticks. Run is what keyd's main and the all-in-one call.
package service

import (
	"context"
	"encoding/json"
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
	Seed    *config.Settings
	Infra   config.Infra
	Log     *slog.Logger
	Metrics *prometheus.Registry // optional
	// HTTPClient makes verify calls upstream; nil means a client with TIME_OUT.
	HTTPClient *http.Client
	// FlushEvery is the period of the batched state writer (200 ms when zero).
	FlushEvery time.Duration
	// beforeLoad, when set (tests), runs between the sync subscription and
	// the pool load.
	beforeLoad func(*Service)
}

// Replica sync travels on bus.SubjectKeySync (the subject keyd's NATS user
// may publish on). Two message types share it, told apart by a header:
// key-state events (the public KeyStateEvent) and forwarded reports, so that
// every replica's failure counts and throttle windows agree.
const (
	// hdrInstance marks the replica process that sent a sync message.
	hdrInstance = "Gb-Keyd-Instance"
	// hdrType is "report" on a forwarded bus.Report; absent on a KeyStateEvent.
	hdrType    = "Gb-Keyd-Type"
	typeReport = "report"
)

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
	added    chan string // key ids another replica added or updated, loaded in batches
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

// Run serves keyd until ctx ends, then flushes pending state and returns.
func Run(ctx context.Context, d Deps) error {
	s, err := New(ctx, d)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
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
		metrics:  newMetrics(d.Metrics),
		added:    make(chan string, 1<<16),
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

// Serve subscribes to replica sync, registers the endpoints, starts the
// batched writer, the recover-tick consumer and the settings follower, and
// blocks until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	defer func() { _ = s.syncSub.Unsubscribe() }()
	svc, err := endpoints.Register(ctx, s.d.NC, s, endpoints.Options{Replica: s.d.Infra.Replica})
	if err != nil {
		return fmt.Errorf("keyd: register micro service: %w", err)
	}
	if err := recovery.ConsumeTicks(ctx, s.d.NC, s.log, s.onRecoverTick); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("keyd: %w", err)
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

// publish sends state changes to the other replicas (core NATS) and to the
// event stream (JetStream, for taps and history).
func (s *Service) publish(evs ...bus.KeyStateEvent) {
	for _, ev := range evs {
		ev.V = bus.Version
		ev.ID = nuid.Next()
		ev.Replica = s.d.Infra.Replica
		if ev.Time.IsZero() {
			ev.Time = time.Now().UTC()
		}
		data, err := json.Marshal(ev)
		if err != nil {
			continue
		}
		msg := &nats.Msg{Subject: bus.SubjectKeySync, Data: data, Header: nats.Header{}}
		msg.Header.Set(hdrInstance, s.instance)
		if err := s.d.NC.PublishMsg(msg); err != nil {
			s.log.Warn("key sync publish failed", "key_id", ev.KeyID, "err", err)
		}
		if s.d.JS != nil {
			jm := &nats.Msg{Subject: bus.SubjectEventKeyState, Data: data}
			if _, err := s.d.JS.PublishMsgAsync(jm, jetstream.WithMsgID(ev.ID)); err != nil {
				s.log.Debug("key state event not stored", "key_id", ev.KeyID, "err", err)
			}
		}
		s.metrics.stateChanges.WithLabelValues(ev.To).Inc()
		s.log.Info("key state", "key_id", ev.KeyID, "key", ev.KeyHint, "kind", ev.Kind, "from", ev.From, "to", ev.To, "model", ev.Model, "reason", ev.Reason)
	}
}

// subscribeSync follows the other replicas: their state changes and their
// reports. It buffers until load has read the pool (see Service.syncBuf).
func (s *Service) subscribeSync() error {
	s.buffering.Store(true)
	sub, err := s.d.NC.Subscribe(bus.SubjectKeySync, s.onSync)
	if err != nil {
		return fmt.Errorf("keyd: subscribe %s: %w", bus.SubjectKeySync, err)
	}
	s.syncSub = sub
	// Core NATS drops what is published before the server has a
	// subscription: make sure it has ours before reading MongoDB.
	if err := s.d.NC.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("keyd: flush sync subscription: %w", err)
	}
	return nil
}

// load reads every key into the pool, then replays the state changes that
// arrived meanwhile, in order; later messages apply directly.
func (s *Service) load(ctx context.Context) ([]pool.Key, error) {
	if s.d.beforeLoad != nil {
		s.d.beforeLoad(s)
	}
	keys, err := s.store.LoadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyd: load keys: %w", err)
	}
	s.pool.Load(keys...)
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	for _, m := range s.syncBuf {
		// Forwarded reports are skipped: the state they led to was persisted
		// (and so loaded) or arrives as its own state event.
		if m.Header.Get(hdrType) != typeReport {
			s.applySync(m)
		}
	}
	s.syncBuf = nil
	s.buffering.Store(false)
	return keys, nil
}

func (s *Service) onSync(m *nats.Msg) {
	if m.Header.Get(hdrInstance) == s.instance {
		return
	}
	if s.buffering.Load() {
		s.syncMu.Lock()
		if s.buffering.Load() {
			s.syncBuf = append(s.syncBuf, m)
			s.syncMu.Unlock()
			return
		}
		s.syncMu.Unlock()
	}
	s.applySync(m)
}

func (s *Service) applySync(m *nats.Msg) {
	if m.Header.Get(hdrType) == typeReport {
		var r bus.Report
		if err := json.Unmarshal(m.Data, &r); err == nil {
			s.pool.Report(r, false)
		}
		return
	}
	var ev bus.KeyStateEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return
	}
	switch ev.To {
	case bus.KeyAdded, bus.KeyUpdated:
		select {
		case s.added <- ev.KeyID:
		default:
			s.log.Warn("added-key queue full; key loads on restart", "key_id", ev.KeyID)
		}
	case bus.KeyDeleted:
		s.pool.Remove(ev.KeyID)
	default:
		s.pool.Apply(ev)
	}
}

// loadAddedLoop reads keys another replica added or updated, batching bursts (a bulk
// add of thousands of keys is one query, not thousands).
func (s *Service) loadAddedLoop(ctx context.Context) {
	for {
		var ids []string
		select {
		case <-ctx.Done():
			return
		case id := <-s.added:
			ids = append(ids, id)
		}
		timer := time.NewTimer(20 * time.Millisecond)
	gather:
		for len(ids) < 1000 {
			select {
			case id := <-s.added:
				ids = append(ids, id)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		keys, err := s.store.Load(lctx, ids...)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("load keys added by another replica failed", "keys", len(ids), "err", err)
			continue
		}
		for _, k := range keys {
			if s.pool.Add(k) == nil { // already here: an update of weight or note
				s.pool.SetMeta(k.ID, k.Weight, k.Note, false)
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
	data, err := json.Marshal(r)
	if err != nil {
		return
	}
	msg := &nats.Msg{Subject: bus.SubjectKeySync, Data: data, Header: nats.Header{}}
	msg.Header.Set(hdrInstance, s.instance)
	msg.Header.Set(hdrType, typeReport)
	_ = s.d.NC.PublishMsg(msg)
}
