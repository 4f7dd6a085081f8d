// Package events publishes edge's request and error events to JetStream
// through Watermill, in batches.
//
// Publishing never blocks a client request: an event goes into a bounded
// in-memory queue (one for request events, one for error events, each of
// EVENT_QUEUE events). One publisher drains the queues by group commit:
// it takes an event, gathers what else arrives in the same queue within the
// linger (DefaultLinger; up to bus.MaxBatchEvents events and a byte bound),
// sends it as one bus.RequestBatch or bus.ErrorBatch message, waits for
// JetStream's ack, and repeats. At low traffic a message carries one event
// and leaves after the linger; under load batches grow with the traffic, so
// the bus cost per event, and logd's per message (a rollup part, its journal
// entry, an ack), shrinks as traffic grows.
//
// When the bus is slower than the traffic for long enough to fill a queue,
// new events are dropped and counted in gb_edge_events_dropped_total;
// nothing already queued is lost, and requests keep being served.
package events

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gemini-balance-go/shared/bus"
)

// DefaultMaxBatchBytes bounds the encoded size of one batch message. Error
// events may carry request bodies (up to 64 KiB before JSON escaping), so a
// batch is cut by bytes as well as by count; 512 KiB stays under NATS's
// default 1 MiB payload limit with room for headers.
const DefaultMaxBatchBytes = 512 << 10

// MaxBatchBytesFor is the batch byte bound for a connection whose server
// takes payloads of up to maxPayload bytes: DefaultMaxBatchBytes, or half the
// server's limit when that is smaller, so even an event that goes out alone
// (being over the bound by itself) usually still fits.
func MaxBatchBytesFor(maxPayload int64) int {
	if maxPayload > 0 && maxPayload/2 < DefaultMaxBatchBytes {
		return int(maxPayload / 2)
	}
	return DefaultMaxBatchBytes
}

// DefaultLinger is how long a batch waits for more events after its first.
// Without it a batch held what arrived during the previous publish, about 8
// events at 2,000 requests/s; 20 ms makes it about 40 and cut the all-in-one's
// CPU per request by about a tenth (go run ./deployments/bench). A log
// appears that much later, and the events of a killed edge's last 20 ms are
// the ones its queue loses anyway.
const DefaultLinger = 20 * time.Millisecond

// NewID returns a unique event id (logd's document _id). A batch message
// gets its own NewID as its Nats-Msg-Id.
func NewID() string { return nuid.Next() }

// NewWatermillPublisher returns a Watermill publisher on the existing
// GB_EVENTS stream (provisioned by natsx.Provision, never created per topic).
// Each message's UUID becomes its Nats-Msg-Id.
func NewWatermillPublisher(nc *nats.Conn) (message.Publisher, error) {
	return wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{TrackMsgId: true},
	}, nil)
}

// Publisher queues events and publishes them in batches in the background.
type Publisher struct {
	wm       message.Publisher
	reqs     *queue
	errs     *queue
	workers  int
	maxBytes int
	linger   time.Duration
	plain    bool
	log      *slog.Logger

	dropped   prometheus.Counter
	published *prometheus.CounterVec
	batches   *prometheus.HistogramVec
	failed    prometheus.Counter
	queued    prometheus.GaugeFunc
	drops     atomic.Int64
	inflight  atomic.Int64
}

// Options configure a Publisher.
type Options struct {
	// Queue bounds each queue (request events, error events) in events
	// (config.Infra.EventQueue; default 65,536).
	Queue int
	// Workers is the number of concurrent batch publishers. The default,
	// one, gives the largest batches: while it waits for JetStream's ack the
	// next batch accumulates. More publishers make smaller batches and spend
	// more CPU per event (`go run ./deployments/bench -profile` shows both), and one publisher's
	// ceiling (BenchmarkPublisher) is far above a replica's traffic.
	Workers int
	// MaxBatchBytes bounds a batch message's encoded size (default
	// DefaultMaxBatchBytes). An event that alone exceeds it goes out alone.
	MaxBatchBytes int
	// Linger is how long a batch waits for more events after its first
	// (default DefaultLinger; negative: not at all).
	Linger time.Duration
	// Plain sends every batch as JSON, never S2-compressed
	// (EVENT_COMPRESSION=off: for consumers older than the compression).
	Plain    bool
	Logger   *slog.Logger
	Registry *prometheus.Registry
}

