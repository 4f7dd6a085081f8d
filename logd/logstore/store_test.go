package logstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/testkit/storetest"
)

func testDB(t *testing.T) *mongo.Database {
	t.Helper()
	uri := storetest.Start(t)
	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl.Database("logd_test")
}

func newStore(t *testing.T) (*logstore.Store, *mongo.Database) {
	t.Helper()
	db := testDB(t)
	st := logstore.New(db)
	if err := st.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, db
}

var t0 = time.Date(2026, 11, 27, 6, 30, 0, 0, time.UTC)

func req(id string, at time.Time, key, model, token string, status int, tokens int) logstore.RequestLog {
	return logstore.RequestLog{
		ID: id, Time: at, Model: model, KeyID: key, TokenID: token, Status: status,
		Success: status >= 200 && status < 300, LatencyMS: 100, Prompt: tokens, Completion: tokens, Tokens: 2 * tokens,
		Hour: at.UTC().Format("2006-01-02T15"), Minute: logstore.MinuteBucket(at),
	}
}

// rollup folds every rollup part, then reads one hourly rollup document.
func rollup(t *testing.T, db *mongo.Database, id string) logstore.Rollup {
	t.Helper()
	foldAll(t, logstore.New(db))
	var r logstore.Rollup
	if err := db.Collection(logstore.CollRollups).FindOne(context.Background(), bson.M{"_id": id}).Decode(&r); err != nil {
		t.Fatalf("rollup %s: %v", id, err)
	}
	return r
}

