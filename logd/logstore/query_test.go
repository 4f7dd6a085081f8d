package logstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/logapi"
)

// write stores rows as logd would receive them from edge: a failed request
// that used a key comes with the error event of its (last) failed attempt.
func write(t *testing.T, st *logstore.Store, batch string, rows ...logstore.RequestLog) {
	t.Helper()
	var errs []logstore.ErrorLog
	for _, r := range rows {
		if !r.Success && r.KeyID != "" {
			errs = append(errs, failedAttempt("a-"+r.ID, r.Time, r.KeyID, r.Status))
		}
	}
	if _, err := st.Write(context.Background(), batch, rows, errs); err != nil {
		t.Fatal(err)
	}
}

func failedAttempt(id string, at time.Time, key string, code int) logstore.ErrorLog {
	return logstore.ErrorLog{ID: id, Time: at, Model: "m", KeyID: key, Code: code, Type: "gemini-chat-non-stream"}
}

func TestOverviewWindowsCrossAMonthBoundaryToTheSecond(t *testing.T) {
	st, _ := newStore(t)
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	now := at("2026-12-01T00:10:30Z")
	write(t, st, "b1",
		req("before-day", at("2026-11-30T00:10:29Z"), "k1", "m", "t", 200, 1), // a second before the 24 h
		req("day-start", at("2026-11-30T00:10:30Z"), "k1", "m", "t", 200, 1),  // the first second of the 24 h
		req("last-month", at("2026-11-30T12:00:00Z"), "k1", "m", "t", 500, 1), // a whole hour of last month
		req("before-hour", at("2026-11-30T23:10:29Z"), "k1", "m", "t", 200, 1),
		req("hour-start", at("2026-11-30T23:10:30Z"), "k1", "m", "t", 429, 1),
		req("this-hour", at("2026-12-01T00:00:05Z"), "k1", "m", "t", 200, 1),
		req("this-minute", at("2026-12-01T00:10:00Z"), "k1", "m", "t", 200, 1),
		req("after-now", at("2026-12-01T00:10:31Z"), "k1", "m", "t", 200, 1), // stamped ahead of now
	)
	o, err := st.Overview(context.Background(), logapi.OverviewQuery{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		got      logapi.Totals
		req, bad int64
	}{
		{"minute", o.Minute, 1, 0},
		{"hour", o.Hour, 3, 1},
		{"day", o.Day, 6, 2},
		{"month", o.Month, 3, 0},
	} {
		if c.got.Requests != c.req || c.got.Failures != c.bad {
			t.Errorf("%s = %d requests, %d failures; want %d, %d", c.name, c.got.Requests, c.got.Failures, c.req, c.bad)
		}
	}
	if o.Day.Failures5xx != 1 || o.Day.Failures4xx != 1 || o.Day.Tokens != 12 {
		t.Errorf("day = %+v, want one 5xx, one 4xx, 12 tokens", o.Day)
	}
}

func TestOverviewEdgeMinutesFollowLateAndHalfAppliedWrites(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	now := at("2026-12-01T00:10:30Z")
	st.SetClock(func() time.Time { return now })
	day := func() int64 {
		t.Helper()
		o, err := st.Overview(ctx, logapi.OverviewQuery{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return o.Day.Requests
	}
	write(t, st, "b1",
		req("before", at("2026-11-30T00:10:29Z"), "k1", "m", "t", 200, 1),
		req("first", at("2026-11-30T00:10:30Z"), "k1", "m", "t", 200, 1))
	for i := 0; i < 2; i++ { // the same answer twice
		if n := day(); n != 1 {
			t.Fatalf("call %d: day = %d, want 1", i+1, n)
		}
	}
	// A late event in the far edge minute.
	write(t, st, "b2", req("late", at("2026-11-30T00:10:45Z"), "k1", "m", "t", 200, 1))
	if n := day(); n != 2 {
		t.Fatalf("after a late event: day = %d, want 2", n)
	}
	// A fold round applied to the minute rollup and not yet to the second
	// rollup (it is finished later): the seconds still say 2.
	foldAll(t, st)
	inc := func(coll, id string) {
		t.Helper()
		if _, err := db.Collection(coll).UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$inc": bson.M{"req": 1, "ok": 1}}); err != nil {
			t.Fatal(err)
		}
	}
	inc(logstore.CollMinutes, "2026-11-30T00:10")
	if n := day(); n != 2 {
		t.Fatalf("half-applied: day = %d, want 2", n)
	}
	// The retry completes it (the fold keeps second rollups in their
	// minute's document).
	if _, err := db.Collection(logstore.CollMinuteSeconds).UpdateOne(ctx, bson.M{"_id": "2026-11-30T00:10"},
		bson.M{"$inc": bson.M{"s45.req": 1, "s45.ok": 1}}); err != nil {
		t.Fatal(err)
	}
	if n := day(); n != 3 {
		t.Errorf("completed: day = %d, want 3", n)
	}
}

func attention(t *testing.T, st *logstore.Store, code int, now time.Time) string {
	t.Helper()
	a, err := st.Attention(context.Background(), logapi.AttentionQuery{Code: code, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(a.Keys)
}

func TestAttentionCountsWholeHoursOfTheLast24Hours(t *testing.T) {
	st, _ := newStore(t)
	now := time.Date(2026, 11, 27, 10, 20, 0, 0, time.UTC)
	st.SetClock(func() time.Time { return now })
	var rows []logstore.RequestLog
	add := func(id string, at time.Time, key string, status int) {
		rows = append(rows, req(id, at, key, "m", "t", status, 0))
	}
	add("out", time.Date(2026, 11, 26, 10, 59, 59, 0, time.UTC), "k9", 429) // the hour before the window
	add("edge", time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC), "k1", 429)  // the window's first hour
	add("y1", time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC), "k2", 429)   // yesterday
	add("t1", time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), "k2", 429)     // today
	add("t2", time.Date(2026, 11, 27, 10, 19, 0, 0, time.UTC), "k2", 429)   // the current hour
	add("t3", time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC), "k3", 429)   // later in the current hour: whole hours count
	add("keyless", time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), "", 429)  // never got a key
	add("other", time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), "k1", 500)
	add("ok", time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), "k1", 200)
	write(t, st, "b1", rows...)

	want := "[{k2 3} {k1 1} {k3 1}]"
	for i := 0; i < 2; i++ { // the same answer twice
		if got := attention(t, st, 429, now); got != want {
			t.Fatalf("call %d: 429 keys = %s, want %s", i+1, got, want)
		}
	}
	if got := attention(t, st, 500, now); got != "[{k1 1}]" {
		t.Errorf("500 keys = %s, want [{k1 1}]", got)
	}
	if got := attention(t, st, 403, now); got != "[]" {
		t.Errorf("403 keys = %s, want none", got)
	}
	// A late event in an hour already answered is counted.
	write(t, st, "b2", req("late", time.Date(2026, 11, 27, 0, 30, 0, 0, time.UTC), "k1", "m", "t", 429, 0))
	if got := attention(t, st, 429, now); got != "[{k2 3} {k1 2} {k3 1}]" {
		t.Errorf("after a late event: 429 keys = %s, want [{k2 3} {k1 2} {k3 1}]", got)
	}
	// A 429 that failover hid: the request succeeded on k1 after k4's
	// attempt was rate limited. k4 needs attention; the success does not
	// count for k1.
	if _, err := st.Write(context.Background(), "b3",
		[]logstore.RequestLog{req("hidden", time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC), "k1", "m", "t", 200, 0)},
		[]logstore.ErrorLog{failedAttempt("a-hidden", time.Date(2026, 11, 27, 9, 29, 59, 0, time.UTC), "k4", 429)}); err != nil {
		t.Fatal(err)
	}
	if got := attention(t, st, 429, now); got != "[{k2 3} {k1 2} {k3 1} {k4 1}]" {
		t.Errorf("after a 429 hidden by failover: 429 keys = %s, want [{k2 3} {k1 2} {k3 1} {k4 1}]", got)
	}
	// An hour later the first hour has left the window.
	if got := attention(t, st, 429, now.Add(time.Hour)); got != "[{k2 3} {k1 1} {k3 1} {k4 1}]" {
		t.Errorf("an hour later: 429 keys = %s, want [{k2 3} {k1 1} {k3 1} {k4 1}]", got)
	}
}

