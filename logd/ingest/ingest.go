// Package ingest turns the durable event stream into stored logs. Request and
// error events arrive in batch messages (bus.RequestBatch, bus.ErrorBatch)
// through Watermill from durable JetStream consumers. Messages are gathered
// into write batches by size and time; several writers insert the logs of
// different batches at once, then write each message's rollup part (its _id
// derived from the message's event ids, so a redelivery to any replica makes
// the same part and counts nothing twice) and only then acknowledge the
// messages. A fold loop compacts the parts into the rollups (logstore.Fold).
//
// A message that cannot be parsed goes to the dead-letter subject whole with
// the reason; an event inside a valid batch that fails validation goes there
// alone while the rest is stored. While MongoDB is down, writes are retried
// with backoff and nothing is acknowledged; the consumer's backlog grows and
// drains when it returns.
package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
)

// Writer stores batches idempotently in two steps (logstore.Store): InsertLogs
// stores the rows, tagged with their message's part; Settle writes the parts.
// Both may run for several batches at once. Fold compacts written parts into
// the rollups; any number may run at once, on any replica.
type Writer interface {
	InsertLogs(ctx context.Context, batch string, reqs []logstore.RequestLog, errs []logstore.ErrorLog) (*logstore.Pending, error)
	Settle(ctx context.Context, p *logstore.Pending) error
	Fold(ctx context.Context) (int, error)
}

// Options tune batching. Zero values take the defaults.
type Options struct {
	BatchSize     int           // events per log insert; default 1024 (a message is never split)
	FlushInterval time.Duration // longest wait before a partial batch is written; default 200ms
	IdleFlush     time.Duration // a partial batch is written once no message came for this long; default 20ms
	Writers       int           // log inserts running at once; default 4
	// RequestMessages and ErrorMessages bound the messages in flight per
	// consumer (Watermill subscriptions and MaxAckPending); defaults 256 and 128.
	RequestMessages int
	ErrorMessages   int
	AckWait         time.Duration // redelivery delay of an unacknowledged message; default 60s
	MaxBackoff      time.Duration // cap of the retry backoff while MongoDB fails; default 5s
	BacklogEvery    time.Duration // consumer-info poll period for the backlog gauge; default 5s
	FoldEvery       time.Duration // pause between fold passes over the rollup parts; default 1s
}

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1024 // four full messages
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.IdleFlush <= 0 {
		o.IdleFlush = 20 * time.Millisecond
	}
	if o.Writers <= 0 {
		o.Writers = 4
	}
	// At low traffic edge sends a message per event or so: the window must
	// hold enough messages to make a batch worth a rollup round. Under load
	// a message carries hundreds of events, so a few suffice. Each message in
	// the window is a subscription with two goroutines: 1024 of them cost the
	// all-in-one ~10 MB of stacks and GC scanning at no gain in throughput.
	if o.RequestMessages <= 0 {
		o.RequestMessages = 256
	}
	if o.ErrorMessages <= 0 {
		o.ErrorMessages = 128
	}
	if o.AckWait <= 0 {
		// Received messages wait for their batch to be written and rolled up;
		// a short AckWait on a slow store redelivers them while still queued.
		o.AckWait = 60 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.BacklogEvery <= 0 {
		o.BacklogEvery = 5 * time.Second
	}
	if o.FoldEvery <= 0 {
		o.FoldEvery = time.Second
	}
}

// Deps are what the ingester needs. Conn must be a connection of its own:
// Watermill drains it on close.
type Deps struct {
	Conn    *nats.Conn
	JS      jetstream.JetStream
	Store   Writer
	Log     *slog.Logger
	Metrics *Metrics
}

// Ingester runs the consumers, the batcher, the log writers and the fold loop.
type Ingester struct {
	opt  Options
	deps Deps
	log  *slog.Logger
	m    *Metrics

	mu sync.Mutex
	// msgs holds the messages being stored, by stream position: a
	// redelivered copy of one (AckWait passed while the store was slow)
	// waits for the first and is settled with it, not stored again.
	msgs map[string]*unit
	// done remembers the messages stored lately (bounded, oldest dropped
	// first): a delivery of one again means its ack was lost, and it is
	// acknowledged without being stored again.
	done      map[string]bool
	doneOrder []string

	// The arrays batches are decoded into, and the buffer compressed
	// batches are decompressed into (parse's goroutine only).
	reqEvents eventArray[bus.RequestEvent]
	errEvents eventArray[bus.ErrorEvent]
	plain     []byte
}

// New returns an Ingester; Run starts it.
func New(opt Options, deps Deps) *Ingester {
	opt.defaults()
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	m := deps.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Ingester{opt: opt, deps: deps, log: log, m: m,
		msgs: map[string]*unit{}, done: map[string]bool{}}
}

