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
	"github.com/gemini-balance-go/testkit/storetest"
)

// On FerretDB/SQLite a fold round updates every rollup document with a
// filter that is a lone _id equality, the only filter FerretDB lets SQLite
// answer through an index: any other filter is evaluated in Go over every
// document of the collection, and the hourly rollups grow for
// ROLLUP_RETENTION_DAYS (BenchmarkFoldRoundByRollupSize: 1.6 s per update at
// 10,000 documents). The round is still counted once when it is finished
// again.
func TestFoldUpdatesOnSQLiteFilterByIDAloneAndCountOnce(t *testing.T) {
	uri := storetest.Start(t)
	var mu sync.Mutex
	filters := map[string][]bson.Raw{} // collection → update filters sent
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "update" {
			return
		}
		coll, _ := e.Command.Lookup("update").StringValueOK()
		ups, _ := e.Command.Lookup("updates").ArrayOK()
		vals, _ := ups.Values()
		mu.Lock()
		defer mu.Unlock()
		for _, v := range vals {
			if f, ok := v.Document().Lookup("q").DocumentOK(); ok {
				filters[coll] = append(filters[coll], bson.Raw(f))
			}
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
	at := time.Now().UTC().Add(-time.Hour)
	var rows []logstore.RequestLog
	for i := range 40 {
		status := 200
		if i%10 == 0 {
			status = 429
		}
		rows = append(rows, req(fmt.Sprintf("r%02d", i), at.Add(time.Duration(i)*time.Second), fmt.Sprintf("k%d", i%4), "m", "t", status, 3))
	}
	if _, err := st.Write(ctx, "b1", rows, nil); err != nil {
		t.Fatal(err)
	}
	foldAll(t, st)
	if lookup, err := st.GuardByLookup(ctx); err != nil || !lookup {
		t.Fatalf("fold does not guard rounds by a read on FerretDB/SQLite (%v, %v)", lookup, err)
	}
	mu.Lock()
	for _, coll := range []string{logstore.CollRollups, logstore.CollMinutes, logstore.CollAttention, logstore.CollMinuteSeconds} {
		if len(filters[coll]) == 0 {
			t.Errorf("the fold sent no update to %s", coll)
		}
		for _, f := range filters[coll] {
			if els, _ := f.Elements(); len(els) != 1 || els[0].Key() != "_id" {
				t.Errorf("update of %s filtered by %s: FerretDB/SQLite scans the collection for it", coll, f)
			}
		}
	}
	mu.Unlock()
	// The same rows again (a redelivery) and a second fold change nothing.
	if _, err := st.Write(ctx, "b1", rows, nil); err != nil {
		t.Fatal(err)
	}
	foldAll(t, st)
	r := rollup(t, db, logstore.RollupID(at.Format("2006-01-02T15"), logstore.Any, logstore.Any, logstore.Any))
	if r.Requests != 40 || r.Failures != 4 {
		t.Fatalf("overall rollup = %d requests, %d failures; want 40, 4", r.Requests, r.Failures)
	}
}
