package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// Issue 2's walking skeleton across real processes: a generateContent call through each
// of two edge replicas succeeds, logd writes both request rows to MongoDB, a plain NATS
// subscriber sees the events, and no event or process log carries a configured secret.
func TestRequestThroughEachEdgeIsAnsweredLoggedAndPublishedWithoutSecrets(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tap := tapEvents(t, s)

	for i := range 2 {
		c := s.Gemini(t, i)
		prompt := fmt.Sprintf("hello from edge %d", i)
		res, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text(prompt), nil)
		if err != nil {
			t.Fatalf("edge-%d: %v", i, err)
		}
		if got := res.Text(); got != "echo: "+prompt {
			t.Errorf("edge-%d answered %q", i, got)
		}
	}

	// One successful request event per replica, seen by a plain subscriber on gb.>.
	ids := map[string]string{} // replica → event id
	tap.waitFor(t, ctx, func(msgs []*nats.Msg) bool {
		for _, ev := range requestEvents(msgs) {
			if ev.Success && ev.Model == "gemini-2.5-flash" {
				ids[ev.Replica] = ev.ID
			}
		}
		return ids["edge-0"] != "" && ids["edge-1"] != ""
	}, "a successful request event from edge-0 and from edge-1")

	// logd wrote both rows.
	db := s.Mongo(t)
	want := []string{ids["edge-0"], ids["edge-1"]}
	for {
		n, err := countRequestLogs(ctx, db, func(r *logstore.RequestLog) bool { return slices.Contains(want, r.ID) })
		if err == nil && n == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("request_logs rows %v not written: n=%d err=%v", want, n, err)
		case <-time.After(200 * time.Millisecond):
		}
	}

	// The upstream got a real key, never the client token.
	reqs, err := s.Fake().Requests(ctx, fakegemini.Filter{Method: "generateContent"})
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) < 2 {
		t.Fatalf("fake saw %d generateContent calls", len(reqs))
	}
	for _, r := range reqs {
		if !contains(s.Keys(), r.Key) {
			t.Errorf("upstream call carried %q, not a configured key", r.Key)
		}
		for name, vals := range r.Header {
			for _, v := range vals {
				for _, tok := range s.Tokens() {
					if strings.Contains(v, tok) {
						t.Errorf("client token forwarded upstream in header %s", name)
					}
				}
			}
		}
	}

	noSecrets(t, s, tap)
}

// noSecrets fails if any event payload seen by tap or any process log holds a configured
// API key, client token or the admin password in full.
func noSecrets(t *testing.T, s *stack.Stack, tap *tap) {
	t.Helper()
	secrets := append(append(s.Keys(), s.Tokens()...), s.AuthToken())
	for _, m := range tap.all() {
		data := eventPayload(t, m)
		for _, sec := range secrets {
			if strings.Contains(string(data), sec) {
				t.Errorf("event on %s carries a configured secret (%s…)", m.Subject, sec[:6])
			}
		}
	}
	for name, log := range s.Logs() {
		if name == "fake" {
			continue // the upstream stand-in is not part of the product
		}
		for _, sec := range secrets {
			if strings.Contains(log, sec) {
				t.Errorf("log of %s carries a configured secret (%s…)", name, sec[:6])
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// tap is a plain core-NATS subscriber on gb.>, like `nats sub 'gb.>'`.
type tap struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	ch   chan struct{}
}

// eventPayload is an event message's JSON. Edge sends large batches
// S2-compressed (bus.HeaderEncoding), and a search for secrets in the
// compressed bytes would find nothing whatever they held.
func eventPayload(t testing.TB, m *nats.Msg) []byte {
	t.Helper()
	data, err := bus.DecodeBatch(m.Header.Get(bus.HeaderEncoding), m.Data)
	if err != nil {
		t.Errorf("event on %s does not decode: %v", m.Subject, err)
		return m.Data
	}
	return data
}

// batchJSON is a batch message's JSON, or nil when it does not decode.
func batchJSON(m *nats.Msg) []byte {
	data, _ := bus.DecodeBatch(m.Header.Get(bus.HeaderEncoding), m.Data)
	return data
}

// requestEvents unpacks the request events of the gb.events.requests
// batches among msgs.
func requestEvents(msgs []*nats.Msg) []bus.RequestEvent {
	var out []bus.RequestEvent
	for _, m := range msgs {
		var b bus.RequestBatch
		if m.Subject == bus.SubjectEventRequests && json.Unmarshal(batchJSON(m), &b) == nil {
			out = append(out, b.Events...)
		}
	}
	return out
}

// errorEvents unpacks the error events of the gb.events.errors batches
// among msgs.
func errorEvents(msgs []*nats.Msg) []bus.ErrorEvent {
	var out []bus.ErrorEvent
	for _, m := range msgs {
		var b bus.ErrorBatch
		if m.Subject == bus.SubjectEventErrors && json.Unmarshal(batchJSON(m), &b) == nil {
			out = append(out, b.Events...)
		}
	}
	return out
}

// tapEvents subscribes as an operator's tap would: everything under gb.>,
// or gb.events.> as the tap user of the deployment config.
func tapEvents(t *testing.T, s *stack.Stack) *tap {
	t.Helper()
	nc, err := nats.Connect(s.TapURL(), nats.Name("e2e-tap"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	tp := &tap{ch: make(chan struct{}, 1)}
	if _, err := nc.Subscribe(s.TapSubject(), func(m *nats.Msg) {
		tp.mu.Lock()
		tp.msgs = append(tp.msgs, m)
		tp.mu.Unlock()
		select {
		case tp.ch <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return tp
}

func (tp *tap) all() []*nats.Msg {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]*nats.Msg(nil), tp.msgs...)
}

func (tp *tap) waitFor(t *testing.T, ctx context.Context, cond func([]*nats.Msg) bool, what string) {
	t.Helper()
	for !cond(tp.all()) {
		select {
		case <-ctx.Done():
			t.Fatalf("never saw %s on gb.> (%d messages seen)", what, len(tp.all()))
		case <-tp.ch:
		case <-time.After(200 * time.Millisecond):
		}
	}
}
