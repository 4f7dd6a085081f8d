package logstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

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
	// The fold keeps its round guard in the update filter there: FerretDB
	// scans the table for an _id lookup too, so a read first would cost a
	// second scan (see applyGuarded).
	if lookup, err := st.GuardByLookup(ctx); err != nil || lookup {
		t.Errorf("fold guards rounds by a read on FerretDB/PostgreSQL (%v, %v)", lookup, err)
	}
	// FerretDB reads no secondary index on PostgreSQL either (see
	// TestFerretDBOnPostgresReadsNoSecondaryIndex): the store keeps none.
	for _, coll := range []string{logstore.CollRequests, logstore.CollRequestBuckets, logstore.CollErrors, logstore.CollRollups} {
		specs, err := db.Collection(coll).Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range specs {
			if s.Name != "_id_" {
				t.Errorf("%s keeps index %s, which FerretDB never reads", coll, s.Name)
			}
		}
	}
	a := req("ev-1", t0, "k1", "m", "t", 200, 10)
	a.Batch = logstore.PartID("r", []string{a.ID}) // as ingest tags a message's rows
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

// The premise of keeping no secondary index on FerretDB/PostgreSQL: with an
// index on the field, FerretDB 1.24 still answers an equality (and an _id
// lookup) with a sequential scan filtered by jsonb @>, which no B-tree
// serves, and sorts in Go. Should a FerretDB upgrade start reading indexes,
// this fails, and logstore.EnsureIndexes should keep them there again.
func TestFerretDBOnPostgresReadsNoSecondaryIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	db := testenv.Mongo(t, testenv.StartFerretPostgres(t), "logd")
	ctx := context.Background()
	coll := db.Collection("explain_probe")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "key_id", Value: 1}, {Key: "t", Value: -1}}}); err != nil {
		t.Fatal(err)
	}
	var docs []any
	for i := 0; i < 5000; i++ {
		docs = append(docs, req(fmt.Sprint("id", i), t0.Add(time.Duration(i)*time.Second), fmt.Sprint("k", i%500), "m", "t", 200, 1))
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	for _, f := range []bson.D{{{Key: "key_id", Value: "k1"}}, {{Key: "_id", Value: "id5"}}} {
		var out struct {
			Planner struct {
				Plan struct {
					Node   string `bson:"Node Type"`
					Filter string `bson:"Filter"`
				} `bson:"Plan"`
			} `bson:"queryPlanner"`
			SortPushdown bool `bson:"sortPushdown"`
		}
		cmd := bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: coll.Name()}, {Key: "filter", Value: f},
			{Key: "sort", Value: bson.D{{Key: "t", Value: -1}}}}}}
		if err := db.RunCommand(ctx, cmd).Decode(&out); err != nil {
			t.Fatal(err)
		}
		plan := out.Planner.Plan
		if plan.Node != "Seq Scan" || !strings.Contains(plan.Filter, "@>") || out.SortPushdown {
			t.Errorf("filter %v: FerretDB's plan is now %+v (sort pushed down: %v); an index may serve it", f, plan, out.SortPushdown)
		}
	}
}

// The derived rollups read off FerretDB/SQLite (an $in on _id, the key-model
// documents by key) are as exact on FerretDB/PostgreSQL: every page's
// figures equal a count of the rows, pending and folded.
func TestDerivedRollupsOnPostgresEqualABruteForceCount(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	db := testenv.Mongo(t, testenv.StartFerretPostgres(t), "logd")
	st := logstore.New(db)
	if err := st.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.SetClock(func() time.Time { return derivedNow })
	for i := 0; i < 3; i++ {
		rows, errs := derivedBatch(fmt.Sprint("b", i), 30, i)
		writeBatch(t, st, fmt.Sprint("b", i), rows, errs)
	}
	checkDerived(t, "pending", st, db)
	foldAll(t, st)
	checkDerived(t, "folded", st, db)
}
