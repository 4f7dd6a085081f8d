// Package ingest turns the durable event stream into stored logs. Request and
// error events arrive through Watermill from durable JetStream consumers,
// are batched by size and time, and are acknowledged only after MongoDB
// accepted the batch. A message that cannot be parsed goes to the dead-letter
// subject with the reason and is acknowledged, so it never blocks the stream.
// While MongoDB is down, the batch is retried with backoff and nothing is
// acknowledged; the consumer's backlog grows and drains when it returns.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
)

// Writer stores one batch idempotently (logstore.Store).
type Writer interface {
	Write(ctx context.Context, batch string, reqs []logstore.RequestLog, errs []logstore.ErrorLog) (logstore.WriteResult, error)
}

// Consumer names. Each is a durable push consumer on GB_EVENTS with a deliver
// group of the same name, so several logd replicas share the work.
const (
	ConsumerRequests = "logd-request"
	ConsumerErrors   = "logd-error"
	// Deliver subjects live outside gb.> so neither the stream nor a tap captures them.
	DeliverRequests = bus.SubjectDeliverLogdRequests
	DeliverErrors   = bus.SubjectDeliverLogdErrors
)

// Options tune batching. Zero values take the defaults.
type Options struct {
	BatchSize     int           // events per write; default 1000
	FlushInterval time.Duration // longest wait before a partial batch is written; default 200ms
	AckWait       time.Duration // redelivery delay of an unacknowledged event; default 60s
	MaxBackoff    time.Duration // cap of the retry backoff while MongoDB fails; default 5s
	BacklogEvery  time.Duration // consumer-info poll period for the backlog gauge; default 5s
}

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.AckWait <= 0 {
		// Received events wait in their subscription for the batch cycle; a
		// short AckWait on a slow store redelivers them while still queued.
		o.AckWait = 60 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.BacklogEvery <= 0 {
		o.BacklogEvery = 5 * time.Second
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

// Ingester runs the consumers and the batch writer.
type Ingester struct {
	opt  Options
	deps Deps
	log  *slog.Logger
	m    *Metrics
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
	return &Ingester{opt: opt, deps: deps, log: log, m: m}
}

type batch struct {
	id   string
	msgs []*message.Message
	reqs []logstore.RequestLog
	errs []logstore.ErrorLog
}

// Run consumes until ctx ends. On return every written batch is acknowledged;
// messages not yet written are redelivered after AckWait.
func (in *Ingester) Run(ctx context.Context) error {
	if err := in.ensureConsumers(ctx); err != nil {
		return err
	}
	// Push consumers deliver to whichever queue subscription exists, and a
	// subscription holds what it got until its turn: pause delivery while the
	// subscriptions are created, or a backlog would pile onto the first one.
	for _, name := range []string{ConsumerRequests, ConsumerErrors} {
		if _, err := in.deps.JS.PauseConsumer(ctx, bus.StreamEvents, name, time.Now().Add(time.Minute)); err != nil {
			return fmt.Errorf("pause consumer %s: %w", name, err)
		}
	}
	// Resume by a pause that ends in a moment: nats-server 2.15 restarts
	// delivery of a waiting backlog when a pause deadline passes, but not on
	// an explicit resume (it then waits for the next new message). If the
	// deadline had already passed when the server read it (a slow server,
	// clock skew), the backlog would wait the same way, so watch and repeat.
	resume := func() {
		for _, name := range []string{ConsumerRequests, ConsumerErrors} {
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
	// Watermill's subscriber keeps one message in flight per subscription and
	// waits for its ack, so a batch of N needs N subscriptions; twice that
	// lets the next batch fill while the previous one is written. Error
	// events are rarer and get fewer.
	reqCh, closeReq, err := in.subscribe(subCtx, in.deps.Conn, bus.SubjectEventRequest, 2*in.opt.BatchSize)
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
	errCh, closeErr, err := in.subscribe(subCtx, errConn, bus.SubjectEventError, max(in.opt.BatchSize/4, 16))
	if err != nil {
		errConn.Close()
		resume()
		return err
	}
	closers = append(closers, closeErr)
	resume()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); in.pollBacklog(ctx) }()

	// One writer keeps batches in order, so a retried batch is never
	// overtaken (the rollup guard relies on that). The hand-over channel is
	// unbuffered: while the writer is busy the batcher keeps filling the next
	// batch, so a slow store gets bigger batches instead of many small ones.
	toWrite := make(chan *batch)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range toWrite {
			in.write(ctx, b)
		}
	}()

	cur := in.newBatch()
	timer := time.NewTimer(in.opt.FlushInterval)
	timer.Stop()
	due := false // the oldest event of cur has waited FlushInterval
loop:
	for {
		var send chan *batch
		if len(cur.msgs) >= in.opt.BatchSize || (due && len(cur.msgs) > 0) {
			send = toWrite
		}
		reqIn, errIn := reqCh, errCh
		if len(cur.msgs) >= in.opt.BatchSize {
			reqIn, errIn = nil, nil // full: wait for the writer
		}
		select {
		case <-ctx.Done():
			break loop
		case send <- cur:
			cur, due = in.newBatch(), false
			timer.Stop()
		case m, ok := <-reqIn:
			if !ok {
				break loop
			}
			in.add(ctx, cur, m, true)
		case m, ok := <-errIn:
			if !ok {
				break loop
			}
			in.add(ctx, cur, m, false)
		case <-timer.C:
			due = true
		}
		if len(cur.msgs) == 1 && !due && send == nil {
			timer.Reset(in.opt.FlushInterval)
		}
	}
	// A graceful stop writes what it holds before letting go of the
	// subscriptions, so nothing received waits for redelivery.
	if len(cur.msgs) > 0 {
		toWrite <- cur
	}
	close(toWrite)
	wg.Wait()
	return nil
}

// kickStalled re-issues the short pause for a consumer that has a backlog
// but delivers nothing after start-up (see the resume comment in Run).
func (in *Ingester) kickStalled(ctx context.Context) {
	for attempt := 0; attempt < 5; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		stalled := false
		for _, name := range []string{ConsumerRequests, ConsumerErrors} {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, err := in.deps.JS.PushConsumer(ictx, bus.StreamEvents, name)
			var info *jetstream.ConsumerInfo
			if err == nil {
				info, err = c.Info(ictx)
			}
			if err == nil && !info.Paused && info.NumPending > 0 && info.NumAckPending == 0 {
				stalled = true
				in.log.Info("consumer has a backlog but delivers nothing; resuming again", "consumer", name, "pending", info.NumPending)
				_, _ = in.deps.JS.PauseConsumer(ictx, bus.StreamEvents, name, time.Now().Add(500*time.Millisecond))
			}
			cancel()
		}
		if !stalled && attempt > 0 {
			return
		}
	}
}