// New returns a Publisher over a Watermill publisher. Call Run to drain it.
func New(wm message.Publisher, o Options) *Publisher {
	if o.Queue <= 0 {
		o.Queue = 65536
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	switch {
	case o.Linger == 0:
		o.Linger = DefaultLinger
	case o.Linger < 0:
		o.Linger = 0
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p := &Publisher{
		wm:       wm,
		reqs:     newQueue(bus.SubjectEventRequests, o.Queue),
		errs:     newQueue(bus.SubjectEventErrors, o.Queue),
		workers:  o.Workers,
		maxBytes: o.MaxBatchBytes,
		linger:   o.Linger,
		plain:    o.Plain,
		log:      o.Logger,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gb_edge_events_dropped_total",
			Help: "Events dropped because the in-memory event queue was full (or the bus refused a batch as too large).",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gb_edge_events_published_total",
			Help: "Events published to JetStream (inside batches), by subject.",
		}, []string{"subject"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gb_edge_events_batch_size",
			Help:    "Events per published batch message, by subject (_count is the number of batch messages).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, []string{"subject"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gb_edge_events_publish_failures_total",
			Help: "Batch publish attempts that failed (and were retried).",
		}),
	}
	p.queued = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gb_edge_events_queued",
		Help: "Events waiting in the in-memory queues.",
	}, func() float64 { return float64(p.reqs.len() + p.errs.len()) })
	if o.Registry != nil {
		o.Registry.MustRegister(p.dropped, p.published, p.batches, p.failed, p.queued)
	}
	return p
}

// Request queues a request event without blocking. It reports false when
// the queue is full and the event was dropped. The event must not change
// after it is queued.
func (p *Publisher) Request(ev *bus.RequestEvent) bool {
	if p == nil {
		return false
	}
	return p.enqueue(p.reqs, ev)
}

// Error queues an error event without blocking, like Request.
func (p *Publisher) Error(ev *bus.ErrorEvent) bool {
	if p == nil {
		return false
	}
	return p.enqueue(p.errs, ev)
}

func (p *Publisher) enqueue(q *queue, ev any) bool {
	if q.push(ev) {
		return true
	}
	p.drop(1)
	return false
}

func (p *Publisher) drop(n int) {
	p.dropped.Add(float64(n))
	p.drops.Add(int64(n))
}

// Dropped returns how many events were dropped so far.
func (p *Publisher) Dropped() int64 { return p.drops.Load() }

