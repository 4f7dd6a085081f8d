package logstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/testkit/storetest"
)

// BenchmarkQueriesMillionLogsPostgres seeds a busy day (LOGD_BENCH_ROWS,
// default 1,000,000 request logs over the 24 hours before the seed, 200
// keys, 4 models, 20 tokens, an error log per failed request) into FerretDB
// on PostgreSQL, logs and rollups inserted directly, then prints the latency
// of each admin page's first call (the query admind sends for it) and of
// the other dashboard queries:
//
//	go test ./logd/logstore -run '^$' -bench QueriesMillion -benchtime 1x -timeout 60m -v
//
// Seeding a million rows takes long. With LOGD_BENCH_DIR set (a directory
// the postgres user can reach, e.g. /var/tmp/gb-logd-bench) the PostgreSQL
// cluster is kept in LOGD_BENCH_DIR/pg and the SQLite files in
// LOGD_BENCH_DIR/sqlite, and a later run with the same row count and seed
// version reuses them: the store's clock is set back to the seed's time and
// what a run adds (rollup parts, query caches, a changed hour) is undone
// first. Delete the directory to seed afresh. LOGD_BENCH_ONLY (a regular
// expression) times only the calls it matches, e.g. LOGD_BENCH_ONLY=^ui-
// for each page's first call.
func BenchmarkQueriesMillionLogsPostgres(b *testing.B) {
	uri := ""
	if dir := os.Getenv("LOGD_BENCH_DIR"); dir != "" {
		uri = testenv.StartFerretPostgresIn(b, filepath.Join(dir, "pg"))
	} else {
		uri = testenv.StartFerretPostgres(b)
	}
	benchQueries(b, uri, 1_000_000)
}

// BenchmarkQueriesSQLite is the same on the all-in-one's embedded FerretDB
// on SQLite, which pushes only _id equality down; default 100,000 rows. A
// call slower than 2 s is timed once:
//
//	go test ./logd/logstore -run '^$' -bench QueriesSQLite -benchtime 1x -timeout 60m -v
func BenchmarkQueriesSQLite(b *testing.B) {
	uri := ""
	if dir := os.Getenv("LOGD_BENCH_DIR"); dir != "" {
		uri = storetest.StartIn(b, filepath.Join(dir, "sqlite"))
	} else {
		uri = storetest.Start(b)
	}
	benchQueries(b, uri, 100_000)
}

// benchSeedVersion names the seeded data set: change it when the seed changes,
// so a kept database is seeded again.
const benchSeedVersion = "2026-12-05.4" // request logs in buckets

// benchSeed is the marker of a seeded database (collection bench_seed).
type benchSeed struct {
	ID      string    `bson:"_id"`
	Version string    `bson:"v"`
	Rows    int       `bson:"rows"`
	Now     time.Time `bson:"now"`
	// BusyReq and Busy429 are the current hour's overall rollup as seeded,
	// which the busy-hour measurement changes.
	BusyReq int64 `bson:"busy_req"`
	Busy429 int64 `bson:"busy_429"`
}

var benchStatuses = []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 500, 400}

var benchModels = []string{"gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash"}

