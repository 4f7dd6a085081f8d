package logstore_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/logapi"
)

// bruteForce lists the request logs a query asks for the slow, obvious way:
// every stored row, filtered and sorted (time, then id, newest first) in Go.
func bruteForce(t *testing.T, db *mongo.Database, q logapi.RequestLogQuery) (ids string, more bool) {
	t.Helper()
	all := storedRows(t, db)
	all = slices.DeleteFunc(all, func(r logstore.RequestLog) bool {
		return (q.KeyID != "" && r.KeyID != q.KeyID) || (q.Model != "" && r.Model != q.Model) ||
			(q.TokenID != "" && r.TokenID != q.TokenID) || (q.Route != "" && r.Route != q.Route) ||
			(q.Status != 0 && r.Status != q.Status) || (q.Success != nil && r.Success != *q.Success) ||
			(!q.From.IsZero() && r.Time.Before(q.From)) || (!q.To.IsZero() && !r.Time.Before(q.To))
	})
	slices.SortFunc(all, func(a, b logstore.RequestLog) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID)) })
	var out []string
	for i := q.Offset; i < len(all) && i < q.Offset+q.Limit; i++ {
		out = append(out, all[i].ID)
	}
	return strings.Join(out, ","), len(all) > q.Offset+q.Limit
}

// The logs page's newest-first views read the recent copy (and fall back to
// request_logs before its watermark): every filter, range and offset lists
// exactly the rows and has_more of a brute-force listing, after trims that
// move the watermark, deletes of every kind and retention.
func TestRecentPagesMatchABruteForceListing(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	now := t0.Add(time.Hour)
	st.SetClock(func() time.Time { return now })
	st.SetRecentRows(12)
	// Rows before the watermark are stored in request_logs only.
	if err := st.SetRecentFrom(ctx, t0.Add(-100*time.Minute+30*time.Second)); err != nil {
		t.Fatal(err)
	}
	var rows []logstore.RequestLog
	for i := range 60 { // two hours back, ties on the millisecond every third row
		at := t0.Add(-time.Duration(i)*2*time.Minute - time.Duration(i%3/2)*time.Second)
		r := req(fmt.Sprintf("r%02d", i), at, fmt.Sprint("k", i%3), fmt.Sprint("m", i%2), fmt.Sprint("t", i%5), []int{200, 200, 429, 500}[i%4], 1)
		r.Route = []string{"native", "openai"}[i%7/6]
		rows = append(rows, r)
	}
	// Rows sharing minutes (so the copy buckets several per minute), one
	// tied to the millisecond with an earlier row.
	for i := range 12 {
		at := t0.Add(-time.Duration(i%4)*2*time.Minute + time.Duration(i+1)*3*time.Second)
		if i == 11 {
			at = rows[2].Time
		}
		rows = append(rows, req(fmt.Sprintf("s%02d", i), at, fmt.Sprint("k", i%3), fmt.Sprint("m", i%2), fmt.Sprint("t", i%5), []int{200, 429}[i%2], 1))
	}
	write(t, st, "b1", rows[:30]...)
	write(t, st, "b2", rows[30:60]...)
	write(t, st, "b2", rows[25:35]...) // a retried batch
	write(t, st, "b4", rows[60:]...)
	write(t, st, "b4", rows[63:69]...) // retried, grouped otherwise: its rows are copied twice
	var copied int64
	if copied = copies(t, db); copied != 62 {
		t.Fatalf("recent copy holds %d rows, want the 62 at or after the watermark", copied)
	}
	// A copy older than the watermark (a writer that had not seen it move)
	// is not a row readers may list.
	ghost := req("ghost", t0.Add(-100*time.Minute+10*time.Second), "k1", "m1", "t3", 200, 1)
	if _, err := db.Collection(logstore.RecentColl(ghost.Time)).InsertOne(ctx, ghost); err != nil {
		t.Fatal(err)
	}
	yes := true
	queries := []logapi.RequestLogQuery{
		{Limit: 5}, {Limit: 5, Offset: 5}, {Limit: 7, Offset: 45}, {Limit: 50}, {Limit: 100},
		{Limit: 3, From: t0.Add(-30 * time.Minute)}, {Limit: 3, To: t0.Add(-50 * time.Minute)},
		{Limit: 10, From: t0.Add(-21 * time.Minute), To: t0.Add(-5 * time.Minute)},
		{Limit: 50, From: t0.Add(-3 * time.Hour)}, {Limit: 50, From: t0.Add(-22*time.Minute - 500*time.Millisecond)},
		{Limit: 5, KeyID: "k1"}, {Limit: 5, Offset: 15, KeyID: "k1"}, {Limit: 50, KeyID: "k2"},
		{Limit: 4, Model: "m0"}, {Limit: 4, TokenID: "t3"}, {Limit: 2, Offset: 2, TokenID: "t3", Model: "m1"},
		{Limit: 5, Status: 429}, {Limit: 5, Route: "openai"}, {Limit: 5, Success: &yes, KeyID: "k0"},
		{Limit: 5, KeyID: "nope"}, {Limit: 5, KeyID: "k1", From: t0.Add(-40 * time.Minute)},
	}
	check := func(stage string) {
		t.Helper()
		for _, q := range queries {
			q.Count = logapi.CountNone
			got, err := st.RequestLogs(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, l := range got.Logs {
				ids = append(ids, l.ID)
			}
			want, more := bruteForce(t, db, q)
			if strings.Join(ids, ",") != want || got.HasMore != more {
				t.Errorf("%s, %+v:\n got %s (more %v)\nwant %s (more %v)", stage, q, strings.Join(ids, ","), got.HasMore, want, more)
			}
		}
	}
	check("written")
	// The trim counts the minutes from the rollups: folded ones, read by _id.
	if _, err := st.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := st.RecentFrom(ctx)
	if err := st.TrimRecent(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := st.RecentFrom(ctx)
	if n := copies(t, db); !after.After(before) || n >= copied || n < 12 {
		t.Fatalf("trim kept %d of %d copies, watermark %v → %v; want ≥ 12 kept and the watermark raised", n, copied, before, after)
	}
	check("trimmed")
	if _, err := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{IDs: []string{"r00", "r04", "r40", "s04", "s05", "nope"}}); err != nil {
		t.Fatal(err)
	}
	check("deleted by id")
	if _, err := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{Before: t0.Add(-90 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	check("deleted before")
	set := &config.Settings{AutoDeleteRequestLogsEnabled: true, AutoDeleteRequestLogsDays: 1}
	if _, err := st.Retain(ctx, set, t0.Add(24*time.Hour-61*time.Minute)); err != nil {
		t.Fatal(err)
	}
	check("retention")
	if _, err := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{All: true}); err != nil {
		t.Fatal(err)
	}
	check("deleted all")
	now = now.Add(time.Minute)
	write(t, st, "b3", req("late", now.Add(-time.Second), "k1", "m0", "t3", 200, 1), req("late-old", t0.Add(-time.Hour), "k1", "m0", "t3", 200, 1))
	check("written after deleting all")
}

// copies counts the distinct rows of the recent copy's minute collections.
func copies(t *testing.T, db *mongo.Database) int64 {
	t.Helper()
	n, err := logstore.RecentCopyRows(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return int64(n)
}
