package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// Issue 3: two keyd processes share the acquires. Killing one while requests
// stream through edge fails no request (edge retries the acquire and reaches
// the other), and a key disabled through one replica is never handed out by
// the other.
func TestKeydReplicaKilledUnderLoadFailsNoRequest(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Keyds: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nc, err := nats.Connect(s.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	waitReplicas(t, nc, 2)

	client := s.Gemini(t, 0)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				prompt := fmt.Sprintf("worker %d request %d", w, i)
				res, err := client.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text(prompt), nil)
				if err != nil || res.Text() != "echo: "+prompt {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", prompt, err))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	before := ok.Load()
	s.Kill("keyd-0")
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed while a keyd replica was killed (first: %v)", failed.Load(), firstErr.Load())
	}
	if before == 0 || ok.Load() <= before {
		t.Fatalf("requests did not keep flowing: %d before the kill, %d in all", before, ok.Load())
	}
	t.Logf("%d requests succeeded, %d of them after keyd-0 was killed", ok.Load(), ok.Load()-before)

	// Both replicas again; disable a key through whichever answers.
	s.Start("keyd-0")
	waitReplicas(t, nc, 2)
	off := s.Keys()[0]
	data, _ := json.Marshal(keyapi.Selection{IDs: []string{redact.ID(off)}, Reason: "e2e"})
	msg, err := nc.Request(bus.SubjectKeyDisable, data, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ch keyapi.ChangeReply
	if err := json.Unmarshal(msg.Data, &ch); err != nil || ch.Changed != 1 {
		t.Fatalf("disable: %s (%v)", msg.Data, err)
	}
	fake := s.Fake()
	used := func() int {
		reqs, err := fake.Requests(ctx, fakegemini.Filter{Key: off})
		if err != nil {
			t.Fatal(err)
		}
		return len(reqs)
	}
	usedBefore := used()

	// Acquires spread over both replicas through the queue group; neither
	// hands the key out (the one that did not take the disable learnt it
	// over the sync subject).
	req, _ := json.Marshal(bus.AcquireRequest{Kind: bus.KindGemini, Model: "gemini-2.5-flash"})
	for i := range 200 {
		msg, err := nc.Request(bus.SubjectKeyAcquire, req, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var rep bus.AcquireReply
		_ = json.Unmarshal(msg.Data, &rep)
		if rep.ID == "" || rep.ID == redact.ID(off) {
			t.Fatalf("acquire %d = %s; want a key other than the disabled one", i, rep.Hint+rep.NoKey)
		}
	}
	if served := acquireServers(t, nc); served < 2 {
		t.Fatalf("acquires were answered by %d replica(s); the check needs both", served)
	}
	for i := range 20 {
		prompt := fmt.Sprintf("after disable %d", i)
		if _, err := client.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text(prompt), nil); err != nil {
			t.Fatalf("%s: %v", prompt, err)
		}
	}
	if n := used() - usedBefore; n != 0 {
		t.Fatalf("the disabled key reached upstream %d times", n)
	}
}

func waitReplicas(t *testing.T, nc *nats.Conn, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n := keydReplicas(t, nc); n != want; n = keydReplicas(t, nc) {
		if time.Now().After(deadline) {
			t.Fatalf("%d keyd replicas answer, want %d", n, want)
		}
	}
}

// keydReplicas counts keyd micro service instances answering a ping.
func keydReplicas(t *testing.T, nc *nats.Conn) int {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$SRV.PING."+bus.KeydService, inbox, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := sub.NextMsg(time.Second); err != nil {
			return n
		}
		n++
	}
}

// acquireServers counts keyd instances whose acquire endpoint served requests.
func acquireServers(t *testing.T, nc *nats.Conn) int {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$SRV.STATS."+bus.KeydService, inbox, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			return n
		}
		var st struct {
			Endpoints []struct {
				Subject     string `json:"subject"`
				NumRequests int    `json:"num_requests"`
			} `json:"endpoints"`
		}
		if json.Unmarshal(m.Data, &st) != nil {
			continue
		}
		for _, e := range st.Endpoints {
			if e.Subject == bus.SubjectKeyAcquire && e.NumRequests > 0 {
				n++
			}
		}
	}
}
