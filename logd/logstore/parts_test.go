package logstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/testkit/storetest"
)

// foldAll folds every rollup part present.
func foldAll(t *testing.T, st *logstore.Store) {
	t.Helper()
	for i := 0; ; i++ {
		n, err := st.Fold(context.Background())
		if err != nil {
			t.Fatalf("fold: %v", err)
		}
		if n == 0 {
			return
		}
		if i > 100 {
			t.Fatal("fold never ends")
		}
	}
}

// message is one bus message's rows, tagged as ingest tags them.
func message(ids ...string) []logstore.RequestLog {
	part := logstore.PartID("r", ids)
	rows := make([]logstore.RequestLog, len(ids))
	for i, id := range ids {
		rows[i] = req(id, t0.Add(time.Duration(i)*time.Second), fmt.Sprint("k", i%2), "m", "tok", []int{200, 429, 500}[i%3], 3)
		rows[i].Batch = part
	}
	return rows
}

// stats are what the dashboard, keys and tokens pages show for t0's hour.
type stats struct{ series, day, minute, k0, k1, token24h int64 }

func readStats(t *testing.T, st *logstore.Store) stats {
	t.Helper()
	ctx := context.Background()
	now := t0.Add(time.Minute)
	var out stats
	se, err := st.Series(ctx, logapi.SeriesQuery{From: t0, To: t0})
	if err != nil || len(se.Points) != 1 {
		t.Fatalf("series: %v %+v", err, se)
	}
	out.series = se.Points[0].Totals.Requests
	ov, err := st.Overview(ctx, logapi.OverviewQuery{Now: now})
	if err != nil {
		t.Fatalf("overview: %v", err)
	}
	out.day, out.minute = ov.Day.Requests, ov.Minute.Requests
	for i, p := range []*int64{&out.k0, &out.k1} {
		ku, err := st.KeyUsage(ctx, logapi.KeyUsageQuery{KeyID: fmt.Sprint("k", i), Now: now})
		if err != nil {
			t.Fatalf("key usage: %v", err)
		}
		*p = ku.Models["m"].Requests
	}
	tu, err := st.TokenUsage(ctx, logapi.TokenUsageQuery{Now: now})
	if err != nil {
		t.Fatalf("token usage: %v", err)
	}
	out.token24h = tu.Tokens["tok"].Requests24h
	return out
}

// wantStats is what the stored rows say (all in t0's minute and hour).
func wantStats(t *testing.T, db *mongo.Database) stats {
	t.Helper()
	var all, k0, k1 int64
	for _, r := range storedRows(t, db) {
		all++
		switch r.KeyID {
		case "k0":
			k0++
		case "k1":
			k1++
		}
	}
	return stats{series: all, day: all, minute: all, k0: k0, k1: k1, token24h: all}
}

func checkExact(t *testing.T, what string, st *logstore.Store, db *mongo.Database) {
	t.Helper()
	if got, want := readStats(t, st), wantStats(t, db); got != want {
		t.Fatalf("%s: stats %+v, rows say %+v", what, got, want)
	}
}

