package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/wait"
)

// stored is one batch message as JetStream keeps it.
type stored struct {
	subject string
	msgID   string
	ids     []string
	bodies  []string // error events' request bodies
	enc     string   // bus.HeaderEncoding
	size    int      // of the JSON, decoded
}

// readStored reads every request and error batch in GB_EVENTS, decoding each
// payload strictly into its bus type.
func readStored(t *testing.T, js jetstream.JetStream) []stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.SubjectEventRequests, bus.SubjectEventErrors}})
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 {
			return out
		}
		batch, err := cons.Fetch(int(min(info.NumPending, 500)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			s := stored{subject: m.Subject(), msgID: m.Headers().Get(jetstream.MsgIDHeader), enc: m.Headers().Get(bus.HeaderEncoding)}
			data, err := bus.DecodeBatch(s.enc, m.Data())
			if err != nil {
				t.Fatalf("batch %s: %v", s.msgID, err)
			}
			s.size = len(data)
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.DisallowUnknownFields()
			switch m.Subject() {
			case bus.SubjectEventRequests:
				var b bus.RequestBatch
				if err := dec.Decode(&b); err != nil || b.V != bus.Version {
					t.Fatalf("request batch v%d: %v: %.200s", b.V, err, data)
				}
				for _, ev := range b.Events {
					s.ids = append(s.ids, ev.ID)
				}
			case bus.SubjectEventErrors:
				var b bus.ErrorBatch
				if err := dec.Decode(&b); err != nil || b.V != bus.Version {
					t.Fatalf("error batch v%d: %v: %.200s", b.V, err, data)
				}
				for _, ev := range b.Events {
					s.ids = append(s.ids, ev.ID)
					s.bodies = append(s.bodies, ev.RequestBody)
				}
			}
			out = append(out, s)
		}
	}
}

// waitStored waits until GB_EVENTS holds at least want events and returns
// what it holds.
func waitStored(t *testing.T, js jetstream.JetStream, want int) []stored {
	t.Helper()
	var got []stored
	wait.ForState(t, fmt.Sprintf("%d events stored", want), func() (bool, string) {
		got = readStored(t, js)
		n := 0
		for _, s := range got {
			n += len(s.ids)
		}
		return n >= want, fmt.Sprintf("%d stored", n)
	})
	return got
}

// exactlyOnce fails unless the stored events are exactly want, each once,
// and every batch message has its own Nats-Msg-Id.
func exactlyOnce(t *testing.T, got []stored, want []string) {
	t.Helper()
	seen := map[string]int{}
	msgIDs := map[string]bool{}
	for _, s := range got {
		if s.msgID == "" || msgIDs[s.msgID] {
			t.Errorf("batch Nats-Msg-Id %q missing or repeated", s.msgID)
		}
		msgIDs[s.msgID] = true
		for _, id := range s.ids {
			seen[id]++
		}
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s stored %d times", id, seen[id])
		}
		delete(seen, id)
	}
	if len(seen) > 0 {
		t.Errorf("%d events stored that were never accepted", len(seen))
	}
}

