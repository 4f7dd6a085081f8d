package endpoints

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/testkit/natstest"
)

// blockingPool verifies nothing until released: it stands for keys whose
// live test call hangs upstream.
type blockingPool struct {
	Pool
	entered chan struct{}
	release chan struct{}
}

func (p *blockingPool) Verify(ctx context.Context, _ keyapi.Selection) keyapi.VerifyReply {
	p.entered <- struct{}{}
	select {
	case <-p.release:
	case <-ctx.Done():
	}
	return keyapi.VerifyReply{}
}

func TestSaturatedKeydAnswersBusyInsteadOfStartingMoreGoroutines(t *testing.T) {
	nc := natstest.StartBus(t).NC
	pool := &blockingPool{entered: make(chan struct{}, 4), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := Register(ctx, nc, pool, Options{MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	sel, _ := json.Marshal(keyapi.Selection{})
	replies := make(chan *nats.Msg, 2)
	for range 2 {
		go func() {
			m, err := nc.Request(bus.SubjectKeyVerify, sel, 20*time.Second)
			if err != nil {
				t.Error(err)
			}
			replies <- m
		}()
		<-pool.entered
	}
	m, err := nc.Request(bus.SubjectKeyVerify, sel, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := m.Header.Get("Nats-Service-Error-Code"); code != "503" {
		t.Fatalf("third request while two run: code %q, body %s", code, m.Data)
	}
	close(pool.release)
	for range 2 {
		if m := <-replies; m == nil || m.Header.Get("Nats-Service-Error-Code") != "" {
			t.Fatalf("a request within the bound failed: %+v", m)
		}
	}
	// Freed slots are usable again.
	pool.release = make(chan struct{})
	close(pool.release)
	go func() { <-pool.entered }()
	if m, err := nc.Request(bus.SubjectKeyVerify, sel, 20*time.Second); err != nil || m.Header.Get("Nats-Service-Error-Code") != "" {
		t.Fatalf("after the burst: %v %+v", err, m)
	}
}