// unit is one message and the events it carries.
type unit struct {
	key    string
	m      *message.Message
	copies []*message.Message // redeliveries received while m was in flight (under mu)
	reqs   []logstore.RequestLog
	errs   []logstore.ErrorLog
}

func (u *unit) events() int { return len(u.reqs) + len(u.errs) }

// batch is what one log insert writes.
type batch struct {
	id     string
	units  []*unit
	events int
	start  time.Time
}

// Run consumes until ctx ends. On return every stored message is
// acknowledged; messages not yet stored are redelivered after AckWait.
func (in *Ingester) Run(ctx context.Context) error {
	if err := in.retryStart(ctx, "create consumers", func() error { return in.ensureConsumers(ctx) }); err != nil {
		return err
	}
	// Push consumers deliver to whichever queue subscription exists, and a
	// subscription holds what it got until its turn: pause delivery while the
	// subscriptions are created, or a backlog would pile onto the first one.
	for _, name := range []string{bus.ConsumerLogdRequests, bus.ConsumerLogdErrors} {
		err := in.retryStart(ctx, "pause consumer "+name, func() error {
			_, err := in.deps.JS.PauseConsumer(ctx, bus.StreamEvents, name, time.Now().Add(time.Minute))
			return err
		})
		if err != nil {
			return fmt.Errorf("pause consumer %s: %w", name, err)
		}
	}
	// Resume by a pause that ends in a moment: nats-server 2.15 restarts
	// delivery of a waiting backlog when a pause deadline passes, but not on
	// an explicit resume (it then waits for the next new message). If the
	// deadline had already passed when the server read it (a slow server,
	// clock skew), the backlog would wait the same way, so watch and repeat.
	resume := func() {
		for _, name := range []string{bus.ConsumerLogdRequests, bus.ConsumerLogdErrors} {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, err := in.deps.JS.PauseConsumer(rctx, bus.StreamEvents, name, time.Now().Add(500*time.Millisecond)); err != nil {
				in.log.Error("resume consumer; it resumes by itself within a minute", "consumer", name, "err", err)
			}
			cancel()
		}
		go in.kickStalled(ctx)
	}
	subCtx, stopSub := context.WithCancel(context.WithoutCancel(ctx))
	var closers []func()
	defer func() {
		// Give Watermill's per-message goroutines a moment to send the acks
		// of the last batch before the subscriptions go away.
		time.Sleep(100 * time.Millisecond)
		stopSub()
		for _, c := range closers {
			c()
		}
	}()
	// Watermill's subscriber keeps one message in flight per subscription
	// and waits for its ack, so the subscriptions are the message window:
	// under load a message carries up to bus.MaxBatchEvents events, at low
	// traffic about one, and the window must still fill a batch.
	var reqCh, errCh <-chan *message.Message
	var closeReq, closeErr func()
	err := in.retryStart(ctx, "subscribe "+bus.SubjectEventRequests, func() (err error) {
		reqCh, closeReq, err = in.subscribe(subCtx, in.deps.Conn, bus.SubjectEventRequests, in.opt.RequestMessages)
		return err
	})
	if err != nil {
		resume()
		return err
	}
	closers = append(closers, closeReq)
	// Each Watermill subscriber drains its connection on close: errors get their own.
	opts := in.deps.Conn.Opts
	opts.Name += "-errors"
	errConn, err := opts.Connect()
	if err != nil {
		resume()
		return fmt.Errorf("connect nats for error events: %w", err)
	}
	err = in.retryStart(ctx, "subscribe "+bus.SubjectEventErrors, func() (err error) {
		errCh, closeErr, err = in.subscribe(subCtx, errConn, bus.SubjectEventErrors, in.opt.ErrorMessages)
		return err
	})
	if err != nil {
		errConn.Close()
		resume()
		return err
	}
	closers = append(closers, closeErr)
	resume()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); in.pollBacklog(ctx) }()
	go func() { defer wg.Done(); in.foldLoop(ctx) }()

	// The hand-over to the writers is unbuffered: while every writer is busy
	// the batcher keeps filling the next batch up to BatchSize.
	toWrite := make(chan *batch)
	var writers sync.WaitGroup
	for i := 0; i < in.opt.Writers; i++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			var rows rowBuffer
			for b := range toWrite {
				in.insert(ctx, b, &rows)
			}
		}()
	}
	in.batchMessages(ctx, reqCh, errCh, toWrite)
	// Messages that still arrive are handed back at once (a nack, redelivered
	// after NakDelay) until the subscriptions close, instead of waiting out
	// AckWait: a restarted or another logd then gets them promptly.
	go nackAll(reqCh, errCh)
	close(toWrite)
	writers.Wait()
	wg.Wait()
	return nil
}
