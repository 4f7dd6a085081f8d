package app_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

// The live tail works on the all-in-one's one port: a request through the
// same port shows up on the stream, and stopping the app ends the stream
// instead of waiting for it.
func TestLiveTailOnTheOnePortEndsWhenTheAppStops(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{key1, key2}})
	a := start(t, t.TempDir(), fake.URL, io.Discard)
	req, _ := http.NewRequest("GET", a.URL+"/api/live", nil)
	req.Header.Set("Authorization", "Bearer "+adminPW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live on the one port: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		r := bufio.NewReader(resp.Body)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimSpace(l)
		}
	}()
	next := func(prefix string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return
				}
			case <-time.After(testWait):
				t.Fatalf("no %q on the live stream", prefix)
			}
		}
	}
	next("event: ready")
	call, _ := http.NewRequest("POST", a.URL+"/v1beta/models/gemini-2.5-flash:generateContent", strings.NewReader(`{"contents":[{"parts":[{"text":"live"}]}]}`))
	call.Header.Set("x-goog-api-key", token)
	call.Header.Set("Content-Type", "application/json")
	cr, err := http.DefaultClient.Do(call)
	if err != nil || cr.StatusCode != 200 {
		t.Fatalf("generateContent: %v %v", err, cr)
	}
	cr.Body.Close()
	next("event: request")

	// HTTP shutdown waits for open requests: had the stream not ended, Stop
	// would run into its deadline and fail.
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop with a live client: %v", err)
	}
	for range lines { // the stream is closed
	}
}