// storedRows reads every stored request log (buckets and rows alike).
func storedRows(t *testing.T, db *mongo.Database) []logstore.RequestLog {
	t.Helper()
	rows, err := logstore.ReadRequestLogs(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func count(t *testing.T, db *mongo.Database, coll string) int64 {
	t.Helper()
	return countColl(t, db, coll, bson.M{})
}

func TestRedeliveredMessageIsStoredAndCountedOnce(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	// ingest tags a message's rows with its part, a hash of its event ids,
	// so a redelivery (logd crashed before its ack) is tagged alike.
	msg := func(ids ...string) []logstore.RequestLog {
		part := logstore.PartID("r", ids)
		var out []logstore.RequestLog
		for i, id := range ids {
			r := req(id, t0.Add(time.Duration(i)*time.Second), "k1", "gemini-2.5-flash", "tok1", []int{200, 429}[i%2], 10)
			r.Batch = part
			out = append(out, r)
		}
		return out
	}
	if _, err := st.Write(ctx, "delivery-1", msg("ev-1", "ev-2"), nil); err != nil {
		t.Fatal(err)
	}
	res, err := st.Write(ctx, "delivery-2", msg("ev-1", "ev-2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 0 || res.Duplicates != 2 {
		t.Fatalf("redelivery = %+v, want 0 inserted, 2 duplicates", res)
	}
	if _, err := st.Write(ctx, "delivery-3", msg("ev-3"), nil); err != nil {
		t.Fatal(err)
	}
	rows := storedRows(t, db)
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"ev-1", "ev-2", "ev-3"}) {
		t.Fatalf("stored request logs = %v, want ev-1, ev-2, ev-3 once each", ids)
	}
	full := rollup(t, db, "2026-11-27T06|k1|gemini-2.5-flash|tok1")
	if full.Requests != 3 || full.Successes != 2 || full.Failures != 1 || full.Fail4xx != 1 || full.Codes["429"] != 1 || full.Prompt != 30 {
		t.Fatalf("full rollup = %+v", full)
	}
	all := rollup(t, db, "2026-11-27T06|*|*|*")
	if all.Requests != 3 || all.Tokens != 60 || all.LatencySum != 300 {
		t.Fatalf("overall rollup = %+v", all)
	}
}

func TestRetriedBatchDoesNotDoubleCountRollups(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	batch := []logstore.RequestLog{req("a", t0, "k1", "m", "t", 200, 1), req("b", t0, "k2", "m", "t", 500, 1)}
	for i := 0; i < 3; i++ { // a retry after a failure anywhere in the batch repeats the same batch id
		cp := append([]logstore.RequestLog(nil), batch...)
		if _, err := st.Write(ctx, "same-batch", cp, nil); err != nil {
			t.Fatal(err)
		}
	}
	if r := rollup(t, db, "2026-11-27T06|*|*|*"); r.Requests != 2 || r.Fail5xx != 1 {
		t.Fatalf("overall rollup after retries = %+v, want 2 requests", r)
	}
}

func TestUnfinishedBatchIsRolledUpByItsRedelivery(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	// Simulate a crash after the rows were inserted and before their part
	// was written: rows exist, tagged with their message's part.
	part := logstore.PartID("r", []string{"x", "y"})
	tagged := func(id string) logstore.RequestLog {
		r := req(id, t0, "k1", "m", "t", 200, 1)
		r.Batch = part
		return r
	}
	if _, err := st.InsertLogs(ctx, "first-delivery", []logstore.RequestLog{tagged("x"), tagged("y")}, nil); err != nil {
		t.Fatal(err)
	}
	// The message comes back (twice: the first copy's ack was lost too).
	for i := 0; i < 2; i++ {
		if _, err := st.Write(ctx, fmt.Sprint("redelivery-", i), []logstore.RequestLog{tagged("y"), tagged("x")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if r := rollup(t, db, "2026-11-27T06|*|*|*"); r.Requests != 2 {
		t.Fatalf("overall rollup = %+v, want 2 requests", r)
	}
	if n := len(storedRows(t, db)); n != 2 {
		t.Fatalf("request logs = %d, want 2", n)
	}
}

func TestErrorLogsAreStoredOnce(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	e := logstore.ErrorLog{ID: "e1", Time: t0, Model: "m", KeyID: "k1", Code: 429, Type: "gemini-chat-stream", Message: "quota"}
	for i := 0; i < 2; i++ {
		if _, err := st.Write(ctx, fmt.Sprint("b", i), nil, []logstore.ErrorLog{e, e}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, db, logstore.CollErrors); n != 1 {
		t.Fatalf("error_logs = %d, want 1", n)
	}
}

// The embedded store (FerretDB on SQLite) reads no secondary index, and each
// one costs a JSON parse of every row written: the store keeps none there,
// and drops those an earlier version made, restart after restart.
func TestEmbeddedStoreKeepsNoIndexItNeverReads(t *testing.T) {
	db := testDB(t)
	ctx := context.Background()
	// What an earlier logd left behind.
	for coll, keys := range map[string]bson.D{
		logstore.CollRequests: {{Key: "key_id", Value: 1}, {Key: "t", Value: -1}},
		logstore.CollErrors:   {{Key: "t", Value: -1}},
		logstore.CollRollups:  {{Key: "h", Value: 1}},
	} {
		if _, err := db.Collection(coll).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ { // the second pass is what a restarted logd does
		if err := logstore.New(db).EnsureIndexes(ctx); err != nil {
			t.Fatalf("pass %d: %v", i+1, err)
		}
	}
	for _, coll := range []string{logstore.CollRequests, logstore.CollRequestBuckets, logstore.CollErrors, logstore.CollRollups, logstore.CollMinutes} {
		specs, err := db.Collection(coll).Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range specs {
			if s.Name != "_id_" {
				t.Errorf("%s keeps index %s", coll, s.Name)
			}
		}
	}
	// And the store still answers.
	st := logstore.New(db)
	if _, err := st.Write(ctx, "b1", []logstore.RequestLog{req("ev-1", t0, "k1", "m", "t", 200, 10)}, nil); err != nil {
		t.Fatal(err)
	}
	if r := rollup(t, db, "2026-11-27T06|k1|*|*"); r.Requests != 1 {
		t.Fatalf("key rollup = %d requests, want 1", r.Requests)
	}
}

// With failover a key's 429 is usually retried on another key, so the
// request's own status never shows it: each failed attempt (an error log)
// counts for its key, once, however often the event is redelivered.
func TestFailedAttemptsCountForTheirKeyOnceEach(t *testing.T) {
	db := testDB(t)
	st := logstore.New(db)
	ctx := context.Background()
	attempt := func(id, key string, code int) logstore.ErrorLog {
		return logstore.ErrorLog{ID: id, RequestID: "r-" + id, Time: t0, Model: "m", KeyID: key, Code: code, Type: "gemini-chat-non-stream"}
	}
	// The request succeeded on k2 after k1 answered 429.
	ok := req("ev-ok", t0, "k2", "m", "t", 200, 10)
	if _, err := st.Write(ctx, "b1", []logstore.RequestLog{ok}, []logstore.ErrorLog{attempt("e1", "k1", 429)}); err != nil {
		t.Fatal(err)
	}
	// A second 429 on k1, a 503 on k2, a local failure without a key, and
	// the first attempt redelivered.
	errs := []logstore.ErrorLog{attempt("e2", "k1", 429), attempt("e3", "k2", 503), attempt("e4", "", 0), attempt("e1", "k1", 429)}
	if _, err := st.Write(ctx, "b2", nil, errs); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(ctx, "b3", nil, errs[:2]); err != nil { // the whole batch again
		t.Fatal(err)
	}
	k1 := rollup(t, db, "2026-11-27T06|k1|*|*")
	if k1.Attempts["429"] != 2 || k1.Requests != 0 {
		t.Fatalf("k1 = %d failed 429 attempts, %d requests; want 2 and 0", k1.Attempts["429"], k1.Requests)
	}
	k2 := rollup(t, db, "2026-11-27T06|k2|*|*")
	if k2.Attempts["503"] != 1 || k2.Attempts["429"] != 0 || k2.Requests != 1 || k2.Successes != 1 {
		t.Fatalf("k2 = attempts %v, %d requests, %d successes", k2.Attempts, k2.Requests, k2.Successes)
	}
	all := rollup(t, db, "2026-11-27T06|*|*|*")
	if all.Attempts["429"] != 2 || all.Attempts["503"] != 1 || all.Requests != 1 {
		t.Fatalf("overall = attempts %v, %d requests", all.Attempts, all.Requests)
	}
}
