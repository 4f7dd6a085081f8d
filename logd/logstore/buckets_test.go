package logstore_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/logapi"
)

// asMessage tags rows as ingest tags one bus message's rows: with its part.
func asMessage(rows []logstore.RequestLog) []logstore.RequestLog {
	ids := make([]string, len(rows))
	for i := range rows {
		ids[i] = rows[i].ID
	}
	part := logstore.PartID("r", ids)
	for i := range rows {
		rows[i].Batch = part
	}
	return rows
}

// varied is the n-th of a set of request logs that differ in every field a
// page filters or sorts on.
func varied(prefix string, n int, at time.Time) logstore.RequestLog {
	r := req(fmt.Sprintf("%s%05d", prefix, n), at, fmt.Sprint("k", n%7), fmt.Sprint("m", n%3), fmt.Sprint("t", n%5),
		[]int{200, 200, 429, 500, 200, 400}[n%6], n%11)
	r.Route = []string{"gemini", "openai", "anthropic"}[n%4%3]
	r.LatencyMS = float64((n * 7919) % 1000) // many ties and no order
	return r
}

func countColl(t *testing.T, db *mongo.Database, coll string, f bson.M) int64 {
	t.Helper()
	n, err := db.Collection(coll).CountDocuments(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A request log costs no document of its own: a message's rows of one minute
// are one bucket, which is what keeps the embedded store's cost per request
// down.
func TestRequestLogsAreStoredOneBucketPerMessageAndMinute(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	var want []string
	for m := 0; m < 3; m++ {
		var rows []logstore.RequestLog
		for i := 0; i < 50; i++ { // 30 s of a message's rows cross a minute
			rows = append(rows, varied(fmt.Sprint("msg", m, "-"), i, t0.Add(time.Duration(m*5+i)*time.Second+40*time.Second)))
			want = append(want, rows[i].ID)
		}
		res, err := st.Write(ctx, fmt.Sprint("b", m), asMessage(rows), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Inserted != 50 || res.Rolled != 50 {
			t.Fatalf("message %d: %+v, want 50 inserted and rolled", m, res)
		}
	}
	if n := countColl(t, db, logstore.CollRequestBuckets, bson.M{}); n != 6 {
		t.Fatalf("request_log_buckets holds %d documents for 3 messages across 2 minutes each, want 6", n)
	}
	if n := countColl(t, db, logstore.CollRequests, bson.M{}); n != 0 {
		t.Fatalf("request_logs holds %d rows, want none (rows live in buckets)", n)
	}
	var got []string
	for _, r := range storedRows(t, db) {
		got = append(got, r.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("stored %d request logs, want the %d written, once each", len(got), len(want))
	}
	if r := rollup(t, db, "2026-11-27T06|*|*|*"); r.Requests != 150 {
		t.Fatalf("overall rollup = %d requests, want 150", r.Requests)
	}
}

// seedMixed stores rows as an upgraded store holds them: some as rows of an
// earlier version (request_logs), the rest in buckets, messages of 40.
func seedMixed(t *testing.T, st *logstore.Store, db *mongo.Database, n int) []logstore.RequestLog {
	t.Helper()
	ctx := context.Background()
	var all []logstore.RequestLog
	var legacy []any
	for i := 0; i < n; i++ {
		r := varied("r", i, t0.Add(time.Duration(i)*250*time.Millisecond))
		all = append(all, r)
		if i%10 == 3 {
			r.Batch = "old"
			legacy = append(legacy, r)
		}
	}
	if _, err := db.Collection(logstore.CollRequests).InsertMany(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	var rest []logstore.RequestLog
	for i := range all {
		if i%10 != 3 {
			rest = append(rest, all[i])
		}
	}
	for i := 0; i < len(rest); i += 40 {
		if _, err := st.InsertLogs(ctx, "b", asMessage(slices.Clone(rest[i:min(i+40, len(rest))])), nil); err != nil {
			t.Fatal(err)
		}
	}
	return all
}

// Pages the recent copy cannot serve (other sorts, or ascending time) and
// exact counts read buckets and old rows alike and equal the brute-force
// answer, at any offset.
func TestBucketPagesSortFilterAndCountLikeRows(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	all := seedMixed(t, st, db, 3000)
	ok, fail := true, false
	queries := []logapi.RequestLogQuery{
		{SortBy: "latency", Limit: 10},
		{SortBy: "latency", Order: "asc", Limit: 25, Offset: 37},
		{SortBy: "status", Limit: 50, Offset: 2500},
		{SortBy: "model", Order: "asc", Limit: 7, Offset: 1200, KeyID: "k3"},
		{SortBy: "time", Order: "asc", Limit: 20, Offset: 100, Route: "openai"},
		{SortBy: "latency", Limit: 30, Status: 500, From: t0.Add(100 * time.Second), To: t0.Add(500 * time.Second)},
		{SortBy: "status", Order: "asc", Limit: 40, Success: &ok, Model: "m1", TokenID: "t2"},
		{SortBy: "latency", Limit: 15, Success: &fail},
		{SortBy: "latency", Limit: 5, Offset: 4000},
	}
	for _, q := range queries {
		q.Count = logapi.CountExact
		page, err := st.RequestLogs(ctx, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		want := slices.DeleteFunc(slices.Clone(all), func(r logstore.RequestLog) bool {
			return (q.KeyID != "" && r.KeyID != q.KeyID) || (q.Model != "" && r.Model != q.Model) ||
				(q.TokenID != "" && r.TokenID != q.TokenID) || (q.Route != "" && r.Route != q.Route) ||
				(q.Status != 0 && r.Status != q.Status) || (q.Success != nil && r.Success != *q.Success) ||
				(!q.From.IsZero() && r.Time.Before(q.From)) || (!q.To.IsZero() && !r.Time.Before(q.To))
		})
		total := len(want)
		dir := map[string]int{"": -1, "desc": -1, "asc": 1}[q.Order]
		slices.SortFunc(want, func(a, b logstore.RequestLog) int {
			var c int
			switch q.SortBy {
			case "latency":
				c = cmp.Compare(a.LatencyMS, b.LatencyMS)
			case "status":
				c = cmp.Compare(a.Status, b.Status)
			case "model":
				c = cmp.Compare(a.Model, b.Model)
			default:
				c = a.Time.Compare(b.Time)
			}
			return dir * cmp.Or(c, cmp.Compare(a.ID, b.ID))
		})
		var wantIDs, gotIDs []string
		for i := q.Offset; i < len(want) && i < q.Offset+q.Limit; i++ {
			wantIDs = append(wantIDs, want[i].ID)
		}
		for _, r := range page.Logs {
			gotIDs = append(gotIDs, r.ID)
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Errorf("%+v:\n got  %v\n want %v", q, gotIDs, wantIDs)
		}
		if page.HasMore != (q.Offset+q.Limit < len(want)) {
			t.Errorf("%+v: has_more %v with %d matching", q, page.HasMore, len(want))
		}
		if page.Total == nil || *page.Total != int64(total) || !page.TotalExact {
			t.Errorf("%+v: total %v (exact %v), want %d", q, page.Total, page.TotalExact, total)
		}
	}
}

// Deletes take exactly the rows asked for from buckets and old rows alike,
// rewrite a bucket they take part of in place, and a message redelivered
// after a delete does not bring its deleted rows back.
func TestDeletesRewriteBucketsAndCountExactly(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	all := seedMixed(t, st, db, 400) // 100 s from t0, 0.25 s apart
	left := map[string]bool{}
	for _, r := range all {
		left[r.ID] = true
	}
	check := func(what string) {
		t.Helper()
		var got []string
		for _, r := range storedRows(t, db) {
			if !left[r.ID] {
				t.Fatalf("%s: %s is still stored", what, r.ID)
			}
			got = append(got, r.ID)
		}
		if len(got) != len(left) {
			t.Fatalf("%s: %d request logs stored, want %d", what, len(got), len(left))
		}
	}
	// An old row (r00003), rows from two buckets' middles, and an id that
	// does not exist.
	ids := []string{"r00003", "r00010", "r00011", "r00200", "nope"}
	n, err := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{IDs: ids})
	if err != nil || n != 4 {
		t.Fatalf("delete by ids = %d, %v; want 4", n, err)
	}
	for _, id := range ids {
		delete(left, id)
	}
	check("after the delete by ids")
	// The bucket that held r00010 is rewritten under its _id, not replaced
	// by a second one.
	if c := countColl(t, db, logstore.CollRequestBuckets, bson.M{"ids": "r00010"}); c != 0 {
		t.Fatalf("a bucket still names r00010 (%d)", c)
	}
	// Its message comes again: its bucket exists, so nothing returns.
	var first []logstore.RequestLog // the first message seedMixed wrote
	for i, r := range all {
		if i%10 != 3 && len(first) < 40 {
			first = append(first, r)
		}
	}
	if _, err := st.InsertLogs(ctx, "again", asMessage(first), nil); err != nil {
		t.Fatal(err)
	}
	check("after a redelivery")

	// Before a time inside a bucket: 41.3 s from t0 cuts one.
	cut := t0.Add(41300 * time.Millisecond)
	want := 0
	for _, r := range all {
		if left[r.ID] && r.Time.Before(cut) {
			delete(left, r.ID)
			want++
		}
	}
	n, err = st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{Before: cut})
	if err != nil || n != int64(want) {
		t.Fatalf("delete before %s = %d, %v; want %d", cut, n, err, want)
	}
	check("after the delete before a time")

	// Retention cuts the same way.
	set := config.Defaults()
	set.AutoDeleteRequestLogsEnabled, set.AutoDeleteRequestLogsDays = true, 1
	cut = t0.Add(70100 * time.Millisecond)
	want = 0
	for _, r := range all {
		if left[r.ID] && r.Time.Before(cut) {
			delete(left, r.ID)
			want++
		}
	}
	res, err := st.Retain(ctx, &set, cut.AddDate(0, 0, 1))
	if err != nil || res.RequestLogs != int64(want) {
		t.Fatalf("retention = %d, %v; want %d", res.RequestLogs, err, want)
	}
	check("after retention")

	want = len(left)
	n, err = st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{All: true})
	if err != nil || n != int64(want) {
		t.Fatalf("delete all = %d, %v; want %d", n, err, want)
	}
	left = map[string]bool{}
	check("after deleting all")
	if c := countColl(t, db, logstore.CollRequestBuckets, bson.M{}); c != 0 {
		t.Fatalf("%d buckets left after deleting all", c)
	}
}
