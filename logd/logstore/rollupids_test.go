package logstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/testkit/storetest"
)

// On FerretDB/SQLite a 24-hour series (overall, or one key, model or token)
// and the overview's day and minute reads find their rollups by _id, and
// token and key usage read none (the token and key-model rollups): any other filter makes
// FerretDB decode every hourly rollup kept. The answers
// stay exact with parts pending and folded alike.
func TestSQLiteStatsReadRollupsByID(t *testing.T) {
	uri := storetest.Start(t)
	var mu sync.Mutex
	var scans []string // find commands on the rollups not by _id alone
	watch := false
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "find" {
			return
		}
		coll, _ := e.Command.Lookup("find").StringValueOK()
		if coll != logstore.CollRollups && coll != logstore.CollMinutes {
			return
		}
		f, _ := e.Command.Lookup("filter").DocumentOK()
		mu.Lock()
		defer mu.Unlock()
		if els, _ := bson.Raw(f).Elements(); watch && (len(els) != 1 || els[0].Key() != "_id") {
			scans = append(scans, coll+" "+bson.Raw(f).String())
		}
	}}
	cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(monitor))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	db := cl.Database("logd")
	ctx := context.Background()
	st := logstore.New(db)
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC)
	st.SetClock(func() time.Time { return now })
	write := func(prefix string, n int, from time.Time, step time.Duration) {
		var rows []logstore.RequestLog
		var ids []string
		for i := range n {
			r := req(fmt.Sprintf("%s%03d", prefix, i), from.Add(time.Duration(i)*step), fmt.Sprint("k", i%3), "m", "tok", []int{200, 500}[i%2], 2)
			rows, ids = append(rows, r), append(ids, r.ID)
		}
		for i := range rows {
			rows[i].Batch = logstore.PartID("r", ids)
		}
		if _, err := st.Write(ctx, prefix, rows, nil); err != nil {
			t.Fatal(err)
		}
	}
	// 30 hours back, folded; then the last minutes, pending.
	write("old", 60, now.Add(-30*time.Hour), 30*time.Minute)
	foldAll(t, st)
	write("new", 20, now.Add(-10*time.Minute), 20*time.Second)
	if lookup, err := st.GuardByLookup(ctx); err != nil || !lookup {
		t.Fatalf("not seen as FerretDB/SQLite (%v, %v)", lookup, err)
	}
	mu.Lock()
	watch = true
	mu.Unlock()
	from := now.Add(-23 * time.Hour)
	all, err := st.Series(ctx, logapi.SeriesQuery{From: from, To: now})
	if err != nil {
		t.Fatal(err)
	}
	key, err := st.Series(ctx, logapi.SeriesQuery{KeyID: "k1", From: from, To: now})
	if err != nil {
		t.Fatal(err)
	}
	ov, err := st.Overview(ctx, logapi.OverviewQuery{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	tu, err := st.TokenUsage(ctx, logapi.TokenUsageQuery{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ku, err := st.KeyUsage(ctx, logapi.KeyUsageQuery{KeyID: "k1", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	watch = false
	got := scans
	mu.Unlock()
	for _, s := range got {
		t.Errorf("stats read %s: FerretDB/SQLite decodes every document for it", s)
	}
	// Brute force over what was written.
	var wantAll, wantKey, wantDay, wantHour int64
	for _, r := range storedRows(t, db) {
		if !r.Time.Before(from.Truncate(time.Hour)) && r.Time.Before(now.Truncate(time.Hour).Add(time.Hour)) {
			wantAll++
			if r.KeyID == "k1" {
				wantKey++
			}
		}
		// The overview's windows hold [now-d, now], now's whole second too.
		if !r.Time.Before(now.Add(-24*time.Hour)) && r.Time.Before(now.Add(time.Second)) {
			wantDay++
		}
		if !r.Time.Before(now.Add(-time.Hour)) && r.Time.Before(now.Add(time.Second)) {
			wantHour++
		}
	}
	sum := func(s logapi.Series) (n int64) {
		for _, p := range s.Points {
			n += p.Totals.Requests
		}
		return n
	}
	if sum(all) != wantAll || sum(key) != wantKey || wantKey == 0 {
		t.Errorf("24-hour series: %d requests, key k1 %d; rows say %d and %d", sum(all), sum(key), wantAll, wantKey)
	}
	if u := tu.Tokens["tok"]; u.Requests30d != 80 {
		t.Errorf("token usage: %d requests in 30 days, want all 80", u.Requests30d)
	}
	if m := ku.Models["m"]; m.Requests != wantKey {
		t.Errorf("key usage of k1: %d requests, the rows say %d", m.Requests, wantKey)
	}
	if ov.Day.Requests != wantDay || ov.Hour.Requests != wantHour || wantHour != 22 {
		t.Errorf("overview: day %d, hour %d; rows say %d and %d", ov.Day.Requests, ov.Hour.Requests, wantDay, wantHour)
	}
}
