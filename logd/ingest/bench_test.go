package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/deployments/embedded/ferret"
	"github.com/gemini-balance-go/logd/ingest"
	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
)

// Benchmarks print figures; run them once each:
//
//	go test ./logd/ingest -run '^$' -bench . -benchtime 1x
//
// LOGD_BENCH_EVENTS sets the sustained-ingest event count (default 50000),
// LOGD_BENCH_BATCH the batch size (default: ingest's default).

func benchEvents(n int, from time.Time) []bus.RequestEvent {
	statuses := []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 500, 400}
	evs := make([]bus.RequestEvent, n)
	for i := range evs {
		st := statuses[i%len(statuses)]
		evs[i] = bus.RequestEvent{
			V: bus.Version, ID: fmt.Sprintf("bench-%08d", i), Time: from.Add(time.Duration(i) * time.Millisecond),
			Route: "openai.chat", Method: "POST", Path: "/v1/chat/completions",
			Model: []string{"gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash"}[i%4],
			KeyID: fmt.Sprintf("key%02d", i%50), KeyHint: "AIzaSy…abcd", TokenID: fmt.Sprintf("tok%d", i%10), TokenHint: "sk-…wxyz",
			Attempts: 1, Status: st, Success: st == 200, Class: "ok", LatencyMS: float64(100 + i%900), TTFBMS: 80,
			Usage: bus.Usage{Prompt: 120, Candidates: 340, Thoughts: 64, Total: 524},
		}
	}
	return evs
}

func benchCount() int {
	if n, err := strconv.Atoi(os.Getenv("LOGD_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 50000
}

type benchEnv struct {
	nats  *testenv.NATS
	store *logstore.Store
	count func() int64
}

func newBenchEnv(b *testing.B, uri string) *benchEnv {
	n := testenv.StartNATS(b)
	db := testenv.Mongo(b, uri, "logd")
	st := logstore.New(db)
	if err := st.EnsureIndexes(context.Background()); err != nil {
		b.Fatal(err)
	}
	return &benchEnv{nats: n, store: st, count: func() int64 {
		c, _ := db.Collection(logstore.CollRequests).CountDocuments(context.Background(), bson.M{})
		return c
	}}
}

func (e *benchEnv) run(b *testing.B) {
	if os.Getenv("LOGD_BENCH_DEBUG") != "" {
		slog.SetLogLoggerLevel(slog.LevelDebug)
	}
	ctx, cancel := context.WithCancel(context.Background())
	batch, _ := strconv.Atoi(os.Getenv("LOGD_BENCH_BATCH"))
	in := ingest.New(ingest.Options{BatchSize: batch}, ingest.Deps{Conn: e.nats.Conn(b), JS: e.nats.JS, Store: e.store})
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
}

func (e *benchEnv) waitDrained(b *testing.B, n int) {
	testenv.Eventually(b, 30*time.Minute, "ingest to finish", func() bool {
		bl, err := ingest.Backlog(context.Background(), e.nats.JS, ingest.ConsumerRequests)
		return err == nil && bl == 0 && e.count() >= int64(n)
	})
}

// sustained: the publisher and logd run together, as under live traffic.
func benchSustained(b *testing.B, uri string) {
	e := newBenchEnv(b, uri)
	e.run(b)
	n := benchCount()
	evs := benchEvents(n, time.Now().Add(-time.Hour))
	b.ResetTimer()
	start := time.Now()
	e.nats.PublishRequests(b, evs)
	pub := time.Since(start)
	e.waitDrained(b, n)
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/took.Seconds(), "events/s")
	b.Logf("sustained ingest: %d events in %s = %.0f events/s (publishing alone took %s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), pub.Round(time.Millisecond))
}

// drain: 100,000 events wait in the stream while logd is down; then it starts.
func benchDrain(b *testing.B, uri string) {
	e := newBenchEnv(b, uri)
	const n = 100000
	e.nats.PublishRequests(b, benchEvents(n, time.Now().Add(-time.Hour)))
	b.ResetTimer()
	start := time.Now()
	e.run(b)
	e.waitDrained(b, n)
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(took.Seconds(), "s/100k-backlog")
	b.ReportMetric(n/took.Seconds(), "events/s")
	b.Logf("backlog of %d events drained in %s = %.0f events/s", n, took.Round(time.Millisecond), n/took.Seconds())
}

func BenchmarkIngestSustainedSQLite(b *testing.B) { benchSustained(b, ferret.StartForTest(b)) }

func BenchmarkIngestSustainedPostgres(b *testing.B) {
	benchSustained(b, testenv.StartFerretPostgres(b))
}

func BenchmarkBacklogDrainSQLite(b *testing.B) { benchDrain(b, ferret.StartForTest(b)) }

func BenchmarkBacklogDrainPostgres(b *testing.B) {
	benchDrain(b, testenv.StartFerretPostgres(b))
}
