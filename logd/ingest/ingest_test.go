package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/deployments/embedded/ferret"
	"github.com/gemini-balance-go/logd/ingest"
	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
)

// recorder is the real store, noting the size of every batch it is given.
type recorder struct {
	*logstore.Store
	mu    sync.Mutex
	sizes []int
}

func (r *recorder) Write(ctx context.Context, batch string, reqs []logstore.RequestLog, errs []logstore.ErrorLog) (logstore.WriteResult, error) {
	res, err := r.Store.Write(ctx, batch, reqs, errs)
	if err == nil {
		r.mu.Lock()
		r.sizes = append(r.sizes, len(reqs)+len(errs))
		r.mu.Unlock()
	}
	return res, err
}

type env struct {
	nats  *testenv.NATS
	db    *mongo.Database
	store *recorder
	stop  func()
}

func start(t *testing.T, uri string, opt ingest.Options) *env {
	t.Helper()
	n := testenv.StartNATS(t)
	db := testenv.Mongo(t, uri, "logd")
	st := logstore.New(db)
	if err := st.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Store: st}
	ctx, cancel := context.WithCancel(context.Background())
	in := ingest.New(opt, ingest.Deps{Conn: n.Conn(t), JS: n.JS, Store: rec})
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest stopped with %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return &env{nats: n, db: db, store: rec, stop: stop}
}

func (e *env) count(t *testing.T, coll string, f bson.M) int64 {
	t.Helper()
	n, err := e.db.Collection(coll).CountDocuments(context.Background(), f)
	if err != nil {
		return -1
	}
	return n
}

