package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/gemini-balance-go/keyd/pool"
	"github.com/gemini-balance-go/shared/bus"
)

// Replica sync travels on bus.SubjectKeySync (the subject keyd's NATS user
// may publish on). Two message types share it, told apart by a header:
// key-state events (the public KeyStateEvent) and forwarded reports, so that
// every replica's failure counts and throttle windows agree.
const (
	// hdrInstance marks the replica process that sent a sync message.
	hdrInstance = "Gb-Keyd-Instance"
	// hdrType is "reports" on forwarded reports (a JSON array of
	// bus.Report), "report" on one (as replicas before batching sent them);
	// absent on a KeyStateEvent.
	hdrType     = "Gb-Keyd-Type"
	typeReport  = "report"
	typeReports = "reports"
)

// Forwarded reports travel in batches: one message per report cost every
// replica a JSON encoding, a NATS message and the echo of its own message
// for each request served (about 2% of the all-in-one's CPU under load),
// while a report only moves counters the other replicas need soon, not at
// once. State changes go out at once, after the reports before them.
const (
	// forwardLinger is how long a report waits for others to share its message.
	forwardLinger = 25 * time.Millisecond
	// forwardMax sends a batch at once when it holds this many reports.
	forwardMax = 256
)

// forwarder holds the reports waiting to go to the other replicas.
type forwarder struct {
	mu      sync.Mutex // also orders the messages: held while one is sent
	pending []bus.Report
	timer   *time.Timer
}

// publish sends state changes to the other replicas (core NATS) and to the
// event stream (JetStream, for taps and history).
func (s *Service) publish(evs ...bus.KeyStateEvent) {
	if len(evs) > 0 {
		s.flushReports() // the reports before a change arrive before it
	}
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

// forwardReport queues an attempt's report for the other replicas, which
// apply it without publishing (the state events come from this one).
func (s *Service) forwardReport(r bus.Report) {
	f := &s.fwd
	f.mu.Lock()
	f.pending = append(f.pending, r)
	n := len(f.pending)
	if n == 1 {
		if f.timer == nil {
			f.timer = time.AfterFunc(forwardLinger, s.flushReports)
		} else {
			f.timer.Reset(forwardLinger)
		}
	}
	f.mu.Unlock()
	if n >= forwardMax {
		s.flushReports()
	}
}

// flushReports sends the queued reports to the other replicas.
func (s *Service) flushReports() {
	f := &s.fwd
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 {
		return
	}
	f.timer.Stop()
	s.sendReports(f.pending)
	f.pending = f.pending[:0]
}

// sendReports publishes rs as one message, or as several when that would
// exceed the server's payload limit.
func (s *Service) sendReports(rs []bus.Report) {
	data, err := json.Marshal(rs)
	if err != nil {
		return
	}
	if limit := s.d.NC.MaxPayload(); limit > 0 && int64(len(data)) > limit/2 && len(rs) > 1 {
		s.sendReports(rs[:len(rs)/2])
		s.sendReports(rs[len(rs)/2:])
		return
	}
	msg := &nats.Msg{Subject: bus.SubjectKeySync, Data: data, Header: nats.Header{}}
	msg.Header.Set(hdrInstance, s.instance)
	msg.Header.Set(hdrType, typeReports)
	if err := s.d.NC.PublishMsg(msg); err != nil {
		s.log.Debug("forwarded reports not sent", "reports", len(rs), "err", err)
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
	switch m.Header.Get(hdrType) {
	case typeReports:
		var rs []bus.Report
		if err := json.Unmarshal(m.Data, &rs); err == nil {
			for _, r := range rs {
				s.pool.Report(r, false)
			}
		}
		return
	case typeReport:
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
		if !s.added.add(ev.KeyID) {
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
		select {
		case <-ctx.Done():
			return
		case <-s.added.ready:
		}
		// Let the rest of a burst arrive: one query loads it all.
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		ids := s.added.take(1000)
		if len(ids) == 0 {
			continue // a stale token
		}
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
