package pool

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gemini-balance-go/shared/bus"
)

var benchSizes = []int{100, 10_000, 100_000}

func benchPool(n int) (*Pool, []string) {
	p := New(DefaultPolicy(), time.Now)
	keys := make([]Key, n)
	ids := make([]string, n)
	now := time.Now()
	for i := range keys {
		keys[i] = NewKey(fmt.Sprintf("AIzaSyBenchKey%025d", i), bus.KindGemini, now)
		ids[i] = keys[i].ID
	}
	p.Load(keys...)
	return p, ids
}

// BenchmarkPoolAcquire is the in-process cost of one acquire; it stays flat
// as the pool grows.
func BenchmarkPoolAcquire(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			p, _ := benchPool(n)
			req := bus.AcquireRequest{Kind: bus.KindGemini, Model: "gemini-2.5-flash"}
			p.Acquire(req) // builds the ring
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if p.Acquire(req).ID == "" {
					b.Fatal("no key")
				}
			}
		})
	}
}

// BenchmarkPoolAcquireWithCooling: a tenth of the keys cool for the model.
func BenchmarkPoolAcquireWithCooling(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			p, ids := benchPool(n)
			for i := 0; i < n; i += 10 {
				p.Apply(bus.KeyStateEvent{KeyID: ids[i], To: bus.KeyCooling, Model: "gemini-2.5-flash", Until: time.Now().Add(time.Hour)})
			}
			req := bus.AcquireRequest{Kind: bus.KindGemini, Model: "gemini-2.5-flash"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if p.Acquire(req).ID == "" {
					b.Fatal("no key")
				}
			}
		})
	}
}

// BenchmarkPoolMemoryPerKey prints the heap held per key in the pool.
func BenchmarkPoolMemoryPerKey(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			// One measurement whatever b.N is: building a large pool b.N times
			// would only make the benchmark slow.
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p, _ := benchPool(n)
			p.Acquire(bus.AcquireRequest{Kind: bus.KindGemini}) // include the ring
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(p)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/key")
		})
	}
}

// BenchmarkPoolAcquireAllCooling: every key is rate-limited for the model;
// acquires answer all_cooling without scanning the pool each time.
func BenchmarkPoolAcquireAllCooling(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			p, ids := benchPool(n)
			for _, id := range ids {
				p.Apply(bus.KeyStateEvent{KeyID: id, To: bus.KeyCooling, Model: "gemini-2.5-flash", Until: time.Now().Add(time.Hour)})
			}
			req := bus.AcquireRequest{Kind: bus.KindGemini, Model: "gemini-2.5-flash"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if p.Acquire(req).NoKey != bus.NoKeyAllCooling {
					b.Fatal("want all_cooling")
				}
			}
		})
	}
}