func TestAttentionDoesNotKeepAHalfAppliedBatch(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 10, 20, 0, 0, time.UTC)
	st.SetClock(func() time.Time { return now })
	write(t, st, "b1", req("a", t0, "k1", "m", "t", 429, 0), req("b", t0, "k2", "m", "t", 429, 0))
	if got := attention(t, st, 429, now); got != "[{k1 1} {k2 1}]" {
		t.Fatalf("429 keys = %s", got)
	}
	// A fold round that stopped after the overall rollup and before the
	// per-key one (it is finished later).
	foldAll(t, st)
	inc := func(id string) {
		t.Helper()
		_, err := db.Collection(logstore.CollRollups).UpdateOne(ctx, bson.M{"_id": id},
			bson.M{"$inc": bson.M{"req": 1, "fail": 1, "f4xx": 1, "codes.429": 1, "acodes.429": 1}})
		if err != nil {
			t.Fatal(err)
		}
	}
	inc("2026-11-27T06|*|*|*")
	if got := attention(t, st, 429, now); got != "[{k1 1} {k2 1}]" {
		t.Fatalf("half-applied: 429 keys = %s, want what the per-key rollups hold", got)
	}
	inc("2026-11-27T06|k2|*|*") // the retry completes it, and k2's count in the hour's attention document
	if _, err := db.Collection(logstore.CollAttention).UpdateOne(ctx, bson.M{"_id": "2026-11-27T06|a429"},
		bson.M{"$inc": bson.M{"n.k2": 1}}); err != nil {
		t.Fatal(err)
	}
	if got := attention(t, st, 429, now); got != "[{k2 2} {k1 1}]" {
		t.Errorf("completed: 429 keys = %s, want [{k2 2} {k1 1}]", got)
	}
}

