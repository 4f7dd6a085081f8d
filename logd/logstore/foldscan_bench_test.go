package logstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/testkit/storetest"
)

// BenchmarkFoldRoundByRollupSize measures what one fold round costs on the
// embedded FerretDB (SQLite) as rollups_hourly grows. FerretDB 1.24 on SQLite
// pushes down only a lone _id equality, so an upsert filtered by the round
// guard {_id, fr: {$not: {$gte: round}}} scans and decodes the whole
// collection; the fold there reads fr by _id and updates by _id alone
// (applyGuarded), and this shows both.
//
// For each size N (LOGD_FOLDSCAN_SIZES, default "0,10000,50000") a fresh
// database gets N hourly rollup documents of older hours, inserted directly,
// then 500 request logs of a new hour (20 keys, 2 models, 2 tokens, written
// as ingest batches of 32 through Write), and one fold round is timed. Beside
// it, on the same collection, upserts of the round's rollup ids in two other
// new hours (so they insert, as the round's do): a few with the round's
// guard, then as many as the round sends to rollups_hourly with a lone _id
// filter, in unordered bulks of 20 as the fold sends them.
//
// With the guard in the filter (a store that does not guard by a read) a
// round scans rollups_hourly once per update, so at large N it takes
// minutes: when the guarded updates project a round longer than
// LOGD_FOLDSCAN_MAX_ROUND seconds (default 180) it is not run, and the
// projection (guarded ms per update × the round's updates) is printed.
//
//	go test ./logd/logstore -run '^$' -bench FoldRoundByRollupSize -benchtime 1x -v
func BenchmarkFoldRoundByRollupSize(b *testing.B) {
	sizes := []int{0, 10000, 50000}
	if env := os.Getenv("LOGD_FOLDSCAN_SIZES"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 0 {
				b.Fatalf("LOGD_FOLDSCAN_SIZES: %q is not a size", f)
			}
			sizes = append(sizes, n)
		}
	}
	maxRound := time.Duration(envInt("LOGD_FOLDSCAN_MAX_ROUND", 180)) * time.Second
	uri := storetest.Start(b)
	type row struct {
		n                     int
		round                 time.Duration
		projected             bool
		folded                int
		hourly, others        int
		guarded               int
		guardedEach, loneEach time.Duration
		prefill               time.Duration
	}
	var rows []row
	for _, n := range sizes {
		r := row{n: n}
		ctx := context.Background()
		db := storetest.Database(b, uri, fmt.Sprintf("foldscan_%d", n))
		st := logstore.New(db)
		if err := st.EnsureIndexes(ctx); err != nil {
			b.Fatal(err)
		}
		// With no rollups yet the derived rollups are complete: marked now,
		// so the prefill below does not make the round a backfill.
		if err := st.Backfill(ctx); err != nil {
			b.Fatal(err)
		}
		hour := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
		rollups := db.Collection(logstore.CollRollups)
		t0 := time.Now()
		prefillRollups(b, rollups, hour, n)
		r.prefill = time.Since(t0)
		logs := foldBatch(hour.Add(10 * time.Minute))

		// The round's rollups_hourly ids, in two hours of their own.
		shadow := func(h time.Time) []string {
			var ids []string
			for _, id := range hourlyIDs(logs) {
				ids = append(ids, h.Format("2006-01-02T15")+id[13:])
			}
			return ids
		}
		r.guarded, r.guardedEach = timeGuarded(b, rollups, shadow(hour.Add(time.Hour)))
		r.loneEach = timeUpdates(b, rollups, shadow(hour.Add(2*time.Hour)), func(id string) bson.D {
			return bson.D{{Key: "_id", Value: id}}
		}, 1)

		writeFoldBatch(b, st, logs)
		r.hourly = len(hourlyIDs(logs))
		lookup, err := st.GuardByLookup(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if proj := r.guardedEach * time.Duration(r.hourly); !lookup && proj > maxRound {
			r.round, r.projected = proj, true
			b.Logf("N=%d: prefill %.1f s; round not run: projected %.0f s > LOGD_FOLDSCAN_MAX_ROUND", n, r.prefill.Seconds(), proj.Seconds())
			rows = append(rows, r)
			continue
		}
		t0 = time.Now()
		folded, err := st.Fold(ctx)
		if err != nil {
			b.Fatal(err)
		}
		r.round, r.folded = time.Since(t0), folded

		h := hour.Format("2006-01-02T15")
		k, err := rollups.CountDocuments(ctx, bson.M{"h": h})
		if err != nil {
			b.Fatal(err)
		}
		if int(k) != r.hourly {
			b.Fatalf("the round wrote %d rollups_hourly documents, want %d", k, r.hourly)
		}
		r.others = 0
		for _, c := range []struct {
			coll   string
			filter bson.M
		}{
			{logstore.CollMinutes, bson.M{"h": h}},
			{logstore.CollAttention, bson.M{"h": h}},
			{logstore.CollMinuteSeconds, bson.M{"_id": bson.M{"$gte": h}}},
		} {
			k, err := db.Collection(c.coll).CountDocuments(ctx, c.filter)
			if err != nil {
				b.Fatal(err)
			}
			r.others += int(k)
		}
		b.Logf("N=%d: prefill %.1f s; the round folded %d parts", n, r.prefill.Seconds(), r.folded)
		rows = append(rows, r)
	}
	b.Logf("%7s %12s %7s %6s %14s %14s %9s", "N", "round ms", "hourly", "other", "guarded ms/up", "lone-_id ms/up", "guarded÷lone")
	for _, r := range rows {
		round, others := fmt.Sprintf("%.0f", ms(r.round)), fmt.Sprint(r.others)
		if r.projected {
			round, others = "~"+round+"*", "-"
		}
		b.Logf("%7d %12s %7d %6s %14.2f %14.2f %9.0f×", r.n, round, r.hourly, others, ms(r.guardedEach), ms(r.loneEach),
			float64(r.guardedEach)/float64(r.loneEach))
		if !r.projected {
			b.ReportMetric(ms(r.round), fmt.Sprintf("N%d-round-ms", r.n))
		}
		b.ReportMetric(ms(r.guardedEach), fmt.Sprintf("N%d-guarded-ms/update", r.n))
		b.ReportMetric(ms(r.loneEach), fmt.Sprintf("N%d-lone-id-ms/update", r.n))
	}
	b.Logf("round: one fold round of 500 request logs as the store runs it (the hour's first: its upserts insert); hourly / other: the " +
		"rollups_hourly / minute, attention and minute-second documents it upserts; guarded / lone-_id: ms per upsert into " +
		"rollups_hourly of N documents with the fold's guard / with a lone _id; * projected (guarded ms × hourly), not run")
}

