package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/testkit/natstest"
)

// BenchmarkPublisher pushes request events through the publisher into an
// embedded JetStream (file store) and reports events/s and the mean batch
// size, for 1, 2 and 4 concurrent publishers:
//
//	go test ./edge/events -run '^$' -bench Publisher -benchtime 50000x
func BenchmarkPublisher(b *testing.B) {
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			nc := natstest.StartBus(b).NC
			wm, err := events.NewWatermillPublisher(nc)
			if err != nil {
				b.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			p := events.New(wm, events.Options{Workers: workers, Queue: b.N + 1, Registry: reg})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = p.Run(ctx); close(done) }()
			b.ResetTimer()
			start := time.Now()
			// One producer as fast as the publisher takes the events: the
			// publisher's ceiling, far above what edge's requests produce.
			for range b.N {
				for !p.Request(requestEvent()) {
					time.Sleep(time.Millisecond) // queue full: wait, never drop here
				}
			}
			for {
				mfs, _ := reg.Gather()
				published, batches := 0.0, 0.0
				for _, mf := range mfs {
					for _, m := range mf.GetMetric() {
						switch mf.GetName() {
						case "gb_edge_events_published_total":
							published += m.GetCounter().GetValue()
						case "gb_edge_events_batch_size":
							batches += float64(m.GetHistogram().GetSampleCount())
						}
					}
				}
				if int(published) >= b.N {
					el := time.Since(start)
					b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
					b.ReportMetric(published/batches, "events/batch")
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			<-done
		})
	}
}

// BenchmarkFinishSuccess is what the masking of a request event costs a
// successful request (no error text; path and model without a secret):
//
//	go test ./edge/events -run '^$' -bench FinishSuccess
func BenchmarkFinishSuccess(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		rec := events.NewRecord("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", "edge-0")
		rec.Model = "gemini-2.5-flash"
		_ = rec.Finish(200)
	}
}
