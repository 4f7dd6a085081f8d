// Package events publishes edge's request and error events to JetStream
// through Watermill. Publishing never blocks a client request: events go into
// a bounded in-memory queue drained by a few workers. When the bus is slower
// than the traffic for long enough to fill the queue (EVENT_QUEUE events),
// new events are dropped and counted in gb_edge_events_dropped_total; nothing
// already queued is lost, and requests keep being served.
package events

import (
	"context"
	json "github.com/goccy/go-json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gemini-balance-go/shared/bus"
)

// NewID returns a unique event id. It is also the JetStream Nats-Msg-Id, so
// a publish retried by Watermill is stored once.
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

type item struct {
	subject string
	id      string
	event   any
}

// Publisher queues events and publishes them in the background.
type Publisher struct {
	wm        message.Publisher
	q         chan item
	workers   int
	log       *slog.Logger
	dropped   prometheus.Counter
	published *prometheus.CounterVec
	failed    prometheus.Counter
	queued    prometheus.GaugeFunc
	drops     atomic.Int64
}

// Options configure a Publisher.
type Options struct {
	Queue    int // queue bound in events (config.Infra.EventQueue)
	Workers  int // concurrent publishers (default 4)
	Logger   *slog.Logger
	Registry *prometheus.Registry
}

// New returns a Publisher over a Watermill publisher. Call Run to drain it.
func New(wm message.Publisher, o Options) *Publisher {
	if o.Queue <= 0 {
		o.Queue = 65536
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p := &Publisher{
		wm:      wm,
		q:       make(chan item, o.Queue),
		workers: o.Workers,
		log:     o.Logger,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gb_edge_events_dropped_total",
			Help: "Events dropped because the in-memory event queue was full.",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gb_edge_events_published_total",
			Help: "Events published to JetStream, by subject.",
		}, []string{"subject"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gb_edge_events_publish_failures_total",
			Help: "Publish attempts that failed and were retried.",
		}),
	}
	p.queued = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gb_edge_events_queued",
		Help: "Events waiting in the in-memory queue.",
	}, func() float64 { return float64(len(p.q)) })
	if o.Registry != nil {
		o.Registry.MustRegister(p.dropped, p.published, p.failed, p.queued)
	}
	return p
}

// Publish queues an event without blocking. It reports false when the queue
// is full and the event was dropped.
func (p *Publisher) Publish(subject, id string, event any) bool {
	if p == nil {
		return false
	}
	select {
	case p.q <- item{subject: subject, id: id, event: event}:
		return true
	default:
		p.dropped.Inc()
		p.drops.Add(1)
		return false
	}
}

// Request queues a request event.
func (p *Publisher) Request(ev *bus.RequestEvent) bool {
	return p.Publish(bus.SubjectEventRequest, ev.ID, ev)
}

// Error queues an error event.
func (p *Publisher) Error(ev *bus.ErrorEvent) bool {
	return p.Publish(bus.SubjectEventError, ev.ID, ev)
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
	for len(p.q) > 0 {
		select {
		case <-deadline:
			p.log.Warn("events left unpublished at shutdown", "count", len(p.q))
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

func (p *Publisher) work(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case it := <-p.q:
			p.send(it, stop)
		}
	}
}

// send publishes one event, retrying with backoff while the bus refuses it;
// the Nats-Msg-Id makes a retry after a lost ack harmless.
func (p *Publisher) send(it item, stop <-chan struct{}) {
	payload, err := json.Marshal(it.event)
	if err != nil {
		p.log.Error("encode event", "subject", it.subject, "err", err)
		return
	}
	msg := message.NewMessage(it.id, payload)
	backoff := 50 * time.Millisecond
	for {
		err := p.wm.Publish(it.subject, msg)
		if err == nil {
			p.published.WithLabelValues(it.subject).Inc()
			return
		}
		p.failed.Inc()
		p.log.Warn("publish event", "subject", it.subject, "err", err)
		select {
		case <-stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
