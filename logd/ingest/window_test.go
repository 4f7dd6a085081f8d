package ingest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gemini-balance-go/logd/ingest"
	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/testkit/storetest"
)

// logd's memory under a backlog is bounded by the request messages it holds
// at once: by default 256 (each a Watermill subscription with two goroutines
// and up to 256 events). While the store is stuck, the rest waits in the
// stream, not in logd, and is stored once the store answers again.
func TestAStuckStoreHoldsAtMost256RequestMessagesInLogd(t *testing.T) {
	release := make(chan struct{})
	e := startWith(t, storetest.Start(t), ingest.Options{}, func([]string) { <-release })
	var once sync.Once
	unstick := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstick) // runs before the ingester's stop, which waits for the writers
	e.nats.PublishRequestsPer(t, events(400, time.Now()), 1)
	consumer := func() (pending, ackPending int) {
		t.Helper()
		c, err := e.nats.JS.PushConsumer(context.Background(), bus.StreamEvents, bus.ConsumerLogdRequests)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return int(info.NumPending), info.NumAckPending
	}
	testenv.Eventually(t, 20*time.Second, "256 messages in logd, 144 waiting in the stream", func() bool {
		pending, ackPending := consumer()
		return ackPending == 256 && pending == 144
	})
	if pending, ackPending := consumer(); ackPending != 256 || pending != 144 {
		t.Fatalf("logd holds %d messages and %d wait in the stream, want 256 and 144", ackPending, pending)
	}
	unstick()
	testenv.Eventually(t, 30*time.Second, "all 400 logs stored", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 400
	})
}
