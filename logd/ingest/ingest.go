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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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
	// consumer (Watermill subscriptions and MaxAckPending); defaults 1024 and 128.
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
	// hold enough messages to make a batch worth a rollup round.
	if o.RequestMessages <= 0 {
		o.RequestMessages = 1024
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
			for b := range toWrite {
				in.insert(ctx, b)
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

// batchMessages gathers messages into batches of whole messages, up to
// BatchSize events, FlushInterval after the first or IdleFlush after the
// last, and hands them to the writers. A graceful stop hands over what it holds before returning.
func (in *Ingester) batchMessages(ctx context.Context, reqCh, errCh <-chan *message.Message, toWrite chan<- *batch) {
	cur := in.newBatch()
	var held *unit // arrived when cur was too full to take it
	timer := time.NewTimer(in.opt.FlushInterval)
	timer.Stop()
	// Messages also stop arriving when a consumer's window (MaxAckPending)
	// is in hand: nothing more comes before an ack, so a batch is written
	// once no message arrived for IdleFlush.
	idle := time.NewTimer(in.opt.IdleFlush)
	idle.Stop()
	due := false // the oldest event of cur has waited FlushInterval, or arrivals paused
	take := func(u *unit) {
		if u == nil {
			return
		}
		idle.Reset(in.opt.IdleFlush)
		if cur.events > 0 && cur.events+u.events() > in.opt.BatchSize {
			held = u
			return
		}
		if len(cur.units) == 0 {
			timer.Reset(in.opt.FlushInterval)
		}
		cur.units = append(cur.units, u)
		cur.events += u.events()
	}
	for {
		full := held != nil || cur.events >= in.opt.BatchSize
		var send chan<- *batch
		if full || (due && len(cur.units) > 0) {
			send = toWrite
		}
		reqIn, errIn := reqCh, errCh
		if full {
			reqIn, errIn = nil, nil // wait for a writer
		}
		select {
		case <-ctx.Done():
			// A graceful stop writes what it holds before letting go of the
			// subscriptions, so nothing received waits for redelivery.
			for _, b := range []*batch{cur, in.batchOf(held)} {
				if b != nil && len(b.units) > 0 {
					toWrite <- b
				}
			}
			return
		case send <- cur:
			cur, due = in.newBatch(), false
			timer.Stop()
			u := held
			held = nil
			take(u)
		case m, ok := <-reqIn:
			if !ok {
				reqCh = nil
				continue
			}
			take(in.parse(ctx, m, true))
		case m, ok := <-errIn:
			if !ok {
				errCh = nil
				continue
			}
			take(in.parse(ctx, m, false))
		case <-timer.C:
			due = true
		case <-idle.C:
			due = true
		}
	}
}

func nackAll(chs ...<-chan *message.Message) {
	var wg sync.WaitGroup
	for _, ch := range chs {
		if ch == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range ch {
				m.Nack()
			}
		}()
	}
	wg.Wait()
}

func (in *Ingester) newBatch() *batch { return &batch{id: watermill.NewULID()} }

func (in *Ingester) batchOf(u *unit) *batch {
	if u == nil {
		return nil
	}
	b := in.newBatch()
	b.units, b.events = []*unit{u}, u.events()
	return b
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
		for _, name := range []string{bus.ConsumerLogdRequests, bus.ConsumerLogdErrors} {
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

// retryStart runs f until it succeeds or ctx ends: a NATS cluster that lost a
// node may take seconds to elect the stream's new leader, and logd starting
// meanwhile must wait for it rather than exit.
func (in *Ingester) retryStart(ctx context.Context, what string, f func() error) error {
	backoff := 250 * time.Millisecond
	for {
		err := f()
		if err == nil || ctx.Err() != nil {
			return err
		}
		in.log.Warn(what+" failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// subscribe starts a Watermill subscriber with count queue subscriptions
// bound to the topic's durable consumer.
func (in *Ingester) subscribe(ctx context.Context, conn *nats.Conn, topic string, count int) (<-chan *message.Message, func(), error) {
	name := consumerFor(topic)
	sub, err := wmnats.NewSubscriberWithNatsConn(conn, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      rawUnmarshaler{},
		SubscribersCount: count,
		// Watermill drops a late ack silently once this passes, and the
		// server then redelivers a message that is already stored. Wait far
		// longer than the server's AckWait: a redelivery while the first
		// delivery is still being stored is settled with it (see parse).
		AckWaitTimeout: max(10*in.opt.AckWait, time.Hour),
		// A nacked message (a stop, a failed dead-letter publish) comes back
		// after a pause rather than at once into the same hands.
		NakDelay:     wmnats.NewStaticDelay(time.Second),
		CloseTimeout: 5 * time.Second,
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
	if topic == bus.SubjectEventErrors {
		return bus.ConsumerLogdErrors
	}
	return bus.ConsumerLogdRequests
}

func (in *Ingester) ensureConsumers(ctx context.Context) error {
	for _, c := range []struct {
		name, subject, deliver string
		inFlight               int
	}{
		{bus.ConsumerLogdRequests, bus.SubjectEventRequests, bus.SubjectDeliverLogdRequests, in.opt.RequestMessages},
		{bus.ConsumerLogdErrors, bus.SubjectEventErrors, bus.SubjectDeliverLogdErrors, in.opt.ErrorMessages},
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
			MaxDeliver:     -1,         // never give up: a stored event must not be dropped
			MaxAckPending:  c.inFlight, // one in flight per subscription
		})
		if err != nil {
			return fmt.Errorf("create consumer %s: %w", c.name, err)
		}
	}
	return nil
}

// msgKey identifies the stored message a delivery carries: its stream
// sequence, the same on every redelivery.
func msgKey(m *message.Message) string {
	if k := m.Metadata.Get(metaSeq); k != "" {
		return k
	}
	return noSeq + m.UUID
}

// noSeq marks a key that is not a stream sequence (a message without
// JetStream metadata); such keys are not remembered after storing.
const noSeq = "id:"

// parse turns a message into a unit of valid events, dead-lettering what
// cannot be stored. It returns nil when nothing is left to store (the
// message is then settled), and for a redelivered copy of a message still
// in flight, which is settled with the first.
func (in *Ingester) parse(ctx context.Context, m *message.Message, isRequest bool) *unit {
	u := &unit{key: msgKey(m), m: m}
	in.mu.Lock()
	if first := in.msgs[u.key]; first != nil {
		first.copies = append(first.copies, m)
		in.mu.Unlock()
		return nil
	}
	stored := in.done[u.key]
	in.mu.Unlock()
	if stored {
		m.Ack()
		return nil
	}

	if in.parseValid(u, isRequest) {
		in.hold(u)
		return u
	}
	// Something is wrong with the message or one of its events: parse it
	// again event by event to find what to store and what to dead-letter.
	u.reqs, u.errs = nil, nil
	var raw struct {
		V      int               `json:"v"`
		Events []json.RawMessage `json:"events"`
	}
	kind := "request"
	if !isRequest {
		kind = "error"
	}
	if err := json.Unmarshal(m.Payload, &raw); err != nil {
		in.deadLetter(ctx, m, "invalid "+kind+" batch JSON: "+err.Error())
		return nil
	}
	if len(raw.Events) == 0 {
		in.deadLetter(ctx, m, "not a "+kind+" batch: no events")
		return nil
	}
	subject := m.Metadata.Get(metaSubject)
	for i, ev := range raw.Events {
		var reason string
		if isRequest {
			var e bus.RequestEvent
			if err := json.Unmarshal(ev, &e); err != nil {
				reason = "invalid request event JSON: " + err.Error()
			} else if reason = checkEvent(e.ID, e.Time); reason == "" {
				u.reqs = append(u.reqs, logstore.FromRequestEvent(&e))
			}
		} else {
			var e bus.ErrorEvent
			if err := json.Unmarshal(ev, &e); err != nil {
				reason = "invalid error event JSON: " + err.Error()
			} else if reason = checkEvent(e.ID, e.Time); reason == "" {
				u.errs = append(u.errs, logstore.FromErrorEvent(&e))
			}
		}
		if reason == "" {
			continue
		}
		if err := in.publishDeadLetter(ctx, subject, u.key+"/"+strconv.Itoa(i), reason, ev); err != nil {
			// The whole message comes back; its stored events are duplicates then.
			in.log.Error("dead-letter publish failed; message will be redelivered", "subject", subject, "err", err)
			m.Nack()
			return nil
		}
	}
	if u.events() == 0 {
		m.Ack()
		return nil
	}
	in.hold(u)
	return u
}

// hold tags u's rows with the message's rollup part and notes u as in
// flight until finish. The part id depends only on the event ids, so every
// replica and every redelivery tags the message alike (logstore.PartID).
func (in *Ingester) hold(u *unit) {
	ids := make([]string, 0, u.events())
	kind := "r"
	for i := range u.reqs {
		ids = append(ids, u.reqs[i].ID)
	}
	if len(u.errs) > 0 {
		kind = "e"
		for i := range u.errs {
			ids = append(ids, u.errs[i].ID)
		}
	}
	part := logstore.PartID(kind, ids)
	for i := range u.reqs {
		u.reqs[i].Batch = part
	}
	for i := range u.errs {
		u.errs[i].Batch = part
	}
	in.mu.Lock()
	in.msgs[u.key] = u
	in.mu.Unlock()
}

// parseValid decodes a message in one pass when it is a batch of valid
// events, which is the common case, and reports whether it was.
func (in *Ingester) parseValid(u *unit, isRequest bool) bool {
	if isRequest {
		var b bus.RequestBatch
		if json.Unmarshal(u.m.Payload, &b) != nil || len(b.Events) == 0 {
			return false
		}
		for i := range b.Events {
			if checkEvent(b.Events[i].ID, b.Events[i].Time) != "" {
				return false
			}
		}
		u.reqs = make([]logstore.RequestLog, len(b.Events))
		for i := range b.Events {
			u.reqs[i] = logstore.FromRequestEvent(&b.Events[i])
		}
		return true
	}
	var b bus.ErrorBatch
	if json.Unmarshal(u.m.Payload, &b) != nil || len(b.Events) == 0 {
		return false
	}
	for i := range b.Events {
		if checkEvent(b.Events[i].ID, b.Events[i].Time) != "" {
			return false
		}
	}
	u.errs = make([]logstore.ErrorLog, len(b.Events))
	for i := range b.Events {
		u.errs[i] = logstore.FromErrorEvent(&b.Events[i])
	}
	return true
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

// deadLetter publishes a whole message with the reason to the DLQ stream and
// acknowledges it. If even that fails, the message is nacked and comes back.
func (in *Ingester) deadLetter(ctx context.Context, m *message.Message, reason string) {
	subject := m.Metadata.Get(metaSubject)
	if err := in.publishDeadLetter(ctx, subject, msgKey(m), reason, m.Payload); err != nil {
		in.log.Error("dead-letter publish failed; message will be redelivered", "subject", subject, "err", err)
		m.Nack()
		return
	}
	m.Ack()
}

func (in *Ingester) publishDeadLetter(ctx context.Context, subject, id, reason string, payload []byte) error {
	dl := bus.DeadLetter{V: bus.Version, Time: time.Now().UTC(), Subject: subject, Reason: reason, Payload: string(payload)}
	data, _ := json.Marshal(dl)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := in.deps.JS.Publish(pctx, bus.SubjectDLQLogd, data, jetstream.WithMsgID("logd:"+id)); err != nil {
		return err
	}
	in.m.deadLetters.WithLabelValues(subject).Inc()
	in.log.Warn("dead-lettered", "subject", subject, "reason", reason, "id", id)
	return nil
}

// insert stores a batch's logs, then its rollup parts, retrying each with
// backoff until MongoDB takes it, and acknowledges the batch's messages. Only
// a stop ends the retries; the messages then stay unacknowledged and are
// redelivered.
func (in *Ingester) insert(ctx context.Context, b *batch) {
	var reqs []logstore.RequestLog
	var errs []logstore.ErrorLog
	for _, u := range b.units {
		reqs = append(reqs, u.reqs...)
		errs = append(errs, u.errs...)
	}
	b.start = time.Now()
	var p *logstore.Pending
	err := in.retry(ctx, "insert logs", b.id, b.events, func(wctx context.Context) error {
		var err error
		p, err = in.deps.Store.InsertLogs(wctx, b.id, reqs, errs)
		return err
	})
	if err == nil {
		err = in.retry(ctx, "write rollup parts", b.id, b.events, func(wctx context.Context) error {
			return in.deps.Store.Settle(wctx, p)
		})
	}
	if err != nil {
		in.finish(b, false)
		return
	}
	took := time.Since(b.start)
	in.m.writeSeconds.Observe(took.Seconds())
	in.m.batchSize.Observe(float64(b.events))
	in.m.lastWrite.SetToCurrentTime()
	res := p.Result
	in.m.events.WithLabelValues("request", "inserted").Add(float64(res.Inserted))
	in.m.events.WithLabelValues("request", "duplicate").Add(float64(res.Duplicates))
	in.m.events.WithLabelValues("error", "inserted").Add(float64(res.Errors))
	in.log.Debug("batch stored", "batch", b.id, "events", b.events, "inserted", res.Inserted,
		"duplicates", res.Duplicates, "rolled", res.Rolled, "took", took)
	in.finish(b, true)
}

// foldLoop folds the rollup parts into the rollups every FoldEvery, until
// none is left, on every replica at once: the store lets one round run at a
// time and finishes a dead replica's round. A failed pass is retried on the
// next tick; the parts stay counted by queries meanwhile.
func (in *Ingester) foldLoop(ctx context.Context) {
	t := time.NewTicker(in.opt.FoldEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			start := time.Now()
			fctx, cancel := context.WithTimeout(ctx, time.Minute)
			n, err := in.deps.Store.Fold(fctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					in.m.writeFailures.Inc()
					in.log.Warn("fold rollup parts failed; retrying on the next tick", "err", err)
				}
				break
			}
			if n == 0 {
				break
			}
			in.m.foldSeconds.Observe(time.Since(start).Seconds())
			in.m.foldParts.Observe(float64(n))
			in.log.Debug("rollup parts folded", "parts", n, "took", time.Since(start))
		}
	}
}

// retry runs op until it succeeds or ctx ends (then it returns ctx's error).
// A stop still lets an attempt in progress finish briefly, so its acks go out.
func (in *Ingester) retry(ctx context.Context, what, id string, events int, op func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := op(wctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				in.log.Info(what+" succeeded after retries", "batch", id, "attempts", attempt, "events", events)
			}
			return nil
		}
		in.m.writeFailures.Inc()
		in.log.Warn(what+" failed; retrying, events stay unacknowledged",
			"batch", id, "events", events, "attempt", attempt, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, in.opt.MaxBackoff)
	}
}

// rememberMessages bounds the stored message keys kept (about 4 MiB).
const rememberMessages = 1 << 16

// remember notes a stored message (under mu).
func (in *Ingester) remember(key string) {
	if in.done[key] {
		return
	}
	in.done[key] = true
	in.doneOrder = append(in.doneOrder, key)
	if len(in.doneOrder) > rememberMessages {
		delete(in.done, in.doneOrder[0])
		in.doneOrder = in.doneOrder[1:]
	}
}

// finish acknowledges (stored) or nacks (given up) a batch's messages and
// the redelivered copies that waited for them, and forgets the batch.
func (in *Ingester) finish(b *batch, stored bool) {
	in.mu.Lock()
	var copies []*message.Message
	for _, u := range b.units {
		copies = append(copies, u.copies...)
		delete(in.msgs, u.key)
		if stored && !strings.HasPrefix(u.key, noSeq) {
			in.remember(u.key)
		}
	}
	in.mu.Unlock()
	for _, u := range b.units {
		if stored {
			u.m.Ack()
		} else {
			u.m.Nack()
		}
	}
	for _, m := range copies {
		if stored {
			m.Ack()
		} else {
			m.Nack()
		}
	}
}

// pollBacklog keeps the backlog gauge current from the consumers' info:
// events not yet delivered plus delivered but unacknowledged.
func (in *Ingester) pollBacklog(ctx context.Context) {
	t := time.NewTicker(in.opt.BacklogEvery)
	defer t.Stop()
	stalls := map[string]*stall{}
	for {
		for _, name := range []string{bus.ConsumerLogdRequests, bus.ConsumerLogdErrors} {
			info, err := consumerInfo(ctx, in.deps.JS, name)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					in.log.Debug("consumer info", "consumer", name, "err", err)
				}
				continue
			}
			in.m.backlog.WithLabelValues(name).Set(float64(info.NumPending + uint64(info.NumAckPending)))
			if stalls[name] == nil {
				stalls[name] = &stall{}
			}
			in.mu.Lock()
			held := len(in.msgs)
			in.mu.Unlock()
			if stalls[name].lost(info, held) {
				in.resetLost(ctx, name, info)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stall watches one consumer for deliveries lost on the way: a NATS node
// that dies takes the messages (or acks) it was relaying with it, and the
// consumer counts them as pending an ack until AckWait (minutes). With
// MaxAckPending reached, nothing else is delivered meanwhile.
type stall struct {
	delivered, floor uint64
	polls            int
}

// lost reports deliveries pending an ack that logd does not hold, with no
// progress, on three polls in a row.
func (s *stall) lost(info *jetstream.ConsumerInfo, held int) bool {
	same := info.Delivered.Stream == s.delivered && info.AckFloor.Stream == s.floor
	s.delivered, s.floor = info.Delivered.Stream, info.AckFloor.Stream
	if info.NumAckPending == 0 || held > 0 || !same {
		s.polls = 0
		return false
	}
	s.polls++
	if s.polls < 3 {
		return false
	}
	s.polls = 0
	return true
}

// resetLost has the server deliver again from the ack floor at once rather
// than after AckWait. What was stored already is recognised (done) and
// acknowledged; the rows are written by _id, so none is stored twice.
func (in *Ingester) resetLost(ctx context.Context, name string, info *jetstream.ConsumerInfo) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := in.deps.JS.ResetConsumer(rctx, bus.StreamEvents, name); err != nil {
		in.log.Warn("deliveries pending an ack that logd does not hold; reset failed, they come back after AckWait", "consumer", name, "ack_pending", info.NumAckPending, "err", err)
		return
	}
	in.log.Warn("deliveries pending an ack that logd does not hold (lost with a NATS node?); consumer reset to its ack floor", "consumer", name, "ack_pending", info.NumAckPending, "ack_floor", info.AckFloor.Stream)
}

func consumerInfo(ctx context.Context, js jetstream.JetStream, consumer string) (*jetstream.ConsumerInfo, error) {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := js.PushConsumer(ictx, bus.StreamEvents, consumer)
	if err != nil {
		return nil, err
	}
	return c.Info(ictx)
}

// Backlog returns the events a consumer has yet to finish.
func Backlog(ctx context.Context, js jetstream.JetStream, consumer string) (uint64, error) {
	info, err := consumerInfo(ctx, js, consumer)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

const (
	metaSubject = "nats_subject"
	metaSeq     = "stream_seq"
)

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
	if md, err := m.Metadata(); err == nil {
		msg.Metadata.Set(metaSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	}
	return msg, nil
}
