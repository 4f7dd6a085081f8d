// Package service runs logd: the event ingester, the query endpoints and
// retention on schedulerd's retention tick. main.go and the all-in-one build
// it with New and run it with Run.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/logd/endpoints"
	"github.com/gemini-balance-go/logd/ingest"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/natsx"
)

// Deps are logd's connections. The streams must be provisioned
// (natsx.Provision) before Run.
type Deps struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	DB       *mongo.Database
	Settings *natsx.Settings
	Infra    config.Infra
	Log      *slog.Logger
	Registry *prometheus.Registry // nil: metrics are not exported
	// Ingest tunes batching; zero values take the defaults.
	Ingest ingest.Options
	// OnReady, when set, is called once the endpoints answer and ingest runs.
	OnReady func()
}

// Service is one logd replica.
type Service struct {
	d     Deps
	ready atomic.Bool
}

// New checks deps; Run does the work.
func New(d Deps) (*Service, error) {
	if d.NC == nil || d.JS == nil || d.DB == nil || d.Settings == nil {
		return nil, errors.New("logd: NC, JS, DB and Settings are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Service{d: d}, nil
}

// Ready is nil once indexes exist, ingest runs and the endpoints answer.
func (s *Service) Ready(context.Context) error {
	if !s.ready.Load() {
		return errors.New("starting")
	}
	return nil
}

// Run serves until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	d, log := s.d, s.d.Log
	store := logstore.New(d.DB)
	if err := ensureIndexes(ctx, store, log); err != nil {
		return err
	}
	// A store from an earlier version gets its derived rollups before the
	// dashboard reads them. No timeout: it reads a day of rollups once. A
	// failure is not fatal: the next fold round backfills them.
	t0 := time.Now()
	if err := store.Backfill(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("backfill derived rollups; the fold will retry", "err", err)
	} else {
		log.Debug("derived rollups ready", "took", time.Since(t0).Round(time.Millisecond))
	}

	// Watermill drains the connection it is given on close: give it its own.
	opts := d.NC.Opts
	opts.Name = opts.Name + "-ingest"
	inConn, err := opts.Connect()
	if err != nil {
		return fmt.Errorf("connect ingest nats: %w", err)
	}
	defer inConn.Close()

	retain := func(ctx context.Context) (logapi.RetentionReply, error) {
		res, err := store.Retain(ctx, d.Settings.Get(), time.Now())
		if err == nil {
			log.Info("retention done", "request_logs", res.RequestLogs, "error_logs", res.ErrorLogs, "rollups", res.Rollups)
		}
		return res, err
	}
	svc, err := endpoints.Register(d.NC, store, retain, log)
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	// The server must have the endpoints' subscriptions before anyone is told
	// logd is ready, or a request from another connection finds no responder.
	if err := d.NC.Flush(); err != nil {
		return fmt.Errorf("flush endpoint subscriptions: %w", err)
	}

	var m *ingest.Metrics
	if d.Registry != nil {
		m = ingest.NewMetrics(d.Registry)
	}
	opt := d.Ingest
	if opt.AckWait == 0 && d.Infra.LogdAckWait > 0 {
		opt.AckWait = time.Duration(d.Infra.LogdAckWait) * time.Second
	}
	in := ingest.New(opt, ingest.Deps{Conn: inConn, JS: d.JS, Store: store, Log: log, Metrics: m})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		// An error after the stop began is part of stopping, not a failure.
		if err := in.Run(ctx); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("ingest: %w", err)
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		if err := runRetention(ctx, d.JS, retain, log); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("retention: %w", err)
			cancel()
		}
	}()
	s.ready.Store(true)
	if d.OnReady != nil {
		d.OnReady()
	}
	log.Info("logd running")
	<-ctx.Done()
	wg.Wait()
	close(errc)
	return <-errc // nil when both stopped cleanly
}

func ensureIndexes(ctx context.Context, store *logstore.Store, log *slog.Logger) error {
	backoff := 200 * time.Millisecond
	for {
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := store.EnsureIndexes(ictx)
		cancel()
		if err == nil {
			return nil
		}
		log.Warn("create indexes; retrying", "err", err)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// runRetention runs a retention pass per retention tick. A tick is acked
// only after its pass succeeded; a failed pass is retried by redelivery.
// Setting the consumer up is retried (JetStream's API times out while a
// cluster elects its leaders under load): retention waiting is no reason to
// stop ingesting.
func runRetention(ctx context.Context, js jetstream.JetStream, retain endpoints.Retainer, log *slog.Logger) error {
	backoff := time.Second
	for {
		cc, err := consumeRetention(ctx, js, retain, log)
		if err == nil {
			<-ctx.Done()
			cc.Stop()
			return nil
		}
		log.Warn("retention ticks not subscribed yet; retrying", "err", err, "next_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

func consumeRetention(ctx context.Context, js jetstream.JetStream, retain endpoints.Retainer, log *slog.Logger) (jetstream.ConsumeContext, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamTicks, jetstream.ConsumerConfig{
		Durable:       bus.ConsumerLogdRetention,
		Description:   "logd: delete old logs on each retention tick",
		FilterSubject: bus.SubjectTickRetention,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       5 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", bus.ConsumerLogdRetention, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		var t bus.Tick
		if err := json.Unmarshal(msg.Data(), &t); err != nil {
			log.Warn("bad retention tick; dropped", "err", err)
			_ = msg.Term()
			return
		}
		if _, err := retain(ctx); err != nil {
			log.Error("retention failed; tick will be redelivered", "slot", t.Slot, "err", err)
			_ = msg.NakWithDelay(time.Minute)
			return
		}
		_ = msg.Ack()
	})
	if err != nil {
		return nil, fmt.Errorf("consume retention ticks: %w", err)
	}
	return cc, nil
}
