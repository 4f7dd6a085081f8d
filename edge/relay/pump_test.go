package relay

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/wait"
)

// oneKey hands out the same key and ignores reports.
type oneKey struct{}

func (oneKey) Acquire(context.Context, bus.AcquireRequest) (bus.AcquireReply, error) {
	return bus.AcquireReply{ID: "k1", Secret: "AIzaSy-test-secret", Kind: bus.KindGemini}, nil
}
func (oneKey) Report(bus.Report) {}

// flushRecorder is a client connection: what was written, and what had
// reached the client at each flush.
type flushRecorder struct {
	mu      sync.Mutex
	hdr     http.Header
	buf     bytes.Buffer
	flushes []string
}

func (r *flushRecorder) Header() http.Header { return r.hdr }
func (r *flushRecorder) WriteHeader(int)     {}
func (r *flushRecorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}
func (r *flushRecorder) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushes = append(r.flushes, r.buf.String())
}

// delivered is what the client had at the last flush, and the flush count.
func (r *flushRecorder) delivered() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.flushes) == 0 {
		return "", 0
	}
	return r.flushes[len(r.flushes)-1], len(r.flushes)
}

// Events that upstream sent together reach the client in one flush, not one
// flush (a write syscall) each; and what is written is flushed before the
// pump waits for more, so no event waits for the next one.
func TestPumpFlushesEventsThatArriveTogetherOnceAndNeverHoldsOneBack(t *testing.T) {
	var burst bytes.Buffer
	for i := range 20 {
		fmt.Fprintf(&burst, "data: {\"i\":%d}\n\n", i)
	}
	last := "data: {\"i\":\"last\"}\n\n"
	resume := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(burst.Bytes())
		w.(http.Flusher).Flush()
		<-resume // upstream pauses: the pump must not sit on what it has
		_, _ = w.Write([]byte(last))
	}))
	defer up.Close()
	defer close(resume)

	st := config.Defaults()
	st.BaseURL = up.URL
	rl := New(Options{Settings: natsx.NewSettings(st), Keys: oneKey{}})
	res := rl.Stream(context.Background(), &Request{Route: "test", Model: "m", Path: "/v1beta/models/m:streamGenerateContent", Query: "alt=sse", Body: []byte(`{}`)})
	if !res.OK() {
		t.Fatalf("stream: %d %s", res.Status, res.Body)
	}
	w := &flushRecorder{hdr: http.Header{}}
	done := make(chan error, 1)
	go func() { done <- Pump(w, res.Stream, Passthrough{S: res.Stream}) }()

	wait.For(t, "the burst delivered while upstream pauses", func() bool {
		got, _ := w.delivered()
		return got == burst.String()
	})
	if _, n := w.delivered(); n > 3 {
		t.Fatalf("20 events that arrived together took %d flushes, want at most 3", n)
	}
	resume <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := w.delivered(); got != burst.String()+last {
		t.Fatalf("client got %q", got)
	}
}
