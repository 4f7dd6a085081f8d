package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gemini-balance-go/logd/ingest"
	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/testkit/storetest"
)

// Benchmarks print figures; run them once each:
//
//	go test ./logd/ingest -run '^$' -bench . -benchtime 1x
//
// Events are published the way edge does: packed into bus.RequestBatch
// messages of up to bus.MaxBatchEvents events. LOGD_BENCH_EVENTS sets the
// sustained-ingest event count (default 50000), LOGD_BENCH_PER the events per
// message of that benchmark (default 256), LOGD_BENCH_BATCH the batch
// size and LOGD_BENCH_WRITERS the parallel log inserts (default: ingest's
// defaults); LOGD_BENCH_PG_OPTS adds PostgreSQL server settings,
// LOGD_BENCH_INDEXES=0 skips the query indexes, LOGD_BENCH_PGSTATS=1 prints
// pg_stat_statements (with LOGD_BENCH_PG_OPTS="-c
// shared_preload_libraries=pg_stat_statements").

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

// benchPer is the events per message of the sustained benchmark
// (LOGD_BENCH_PER; default bus.MaxBatchEvents, edge's batches under load).
func benchPer() int {
	if n, err := strconv.Atoi(os.Getenv("LOGD_BENCH_PER")); err == nil && n > 0 {
		return min(n, bus.MaxBatchEvents)
	}
	return bus.MaxBatchEvents
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
	// LOGD_BENCH_INDEXES=0 leaves out the query indexes (ingest itself needs
	// only _id), to show what they cost.
	if os.Getenv("LOGD_BENCH_INDEXES") != "0" {
		if err := st.EnsureIndexes(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	return &benchEnv{nats: n, store: st, count: func() int64 {
		rows, _ := logstore.ReadRequestLogs(context.Background(), db)
		return int64(len(rows))
	}}
}

func (e *benchEnv) run(b *testing.B) {
	if os.Getenv("LOGD_BENCH_DEBUG") != "" {
		slog.SetLogLoggerLevel(slog.LevelDebug)
	}
	ctx, cancel := context.WithCancel(context.Background())
	batch, _ := strconv.Atoi(os.Getenv("LOGD_BENCH_BATCH"))
	writers, _ := strconv.Atoi(os.Getenv("LOGD_BENCH_WRITERS"))
	in := ingest.New(ingest.Options{BatchSize: batch, Writers: writers}, ingest.Deps{Conn: e.nats.Conn(b), JS: e.nats.JS, Store: e.store})
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
}

// waitDrained waits until every message is acknowledged, which logd does
// only once the events, their rollups and the journal are stored; the rows
// are counted once at the end (counting FerretDB rows while ingest runs
// would take CPU from it).
func (e *benchEnv) waitDrained(b *testing.B, n int, cpu *cpuMeter) time.Time {
	testenv.Eventually(b, 30*time.Minute, "ingest to finish", func() bool {
		bl, err := ingest.Backlog(context.Background(), e.nats.JS, bus.ConsumerLogdRequests)
		return err == nil && bl == 0
	})
	done := time.Now()
	cpu.stop()
	b.StopTimer()
	if c := e.count(); c != int64(n) {
		b.Fatalf("%d request logs after the backlog drained, want %d", c, n)
	}
	return done
}

// cpuMeter splits the CPU time of a measured section between this process
// (logd, the embedded NATS server and FerretDB, and the publisher) and
// PostgreSQL: per event, it is what bounds throughput on an idle machine,
// and unlike events/s it hardly changes when other jobs share the cores.
type cpuMeter struct {
	self, pg   time.Duration
	dSelf, dPG time.Duration // used between start and stop
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() *cpuMeter { return &cpuMeter{self: processCPU(), pg: testenv.PostgresCPU()} }

func (m *cpuMeter) stop() {
	m.dSelf, m.dPG = processCPU()-m.self, testenv.PostgresCPU()-m.pg
}

func (m *cpuMeter) report(b *testing.B, n int, pg bool) {
	self := m.dSelf
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	if !pg {
		b.ReportMetric(per(self), "cpu-µs/event")
		b.Logf("CPU: %.1f µs/event in the bench process (logd, NATS, FerretDB, publisher)", per(self))
		return
	}
	pgCPU := m.dPG
	if os.Getenv("LOGD_BENCH_PGSTATS") != "" {
		// Needs LOGD_BENCH_PG_OPTS="-c shared_preload_libraries=pg_stat_statements".
		_, _ = testenv.PostgresQuery("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
		out, err := testenv.PostgresQuery(`SELECT calls, round(total_exec_time) AS ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
			FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12`)
		b.Logf("pg_stat_statements (%v):\n%s", err, out)
	}
	b.ReportMetric(per(self), "proc-cpu-µs/event")
	b.ReportMetric(per(pgCPU), "pg-cpu-µs/event")
	b.Logf("CPU: %.1f µs/event in the bench process (logd, NATS, FerretDB, publisher) + %.1f µs/event in PostgreSQL = %.0f events per CPU-second",
		per(self), per(pgCPU), float64(n)/(self+pgCPU).Seconds())
}

// sustained: the publisher and logd run together, as under live traffic.
func benchSustained(b *testing.B, uri string, pg bool) {
	e := newBenchEnv(b, uri)
	e.run(b)
	n := benchCount()
	// Stamped from now on, after the store started, as live traffic is: so
	// the rows are copied into the recent request logs (and trimmed) too.
	evs := benchEvents(n, time.Now())
	b.ResetTimer()
	cpu := startCPU()
	start := time.Now()
	e.nats.PublishRequestsPer(b, evs, benchPer())
	pub := time.Since(start)
	took := e.waitDrained(b, n, cpu).Sub(start)
	b.ReportMetric(float64(n)/took.Seconds(), "events/s")
	b.Logf("sustained ingest: %d events (%d per message) in %s = %.0f events/s (publishing alone took %s)", n, benchPer(), took.Round(time.Millisecond), float64(n)/took.Seconds(), pub.Round(time.Millisecond))
	cpu.report(b, n, pg)
}

// drain: 100,000 events wait in the stream while logd is down; then it starts.
func benchDrain(b *testing.B, uri string, pg bool) {
	e := newBenchEnv(b, uri)
	const n = 100000
	e.nats.PublishRequests(b, benchEvents(n, time.Now().Add(-time.Hour)))
	b.ResetTimer()
	cpu := startCPU()
	start := time.Now()
	e.run(b)
	took := e.waitDrained(b, n, cpu).Sub(start)
	b.ReportMetric(took.Seconds(), "s/100k-backlog")
	b.ReportMetric(n/took.Seconds(), "events/s")
	b.Logf("backlog of %d events drained in %s = %.0f events/s", n, took.Round(time.Millisecond), n/took.Seconds())
	cpu.report(b, n, pg)
}

func BenchmarkIngestSustainedSQLite(b *testing.B) { benchSustained(b, storetest.Start(b), false) }

func BenchmarkIngestSustainedPostgres(b *testing.B) {
	benchSustained(b, testenv.StartFerretPostgres(b), true)
}

func BenchmarkBacklogDrainSQLite(b *testing.B) { benchDrain(b, storetest.Start(b), false) }

func BenchmarkBacklogDrainPostgres(b *testing.B) {
	benchDrain(b, testenv.StartFerretPostgres(b), true)
}
