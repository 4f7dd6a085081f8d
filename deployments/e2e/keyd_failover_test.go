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
	"github.com/gemini-balance-go/testkit/wait"
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
	// answered counts each worker's finished requests: a worker sends one at
	// a time, so once it has finished more than it had at the kill, the
	// request it had in flight then has finished too.
	const workers = 4
	var answered [workers]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
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
				} else {
					ok.Add(1)
				}
				answered[w].Add(1)
			}
		}()
	}
	wait.For(t, "requests flowing through both replicas", func() bool { return ok.Load() >= 20 || failed.Load() > 0 })
	before := ok.Load()
	var atKill [workers]int64
	for w := range workers {
		atKill[w] = answered[w].Load()
	}
	s.Kill("keyd-0")
	// Every worker finishes the request it had in flight at the kill and
	// a few more, all acquired from the surviving replica.
	wait.For(t, "requests answered after the kill", func() bool {
		for w := range workers {
			if answered[w].Load() < atKill[w]+10 {
				return false
			}
		}
		return true
	})
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
	wait.ForState(t, fmt.Sprintf("%d keyd replicas answering", want), func() (bool, string) {
		n := keydReplicas(t, nc)
		return n == want, fmt.Sprintf("%d answer", n)
	})
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
