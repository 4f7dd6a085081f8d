package events

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gemini-balance-go/shared/bus"
)

// stuckBus never accepts a message, like a bus that is down.
type stuckBus struct{ release chan struct{} }

func (s stuckBus) Publish(string, ...*message.Message) error { <-s.release; return nil }
func (s stuckBus) Close() error                              { return nil }

func TestPublishNeverBlocksAndCountsWhatItDrops(t *testing.T) {
	bus1 := stuckBus{release: make(chan struct{})}
	defer close(bus1.release)
	p := New(bus1, Options{Queue: 3, Workers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Run(ctx) }()
	accepted := 0
	for range 100 {
		if p.Request(&bus.RequestEvent{ID: NewID()}) {
			accepted++
		}
	}
	// One event may sit in the stuck worker, three in the queue.
	if accepted > 4 || p.Dropped() != int64(100-accepted) {
		t.Fatalf("accepted %d, dropped %d", accepted, p.Dropped())
	}
}
