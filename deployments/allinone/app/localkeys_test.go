package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// In the all-in-one, edge takes its keys from the keyd in the same process:
// no acquire crosses the bus, and a key that fails is still reported at once
// and never handed out again. keyd still answers acquires on the bus, for
// edges elsewhere.
func TestEdgeTakesKeysInProcessAndAFailedKeyIsLeftOutAtOnce(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{key2}}) // key1: 400 API_KEY_INVALID
	a := start(t, t.TempDir(), fake.URL, debugLogs)
	defer stop(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()

	op, err := nats.Connect(a.OperatorURL)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	var onBus atomic.Int64
	if _, err := op.Subscribe(bus.SubjectKeyAcquire, func(*nats.Msg) { onBus.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := op.Flush(); err != nil {
		t.Fatal(err)
	}

	c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: token, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: a.URL + "/", APIVersion: "v1beta"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		res, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("in-process keys"), nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if res.Text() != "echo: in-process keys" {
			t.Fatalf("request %d answered %q", i, res.Text())
		}
	}
	// Two keys, ten requests: key1 is picked once, answers invalid, and
	// keyd disables it before the next request asks. (keyd's recovery may
	// probe the disabled key meanwhile, with a body of its own.)
	ours := func(key string) (n int) {
		for _, r := range fake.Requests(fakegemini.Filter{Key: key}) {
			if strings.Contains(string(r.Body), "in-process keys") {
				n++
			}
		}
		return n
	}
	if n := ours(key1); n != 1 {
		t.Fatalf("the invalid key was tried %d times, want once", n)
	}
	if n := ours(key2); n != 10 {
		t.Fatalf("the good key answered %d requests, want 10", n)
	}
	if n := onBus.Load(); n != 0 {
		t.Fatalf("%d acquires crossed the bus; edge should ask the keyd in its process", n)
	}

	// keyd still serves the bus, and the subscription above does see it.
	req, _ := json.Marshal(bus.AcquireRequest{Kind: bus.KindGemini, Model: "gemini-2.5-flash"})
	m, err := op.Request(bus.SubjectKeyAcquire, req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep bus.AcquireReply
	if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Secret != key2 {
		t.Fatalf("acquire over the bus: %v, secret %q (want the good key), no_key %q", err, rep.Secret, rep.NoKey)
	}
	eventually(t, "the control acquire to reach the subscriber", func() bool { return onBus.Load() == 1 })
}