func benchQueries(b *testing.B, uri string, rows int) {
	if n, err := strconv.Atoi(os.Getenv("LOGD_BENCH_ROWS")); err == nil && n > 0 {
		rows = n
	}
	db := testenv.Mongo(b, uri, "logd")
	ctx := context.Background()
	var seed benchSeed
	err := db.Collection("bench_seed").FindOne(ctx, bson.M{"_id": "seed"}).Decode(&seed)
	if err != nil || seed.Version != benchSeedVersion || seed.Rows != rows {
		if err := db.Drop(ctx); err != nil {
			b.Fatal(err)
		}
		seed = seedBench(b, db, rows)
	} else {
		b.Logf("reusing %d request logs seeded at %s", rows, seed.Now.Format(time.RFC3339))
		if err := resetBench(ctx, db, seed); err != nil {
			b.Fatal(err)
		}
	}
	st := logstore.New(db)
	now := seed.Now
	// The queries admind sends carry no time: they read the store's clock.
	st.SetClock(func() time.Time { return now })
	if err := st.EnsureIndexes(ctx); err != nil {
		b.Fatal(err)
	}
	// The store is opened as logd opens it: the derived rollups (dropped by
	// resetBench, or never written by the seed) are backfilled first.
	t0 := time.Now()
	if err := st.Backfill(ctx); err != nil {
		b.Fatal(err)
	}
	backfill := time.Since(t0)
	b.ReportMetric(float64(backfill.Milliseconds()), "backfill-ms")
	b.Logf("%-30s %8.1f ms", "backfill (derived rollups)", float64(backfill.Microseconds())/1000)
	start := now.Add(-24 * time.Hour)
	statuses := benchStatuses

	only, err := regexp.Compile(os.Getenv("LOGD_BENCH_ONLY"))
	if err != nil {
		b.Fatalf("LOGD_BENCH_ONLY: %v", err)
	}
	measure := func(name string, f func() error) {
		if !only.MatchString(name) {
			return
		}
		const runs = 10
		// The first call is reported apart: earlier versions filled query
		// caches with it (attention's hour summaries, second profiles).
		t0 := time.Now()
		if err := f(); err != nil { // warm-up, and a check that it works
			b.Fatalf("%s: %v", name, err)
		}
		first := time.Since(t0)
		if first > 2*time.Second { // a slow query: once says enough
			b.ReportMetric(float64(first.Microseconds())/1000, name+"-ms")
			b.Logf("%-30s %8.1f ms (one call)", name, float64(first.Microseconds())/1000)
			return
		}
		var total, worst time.Duration
		for i := 0; i < runs; i++ {
			t0 = time.Now()
			if err := f(); err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			d := time.Since(t0)
			total += d
			worst = max(worst, d)
		}
		avg := total / runs
		b.ReportMetric(float64(avg.Microseconds())/1000, name+"-ms")
		b.Logf("%-30s %8.1f ms (max %.1f, first call %.1f ms)", name, float64(avg.Microseconds())/1000,
			float64(worst.Microseconds())/1000, float64(first.Microseconds())/1000)
	}
	// A running logd has its connections open and has served other calls:
	// a fresh client opens a connection per parallel read and PostgreSQL
	// loads each table's catalog into each new backend, which a first call
	// would otherwise pay (about 250 ms for the overview). One overview of
	// another minute (now - 90 min: none of the minutes, second profiles or
	// attention summaries the timed calls read) warms them.
	if _, err := st.Overview(ctx, logapi.OverviewQuery{Now: now.Add(-90 * time.Minute)}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	// Each admin page's first call, as admind sends it (GET /api/... → these
	// queries; the UI's default page sizes: 20 on the logs page, 8 recent
	// errors on the dashboard).
	measure("ui-dashboard-overview", func() error { // GET /api/stats/overview
		o, err := st.Overview(ctx, logapi.OverviewQuery{})
		// Window edges are whole seconds: rows in the fraction of a second
		// at the start of the 24 hours are not counted.
		if perSecond := int64(rows/86400 + 1); err == nil && (o.Day.Requests > int64(rows) || o.Day.Requests < int64(rows)-perSecond) {
			return fmt.Errorf("day = %d requests, want %d less at most %d", o.Day.Requests, rows, perSecond)
		}
		return err
	})
	measure("ui-dashboard-errors", func() error { // GET /api/logs/errors?limit=8
		p, err := st.ErrorLogs(ctx, logapi.ErrorLogQuery{Limit: 8})
		if failed := int64(rows/20*3 + max(0, rows%20-17)); err == nil && (len(p.Logs) != 8 || p.Total != failed) {
			return fmt.Errorf("recent errors = %d rows of %d", len(p.Logs), p.Total)
		}
		return err
	})
	measure("ui-logs-errors-page1", func() error { // /logs?tab=errors: GET /api/logs/errors?limit=20&offset=0
		p, err := st.ErrorLogs(ctx, logapi.ErrorLogQuery{Limit: 20})
		if err == nil && (len(p.Logs) != 20 || p.Logs[0].Time.Before(p.Logs[19].Time)) {
			return fmt.Errorf("error page = %d rows, not newest first", len(p.Logs))
		}
		return err
	})
	measure("ui-logs-requests-page1", func() error { // /logs: GET /api/logs/requests?limit=20&offset=0
		p, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 20})
		if err == nil && (len(p.Logs) != 20 || !p.HasMore || p.Total == nil) {
			return fmt.Errorf("page 1 = %d rows, more %v", len(p.Logs), p.HasMore)
		}
		return err
	})
	measure("ui-tokens-usage", func() error { // /tokens: GET /api/tokens → usage of every token
		u, err := st.TokenUsage(ctx, logapi.TokenUsageQuery{})
		if err == nil && len(u.Tokens) != 20 {
			return fmt.Errorf("token usage for %d tokens, want 20", len(u.Tokens))
		}
		return err
	})
	measure("ui-dashboard-series-24h", func() error { // GET /api/stats/series
		_, err := st.Series(ctx, logapi.SeriesQuery{})
		return err
	})
	measure("ui-dashboard-attention-429", func() error { // GET /api/stats/attention-keys?status_code=429&limit=20
		a, err := st.Attention(ctx, logapi.AttentionQuery{Code: 429, Limit: 20})
		// Every 20th request is a 429, on the 10 keys numbered 17 mod 20.
		if err == nil && len(a.Keys) != 10 {
			return fmt.Errorf("attention = %d keys, want 10", len(a.Keys))
		}
		return err
	})
	measure("ui-keys-usage-24h", func() error { // the key view: GET /api/key-usage-details/:id
		_, err := st.KeyUsage(ctx, logapi.KeyUsageQuery{KeyID: "key007"})
		return err
	})
	// Other pages, filters and paging.
	measure("logs-page1-50", func() error { // logs page: newest first, estimated total
		p, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 50})
		if err == nil && (len(p.Logs) != 50 || !p.HasMore || p.Total == nil) {
			return fmt.Errorf("page 1 = %d rows, more %v", len(p.Logs), p.HasMore)
		}
		return err
	})
	measure("logs-page2-nocount", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 50, Offset: 50, Count: logapi.CountNone})
		return err
	})
	measure("logs-key-nocount", func() error {
		p, err := st.RequestLogs(ctx, logapi.RequestLogQuery{KeyID: "key007", Limit: 50, Count: logapi.CountNone})
		if err == nil && len(p.Logs) != 50 {
			return fmt.Errorf("key page = %d rows", len(p.Logs))
		}
		return err
	})
	measure("logs-model-page1", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Model: "gemini-2.5-pro", Limit: 50})
		return err
	})
	measure("logs-token-page1", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{TokenID: "tok03", Limit: 50})
		return err
	})
	measure("logs-status-nocount", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Status: 429, Limit: 50, Count: logapi.CountNone})
		return err
	})
	measure("logs-page10-nocount", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 50, Offset: 450, Count: logapi.CountNone})
		return err
	})
	measure("error-logs-page1-50", func() error {
		_, err := st.ErrorLogs(ctx, logapi.ErrorLogQuery{Limit: 50})
		return err
	})
	measure("series-token-24h", func() error {
		_, err := st.Series(ctx, logapi.SeriesQuery{TokenID: "tok03", From: start, To: now})
		return err
	})
	measure("series-overall-24h", func() error {
		_, err := st.Series(ctx, logapi.SeriesQuery{From: start, To: now})
		return err
	})
	measure("series-key-24h", func() error {
		_, err := st.Series(ctx, logapi.SeriesQuery{KeyID: "key007", From: start, To: now})
		return err
	})
	measure("series-model-24h", func() error {
		_, err := st.Series(ctx, logapi.SeriesQuery{Model: "gemini-2.5-pro", From: start, To: now})
		return err
	})
	// Under load the stats queries also add the rollup parts not yet folded
	// (about a second of traffic): 20 messages of 256 events here.
	for m := 0; m < 20; m++ {
		var msg []logstore.RequestLog
		var ids []string
		for j := 0; j < 256; j++ {
			i := rows + m*256 + j
			r := req(fmt.Sprintf("r%07d", i), now.Add(-time.Duration(5120-m*256-j)*time.Millisecond), fmt.Sprintf("key%03d", i%200),
				benchModels[i%4],
				fmt.Sprintf("tok%02d", i%20), statuses[i%len(statuses)], 10)
			msg, ids = append(msg, r), append(ids, r.ID)
		}
		for j := range msg {
			msg[j].Batch = logstore.PartID("r", ids)
		}
		// Parts only (the rows are not what the stats read), so a kept
		// database is restored by deleting them.
		if err := st.SettleParts(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	measure("overview-20-parts-pending", func() error {
		_, err := st.Overview(ctx, logapi.OverviewQuery{Now: now})
		return err
	})
	measure("token-usage-20-parts-pending", func() error {
		_, err := st.TokenUsage(ctx, logapi.TokenUsageQuery{Now: now})
		return err
	})
	measure("series-key-20-parts-pending", func() error {
		_, err := st.Series(ctx, logapi.SeriesQuery{KeyID: "key007", From: start, To: now})
		return err
	})
	measure("attention-20-parts-pending", func() error {
		_, err := st.Attention(ctx, logapi.AttentionQuery{Code: 429, Limit: 20, Now: now})
		return err
	})
	measure("attention-429", func() error {
		a, err := st.Attention(ctx, logapi.AttentionQuery{Code: 429, Limit: 20, Now: now})
		// Every 20th request is a 429, on the 10 keys numbered 17 mod 20.
		if err == nil && len(a.Keys) != 10 {
			return fmt.Errorf("attention = %d keys, want 10", len(a.Keys))
		}
		return err
	})
	measure("key-usage-24h", func() error {
		_, err := st.KeyUsage(ctx, logapi.KeyUsageQuery{KeyID: "key007", Now: now})
		return err
	})
	measure("request-logs-key-page", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{KeyID: "key007", Limit: 50})
		return err
	})
	// On a busy day the current hour changes between two polls. Earlier
	// versions then read its per-key rollups on every call (their hour
	// summary was stale): one more request in the current hour's overall
	// rollup, without its per-key rollup, kept it changed. Attention now
	// reads the derived rollups only, so this should cost what
	// attention-429 costs.
	_, err = db.Collection(logstore.CollRollups).UpdateOne(ctx, bson.M{"_id": busyHourID(now)},
		bson.M{"$set": bson.M{"req": seed.BusyReq + 1, "codes.429": seed.Busy429 + 1}})
	if err != nil {
		b.Fatal(err)
	}
	measure("attention-429-busy-hour", func() error {
		_, err := st.Attention(ctx, logapi.AttentionQuery{Code: 429, Limit: 20, Now: now})
		return err
	})
}

