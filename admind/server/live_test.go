package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/logapi"
)

// sseFrame is one Server-Sent Events frame (or a comment).
type sseFrame struct {
	event, data, comment string
}

type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

// openLive connects to GET /api/live and waits for the "ready" frame.
func (e *env) openLive(t *testing.T, query string) *sseStream {
	t.Helper()
	req, _ := http.NewRequest("GET", e.http.URL+"/api/live"+query, nil)
	req.Header.Set("Authorization", "Bearer "+adminPW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/live%s: %d %s", query, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, r: bufio.NewReaderSize(resp.Body, 1<<20)}
	if f := s.next(t); f.event != "ready" {
		t.Fatalf("first frame = %+v, want ready", f)
	}
	return s
}

// next reads one frame; a closed stream gives event "EOF".
func (s *sseStream) next(t *testing.T) sseFrame {
	t.Helper()
	var f sseFrame
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return sseFrame{event: "EOF"}
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if f != (sseFrame{}) {
				return f
			}
		case strings.HasPrefix(line, ":"):
			return sseFrame{comment: strings.TrimSpace(line[1:])}
		case strings.HasPrefix(line, "event: "):
			f.event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			f.data = line[len("data: "):]
		}
	}
}

// nextEvent skips keepalive comments.
func (s *sseStream) nextEvent(t *testing.T) sseFrame {
	t.Helper()
	for {
		if f := s.next(t); f.comment == "" {
			return f
		}
	}
}

func publishBatch(t *testing.T, nc *nats.Conn, evs ...bus.RequestEvent) {
	t.Helper()
	data, _ := json.Marshal(bus.RequestBatch{V: bus.Version, Events: evs})
	if err := nc.Publish(bus.SubjectEventRequests, data); err != nil {
		t.Fatal(err)
	}
}

// publishCompressed publishes a batch S2-compressed, as edge sends large ones.
func publishCompressed(t *testing.T, nc *nats.Conn, evs ...bus.RequestEvent) {
	t.Helper()
	data, _ := json.Marshal(bus.RequestBatch{V: bus.Version, Events: evs})
	m := nats.NewMsg(bus.SubjectEventRequests)
	m.Data = bus.EncodeBatchS2(nil, data)
	m.Header.Set(bus.HeaderEncoding, bus.EncodingS2)
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
}

func TestLiveStreamsRequestEventsFromNATSFilteredAndWithoutSecrets(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	if code, _, _ := e.do(t, "GET", "/api/live", clientToken, ""); code != http.StatusUnauthorized {
		t.Fatalf("live with a client token: %d, want 401", code)
	}
	if code, _, _ := e.call(t, "GET", "/api/live?status=abc", "", ""); code != http.StatusBadRequest {
		t.Fatalf("live with a bad status filter: %d, want 400", code)
	}
	s := e.openLive(t, "?model=gemini-2.5-flash")
	publishBatch(t, nc,
		bus.RequestEvent{V: 1, ID: "r1", Model: "gemini-2.5-flash", Status: 200, Success: true, KeyID: "k1", KeyHint: "AIzaSy…AAAA",
			Path: "/v1beta/models/gemini-2.5-flash:generateContent?key=" + apiKey1, Usage: bus.Usage{Prompt: 3, Candidates: 4}},
		bus.RequestEvent{V: 1, ID: "r2", Model: "other-model", Status: 200},
	)
	publishCompressed(t, nc, // large batches arrive compressed
		bus.RequestEvent{V: 1, ID: "r3", Model: "gemini-2.5-flash", Status: 429, ClientError: "quota of " + apiKey2},
	)
	var got []logapi.RequestLog
	for len(got) < 2 {
		f := s.nextEvent(t)
		if f.event != "request" {
			t.Fatalf("frame %+v, want request", f)
		}
		if strings.Contains(f.data, apiKey1) || strings.Contains(f.data, apiKey2) {
			t.Fatalf("a live event carries a full key: %s", f.data)
		}
		var l logapi.RequestLog
		if err := json.Unmarshal([]byte(f.data), &l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	if got[0].ID != "r1" || got[1].ID != "r3" || got[0].Tokens != 7 || got[0].KeyHint != "AIzaSy…AAAA" || strings.Contains(got[0].Path, "?") {
		t.Fatalf("live rows = %+v", got)
	}
}

// A reader that stops reading loses events, never holds them: it is told how
// many it lost (with the next frame, a keepalive included), and every event
// is either delivered or counted as dropped.
func TestASlowLiveReaderGetsADroppedCountNotUnboundedMemory(t *testing.T) {
	defer server.SetLiveLimitsForTest(4, 16, 100*time.Millisecond)()
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	s := e.openLive(t, "")
	// Far more than the socket buffers hold while the test does not read.
	const n = 300
	big := strings.Repeat("x", 60<<10)
	for i := range n {
		publishBatch(t, nc, bus.RequestEvent{V: 1, ID: fmt.Sprint(i), Model: "m", Status: 500, ClientError: big})
	}
	// Not reading until admind has taken every event in: the socket buffers
	// (a few MB) hold far less than the events, so admind must drop.
	waitFor(t, func() bool { return server.LiveEventsSeen(e.srv) == n })
	delivered, dropped := 0, 0
	for delivered+dropped < n {
		f := s.next(t)
		switch {
		case f.event == "request":
			delivered++
		case f.event == "dropped":
			var d struct{ Dropped int }
			_ = json.Unmarshal([]byte(f.data), &d)
			dropped += d.Dropped
		case f.comment == "keepalive":
		default:
			t.Fatalf("frame %+v after %d delivered, %d dropped", f, delivered, dropped)
		}
	}
	if delivered+dropped != n || dropped == 0 {
		t.Fatalf("delivered %d, dropped %d of %d published; want some dropped and all accounted for", delivered, dropped, n)
	}
}

func TestLiveRefusesClientsBeyondTheLimitSendsKeepalivesAndEndsOnShutdown(t *testing.T) {
	defer server.SetLiveLimitsForTest(8, 1, 50*time.Millisecond)()
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	s := e.openLive(t, "")
	if code, body, _ := e.call(t, "GET", "/api/live", "", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "too many live clients") {
		t.Fatalf("second live client with a limit of 1: %d %s", code, body)
	}
	if f := s.next(t); f.comment != "keepalive" {
		t.Fatalf("frame %+v, want a keepalive comment", f)
	}
	done := make(chan sseFrame, 1)
	go func() { done <- s.nextEvent(t) }()
	e.srv.CloseStreams()
	select {
	case f := <-done:
		if f.event != "EOF" {
			t.Fatalf("after shutdown: %+v, want the stream to end", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the live stream did not end on shutdown")
	}
}
