package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
)

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

	data, enc := m.Payload, m.Metadata.Get(metaEncoding)
	if enc != "" {
		plain, err := bus.DecodeBatchInto(in.plain, enc, m.Payload)
		if err != nil {
			in.deadLetter(ctx, m, "undecodable batch payload: "+err.Error())
			return nil
		}
		data = plain
		if cap(plain) <= maxKeptPlain {
			in.plain = plain
		}
	}
	if in.parseValid(u, isRequest, data) {
		in.hold(u)
		return u
	}
	if enc != "" {
		// From here on the message is its JSON, which is also what a dead
		// letter keeps: a copy, as the next message is decoded into data.
		m.Payload = bytes.Clone(data)
		delete(m.Metadata, metaEncoding)
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

// maxKeptPlain bounds the buffer parse keeps for decompressed batches (edge
// cuts a batch at 512 KiB of JSON).
const maxKeptPlain = 1 << 20

// parseValid decodes a message's JSON (data) in one pass when it is a batch
// of valid events, which is the common case, and reports whether it was.
func (in *Ingester) parseValid(u *unit, isRequest bool, data []byte) bool {
	if isRequest {
		b := bus.RequestBatch{Events: in.reqEvents.take()}
		defer func() { in.reqEvents.give(b.Events) }()
		if json.Unmarshal(data, &b) != nil || len(b.Events) == 0 {
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
	b := bus.ErrorBatch{Events: in.errEvents.take()}
	defer func() { in.errEvents.give(b.Events) }()
	if json.Unmarshal(data, &b) != nil || len(b.Events) == 0 {
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

// eventArray is the array batches of one kind are decoded into, batch
// after batch: the events are copied into logs at once, and decoding into a
// fresh array grew it by doubling, a tenth of logd's allocation under load.
// Only the goroutine that parses messages uses it.
type eventArray[T any] []T

// take returns it empty, its elements all zero values: json.Unmarshal
// appends into it, and an element it reuses must not keep a field the new
// event leaves out.
func (a *eventArray[T]) take() []T {
	if *a == nil {
		*a = make([]T, 0, bus.MaxBatchEvents)
	}
	return (*a)[:0]
}

// give takes back s, what take returned once decoded into, and zeroes the
// array, which also drops what the events pointed to. A batch over the bound
// grew s into a larger array, which is dropped.
func (a *eventArray[T]) give(s []T) {
	if cap(s) > cap(*a) {
		s = *a
	}
	clear(s[:cap(s)])
	*a = s[:0]
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
	if !utf8.Valid(payload) {
		dl.Payload, dl.PayloadEncoding = base64.StdEncoding.EncodeToString(payload), "base64"
	}
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