// Run publishes queued events until ctx ends, then keeps draining for up to
// five seconds so a graceful stop loses nothing the bus can still take.
func (p *Publisher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < p.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(stop)
		}()
	}
	<-ctx.Done()
	deadline := time.After(5 * time.Second)
	for p.reqs.len()+p.errs.len() > 0 || p.inflight.Load() > 0 {
		select {
		case <-deadline:
			p.log.Warn("events left unpublished at shutdown", "queued", p.reqs.len()+p.errs.len(), "in_flight", p.inflight.Load())
			close(stop)
			wg.Wait()
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()
	return nil
}

// work is one publisher: it waits for an event on either queue, then sends
// that event with everything else already waiting in the same queue.
func (p *Publisher) work(stop <-chan struct{}) {
	b := &batch{}
	first, second := p.reqs, p.errs
	for {
		select {
		case <-stop: // past the shutdown deadline: what is queued stays
			return
		default:
		}
		// Take turns, so a queue that never empties starves neither.
		first, second = second, first
		q := first
		ev, ok := q.pop()
		if !ok {
			q = second
			ev, ok = q.pop()
		}
		if !ok {
			select {
			case <-stop:
				return
			case <-p.reqs.ready:
			case <-p.errs.ready:
			}
			continue
		}
		p.inflight.Add(1)
		p.flush(q, ev, b, stop)
		p.inflight.Add(-1)
	}
}

// batch is a publisher's reusable encoding buffer. Each event is encoded
// into scratch and copied into buf, so encoding allocates nothing per event
// (json.Marshal returned a fresh copy of every one).
type batch struct {
	buf     bytes.Buffer
	n       int
	scratch bytes.Buffer
	enc     *json.Encoder
	z       []byte // buf S2-compressed, from bus.CompressBatchFrom bytes on
}

var batchHead = []byte(`{"v":` + strconv.Itoa(bus.Version) + `,"events":[`)

func (b *batch) reset() {
	b.buf.Reset()
	b.buf.Write(batchHead)
	b.n = 0
}

func (b *batch) add(enc []byte) {
	if b.n > 0 {
		b.buf.WriteByte(',')
	}
	b.buf.Write(enc)
	b.n++
}

// fits reports whether an encoded event still fits the byte bound (always
// true for the first event: an oversized event goes out alone).
func (b *batch) fits(enc []byte, maxBytes int) bool {
	return b.n == 0 || b.buf.Len()+1+len(enc)+2 <= maxBytes
}

// flush sends first and what else reaches q within the linger,
// group-commit style. A batch ends at bus.MaxBatchEvents events, at the byte
// bound or when the linger is over; an event that does not fit the current
// batch starts the next one (which waits only for what remains of the
// linger).
func (p *Publisher) flush(q *queue, first any, b *batch, stop <-chan struct{}) {
	next, ok := p.encode(q, first, b)
	var linger <-chan time.Time
	if p.linger > 0 {
		t := time.NewTimer(p.linger)
		defer t.Stop()
		linger = t.C
	}
	for ok {
		b.reset()
		b.add(next)
		ok = false
	fill:
		for b.n < bus.MaxBatchEvents {
			ev, got := q.pop()
			if !got {
				if linger == nil {
					break fill
				}
				select {
				case <-q.ready:
					continue fill
				case <-linger:
					linger = nil
					break fill
				case <-stop:
					linger = nil
					break fill
				}
			}
			enc, encoded := p.encode(q, ev, b)
			if !encoded {
				continue
			}
			if !b.fits(enc, p.maxBytes) {
				next, ok = enc, true // starts the next batch
				break fill
			}
			b.add(enc)
		}
		b.buf.WriteString("]}")
		p.send(q.subject, b, stop)
	}
}

// encode marshals one event into b's scratch buffer (valid until the next
// encode), logging (and dropping) an event that cannot be encoded, which
// would be a programming error. The bytes are json.Marshal's: Encode adds
// only the newline, cut here.
func (p *Publisher) encode(q *queue, ev any, b *batch) ([]byte, bool) {
	if b.enc == nil {
		b.enc = json.NewEncoder(&b.scratch)
	}
	b.scratch.Reset()
	if err := b.enc.Encode(ev); err != nil {
		p.log.Error("encode event", "subject", q.subject, "err", err)
		p.drop(1)
		return nil, false
	}
	enc := b.scratch.Bytes()
	return enc[:len(enc)-1], true
}

// send publishes one batch, retrying with backoff while the bus refuses
// it. The batch keeps its message (and so its Nats-Msg-Id) across retries,
// so a retry after a lost ack is stored once. Only a stop (after the
// shutdown drain deadline) or a payload the server can never take ends the
// retries; both lose the batch and say so.
func (p *Publisher) send(subject string, b *batch, stop <-chan struct{}) {
	msg := message.NewMessage(NewID(), b.buf.Bytes())
	if !p.plain && b.buf.Len() >= bus.CompressBatchFrom {
		b.z = bus.EncodeBatchS2(b.z, b.buf.Bytes())
		msg.Payload = b.z
		msg.Metadata.Set(bus.HeaderEncoding, bus.EncodingS2)
	}
	backoff := 50 * time.Millisecond
	for {
		err := p.wm.Publish(subject, msg)
		if err == nil {
			p.published.WithLabelValues(subject).Add(float64(b.n))
			p.batches.WithLabelValues(subject).Observe(float64(b.n))
			return
		}
		p.failed.Inc()
		if errors.Is(err, nats.ErrMaxPayload) {
			p.log.Error("event batch larger than the bus accepts; dropped", "subject", subject, "events", b.n, "bytes", b.buf.Len(), "err", err)
			p.drop(b.n)
			return
		}
		p.log.Warn("publish event batch", "subject", subject, "events", b.n, "err", err)
		select {
		case <-stop:
			p.log.Warn("event batch left unpublished at shutdown", "subject", subject, "events", b.n)
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