// subscribe starts a Watermill subscriber with count queue subscriptions
// bound to the topic's durable consumer.
func (in *Ingester) subscribe(ctx context.Context, conn *nats.Conn, topic string, count int) (<-chan *message.Message, func(), error) {
	name := consumerFor(topic)
	sub, err := wmnats.NewSubscriberWithNatsConn(conn, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      rawUnmarshaler{},
		SubscribersCount: count,
		AckWaitTimeout:   in.opt.AckWait,
		CloseTimeout:     5 * time.Second,
		SubjectCalculator: func(_, topic string) *wmnats.SubjectDetail {
			return &wmnats.SubjectDetail{Primary: topic, QueueGroup: name}
		},
		JetStream: wmnats.JetStreamConfig{
			AckAsync:          true,
			DurableCalculator: func(string, string) string { return name },
			SubscribeOptions:  []nats.SubOpt{nats.Bind(bus.StreamEvents, name), nats.ManualAck()},
		},
	}, watermill.NewSlogLoggerWithLevelMapping(in.log, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug, slog.LevelError: slog.LevelDebug,
	}))
	if err != nil {
		return nil, nil, fmt.Errorf("watermill subscriber for %s: %w", topic, err)
	}
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		_ = sub.Close()
		return nil, nil, fmt.Errorf("subscribe %s: %w", topic, err)
	}
	return ch, func() {
		if err := sub.Close(); err != nil {
			in.log.Debug("close watermill subscriber", "topic", topic, "err", err)
		}
	}, nil
}

func consumerFor(topic string) string {
	if topic == bus.SubjectEventError {
		return ConsumerErrors
	}
	return ConsumerRequests
}

func (in *Ingester) ensureConsumers(ctx context.Context) error {
	for _, c := range []struct{ name, subject, deliver string }{
		{ConsumerRequests, bus.SubjectEventRequest, DeliverRequests},
		{ConsumerErrors, bus.SubjectEventError, DeliverErrors},
	} {
		_, err := in.deps.JS.CreateOrUpdatePushConsumer(ctx, bus.StreamEvents, jetstream.ConsumerConfig{
			Durable:        c.name,
			Description:    "logd: store " + c.subject,
			DeliverSubject: c.deliver,
			DeliverGroup:   c.name,
			FilterSubject:  c.subject,
			DeliverPolicy:  jetstream.DeliverAllPolicy,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        in.opt.AckWait,
			MaxDeliver:     -1,                   // never give up: a stored event must not be dropped
			MaxAckPending:  2 * in.opt.BatchSize, // about one in flight per subscription
		})
		if err != nil {
			return fmt.Errorf("create consumer %s: %w", c.name, err)
		}
	}
	return nil
}

func (in *Ingester) newBatch() *batch {
	return &batch{id: watermill.NewULID(), msgs: make([]*message.Message, 0, in.opt.BatchSize)}
}

