package logstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/deployments/embedded/ferret"
	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// BenchmarkQueriesMillionLogsPostgres seeds a busy day (LOGD_BENCH_ROWS,
// default 1,000,000 request logs over the last 24 hours, 200 keys, 4 models,
// 20 tokens) into FerretDB on PostgreSQL, logs and rollups inserted directly,
// then prints the latency of each dashboard query:
//
//	go test ./logd/logstore -run '^$' -bench QueriesMillion -benchtime 1x -timeout 30m
func BenchmarkQueriesMillionLogsPostgres(b *testing.B) {
	benchQueries(b, testenv.StartFerretPostgres(b), 1_000_000)
}

// BenchmarkQueriesSQLite is the same on the all-in-one's embedded FerretDB
// on SQLite, which pushes only _id equality down; default 100,000 rows:
//
//	go test ./logd/logstore -run '^$' -bench QueriesSQLite -benchtime 1x -timeout 30m
func BenchmarkQueriesSQLite(b *testing.B) {
	benchQueries(b, ferret.StartForTest(b), 100_000)
}

func benchQueries(b *testing.B, uri string, rows int) {
	if n, err := strconv.Atoi(os.Getenv("LOGD_BENCH_ROWS")); err == nil && n > 0 {
		rows = n
	}
	db := testenv.Mongo(b, uri, "logd")
	st := logstore.New(db)
	ctx := context.Background()
	if err := st.EnsureIndexes(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	start := now.Add(-24 * time.Hour)
	step := 24 * time.Hour / time.Duration(rows)
	statuses := []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 500, 400}
	seedStart := time.Now()
	const chunk = 10000
	var seeder logstore.RollupSeeder
	for i := 0; i < rows; i += chunk {
		batch := make([]logstore.RequestLog, 0, chunk)
		for j := i; j < min(i+chunk, rows); j++ {
			r := req(fmt.Sprintf("r%07d", j), start.Add(time.Duration(j)*step), fmt.Sprintf("key%03d", j%200),
				[]string{"gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash"}[j%4],
				fmt.Sprintf("tok%02d", j%20), statuses[j%len(statuses)], 100)
			r.Batch = "seed"
			batch = append(batch, r)
		}
		docs := make([]any, len(batch))
		for k := range batch {
			docs[k] = &batch[k]
		}
		if _, err := db.Collection(logstore.CollRequests).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
			b.Fatal(err)
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

	b.Logf("seeded %d request logs with rollups in %s", rows, time.Since(seedStart).Round(time.Second))

	measure := func(name string, f func() error) {
		const runs = 10
		// The first call is reported apart: it fills caches (attention's hour
		// summaries) that later calls reuse while the rollups stay unchanged.
		t0 := time.Now()
		if err := f(); err != nil { // warm-up, and a check that it works
			b.Fatalf("%s: %v", name, err)
		}
		first := time.Since(t0)
		n := runs
		if first > 2*time.Second { // a slow query: a couple of runs say enough
			n = 2
		}
		t0 = time.Now()
		for i := 0; i < n; i++ {
			if err := f(); err != nil {
				b.Fatalf("%s: %v", name, err)
			}
		}
		avg := time.Since(t0) / time.Duration(n)
		b.ReportMetric(float64(avg.Microseconds())/1000, name+"-ms")
		b.Logf("%-28s %8.1f ms (first call %.1f ms)", name, float64(avg.Microseconds())/1000, float64(first.Microseconds())/1000)
	}
	b.ResetTimer()
	// The admin UI's first data per page (GET /api/... → these queries).
	measure("ui-logs-page1", func() error { // logs page: newest first, estimated total
		p, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 50})
		if err == nil && (len(p.Logs) != 50 || !p.HasMore || p.Total == nil) {
			return fmt.Errorf("page 1 = %d rows, more %v", len(p.Logs), p.HasMore)
		}
		return err
	})
	measure("ui-logs-page2-nocount", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 50, Offset: 50, Count: logapi.CountNone})
		return err
	})
	measure("ui-logs-key-nocount", func() error {
		p, err := st.RequestLogs(ctx, logapi.RequestLogQuery{KeyID: "key007", Limit: 50, Count: logapi.CountNone})
		if err == nil && len(p.Logs) != 50 {
			return fmt.Errorf("key page = %d rows", len(p.Logs))
		}
		return err
	})
	measure("ui-logs-model-page1", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Model: "gemini-2.5-pro", Limit: 50})
		return err
	})
	measure("ui-logs-token-page1", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{TokenID: "tok03", Limit: 50})
		return err
	})
	measure("ui-logs-status-nocount", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Status: 429, Limit: 50, Count: logapi.CountNone})
		return err
	})
	measure("ui-logs-page10-nocount", func() error {
		_, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 50, Offset: 450, Count: logapi.CountNone})
		return err
	})
	measure("ui-error-logs-page1", func() error { // logs page and dashboard's recent errors
		_, err := st.ErrorLogs(ctx, logapi.ErrorLogQuery{Limit: 50})
		return err
	})
	measure("ui-token-usage", func() error { // tokens page
		u, err := st.TokenUsage(ctx, logapi.TokenUsageQuery{Now: now})
		if err == nil && len(u.Tokens) != 20 {
			return fmt.Errorf("token usage for %d tokens, want 20", len(u.Tokens))
		}
		return err
	})
	measure("ui-series-token-24h", func() error {
		_, err := st.Series(ctx, logapi.SeriesQuery{TokenID: "tok03", From: start, To: now})
		return err
	})
	measure("overview", func() error {
		o, err := st.Overview(ctx, logapi.OverviewQuery{Now: now})
		// Window edges are whole seconds: rows in the fraction of a second
		// at the start of the 24 hours are not counted.
		if perSecond := int64(rows/86400 + 1); err == nil && (o.Day.Requests > int64(rows) || o.Day.Requests < int64(rows)-perSecond) {
			return fmt.Errorf("day = %d requests, want %d less at most %d", o.Day.Requests, rows, perSecond)
		}
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
				[]string{"gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash"}[i%4],
				fmt.Sprintf("tok%02d", i%20), statuses[i%len(statuses)], 10)
			msg, ids = append(msg, r), append(ids, r.ID)
		}
		for j := range msg {
			msg[j].Batch = logstore.PartID("r", ids)
		}
		if _, err := st.Write(ctx, "pending", msg, nil); err != nil {
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
	// On a busy day the current hour changes between two polls, so its
	// per-key rollups are read every time: one more request in the current
	// hour's overall rollup, without its per-key rollup, keeps it changed.
	_, err := db.Collection(logstore.CollRollups).UpdateOne(ctx, bson.M{"_id": logstore.RollupID(mongox.HourBucket(now), "*", "*", "*")},
		bson.M{"$inc": bson.M{"req": 1, "codes.429": 1}})
	if err != nil {
		b.Fatal(err)
	}
	measure("attention-429-busy-hour", func() error {
		_, err := st.Attention(ctx, logapi.AttentionQuery{Code: 429, Limit: 20, Now: now})
		return err
	})
}