// timeGuarded upserts ids with the fold's round guard, sending one first
// and then as many as fit about 20 s (up to 19, in one bulk), and returns how
// many it sent and the time per update.
func timeGuarded(b *testing.B, coll *mongo.Collection, ids []string) (int, time.Duration) {
	guard := func(id string) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "fr", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gte", Value: 1}}}}}}
	}
	first := timeUpdates(b, coll, ids[:1], guard, 1)
	k := min(len(ids)-1, 19, int(20*time.Second/max(first, time.Millisecond)))
	if k < 1 {
		return 1, first
	}
	rest := timeUpdates(b, coll, ids[1:1+k], guard, 1)
	return 1 + k, (first + rest*time.Duration(k)) / time.Duration(1+k)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var (
	foldKeys   = func() []string { return numbered("key-", 20) }()
	foldModels = []string{"gemini-2.5-flash", "gemini-2.5-pro"}
	foldTokens = []string{"tok-a", "tok-b"}
)

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

// prefillRollups inserts n hourly rollup documents shaped as the fold
// writes them, for the hours before hour (every level of each: 105 a hour).
func prefillRollups(b *testing.B, coll *mongo.Collection, hour time.Time, n int) {
	ctx := context.Background()
	const chunk = 5000
	docs := make([]any, 0, chunk)
	flush := func() {
		if len(docs) == 0 {
			return
		}
		if _, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
			b.Fatalf("prefill rollups: %v", err)
		}
		docs = docs[:0]
	}
	written := 0
	for h := hour.Add(-time.Hour); written < n; h = h.Add(-time.Hour) {
		hb := h.Format("2006-01-02T15")
		var levels [][3]string
		levels = append(levels, [3]string{logstore.Any, logstore.Any, logstore.Any})
		for _, k := range foldKeys {
			levels = append(levels, [3]string{k, logstore.Any, logstore.Any})
			for _, m := range foldModels {
				for _, t := range foldTokens {
					levels = append(levels, [3]string{k, m, t})
				}
			}
		}
		for _, m := range foldModels {
			levels = append(levels, [3]string{logstore.Any, m, logstore.Any})
		}
		for _, t := range foldTokens {
			levels = append(levels, [3]string{logstore.Any, logstore.Any, t})
		}
		for _, l := range levels {
			if written == n {
				break
			}
			req := int64(40 + written%60)
			d := logstore.Rollup{
				ID: logstore.RollupID(hb, l[0], l[1], l[2]), Hour: hb, Day: hb[:10], Month: hb[:7],
				Key: l[0], Model: l[1], Token: l[2], Round: 1,
				Codes: map[string]int64{"429": 2, "500": 1},
				Counters: logstore.Counters{Requests: req, Successes: req - 3, Failures: 3, Fail4xx: 2, Fail5xx: 1,
					Prompt: req * 900, Completion: req * 300, Thoughts: req * 100, Tokens: req * 1300, LatencySum: float64(req) * 850},
			}
			if l[0] != logstore.Any && l[1] == logstore.Any {
				d.Attempts = map[string]int64{"429": 5}
			}
			docs = append(docs, d)
			written++
			if len(docs) == chunk {
				flush()
			}
		}
	}
	flush()
}