func TestQueriesOfAKeyWithoutLogsAnswerEmpty(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	write(t, st, "b1", req("a", t0, "k1", "m", "t", 429, 1))
	p, err := st.RequestLogs(ctx, logapi.RequestLogQuery{KeyID: "k2", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if total(p) != 0 || p.Logs == nil || len(p.Logs) != 0 {
		t.Errorf("k2 page = %+v, want an empty list and total 0", p)
	}
	p, err = st.RequestLogs(ctx, logapi.RequestLogQuery{KeyID: "k1", Limit: 50})
	if err != nil || total(p) != 1 || len(p.Logs) != 1 || p.Logs[0].ID != "a" {
		t.Errorf("k1 page = %+v, %v; want [a] of 1", p, err)
	}
	if got := attention(t, st, 429, t0.Add(48*time.Hour)); got != "[]" {
		t.Errorf("429 keys two days later = %s, want none", got)
	}
	o, err := st.Overview(ctx, logapi.OverviewQuery{Now: t0.Add(48 * time.Hour)})
	if err != nil || o.Day.Requests != 0 || o.Month.Requests != 1 {
		t.Errorf("overview two days later = day %+v, month %+v, %v; want 0 and 1", o.Day, o.Month, err)
	}
}

// total is a request-log page's total, -1 when it carries none.
func total(p logapi.RequestLogPage) int64 {
	if p.Total == nil {
		return -1
	}
	return *p.Total
}