func run(t *testing.T, p *events.Publisher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func newWatermill(t *testing.T, nc *nats.Conn) message.Publisher {
	wm, err := events.NewWatermillPublisher(nc)
	if err != nil {
		t.Fatal(err)
	}
	return wm
}

func requestEvent() *bus.RequestEvent {
	return &bus.RequestEvent{V: bus.Version, ID: events.NewID(), Time: time.Now().UTC(), Route: "gemini.generateContent", Status: 200, Success: true}
}

func errorEvent(body string) *bus.ErrorEvent {
	return &bus.ErrorEvent{V: bus.Version, ID: events.NewID(), Time: time.Now().UTC(), Class: "server_error", UpstreamStatus: 503, RequestBody: body}
}

// metric sums a counter's values, or a histogram's sample counts, over its labels.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func TestABurstArrivesOnceEachInBatchesOnItsOwnSubject(t *testing.T) {
	nb := natstest.StartBus(t)
	nc, js := nb.NC, nb.JS
	reg := prometheus.NewRegistry()
	p := events.New(newWatermill(t, nc), events.Options{Registry: reg})
	run(t, p)
	var want []string
	for i := range 5000 {
		if i%10 == 0 {
			ev := errorEvent("")
			want = append(want, ev.ID)
			if !p.Error(ev) {
				t.Fatal("error event dropped")
			}
			continue
		}
		ev := requestEvent()
		want = append(want, ev.ID)
		if !p.Request(ev) {
			t.Fatal("request event dropped")
		}
	}
	got := waitStored(t, js, len(want))
	exactlyOnce(t, got, want)
	largest, errIDs := 0, 0
	for _, s := range got {
		largest = max(largest, len(s.ids))
		if len(s.ids) > bus.MaxBatchEvents {
			t.Errorf("batch of %d events", len(s.ids))
		}
		if s.subject == bus.SubjectEventErrors {
			errIDs += len(s.ids)
		}
	}
	if largest < 2 {
		t.Errorf("5,000 events went out one per message")
	}
	if errIDs != 500 {
		t.Errorf("%d events on %s, want the 500 error events", errIDs, bus.SubjectEventErrors)
	}
	if n := metric(t, reg, "gb_edge_events_published_total"); n != 5000 {
		t.Errorf("published metric %v", n)
	}
	if n := metric(t, reg, "gb_edge_events_batch_size"); int(n) != len(got) {
		t.Errorf("batch metric counts %v batches, stream holds %d", n, len(got))
	}
	t.Logf("5000 events in %d messages, largest %d", len(got), largest)
}

// A batch of bus.CompressBatchFrom bytes or more is stored S2-compressed
// (JetStream keeps a stream's recent blocks in memory, so the bytes on the
// bus were most of the all-in-one's heap under load); a smaller one stays
// plain JSON. Both decode to the events sent, once each.
func TestLargeBatchesAreStoredCompressedAndSmallOnesAsJSON(t *testing.T) {
	nb := natstest.StartBus(t)
	nc, js := nb.NC, nb.JS
	p := events.New(newWatermill(t, nc), events.Options{Linger: 200 * time.Millisecond})
	run(t, p)
	var want []string
	lone := requestEvent()
	want = append(want, lone.ID)
	p.Request(lone)
	waitStored(t, js, 1)
	for range 200 {
		ev := requestEvent()
		want = append(want, ev.ID)
		p.Request(ev)
	}
	x := errorEvent(strings.Repeat("a body ", 400))
	want = append(want, x.ID)
	p.Error(x)
	got := waitStored(t, js, len(want))
	exactlyOnce(t, got, want)
	compressed := 0
	for _, s := range got {
		switch {
		case s.size >= bus.CompressBatchFrom && s.enc != bus.EncodingS2:
			t.Errorf("%s batch of %d bytes (%d events) stored with encoding %q, want s2", s.subject, s.size, len(s.ids), s.enc)
		case s.size < bus.CompressBatchFrom && s.enc != "":
			t.Errorf("%s batch of %d bytes stored with encoding %q, want plain JSON", s.subject, s.size, s.enc)
		case s.enc == bus.EncodingS2:
			compressed++
		}
	}
	if got[0].enc != "" || len(got[0].ids) != 1 || compressed < 2 {
		t.Fatalf("the lone event's message has encoding %q; %d of %d messages compressed", got[0].enc, compressed, len(got))
	}
}

// EVENT_COMPRESSION=off (Options.Plain) sends every batch as plain JSON, for
// consumers older than the compression.
func TestPlainSendsLargeBatchesUncompressed(t *testing.T) {
	nb := natstest.StartBus(t)
	p := events.New(newWatermill(t, nb.NC), events.Options{Linger: 100 * time.Millisecond, Plain: true})
	run(t, p)
	var want []string
	for range 100 {
		ev := requestEvent()
		want = append(want, ev.ID)
		p.Request(ev)
	}
	got := waitStored(t, nb.JS, len(want))
	exactlyOnce(t, got, want)
	for _, s := range got {
		if s.enc != "" {
			t.Fatalf("a %d-byte batch was sent with encoding %q", s.size, s.enc)
		}
	}
	if got[0].size < bus.CompressBatchFrom {
		t.Fatalf("the batch is %d bytes, too small to show anything", got[0].size)
	}
}