// seedBench inserts rows request logs over the 24 hours before now, their
// error logs, recent copy and rollups, and the marker.
func seedBench(b *testing.B, db *mongo.Database, rows int) benchSeed {
	st := logstore.New(db)
	ctx := context.Background()
	if err := st.EnsureIndexes(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	start := now.Add(-24 * time.Hour)
	step := 24 * time.Hour / time.Duration(rows)
	statuses := benchStatuses
	seedStart := time.Now()
	const chunk = 10000
	var seeder logstore.RollupSeeder
	for i := 0; i < rows; i += chunk {
		batch := make([]logstore.RequestLog, 0, chunk)
		for j := i; j < min(i+chunk, rows); j++ {
			r := req(fmt.Sprintf("r%07d", j), start.Add(time.Duration(j)*step), fmt.Sprintf("key%03d", j%200),
				benchModels[j%4], fmt.Sprintf("tok%02d", j%20), statuses[j%len(statuses)], 100)
			r.Batch = fmt.Sprint("seed", j/40) // a message of 40
			batch = append(batch, r)
		}
		// In buckets of 40, as ingest stores messages at ~2,000 requests/s.
		for k := 0; k < len(batch); k += 40 {
			if err := st.InsertRequestBuckets(ctx, batch[k:min(k+40, len(batch))]); err != nil {
				b.Fatal(err)
			}
		}
		// An error log per failed request (3 in 20), as edge records them.
		var errs []logstore.ErrorLog
		for _, r := range batch {
			if !r.Success {
				errs = append(errs, logstore.ErrorLog{ID: "e" + r.ID, RequestID: r.ID, Time: r.Time, Model: r.Model, KeyID: r.KeyID,
					KeyHint: "AIzaSy…" + r.KeyID, Attempt: 1, Code: r.Status, Type: "gemini-chat-non-stream", Message: "upstream said no"})
			}
		}
		if _, err := st.InsertLogs(ctx, "seed-errors", nil, errs); err != nil {
			b.Fatal(err)
		}
		// Counted as Settle would, so attention sees the failed attempts.
		seeder.AddAttempts(errs)
		seeder.Add(batch)
		// The recent copy holds the rows from the start of the minute of the
		// RecentRows-th newest on, as trims leave it on a busy day.
		cut := start.Add(time.Duration(max(rows-logstore.RecentRows, 0)) * step).Truncate(time.Minute)
		recent := map[string][]any{}
		for k := range batch {
			if !batch[k].Time.Before(cut) {
				c := logstore.RecentColl(batch[k].Time)
				recent[c] = append(recent[c], &batch[k])
			}
		}
		for c, docs := range recent {
			if _, err := db.Collection(c).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
				b.Fatal(err)
			}
		}
		if i == 0 {
			if err := st.SetRecentFrom(ctx, cut); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := seeder.Insert(ctx, st); err != nil {
		b.Fatal(err)
	}

	seed := benchSeed{ID: "seed", Version: benchSeedVersion, Rows: rows, Now: now}
	var busy logstore.Rollup
	if err := db.Collection(logstore.CollRollups).FindOne(ctx, bson.M{"_id": busyHourID(now)}).Decode(&busy); err != nil {
		b.Fatal(err)
	}
	seed.BusyReq, seed.Busy429 = busy.Requests, busy.Codes["429"]
	if _, err := db.Collection("bench_seed").InsertOne(ctx, seed); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d request logs with rollups in %s", rows, time.Since(seedStart).Round(time.Second))
	return seed
}

func busyHourID(now time.Time) string {
	return logstore.RollupID(mongox.HourBucket(now), logstore.Any, logstore.Any, logstore.Any)
}

// resetBench undoes what a run adds to a seeded database: the rollup parts
// pending, the derived rollups and fold rounds (so each run backfills them
// and times it), the query caches of earlier versions and the busy hour's
// extra request.
func resetBench(ctx context.Context, db *mongo.Database, seed benchSeed) error {
	if _, err := db.Collection(logstore.CollParts).DeleteMany(ctx, bson.M{}); err != nil {
		return err
	}
	// The bench folds no parts: its rounds are the backfills of earlier
	// runs, one perhaps unfinished (a frozen clock never takes it over).
	for _, c := range []string{logstore.CollAttention, logstore.CollMinuteSeconds, logstore.CollRounds, "rollups_cache"} {
		if err := db.Collection(c).Drop(ctx); err != nil {
			return err
		}
	}
	_, err := db.Collection(logstore.CollRollups).UpdateOne(ctx, bson.M{"_id": busyHourID(seed.Now)},
		bson.M{"$set": bson.M{"req": seed.BusyReq, "codes.429": seed.Busy429}})
	return err
}
