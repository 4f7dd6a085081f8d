package logstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/logapi"
)

// The error-log page of the logs view and the dashboard's recent errors (no
// filter, newest first) is read through the time index and the hourly
// copies; it must list the same rows and total as the sorted query, also for
// error logs stored before the index existed and after every kind of delete.
func TestNewestFirstErrorPagesMatchTheSortedQuery(t *testing.T) {
	st, db := newStore(t)
	// Now is just after the newest error log, so the newest hours are read
	// from their copies, the legacy hour through its minute documents.
	st.SetClock(func() time.Time { return t0.Add(time.Minute) })
	ctx := context.Background()
	// Stored before the index existed: indexed when the store starts again.
	var legacy []any
	for i := range 6 {
		legacy = append(legacy, failedAttempt(fmt.Sprintf("old%02d", i), t0.Add(-3*time.Hour-time.Duration(i)*time.Minute), "k1", 429))
	}
	if _, err := db.Collection(logstore.CollErrors).InsertMany(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if err := logstore.New(db).EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	// Three hours, two per minute in the newest, ties on the millisecond.
	var errs []logstore.ErrorLog
	for i := range 30 {
		at := t0.Add(-time.Duration(i/2)*time.Minute - time.Duration(i/10)*time.Hour)
		errs = append(errs, failedAttempt(fmt.Sprintf("e%02d", i), at, "k1", 500))
	}
	for i, b := range []string{"b1", "b1", "b2"} { // a retry and a redelivery
		if _, err := st.Write(ctx, b, nil, errs[i*10:]); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(p logapi.ErrorLogPage) string {
		var out []string
		for _, l := range p.Logs {
			out = append(out, l.ID)
		}
		return fmt.Sprintf("%s (total %d)", strings.Join(out, ","), p.Total)
	}
	var checkPages func(stage string, want int64)
	check := func(stage string, want int64) {
		t.Helper()
		// Quiet hours are read from their copies whole, busy ones minute by minute.
		for _, whole := range []int64{500, 0} {
			restore := logstore.SetErrorCopyWholeHour(whole)
			checkPages(stage, want)
			restore()
		}
	}
	checkPages = func(stage string, want int64) {
		t.Helper()
		for _, q := range []logapi.ErrorLogQuery{{Limit: 5}, {Limit: 5, Offset: 5}, {Limit: 7, Offset: 9}, {Limit: 50}, {Limit: 5, Offset: 40}} {
			fast, err := st.ErrorLogs(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			q.Model = "m" // every row: the sorted query
			slow, err := st.ErrorLogs(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if ids(fast) != ids(slow) || fast.Total != want {
				t.Errorf("%s, offset %d: index %s, sorted %s, want total %d", stage, q.Offset, ids(fast), ids(slow), want)
			}
		}
	}
	check("written", 36)
	if _, err := st.DeleteErrorLogs(ctx, logapi.ErrorLogDelete{IDs: []string{"e00", "e13", "old01", "nope"}}); err != nil {
		t.Fatal(err)
	}
	check("deleted by id", 33)
	if _, err := st.DeleteErrorLogs(ctx, logapi.ErrorLogDelete{Before: t0.Add(-3*time.Minute - 30*time.Second)}); err != nil {
		t.Fatal(err)
	}
	check("deleted before", 7) // e01..e07; e08 and e09 leave a minute that stays
	set := &config.Settings{AutoDeleteErrorLogsEnabled: true, AutoDeleteErrorLogsDays: 1}
	if _, err := st.Retain(ctx, set, t0.Add(24*time.Hour-2*time.Minute-30*time.Second)); err != nil {
		t.Fatal(err)
	}
	check("retention", 5)
	if _, err := st.DeleteErrorLogs(ctx, logapi.ErrorLogDelete{All: true}); err != nil {
		t.Fatal(err)
	}
	check("deleted all", 0)
}