// Events that arrive within the linger after a batch's first go out in one
// message: at moderate traffic a message per few events would cost the bus
// and logd a message, a rollup part and an ack each.
func TestEventsArrivingWithinTheLingerShareOneMessage(t *testing.T) {
	nb := natstest.StartBus(t)
	nc, js := nb.NC, nb.JS
	p := events.New(newWatermill(t, nc), events.Options{Linger: 300 * time.Millisecond})
	run(t, p)
	var want []string
	for range 5 {
		ev := requestEvent()
		want = append(want, ev.ID)
		p.Request(ev)
		time.Sleep(10 * time.Millisecond) // far longer than a publish to the local server takes
	}
	got := waitStored(t, js, 5)
	exactlyOnce(t, got, want)
	if len(got) != 1 {
		t.Fatalf("5 events 10 ms apart went out in %d messages, want 1 (linger 300 ms)", len(got))
	}
}

// An event at low traffic leaves alone once the linger is over.
func TestAnEventAtLowTrafficLeavesAloneAfterTheLinger(t *testing.T) {
	nb := natstest.StartBus(t)
	nc, js := nb.NC, nb.JS
	p := events.New(newWatermill(t, nc), events.Options{})
	run(t, p)
	ev := requestEvent()
	p.Request(ev)
	got := waitStored(t, js, 1)
	if len(got) != 1 || len(got[0].ids) != 1 || got[0].ids[0] != ev.ID || got[0].msgID == ev.ID {
		t.Fatalf("stored %+v", got)
	}
	x := errorEvent("")
	p.Error(x)
	got = waitStored(t, js, 2)
	if len(got) != 2 || got[1].subject != bus.SubjectEventErrors || len(got[1].ids) != 1 || got[1].ids[0] != x.ID {
		t.Fatalf("stored %+v", got)
	}
}

// gate holds every publish until it is opened, like a bus that stalls.
type gate struct {
	message.Publisher
	open chan struct{}
	once sync.Once
}