func (e *env) backlog(t *testing.T, consumer string) uint64 {
	t.Helper()
	n, err := ingest.Backlog(context.Background(), e.nats.JS, consumer)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func events(n int, at time.Time) []bus.RequestEvent {
	evs := make([]bus.RequestEvent, n)
	for i := range evs {
		evs[i] = bus.RequestEvent{
			V: bus.Version, ID: fmt.Sprintf("req-%06d", i), Time: at, Route: "gemini.generateContent",
			Model: "gemini-2.5-flash", KeyID: fmt.Sprintf("k%d", i%3), TokenID: "t1", Status: 200, Success: true,
			LatencyMS: 10, Usage: bus.Usage{Prompt: 2, Candidates: 3, Total: 5},
		}
	}
	return evs
}

func overall(t *testing.T, db *mongo.Database, at time.Time) logstore.Rollup {
	t.Helper()
	var r logstore.Rollup
	id := logstore.RollupID(at.UTC().Format("2006-01-02T15"), "*", "*", "*")
	_ = db.Collection(logstore.CollRollups).FindOne(context.Background(), bson.M{"_id": id}).Decode(&r)
	return r
}

func TestEventsAreWrittenInBatchesBySizeAndByTime(t *testing.T) {
	e := start(t, ferret.StartForTest(t), ingest.Options{BatchSize: 100, FlushInterval: 100 * time.Millisecond})
	now := time.Now()
	e.nats.PublishRequests(t, events(1050, now))
	testenv.Eventually(t, 60*time.Second, "1050 request logs", func() bool {
		return e.count(t, logstore.CollRequests, bson.M{}) == 1050
	})
	testenv.Eventually(t, 10*time.Second, "backlog drained", func() bool { return e.backlog(t, ingest.ConsumerRequests) == 0 })

	e.store.mu.Lock()
	sizes := append([]int(nil), e.store.sizes...)
	e.store.mu.Unlock()
	full := 0
	for _, s := range sizes {
		if s > 100 {
			t.Fatalf("batch of %d events exceeds the batch size 100 (batches %v)", s, sizes)
		}
		if s == 100 {
			full++
		}
	}
	if len(sizes) < 11 || full == 0 {
		t.Fatalf("batches %v: want at least 11 and some full ones", sizes)
	}
	// A lone event is written once the flush interval passes, not held for a full batch.
	e.nats.PublishRequests(t, []bus.RequestEvent{{V: 1, ID: "lone", Time: now, Model: "m", Status: 200, Success: true}})
	testenv.Eventually(t, 10*time.Second, "the lone event", func() bool {
		return e.count(t, logstore.CollRequests, bson.M{"_id": "lone"}) == 1
	})
	testenv.Eventually(t, 10*time.Second, "backlog drained", func() bool { return e.backlog(t, ingest.ConsumerRequests) == 0 })
	if r := overall(t, e.db, now); r.Requests != 1051 || r.Tokens != 5250 {
		t.Fatalf("overall rollup = %d requests, %d tokens; want 1051, 5250", r.Requests, r.Tokens)
	}
}

func TestSameEventDeliveredTwiceIsOneRowAndOneRollupIncrement(t *testing.T) {
	e := start(t, ferret.StartForTest(t), ingest.Options{BatchSize: 10, FlushInterval: 50 * time.Millisecond})
	now := time.Now()
	ev := events(1, now)[0]
	// Different Nats-Msg-Ids get past the stream's de-duplication: this is
	// what a publisher retry after the dedup window, or a redelivery, looks like.
	e.nats.Publish(t, bus.SubjectEventRequest, "first", ev)
	testenv.Eventually(t, 10*time.Second, "first copy stored", func() bool { return e.count(t, logstore.CollRequests, bson.M{}) == 1 })
	e.nats.Publish(t, bus.SubjectEventRequest, "second", ev)
	testenv.Eventually(t, 10*time.Second, "second copy acknowledged", func() bool { return e.backlog(t, ingest.ConsumerRequests) == 0 })
	e.nats.Publish(t, bus.SubjectEventRequest, "third", ev)
	e.nats.Publish(t, bus.SubjectEventRequest, "fourth", ev) // two copies in one batch
	testenv.Eventually(t, 10*time.Second, "all copies acknowledged", func() bool { return e.backlog(t, ingest.ConsumerRequests) == 0 })

	if n := e.count(t, logstore.CollRequests, bson.M{}); n != 1 {
		t.Fatalf("request_logs = %d, want 1", n)
	}
	if r := overall(t, e.db, now); r.Requests != 1 {
		t.Fatalf("overall rollup counts %d requests, want 1", r.Requests)
	}
}

func TestUnparseableEventsGoToTheDeadLetterSubjectAndDoNotBlock(t *testing.T) {
	e := start(t, ferret.StartForTest(t), ingest.Options{BatchSize: 10, FlushInterval: 50 * time.Millisecond})
	e.nats.Publish(t, bus.SubjectEventRequest, "garbage", []byte("{not json"))
	e.nats.Publish(t, bus.SubjectEventError, "no-id", []byte(`{"v":1,"time":"2026-11-27T06:00:00Z"}`))
	e.nats.PublishRequests(t, events(3, time.Now()))

	testenv.Eventually(t, 10*time.Second, "valid events stored", func() bool { return e.count(t, logstore.CollRequests, bson.M{}) == 3 })
	testenv.Eventually(t, 10*time.Second, "both consumers drained", func() bool {
		return e.backlog(t, ingest.ConsumerRequests) == 0 && e.backlog(t, ingest.ConsumerErrors) == 0
	})
	ctx := context.Background()
	stream, err := e.nats.JS.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	var got []bus.DeadLetter
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("dead letter %d: %v", seq, err)
		}
		if m.Subject != bus.SubjectDLQLogd {
			t.Fatalf("dead letter on %s, want %s", m.Subject, bus.SubjectDLQLogd)
		}
		var dl bus.DeadLetter
		if err := json.Unmarshal(m.Data, &dl); err != nil {
			t.Fatal(err)
		}
		got = append(got, dl)
	}
	bySubject := map[string]bus.DeadLetter{}
	for _, dl := range got {
		bySubject[dl.Subject] = dl
	}
	if dl := bySubject[bus.SubjectEventRequest]; dl.Payload != "{not json" || dl.Reason == "" {
		t.Fatalf("request dead letter = %+v", dl)
	}
	if dl := bySubject[bus.SubjectEventError]; dl.Reason != "event has no id" {
		t.Fatalf("error dead letter = %+v", dl)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestMongoOutageHoldsAcksAndCatchesUpAfterwards(t *testing.T) {
	dir, addr := t.TempDir(), freePort(t)
	ctx := context.Background()
	fdb, err := ferret.Start(ctx, ferret.Options{DataDir: dir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, fdb.URI, ingest.Options{BatchSize: 50, FlushInterval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	now := time.Now()
	evs := events(300, now)
	e.nats.PublishRequests(t, evs[:100])
	testenv.Eventually(t, 20*time.Second, "first 100 stored", func() bool { return e.count(t, logstore.CollRequests, bson.M{}) == 100 })

	fdb.Stop()
	e.nats.PublishRequests(t, evs[100:])
	// While the store is down nothing more may be acknowledged.
	testenv.Eventually(t, 10*time.Second, "events delivered and held", func() bool { return e.backlog(t, ingest.ConsumerRequests) == 200 })
	time.Sleep(500 * time.Millisecond)
	if n := e.backlog(t, ingest.ConsumerRequests); n != 200 {
		t.Fatalf("backlog %d while the store is down, want 200", n)
	}

	fdb, err = ferret.Start(ctx, ferret.Options{DataDir: dir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer fdb.Stop()
	testenv.Eventually(t, 60*time.Second, "all 300 stored", func() bool { return e.count(t, logstore.CollRequests, bson.M{}) == 300 })
	testenv.Eventually(t, 20*time.Second, "backlog drained", func() bool { return e.backlog(t, ingest.ConsumerRequests) == 0 })
	e.stop()
	if r := overall(t, e.db, now); r.Requests != 300 {
		t.Fatalf("overall rollup counts %d requests, want 300", r.Requests)
	}
}