// add parses one message into the batch, or dead-letters it.
func (in *Ingester) add(ctx context.Context, b *batch, m *message.Message, isRequest bool) {
	if isRequest {
		var ev bus.RequestEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			in.deadLetter(ctx, m, "invalid request event JSON: "+err.Error())
			return
		}
		if reason := checkEvent(ev.ID, ev.Time); reason != "" {
			in.deadLetter(ctx, m, reason)
			return
		}
		b.reqs = append(b.reqs, logstore.FromRequestEvent(&ev))
	} else {
		var ev bus.ErrorEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			in.deadLetter(ctx, m, "invalid error event JSON: "+err.Error())
			return
		}
		if reason := checkEvent(ev.ID, ev.Time); reason != "" {
			in.deadLetter(ctx, m, reason)
			return
		}
		b.errs = append(b.errs, logstore.FromErrorEvent(&ev))
	}
	b.msgs = append(b.msgs, m)
}

func checkEvent(id string, t time.Time) string {
	switch {
	case id == "":
		return "event has no id"
	case t.IsZero():
		return "event has no time"
	}
	return ""
}

// deadLetter publishes the message with the reason to the DLQ stream and
// acknowledges it. If even that fails, the message is nacked and comes back.
func (in *Ingester) deadLetter(ctx context.Context, m *message.Message, reason string) {
	subject := m.Metadata.Get(metaSubject)
	dl := bus.DeadLetter{V: bus.Version, Time: time.Now().UTC(), Subject: subject, Reason: reason, Payload: string(m.Payload)}
	data, _ := json.Marshal(dl)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := in.deps.JS.Publish(pctx, bus.SubjectDLQLogd, data, jetstream.WithMsgID("logd:"+m.UUID))
	if err != nil {
		in.log.Error("dead-letter publish failed; event will be redelivered", "subject", subject, "err", err)
		m.Nack()
		return
	}
	in.m.deadLetters.WithLabelValues(subject).Inc()
	in.log.Warn("event dead-lettered", "subject", subject, "reason", reason, "msg_id", m.UUID)
	m.Ack()
}

// write stores a batch, retrying with backoff until MongoDB takes it, then
// acknowledges every message. Only a stop ends the retries; the messages then
// stay unacknowledged and are redelivered.
func (in *Ingester) write(ctx context.Context, b *batch) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		// A stop still lets a write in progress finish briefly, so its acks go out.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		res, err := in.deps.Store.Write(wctx, b.id, b.reqs, b.errs)
		cancel()
		if err == nil {
			in.m.writeSeconds.Observe(time.Since(start).Seconds())
			in.m.batchSize.Observe(float64(len(b.msgs)))
			in.m.events.WithLabelValues("request", "inserted").Add(float64(res.Inserted))
			in.m.events.WithLabelValues("request", "duplicate").Add(float64(res.Duplicates))
			in.m.events.WithLabelValues("error", "inserted").Add(float64(res.Errors))
			in.m.lastWrite.SetToCurrentTime()
			for _, m := range b.msgs {
				m.Ack()
			}
			in.log.Debug("batch written", "batch", b.id, "events", len(b.msgs), "inserted", res.Inserted,
				"duplicates", res.Duplicates, "took", time.Since(start))
			if attempt > 1 {
				in.log.Info("batch written after retries", "batch", b.id, "attempts", attempt, "events", len(b.msgs))
			}
			return
		}
		in.m.writeFailures.Inc()
		in.log.Warn("batch write failed; retrying, events stay unacknowledged",
			"batch", b.id, "events", len(b.msgs), "attempt", attempt, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			for _, m := range b.msgs {
				m.Nack()
			}
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, in.opt.MaxBackoff)
	}
}

// pollBacklog keeps the backlog gauge current from the consumers' info:
// events not yet delivered plus delivered but unacknowledged.
func (in *Ingester) pollBacklog(ctx context.Context) {
	t := time.NewTicker(in.opt.BacklogEvery)
	defer t.Stop()
	for {
		for _, name := range []string{ConsumerRequests, ConsumerErrors} {
			if n, err := Backlog(ctx, in.deps.JS, name); err == nil {
				in.m.backlog.WithLabelValues(name).Set(float64(n))
			} else if !errors.Is(err, context.Canceled) {
				in.log.Debug("consumer info", "consumer", name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Backlog returns the events a consumer has yet to finish.
func Backlog(ctx context.Context, js jetstream.JetStream, consumer string) (uint64, error) {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := js.PushConsumer(ictx, bus.StreamEvents, consumer)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ictx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

const metaSubject = "nats_subject"

// rawUnmarshaler never fails: the payload is kept as is and parsed by the
// batcher, which can dead-letter it. (Watermill's own unmarshalers drop a
// message they cannot read without an ack, which would redeliver it forever.)
type rawUnmarshaler struct{}

func (rawUnmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	id := m.Header.Get(nats.MsgIdHdr)
	if id == "" {
		id = m.Header.Get(wmnats.WatermillUUIDHdr)
	}
	if id == "" {
		id = watermill.NewULID()
	}
	msg := message.NewMessage(id, m.Data)
	msg.Metadata.Set(metaSubject, m.Subject)
	return msg, nil
}