// foldBatch is 500 request logs from at on, 20 ms apart, over every key,
// both models and both tokens; 1 in 25 a 429 and 1 in 25 a 500.
func foldBatch(at time.Time) []logstore.RequestLog {
	const total = 500
	rs := make([]logstore.RequestLog, total)
	for i := range rs {
		status := 200
		switch i % 25 {
		case 7:
			status = 429
		case 19:
			status = 500
		}
		rs[i] = req(fmt.Sprintf("r-%05d", i), at.Add(time.Duration(i)*20*time.Millisecond),
			foldKeys[i%len(foldKeys)], foldModels[i/len(foldKeys)%2], foldTokens[i/7%2], status, 200+i%300)
	}
	return rs
}

// writeFoldBatch writes logs as ingest does: batches of 32, each its own part.
func writeFoldBatch(b *testing.B, st *logstore.Store, logs []logstore.RequestLog) {
	const batch = 32
	for lo := 0; lo < len(logs); lo += batch {
		if _, err := st.Write(context.Background(), fmt.Sprintf("batch-%d", lo/batch), logs[lo:min(lo+batch, len(logs))], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// hourlyIDs are the rollups_hourly ids logs count into (every level).
func hourlyIDs(logs []logstore.RequestLog) []string {
	seen := map[string]bool{}
	var ids []string
	for _, r := range logs {
		for _, l := range [][3]string{{r.KeyID, r.Model, r.TokenID}, {logstore.Any, logstore.Any, logstore.Any},
			{r.KeyID, logstore.Any, logstore.Any}, {logstore.Any, r.Model, logstore.Any}, {logstore.Any, logstore.Any, r.TokenID}} {
			id := logstore.RollupID(r.Hour, l[0], l[1], l[2])
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// timeUpdates sends one $inc upsert per id, filtered by filter, as unordered
// bulks of 20 (as the fold sends them), and returns the time per update.
func timeUpdates(b *testing.B, coll *mongo.Collection, ids []string, filter func(string) bson.D, round int64) time.Duration {
	if len(ids) == 0 {
		return 0
	}
	ctx := context.Background()
	models := make([]mongo.WriteModel, len(ids))
	for i, id := range ids {
		update := bson.D{
			{Key: "$inc", Value: bson.D{{Key: "req", Value: 1}, {Key: "ok", Value: 1}, {Key: "tok", Value: 500}}},
			{Key: "$set", Value: bson.D{{Key: "fr", Value: round}}},
		}
		models[i] = mongo.NewUpdateOneModel().SetFilter(filter(id)).SetUpdate(update).SetUpsert(true)
	}
	t0 := time.Now()
	for lo := 0; lo < len(models); lo += 20 {
		res, err := coll.BulkWrite(ctx, models[lo:min(lo+20, len(models))], options.BulkWrite().SetOrdered(false))
		if err != nil {
			b.Fatal(err)
		}
		if got := res.ModifiedCount + res.UpsertedCount; got != int64(min(20, len(models)-lo)) {
			b.Fatalf("updates wrote %d documents, want %d", got, min(20, len(models)-lo))
		}
	}
	return time.Since(t0) / time.Duration(len(ids))
}