func (g *gate) Publish(topic string, msgs ...*message.Message) error {
	<-g.open
	return g.Publisher.Publish(topic, msgs...)
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func TestAFullQueueDropsAndCountsNewEventsAndLosesNoneItAccepted(t *testing.T) {
	nb := natstest.StartBus(t)
	nc, js := nb.NC, nb.JS
	g := &gate{Publisher: newWatermill(t, nc), open: make(chan struct{})}
	t.Cleanup(g.release)
	reg := prometheus.NewRegistry()
	p := events.New(g, events.Options{Queue: 10, Workers: 1, Registry: reg})
	run(t, p)
	var accepted []string
	for range 1000 {
		ev := requestEvent()
		if p.Request(ev) {
			accepted = append(accepted, ev.ID)
		}
	}
	dropped := 1000 - len(accepted)
	if dropped == 0 || p.Dropped() != int64(dropped) || metric(t, reg, "gb_edge_events_dropped_total") != float64(dropped) {
		t.Fatalf("accepted %d, Dropped() %d, metric %v", len(accepted), p.Dropped(), metric(t, reg, "gb_edge_events_dropped_total"))
	}
	g.release()
	exactlyOnce(t, waitStored(t, js, len(accepted)), accepted)
}

// An event larger than the byte bound by itself still goes out, alone and
// whole; the events around it travel in their own batches.
func TestAnEventOverTheByteBoundGoesOutAloneAndWhole(t *testing.T) {
	nb := natstest.StartBus(t)
	nc, js := nb.NC, nb.JS
	p := events.New(newWatermill(t, nc), events.Options{Workers: 1, MaxBatchBytes: 2000})
	big := strings.Repeat("x", 5000)
	a, b, c, d := errorEvent("a"), errorEvent(big), errorEvent("c"), errorEvent("d")
	for _, ev := range []*bus.ErrorEvent{a, b, c, d} {
		p.Error(ev) // queued before the publisher runs: one worker sees all four
	}
	run(t, p)
	got := waitStored(t, js, 4)
	exactlyOnce(t, got, []string{a.ID, b.ID, c.ID, d.ID})
	var sizes []int
	for _, s := range got {
		sizes = append(sizes, len(s.ids))
	}
	if len(got) != 3 || sizes[0] != 1 || sizes[1] != 1 || sizes[2] != 2 || got[1].bodies[0] != big {
		t.Fatalf("batch sizes %v", sizes)
	}
}

func TestEventsQueuedWhileTheBusIsDownArriveOnceEachWhenItIsBack(t *testing.T) {
	srv := natstest.StartRestartable(t)
	nc, js := natstest.Connect(t, srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err := natsx.Provision(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p := events.New(newWatermill(t, nc), events.Options{Registry: reg})
	run(t, p)
	var want []string
	publish := func(n int) {
		for range n {
			ev := requestEvent()
			want = append(want, ev.ID)
			p.Request(ev)
		}
	}
	publish(10)
	waitStored(t, js, 10)

	srv.Stop()
	publish(100)
	wait.For(t, "the client notices the outage", func() bool { return nc.Status() != nats.CONNECTED })
	wait.For(t, "a publish attempt meets the outage", func() bool {
		return metric(t, reg, "gb_edge_events_publish_failures_total") > 0
	})
	srv.Restart(t)
	waitStored(t, js, len(want))
	// Once every event is acknowledged no retry is left in flight, so a batch
	// stored twice is in the stream by now.
	wait.For(t, "every event acknowledged", func() bool {
		return metric(t, reg, "gb_edge_events_published_total") >= float64(len(want))
	})
	exactlyOnce(t, readStored(t, js), want)
	if p.Dropped() != 0 {
		t.Errorf("%d events dropped", p.Dropped())
	}
}

// lostAck stores the first batch but reports a failure, as when JetStream's
// ack is lost on the way back.
type lostAck struct {
	message.Publisher
	once sync.Once
}

func (l *lostAck) Publish(topic string, msgs ...*message.Message) error {
	err := l.Publisher.Publish(topic, msgs...)
	lost := false
	l.once.Do(func() { lost = true })
	if err == nil && lost {
		return errors.New("nats: timeout")
	}
	return err
}

func TestABatchRetriedAfterALostAckIsStoredOnce(t *testing.T) {
	nb := natstest.StartBus(t)
	nc, js := nb.NC, nb.JS
	reg := prometheus.NewRegistry()
	p := events.New(&lostAck{Publisher: newWatermill(t, nc)}, events.Options{Registry: reg})
	want := []string{}
	for range 3 {
		ev := requestEvent()
		want = append(want, ev.ID)
		p.Request(ev)
	}
	run(t, p)
	wait.For(t, "events published", func() bool { return metric(t, reg, "gb_edge_events_published_total") >= 3 })
	got := readStored(t, js)
	exactlyOnce(t, got, want)
	if len(got) != 1 || metric(t, reg, "gb_edge_events_publish_failures_total") != 1 {
		t.Fatalf("%d messages stored, %v failures", len(got), metric(t, reg, "gb_edge_events_publish_failures_total"))
	}
}

func TestStoppingPublishesWhatIsStillQueued(t *testing.T) {
	nb := natstest.StartBus(t)
	nc, js := nb.NC, nb.JS
	p := events.New(newWatermill(t, nc), events.Options{})
	var want []string
	for range 1000 {
		ev := requestEvent()
		want = append(want, ev.ID)
		p.Request(ev)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stopped before it started: Run only drains
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, readStored(t, js), want)
}

func TestFinishedRequestEventCarriesNoSecret(t *testing.T) {
	const key = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
	const tok = "sk-caller-token-0123456789"
	rec := events.NewRecord("POST", "/v1beta/models/"+key+":generateContent", "r")
	rec.Model = key
	rec.SetCallerTokens(func() []string { return []string{tok} })
	rec.ClientError = "echo " + tok + strings.Repeat("x", 4080-5-len(tok)) + key // the cut at 4096 falls inside the key
	ev := rec.Finish(403)
	raw, _ := json.Marshal(ev)
	if strings.Contains(string(raw), key[:12]) || strings.Contains(string(raw), tok) {
		t.Fatalf("event carries a secret: %s", raw)
	}
}

// capture keeps every batch message's payload, in order.
type capture struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (c *capture) Publish(_ string, msgs ...*message.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		data, err := bus.DecodeBatch(m.Metadata.Get(bus.HeaderEncoding), m.Payload)
		if err != nil {
			return err
		}
		c.msgs = append(c.msgs, append([]byte(nil), data...))
	}
	return nil
}

func (c *capture) Close() error { return nil }

func (c *capture) payloads() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.msgs...)
}

