package logstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/logd/logstore"
)

func TestStoreWorksOnPostgresBackedFerretDB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	db := testenv.Mongo(t, testenv.StartFerretPostgres(t), "logd")
	st := logstore.New(db)
	ctx := context.Background()
	for i := 0; i < 2; i++ { // the second pass is what a restarted logd does
		if err := st.EnsureIndexes(ctx); err != nil {
			t.Fatalf("ensure indexes, pass %d: %v", i+1, err)
		}
	}
	// PostgreSQL (like MongoDB) can read indexes: the queries' ones stay.
	specs, err := db.Collection(logstore.CollRequests).Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	for _, want := range []string{"t_-1", "key_id_1_t_-1", "m_1"} {
		if !names[want] {
			t.Errorf("index %s missing; have %v", want, names)
		}
	}
	a := req("ev-1", t0, "k1", "m", "t", 200, 10)
	for i, b := range []string{"b1", "b1", "b2"} {
		if _, err := st.Write(ctx, b, []logstore.RequestLog{a}, nil); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if r := rollup(t, db, "2026-11-27T06|*|*|*"); r.Requests != 1 {
		t.Fatalf("overall rollup = %d requests after retries and redelivery, want 1", r.Requests)
	}
	// Two batches that touch the same 150+ rollup documents: FerretDB on
	// PostgreSQL hangs on an update command with that many updates of
	// existing documents, so the store must split them.
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for b := 0; b < 2; b++ {
		var rows []logstore.RequestLog
		for i := 0; i < 200; i++ {
			rows = append(rows, req(fmt.Sprint(b, "-", i), t0, fmt.Sprint("k", i%50), fmt.Sprint("m", i%4), fmt.Sprint("t", i%10), 200, 1))
		}
		if _, err := st.Write(wctx, fmt.Sprint("big", b), rows, nil); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
	}
	if r := rollup(t, db, "2026-11-27T06|*|*|*"); r.Requests != 401 {
		t.Fatalf("overall rollup = %d requests, want 401", r.Requests)
	}
}
