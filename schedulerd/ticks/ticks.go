// Package ticks emits schedulerd's ticks: "recover" every CHECK_INTERVAL_HOURS
// (keyd re-verifies disabled keys) and "retention" once a day at 00:00 in
// TIMEZONE (logd deletes old logs). Ticks go through Watermill onto the
// GB_TICKS stream with Nats-Msg-Id "<name>:<slot>", so any number of
// schedulerd replicas store one tick per slot.
package ticks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // TIMEZONE must resolve on hosts without a zoneinfo database

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
)

// Deps are what Run needs. NC and Settings are required.
type Deps struct {
	NC       *nats.Conn
	Settings *natsx.Settings
	Log      *slog.Logger
	// Registry, when set, receives the tick counters.
	Registry *prometheus.Registry
	// Interval, when set, replaces both schedules with one fixed period (tests,
	// local development: TICK_INTERVAL=2s).
	Interval time.Duration
	// Replica names this instance in its micro service metadata.
	Replica string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Slot computes the slot a tick belongs to at a given time; ok is false when
// the tick is switched off.
type slotFunc func(now time.Time, s *config.Settings) (slot string, ok bool)

// Scheduler is one schedulerd replica.
type Scheduler struct{ d Deps }

// New checks deps; Run does the work.
func New(d Deps) (*Scheduler, error) {
	if d.NC == nil || d.Settings == nil {
		return nil, errors.New("ticks: NC and Settings are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Scheduler{d: d}, nil
}

// Ready is always nil: a connected schedulerd (boot's checks) can tick, and
// a publish that fails is retried on the next poll.
func (s *Scheduler) Ready(context.Context) error { return nil }

// Run emits ticks until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	d := s.d
	pub, err := NewPublisher(d.NC, d.Log)
	if err != nil {
		return err
	}
	js, err := jetstream.New(d.NC)
	if err != nil {
		return fmt.Errorf("ticks: jetstream: %w", err)
	}
	m := newMetrics(d.Registry)

	schedule := map[string]slotFunc{bus.TickRecover: recoverSlot, bus.TickRetention: retentionSlot}
	subjects := map[string]string{bus.TickRecover: bus.SubjectTickRecover, bus.TickRetention: bus.SubjectTickRetention}
	if d.Interval > 0 {
		fixed := fixedSlot(d.Interval)
		schedule = map[string]slotFunc{bus.TickRecover: fixed, bus.TickRetention: fixed}
	}

	// Start from the last slot in the stream so a restart does not repeat a
	// slot that is older than the de-duplication window. A manual tick
	// ("run now") is not a scheduled slot: the newest scheduled one counts.
	var mu sync.Mutex
	last := map[string]string{}
	for name, subj := range subjects {
		if t, ok := lastTick(ctx, js, subj); ok && !strings.HasPrefix(t.Slot, bus.ManualSlotPrefix) {
			last[name] = t.Slot
		}
	}

	svc, err := micro.AddService(d.NC, micro.Config{
		Name:        bus.ServiceSchedulerd,
		Version:     "1.0.0",
		Description: "recovery and retention ticks",
		Metadata:    map[string]string{"replica": d.Replica},
	})
	if err != nil {
		return fmt.Errorf("ticks: register micro service: %w", err)
	}
	defer func() { _ = svc.Stop() }()
	// status reads the newest tick of each subject from the stream, so every
	// replica answers the same, and adds when the next scheduled slot starts.
	err = svc.AddEndpoint("status", micro.HandlerFunc(func(r micro.Request) {
		go func() {
			_ = r.RespondJSON(status(ctx, js, d, d.Now(), d.Settings.Get()))
		}()
	}), micro.WithEndpointSubject(bus.SubjectSchedulerStatus))
	if err != nil {
		return fmt.Errorf("ticks: add status endpoint: %w", err)
	}
	// run emits a tick now with a manual slot: its Nats-Msg-Id cannot collide
	// with a scheduled slot's, so the scheduled tick still fires.
	err = svc.AddEndpoint("run", micro.HandlerFunc(func(r micro.Request) {
		var req bus.TickRunRequest
		_ = json.Unmarshal(r.Data(), &req)
		subj, ok := subjects[req.Name]
		if !ok {
			_ = r.RespondJSON(bus.TickRunReply{Error: bus.TickUnknown})
			return
		}
		now := d.Now().UTC()
		tick := bus.Tick{V: bus.Version, Name: req.Name, Slot: bus.ManualSlotPrefix + now.Format(time.RFC3339Nano), Time: now}
		if err := pub.Publish(tick); err != nil {
			m.failed.WithLabelValues(req.Name).Inc()
			_ = r.RespondJSON(bus.TickRunReply{Error: err.Error()})
			return
		}
		m.published.WithLabelValues(req.Name).Inc()
		d.Log.Info("tick run by admin", "tick", req.Name, "slot", tick.Slot)
		_ = r.RespondJSON(bus.TickRunReply{Name: req.Name, Slot: tick.Slot, MsgID: bus.TickMsgID(tick), Subject: subj})
	}), micro.WithEndpointSubject(bus.SubjectSchedulerRun))
	if err != nil {
		return fmt.Errorf("ticks: add run endpoint: %w", err)
	}

	poll := time.Second
	if d.Interval > 0 {
		poll = min(max(d.Interval/8, 50*time.Millisecond), time.Second)
	}
	d.Log.Info("schedulerd ticking", "interval_override", d.Interval.String(), "recover_last", last[bus.TickRecover], "retention_last", last[bus.TickRetention])
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		now := d.Now()
		cur := d.Settings.Get()
		for _, name := range []string{bus.TickRecover, bus.TickRetention} {
			slot, ok := schedule[name](now, cur)
			mu.Lock()
			due := ok && slot != last[name]
			mu.Unlock()
			if !due {
				continue
			}
			tick := bus.Tick{V: bus.Version, Name: name, Slot: slot, Time: now.UTC()}
			if err := pub.Publish(tick); err != nil {
				// Retried on the next poll; the slot stays due.
				d.Log.Warn("tick publish failed", "tick", name, "slot", slot, "err", err)
				m.failed.WithLabelValues(name).Inc()
				continue
			}
			m.published.WithLabelValues(name).Inc()
			d.Log.Info("tick", "tick", name, "slot", slot)
			mu.Lock()
			last[name] = slot
			mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// recoverSlot: CHECK_INTERVAL_HOURS-long slots aligned to the Unix epoch in
// UTC, so every replica computes the same slot; 0 turns recovery off.
func recoverSlot(now time.Time, s *config.Settings) (string, bool) {
	if s.CheckIntervalHours <= 0 {
		return "", false
	}
	return now.UTC().Truncate(time.Duration(s.CheckIntervalHours) * time.Hour).Format("2006-01-02T15:04"), true
}

// retentionSlot: the calendar day in TIMEZONE, so the tick fires at local midnight
// (and at start-up if today's has not fired yet).
func retentionSlot(now time.Time, s *config.Settings) (string, bool) {
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil || s.Timezone == "" {
		loc = time.UTC
	}
	return now.In(loc).Format("2006-01-02"), true
}

func fixedSlot(every time.Duration) slotFunc {
	return func(now time.Time, _ *config.Settings) (string, bool) {
		return now.UTC().Truncate(every).Format("2006-01-02T15:04:05.000"), true
	}
}

// lastTick reads the newest tick on a subject; ok is false if none.
func lastTick(ctx context.Context, js jetstream.JetStream, subject string) (bus.Tick, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamTicks)
	if err != nil {
		return bus.Tick{}, false
	}
	msg, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return bus.Tick{}, false
	}
	var t bus.Tick
	if json.Unmarshal(msg.Data, &t) != nil {
		return bus.Tick{}, false
	}
	return t, true
}

// status describes each tick: its newest slot on the stream and the next
// scheduled one.
func status(ctx context.Context, js jetstream.JetStream, d Deps, now time.Time, s *config.Settings) bus.SchedulerStatus {
	out := bus.SchedulerStatus{Replica: d.Replica, Ticks: []bus.TickStatus{}}
	for _, name := range []string{bus.TickRecover, bus.TickRetention} {
		st := bus.TickStatus{Name: name, Subject: bus.SubjectTickRecover, Enabled: true}
		if name == bus.TickRetention {
			st.Subject = bus.SubjectTickRetention
		}
		if t, ok := lastTick(ctx, js, st.Subject); ok {
			st.Last, st.LastAt = t.Slot, t.Time
		}
		switch {
		case d.Interval > 0:
			st.Schedule = "every " + d.Interval.String() + " (TICK_INTERVAL)"
			st.Next = now.UTC().Truncate(d.Interval).Add(d.Interval)
			st.NextSlot, _ = fixedSlot(d.Interval)(st.Next, s)
		case name == bus.TickRecover && s.CheckIntervalHours <= 0:
			st.Enabled, st.Schedule = false, "off (CHECK_INTERVAL_HOURS=0)"
		case name == bus.TickRecover:
			every := time.Duration(s.CheckIntervalHours) * time.Hour
			st.Schedule = fmt.Sprintf("every %d h (UTC)", s.CheckIntervalHours)
			st.Next = now.UTC().Truncate(every).Add(every)
			st.NextSlot, _ = recoverSlot(st.Next, s)
		default:
			loc, err := time.LoadLocation(s.Timezone)
			if err != nil || s.Timezone == "" {
				loc = time.UTC
			}
			st.Schedule = "daily 00:00 " + loc.String()
			y, mo, day := now.In(loc).Date()
			st.Next = time.Date(y, mo, day+1, 0, 0, 0, 0, loc).UTC()
			st.NextSlot, _ = retentionSlot(st.Next, s)
		}
		out.Ticks = append(out.Ticks, st)
	}
	return out
}

// Publisher puts ticks on GB_TICKS through Watermill.
type Publisher struct {
	pub *wmnats.Publisher
}

// NewPublisher publishes on nc. The publisher is never closed, because
// closing it would close nc, which belongs to the caller.
func NewPublisher(nc *nats.Conn, log *slog.Logger) (*Publisher, error) {
	pub, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		// TrackMsgId sends the Watermill UUID as Nats-Msg-Id; the UUID is the tick's id.
		JetStream: wmnats.JetStreamConfig{TrackMsgId: true},
	}, watermill.NewSlogLogger(log))
	if err != nil {
		return nil, fmt.Errorf("ticks: watermill publisher: %w", err)
	}
	return &Publisher{pub: pub}, nil
}

// Publish stores a tick; a second publish of the same slot is dropped by JetStream.
func (p *Publisher) Publish(t bus.Tick) error {
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	subject := bus.SubjectTickRecover
	if t.Name == bus.TickRetention {
		subject = bus.SubjectTickRetention
	}
	msg := message.NewMessage(bus.TickMsgID(t), data)
	msg.Metadata.Set("Content-Type", "application/json")
	if err := p.pub.Publish(subject, msg); err != nil {
		return fmt.Errorf("publish tick %s: %w", bus.TickMsgID(t), err)
	}
	return nil
}

type metrics struct {
	published, failed *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) metrics {
	m := metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gb_ticks_published_total", Help: "Ticks published by this replica (duplicates of another replica included)."}, []string{"tick"}),
		failed:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gb_ticks_publish_failures_total", Help: "Tick publishes that failed and will be retried."}, []string{"tick"}),
	}
	if reg != nil {
		m.published = register(reg, m.published)
		m.failed = register(reg, m.failed)
	}
	return m
}

// register adds c to reg, or reuses the collector already registered there
// (a second Run in the same process).
func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}
