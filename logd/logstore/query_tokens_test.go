package logstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/logapi"
)

// Token usage sums the per-token rollups over the last 24 hourly buckets and
// the last 30 days, and names the newest hour a token was used.
func TestTokenUsageSumsTheLast24HoursAnd30DaysFromRollups(t *testing.T) {
	st, _ := newStore(t)
	now := t0 // 06:30
	write(t, st, "b1",
		req("a1", now.Add(-10*time.Minute), "k1", "m1", "tA", 200, 5),    // 24 h (10 tokens)
		req("a2", now.Add(-5*time.Hour), "k2", "m2", "tA", 429, 0),       // 24 h, a failure
		req("a3", now.Add(-3*24*time.Hour), "k1", "m1", "tA", 200, 50),   // 30 d only (100 tokens)
		req("a4", now.Add(-40*24*time.Hour), "k1", "m1", "tA", 200, 500), // older than 30 d
		// The window's first hour is 30 days less an hour back (Oct 28 07:00).
		req("a5", time.Date(2026, 10, 28, 10, 0, 0, 0, time.UTC), "k1", "m1", "tA", 200, 1000), // its first day: 30 d
		req("a6", time.Date(2026, 10, 28, 5, 0, 0, 0, time.UTC), "k1", "m1", "tA", 200, 1000),  // that day, before it
		req("b1", now.Add(-2*time.Hour), "k1", "m1", "tB", 200, 1),                             // another token
		req("c1", now.Add(-26*time.Hour), "k1", "m1", "", 200, 1),                              // no token
	)
	rep, err := st.TokenUsage(context.Background(), logapi.TokenUsageQuery{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	a := rep.Tokens["tA"]
	if a.Requests24h != 2 || a.Failures24h != 1 || a.Tokens24h != 10 || a.Requests30d != 4 || a.Tokens30d != 2110 {
		t.Errorf("tA usage = %+v", a)
	}
	if a.LastUsed == nil || !a.LastUsed.Equal(now.Truncate(time.Hour)) {
		t.Errorf("tA last used = %v, want %v", a.LastUsed, now.Truncate(time.Hour))
	}
	if b := rep.Tokens["tB"]; b.Requests24h != 1 || b.Requests30d != 1 {
		t.Errorf("tB usage = %+v", b)
	}
	if len(rep.Tokens) != 3 { // tA, tB and "-" (requests without a token)
		t.Errorf("tokens = %v", rep.Tokens)
	}
	one, err := st.TokenUsage(context.Background(), logapi.TokenUsageQuery{Now: now, TokenIDs: []string{"tB"}})
	if err != nil || len(one.Tokens) != 1 || one.Tokens["tB"].Requests30d != 1 {
		t.Errorf("tB alone = %+v, %v", one, err)
	}
}

// Pages say whether more follow; without filters the total is the cheap
// estimate, count=none skips it; deletes by id, age and all leave rollups.
func TestRequestLogPagesHaveMoreCountModesAndDeletes(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	for i, id := range []string{"r1", "r2", "r3"} {
		write(t, st, "b-"+id, req(id, t0.Add(time.Duration(i)*time.Minute), "k1", "m1", "t", 200, 1))
	}
	p, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 2})
	if err != nil || len(p.Logs) != 2 || !p.HasMore || total(p) != 3 || p.TotalExact {
		t.Fatalf("page 1 = %+v, %v; want 2 rows, more, estimated total 3", p, err)
	}
	p, _ = st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 2, Offset: 2, Count: logapi.CountNone})
	if len(p.Logs) != 1 || p.HasMore || p.Total != nil {
		t.Fatalf("page 2 without count = %+v", p)
	}
	p, _ = st.RequestLogs(ctx, logapi.RequestLogQuery{Model: "m1", Limit: 3})
	if total(p) != 3 || p.TotalExact || p.HasMore {
		t.Fatalf("filtered by model = %+v, want a total estimated from the rollups and no more", p)
	}
	p, _ = st.RequestLogs(ctx, logapi.RequestLogQuery{Status: 200, Limit: 3})
	if total(p) != 3 || !p.TotalExact || p.HasMore {
		t.Fatalf("filtered by status = %+v, want an exact total and no more", p)
	}
	p, _ = st.RequestLogs(ctx, logapi.RequestLogQuery{Model: "m1", Limit: 3, Count: logapi.CountExact})
	if total(p) != 3 || !p.TotalExact {
		t.Fatalf("filtered by model, exact count = %+v", p)
	}
	if _, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Count: "maybe"}); err == nil {
		t.Fatal("count=maybe accepted")
	}
	if n, err := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{IDs: []string{"r1", "nope"}}); err != nil || n != 1 {
		t.Fatalf("delete by id = %d, %v", n, err)
	}
	if n, _ := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{Before: t0.Add(90 * time.Second)}); n != 1 {
		t.Fatalf("delete before = %d, want r2", n)
	}
	if _, err := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{}); err == nil {
		t.Fatal("a delete naming nothing was accepted")
	}
	if n, _ := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{All: true}); n != 1 {
		t.Fatalf("delete all = %d, want r3", n)
	}
	o, _ := st.Overview(ctx, logapi.OverviewQuery{Now: t0.Add(time.Hour)})
	if o.Day.Requests != 3 || count(t, db, "request_logs") != 0 {
		t.Fatalf("after deleting every log the counters say %d requests, want 3 (rollups stay)", o.Day.Requests)
	}
}

// The default logs view (newest first, no filter) walks the minute buckets
// instead of sorting the collection, and pages exactly like the sorted query.
func TestNewestFirstPagesMatchTheSortedQuery(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	st.SetClock(func() time.Time { return t0.Add(time.Hour) })
	var rows []logstore.RequestLog
	for i := range 12 { // two rows a minute over six minutes, one hour back
		rows = append(rows, req(fmt.Sprintf("n%02d", i), t0.Add(-time.Duration(i/2)*time.Minute-time.Duration(i%2)*time.Second), "k1", "m1", "t", 200, 1))
	}
	write(t, st, "b", rows...)
	ids := func(p logapi.RequestLogPage) string {
		var out []string
		for _, l := range p.Logs {
			out = append(out, l.ID)
		}
		return strings.Join(out, ",")
	}
	check := func(stage string) {
		t.Helper()
		for _, q := range []logapi.RequestLogQuery{
			{Limit: 5}, {Limit: 5, Offset: 5}, {Limit: 5, Offset: 10}, {Limit: 50},
			{Limit: 3, From: t0.Add(-2 * time.Minute)}, {Limit: 3, To: t0.Add(-3 * time.Minute)},
		} {
			fast, err := st.RequestLogs(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			q.Model = "m1" // every row: the sorted query
			slow, err := st.RequestLogs(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if ids(fast) != ids(slow) || fast.HasMore != slow.HasMore {
				t.Errorf("%s, offset %d from %v to %v: walk %s (more %v), sorted %s (more %v)", stage, q.Offset, q.From, q.To, ids(fast), fast.HasMore, ids(slow), slow.HasMore)
			}
		}
	}
	check("written")
	// Deletes leave the rollups: the walk must not list deleted rows.
	if _, err := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{IDs: []string{"n00", "n03"}}); err != nil {
		t.Fatal(err)
	}
	check("deleted by id")
	if _, err := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{Before: t0.Add(-3*time.Minute - 500*time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	check("deleted before")
}
