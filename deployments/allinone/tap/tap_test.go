package tap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/deployments/allinone/tap"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/wait"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// tap prints plain and compressed batches alike, as the JSON edge encoded,
// and says so when a payload does not decode.
func TestTapPrintsCompressedBatchesDecoded(t *testing.T) {
	b := natstest.StartBus(t)
	out := &syncBuf{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	tctx, stop := context.WithCancel(ctx)
	go func() { done <- tap.Command(tctx, []string{"--url", b.URL}, out) }()

	batch := func(id string) []byte {
		data, _ := json.Marshal(bus.RequestBatch{V: bus.Version, Events: []bus.RequestEvent{{V: bus.Version, ID: id, Model: "gemini-2.5-flash", Status: 200}}})
		return data
	}
	publish := func(data []byte, enc string) {
		m := nats.NewMsg(bus.SubjectEventRequests)
		m.Data = data
		if enc != "" {
			m.Header.Set(bus.HeaderEncoding, enc)
		}
		if err := b.NC.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	// Publish until tap's subscription is in place, then the three messages.
	wait.For(t, "tap to subscribe", func() bool {
		publish(batch("warm-up"), "")
		return strings.Contains(out.String(), "warm-up")
	})
	publish(batch("plain-1"), "")
	publish(bus.EncodeBatchS2(nil, batch("s2-2")), bus.EncodingS2)
	publish([]byte("not s2"), bus.EncodingS2)
	wait.For(t, "the three messages printed", func() bool { return strings.Contains(out.String(), "s2 payload") })
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tap stopped with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("tap did not stop when interrupted")
	}

	// The warm-up messages may still precede ours; read the last three lines.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("printed:\n%s", out.String())
	}
	lines = lines[len(lines)-3:]
	type printed struct {
		Subject string           `json:"subject"`
		Payload bus.RequestBatch `json:"payload"`
		Error   string           `json:"error"`
	}
	var got []printed
	for _, l := range lines {
		var g printed
		if err := json.Unmarshal([]byte(l), &g); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, g)
	}
	if got[0].Payload.Events[0].ID != "plain-1" || got[1].Payload.Events[0].ID != "s2-2" || got[1].Subject != bus.SubjectEventRequests {
		t.Fatalf("lines:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(got[2].Error, "s2 payload") {
		t.Fatalf("undecodable payload line: %s", lines[2])
	}
}

// --count ends tap after that many messages.
func TestTapStopsAfterCount(t *testing.T) {
	b := natstest.StartBus(t)
	out := &syncBuf{}
	done := make(chan error, 1)
	go func() { done <- tap.Command(context.Background(), []string{"--url", b.URL, "--count", "2"}, out) }()
	var err error
	wait.For(t, "tap to stop after two messages", func() bool {
		if e := b.NC.Publish(bus.SubjectEventKeyState, []byte(`{"v":1}`)); e != nil {
			t.Fatal(e)
		}
		select {
		case err = <-done:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	if n := strings.Count(out.String(), "\n"); err != nil || n != 2 {
		t.Fatalf("tap returned %v after %d lines:\n%s", err, n, out.String())
	}
}