// A batch message is exactly {"v":1,"events":[…]} around each event as
// json.Marshal encodes it, including the event that did not fit the
// previous batch and starts the next one: logd and every tap read these
// bytes.
func TestBatchBytesAreEachEventAsJSONMarshalEncodesIt(t *testing.T) {
	c := &capture{}
	reg := prometheus.NewRegistry()
	p := events.New(c, events.Options{Workers: 1, MaxBatchBytes: 900, Linger: -1, Registry: reg})
	var evs []*bus.RequestEvent
	for i := range 9 {
		ev := requestEvent()
		ev.Path = fmt.Sprintf("/v1beta/models/x-%d:generateContent?<&>\u2028é", i)
		ev.ClientError = strings.Repeat("q\"\\", i*20)
		evs = append(evs, ev)
		p.Request(ev) // queued before the publisher runs: one worker sees all
	}
	run(t, p)
	wait.For(t, "every event published", func() bool { return metric(t, reg, "gb_edge_events_published_total") >= float64(len(evs)) })
	next := 0
	msgs := c.payloads()
	for _, got := range msgs {
		want := []byte(fmt.Sprintf(`{"v":%d,"events":[`, bus.Version))
		for n := 0; next < len(evs) && len(want)+2 < len(got); n++ {
			if n > 0 {
				want = append(want, ',')
			}
			enc, err := json.Marshal(evs[next])
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, enc...)
			next++
		}
		want = append(want, "]}"...)
		if string(got) != string(want) {
			t.Fatalf("batch message\n got  %s\n want %s", got, want)
		}
	}
	if next != len(evs) || len(msgs) < 3 {
		t.Fatalf("%d of %d events in %d messages", next, len(evs), len(msgs))
	}
}

// slowSubjects records each batch's subject, taking a while per publish.
type slowSubjects struct {
	mu       sync.Mutex
	subjects []string
}

func (s *slowSubjects) Publish(topic string, _ ...*message.Message) error {
	time.Sleep(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subjects = append(s.subjects, topic)
	return nil
}

func (s *slowSubjects) Close() error { return nil }

func (s *slowSubjects) sent(subject string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.subjects {
		if x == subject {
			return true
		}
	}
	return false
}

// Request events arriving faster than the bus takes them keep that queue
// from ever emptying; an error event still goes out meanwhile.
func TestAnErrorEventGoesOutWhileRequestEventsNeverLetUp(t *testing.T) {
	wm := &slowSubjects{}
	p := events.New(wm, events.Options{Queue: 100_000, Workers: 1, Linger: -1})
	run(t, p)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 200 {
				p.Request(requestEvent())
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(50 * time.Millisecond) // the request queue has a backlog
	p.Error(errorEvent("while requests pour in"))
	deadline := time.Now().Add(3 * time.Second)
	for !wm.sent(bus.SubjectEventErrors) {
		if time.Now().After(deadline) {
			t.Fatal("the error event waited 3 s behind request events that never let up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !wm.sent(bus.SubjectEventRequests) {
		t.Fatal("no request batch went out at all")
	}
}