// The same message delivered to two logd replicas, in every interleaving of
// their steps and of the fold, is counted once.
func TestSameMessageOnTwoReplicasIsCountedOnce(t *testing.T) {
	st, db := newStore(t)
	other := logstore.New(db)
	ctx := context.Background()
	m := message("a", "b", "c")

	pa, err := st.InsertLogs(ctx, "replica-a", append([]logstore.RequestLog(nil), m...), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Replica b gets the redelivery while a has not written the part yet.
	if _, err := other.Write(ctx, "replica-b", append([]logstore.RequestLog(nil), m...), nil); err != nil {
		t.Fatal(err)
	}
	checkExact(t, "b settled, a not yet", st, db)
	foldAll(t, other)
	checkExact(t, "b's part folded", st, db)
	// a settles late: its rows were fresh, so it writes the part again.
	if err := st.Settle(ctx, pa); err != nil {
		t.Fatal(err)
	}
	foldAll(t, st)
	checkExact(t, "a settled after the fold", st, db)
	// And once more, as a redelivery after both acked.
	if _, err := st.Write(ctx, "replica-a-2", append([]logstore.RequestLog(nil), m...), nil); err != nil {
		t.Fatal(err)
	}
	checkExact(t, "redelivered after the fold", st, db)
	foldAll(t, st)
	if r := rollup(t, db, "2026-11-27T06|*|*|*"); r.Requests != 3 || r.Fail5xx != 1 || r.Codes["429"] != 1 {
		t.Fatalf("overall rollup = %+v, want 3 requests", r)
	}
}

// An event that two different messages carry is counted by the message that
// stored it first, and only by it, whoever writes the parts.
func TestEventInTwoMessagesIsCountedOnce(t *testing.T) {
	st, db := newStore(t)
	other := logstore.New(db)
	ctx := context.Background()
	m1, m2 := message("x", "y"), message("y", "z")
	// One replica holds m1 and m2 in one batch; the other gets m2 alone.
	p, err := st.InsertLogs(ctx, "batch", append(append([]logstore.RequestLog(nil), m1...), m2...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Write(ctx, "alone", append([]logstore.RequestLog(nil), m2...), nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx, p); err != nil {
		t.Fatal(err)
	}
	checkExact(t, "both written", st, db)
	foldAll(t, other)
	checkExact(t, "folded", st, db)
}

// A fold round that stops after any of its steps (a crash, a lost
// connection) is finished by another replica, and by the first one again,
// without counting anything twice; queries stay exact throughout.
func TestFoldStoppedAtAnyStepIsFinishedOnce(t *testing.T) {
	uri := storetest.Start(t)
	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	ctx := context.Background()
	for _, step := range []string{"hourly", "rollups", "journaled", "deleted"} {
		t.Run(step, func(t *testing.T) {
			db := cl.Database("crash_" + step)
			a := logstore.New(db)
			if err := a.EnsureIndexes(ctx); err != nil {
				t.Fatal(err)
			}
			for _, m := range [][]logstore.RequestLog{message("a", "b"), message("c"), message("d", "e", "f")} {
				if _, err := a.Write(ctx, "w", m, nil); err != nil {
					t.Fatal(err)
				}
			}
			// A round already folded, so the rollups hold earlier rounds too.
			foldAll(t, a)
			if _, err := a.Write(ctx, "w", message("g", "h"), nil); err != nil {
				t.Fatal(err)
			}
			crashAt(t, a, step, func() error { _, err := a.Fold(ctx); return err })
			checkExact(t, "after the crash", a, db)
			if _, err := a.Write(ctx, "w", message("i"), nil); err != nil {
				t.Fatal(err)
			}
			// Another replica, once the round is old enough to take over.
			b := logstore.New(db)
			b.SetClock(func() time.Time { return time.Now().Add(time.Minute) })
			foldAll(t, b)
			checkExact(t, "finished by another replica", b, db)
			// The first one, back, finishes "its" round again.
			a.SetFoldHook(nil)
			foldAll(t, a)
			checkExact(t, "finished again", a, db)
			var r logstore.Rollup
			if err := db.Collection(logstore.CollRollups).FindOne(ctx, bson.M{"_id": "2026-11-27T06|*|*|*"}).Decode(&r); err != nil || r.Requests != 9 {
				t.Fatalf("overall rollup = %+v (%v), want 9 requests", r, err)
			}
			if n, _ := db.Collection(logstore.CollParts).CountDocuments(ctx, bson.M{"_id": bson.M{"$ne": "~fold"}}); n != 0 {
				t.Fatalf("%d parts left after folding", n)
			}
		})
	}
}

// Rows deleted by an admin and then redelivered are stored again, but the
// message's part was folded: the rollups do not count it twice.
func TestMessageRedeliveredAfterItsRowsWereDeletedCountsOnce(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	m := message("a", "b")
	if _, err := st.Write(ctx, "w", append([]logstore.RequestLog(nil), m...), nil); err != nil {
		t.Fatal(err)
	}
	foldAll(t, st)
	if _, err := st.DeleteRequestLogs(ctx, logapi.RequestLogDelete{All: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(ctx, "w", append([]logstore.RequestLog(nil), m...), nil); err != nil {
		t.Fatal(err)
	}
	if r := rollup(t, db, "2026-11-27T06|*|*|*"); r.Requests != 2 {
		t.Fatalf("overall rollup = %+v, want 2 requests", r)
	}
	checkExact(t, "after the fold", st, db)
}

// Two replicas fold at the same time, again and again, while messages keep
// arriving: each part is counted once.
func TestConcurrentFoldsCountEachPartOnce(t *testing.T) {
	st, db := newStore(t)
	other := logstore.New(db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range []*logstore.Store{st, other, st, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := f.Fold(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("fold: %v", err)
					return
				}
			}
		}()
	}
	for i := 0; i < 60; i++ {
		if _, err := st.Write(context.Background(), "w", message(fmt.Sprint("m", i, "a"), fmt.Sprint("m", i, "b")), nil); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	foldAll(t, st)
	foldAll(t, other)
	// The cancel may have stopped a fold after the store took its round but
	// before the fold knew it had (the insert's answer lost): nobody owns
	// that round until it is foldTakeover old. A fold that is past that
	// finishes it, as another replica would.
	late := logstore.New(db)
	late.SetClock(func() time.Time { return time.Now().Add(time.Minute) })
	foldAll(t, late)
	checkExact(t, "after concurrent folds", st, db)
	if r := rollup(t, db, "2026-11-27T06|*|*|*"); r.Requests != 120 {
		t.Fatalf("overall rollup = %d requests, want 120", r.Requests)
	}
}

// A logd upgraded while rollup parts of the earlier form (entries as nested
// h, m and s arrays) wait to be folded counts them, in queries before the
// fold and in the rollups after it.
func TestPartsWrittenByAnEarlierVersionStillCount(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	rows := message("old-1", "old-2", "old-3")
	if _, err := st.Write(ctx, "b1", rows, nil); err != nil {
		t.Fatal(err)
	}
	// Rewrite the part as an earlier logd stored it.
	parts := db.Collection(logstore.CollParts)
	id := rows[0].Batch
	var stored struct {
		T time.Time `bson:"t"`
		E []byte    `bson:"e"`
	}
	if err := parts.FindOne(ctx, bson.M{"_id": id}).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.E) == 0 {
		t.Fatal("part has no entries field e")
	}
	var entries bson.M
	if err := bson.Unmarshal(stored.E, &entries); err != nil {
		t.Fatal(err)
	}
	legacy := bson.M{"t": stored.T, "h": entries["h"], "m": entries["m"], "s": entries["s"]}
	if _, err := parts.ReplaceOne(ctx, bson.M{"_id": id}, legacy); err != nil {
		t.Fatal(err)
	}
	checkExact(t, "legacy part not folded", st, db)
	foldAll(t, st)
	checkExact(t, "legacy part folded", st, db)
	if r := rollup(t, db, "2026-11-27T06|*|*|*"); r.Requests != 3 {
		t.Fatalf("overall rollup = %d requests, want 3", r.Requests)
	}
}

// crashAt runs f (a fold or a backfill of st) stopping it after step, as a
// crash would, and checks that it stopped there.
func crashAt(t *testing.T, st *logstore.Store, step string, f func() error) {
	t.Helper()
	crash := errors.New("crashed")
	st.SetFoldHook(func(s string) error {
		if s == step {
			return crash
		}
		return nil
	})
	if err := f(); !errors.Is(err, crash) {
		t.Fatalf("stopped after %s: got %v, want the crash", step, err)
	}
}
