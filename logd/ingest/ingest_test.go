package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/logd/ingest"
	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/testkit/storetest"
)

// recorder is the real store, noting every log insert it is given.
type recorder struct {
	*logstore.Store
	mu      sync.Mutex
	sizes   []int              // events per successful insert
	inserts map[string]int     // inserts that carried each request event id
	hold    func(ids []string) // called before an insert, may block
	folds   []foldCall
}

func (r *recorder) InsertLogs(ctx context.Context, batch string, reqs []logstore.RequestLog, errs []logstore.ErrorLog) (*logstore.Pending, error) {
	ids := make([]string, len(reqs))
	for i := range reqs {
		ids[i] = reqs[i].ID
	}
	if r.hold != nil {
		r.hold(ids)
	}
	p, err := r.Store.InsertLogs(ctx, batch, reqs, errs)
	if err == nil {
		r.mu.Lock()
		r.sizes = append(r.sizes, len(reqs)+len(errs))
		if r.inserts == nil {
			r.inserts = map[string]int{}
		}
		for _, id := range ids {
			r.inserts[id]++
		}
		r.mu.Unlock()
	}
	return p, err
}

// Fold notes every call: when it started and ended, and how many parts it
// folded.
func (r *recorder) Fold(ctx context.Context) (int, error) {
	began := time.Now()
	n, err := r.Store.Fold(ctx)
	r.mu.Lock()
	r.folds = append(r.folds, foldCall{start: began, end: time.Now(), n: n})
	r.mu.Unlock()
	return n, err
}

type foldCall struct {
	start, end time.Time
	n          int
}

type env struct {
	nats  *testenv.NATS
	db    *mongo.Database
	store *recorder
	stop  func()
}

func start(t *testing.T, uri string, opt ingest.Options) *env {
	t.Helper()
	return startWith(t, uri, opt, nil)
}

func startWith(t *testing.T, uri string, opt ingest.Options, hold func(ids []string)) *env {
	t.Helper()
	n := testenv.StartNATS(t)
	db := testenv.Mongo(t, uri, "logd")
	st := logstore.New(db)
	if err := st.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Store: st, hold: hold}
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

// overall is what the stats queries say of at's hour (the folded rollups
// plus the parts not yet folded); key narrows it to one key.
func overall(t *testing.T, db *mongo.Database, at time.Time, key ...string) logapi.Totals {
	t.Helper()
	q := logapi.SeriesQuery{From: at, To: at}
	if len(key) > 0 {
		q.KeyID = key[0]
	}
	se, err := logstore.New(db).Series(context.Background(), q)
	if err != nil || len(se.Points) != 1 {
		t.Fatalf("series of %s: %v", at, err)
	}
	return se.Points[0].Totals
}

func TestEventsAreWrittenInBatchesBySizeAndByTime(t *testing.T) {
	e := start(t, storetest.Start(t), ingest.Options{BatchSize: 100, FlushInterval: 100 * time.Millisecond})
	now := time.Now()
	e.nats.PublishRequestsPer(t, events(1050, now), 10) // 105 messages of 10 events
	testenv.Eventually(t, 60*time.Second, "1050 request logs", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 1050
	})
	testenv.Eventually(t, 10*time.Second, "backlog drained", func() bool { return e.backlog(t, bus.ConsumerLogdRequests) == 0 })

	e.store.mu.Lock()
	sizes := append([]int(nil), e.store.sizes...)
	e.store.sizes = nil
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
		return testenv.CountRequestLogs(e.db, "lone") == 1
	})
	testenv.Eventually(t, 10*time.Second, "backlog drained", func() bool { return e.backlog(t, bus.ConsumerLogdRequests) == 0 })
	// A message larger than the batch size is written whole, never split.
	big := events(1300, now)[1050:]
	e.nats.PublishRequests(t, big)
	testenv.Eventually(t, 10*time.Second, "the large message", func() bool { return testenv.CountRequestLogs(e.db, "") == 1301 })
	testenv.Eventually(t, 10*time.Second, "backlog drained", func() bool { return e.backlog(t, bus.ConsumerLogdRequests) == 0 })
	e.store.mu.Lock()
	sizes = append([]int(nil), e.store.sizes...)
	e.store.mu.Unlock()
	if len(sizes) != 2 || sizes[1] != 250 {
		t.Fatalf("batches after the lone event and a 250-event message = %v, want [1 250]", sizes)
	}
	if r := overall(t, e.db, now); r.Requests != 1301 || r.Tokens != 6500 {
		t.Fatalf("overall rollup = %d requests, %d tokens; want 1301, 6500", r.Requests, r.Tokens)
	}
}

// Under steady traffic the fold runs one round per FoldEvery, however many
// messages arrive: every round costs the same rollup updates whether it
// folds a few parts or hundreds, so folding the parts that came during a
// round at once, round after round, would make the store's cost per request
// grow with the traffic. Only a full round (a backlog) is followed at once
// by the next. The counts stay exact: queries add the parts not folded yet.
func TestSteadyTrafficIsFoldedOnceAPassNotRoundAfterRound(t *testing.T) {
	const every = 400 * time.Millisecond
	e := start(t, storetest.Start(t), ingest.Options{FoldEvery: every, IdleFlush: time.Millisecond})
	now := time.Now()
	evs := events(1000, now)
	for from := 0; from < len(evs); from += 2 { // a message every few ms for about 2 s
		e.nats.PublishRequestsPer(t, evs[from:from+2], 2)
		time.Sleep(3 * time.Millisecond)
	}
	testenv.Eventually(t, 60*time.Second, "every part folded", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 1000 && e.backlog(t, bus.ConsumerLogdRequests) == 0 &&
			e.count(t, logstore.CollParts, bson.M{"_id": bson.M{"$ne": "~fold"}}) == 0
	})
	e.store.mu.Lock()
	folds := append([]foldCall(nil), e.store.folds...)
	e.store.mu.Unlock()
	productive := 0
	for i, f := range folds {
		if f.n > 0 {
			productive++
		}
		if i == 0 {
			continue
		}
		// After a round that was not full the loop pauses for the
		// interval; only a full round (a backlog) is followed at once.
		prev := folds[i-1]
		if pause := f.start.Sub(prev.end); prev.n < logstore.MaxPartsPerRound && pause < every*9/10 {
			t.Fatalf("fold call %d started %v after a round that folded %d parts, not a full round: the loop folds round after round", i, pause, prev.n)
		}
	}
	if productive == 0 {
		t.Fatal("no fold round folded anything")
	}
	if r := overall(t, e.db, now); r.Requests != 1000 || r.Tokens != 5000 {
		t.Fatalf("overall rollup = %d requests, %d tokens; want 1000, 5000", r.Requests, r.Tokens)
	}
}

func TestBatchIsWrittenOnceMessagesStopArrivingWithoutWaitingForTheFlush(t *testing.T) {
	// Five one-event messages fill a window of five: nothing more arrives
	// before an ack, so waiting for the (hour-long) flush would stall ingest.
	e := start(t, storetest.Start(t), ingest.Options{BatchSize: 1000, FlushInterval: time.Hour, RequestMessages: 5})
	now := time.Now()
	e.nats.PublishRequestsPer(t, events(10, now), 1)
	testenv.Eventually(t, 20*time.Second, "10 request logs", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 10 && e.backlog(t, bus.ConsumerLogdRequests) == 0
	})
	if r := overall(t, e.db, now); r.Requests != 10 {
		t.Fatalf("overall rollup counts %d requests, want 10", r.Requests)
	}
}

func TestSameEventInSeveralMessagesIsOneRowAndOneRollupIncrement(t *testing.T) {
	e := start(t, storetest.Start(t), ingest.Options{BatchSize: 200, FlushInterval: 50 * time.Millisecond})
	now := time.Now()
	evs := events(200, now)
	batch := func(evs []bus.RequestEvent) bus.RequestBatch { return bus.RequestBatch{V: bus.Version, Events: evs} }
	// Different Nats-Msg-Ids get past the stream's de-duplication: this is
	// what a publisher retry after the dedup window looks like.
	e.nats.Publish(t, bus.SubjectEventRequests, "first", batch(evs[:1]))
	testenv.Eventually(t, 10*time.Second, "first copy stored", func() bool { return testenv.CountRequestLogs(e.db, "") == 1 })
	e.nats.Publish(t, bus.SubjectEventRequests, "second", batch(evs[:1]))
	testenv.Eventually(t, 10*time.Second, "second copy acknowledged", func() bool { return e.backlog(t, bus.ConsumerLogdRequests) == 0 })
	e.nats.Publish(t, bus.SubjectEventRequests, "third", batch(evs[:1]))
	e.nats.Publish(t, bus.SubjectEventRequests, "fourth", batch(evs[:1])) // two copies in one batch
	testenv.Eventually(t, 10*time.Second, "all copies acknowledged", func() bool { return e.backlog(t, bus.ConsumerLogdRequests) == 0 })
	// The same 199 new events in four messages at once: each message fills a
	// batch of its own, and the four are inserted in parallel.
	for i := 0; i < 4; i++ {
		e.nats.Publish(t, bus.SubjectEventRequests, fmt.Sprint("again-", i), batch(evs[1:]))
	}
	testenv.Eventually(t, 20*time.Second, "parallel copies acknowledged", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 200 && e.backlog(t, bus.ConsumerLogdRequests) == 0
	})

	if n := testenv.CountRequestLogs(e.db, ""); n != 200 {
		t.Fatalf("request_logs = %d, want 200", n)
	}
	if r := overall(t, e.db, now); r.Requests != 200 {
		t.Fatalf("overall rollup counts %d requests, want 200", r.Requests)
	}
	if r := overall(t, e.db, now, "k0"); r.Requests != 67 {
		t.Fatalf("key k0 counts %d requests, want 67", r.Requests)
	}
}

func TestMessageRedeliveredWhileStillBeingStoredIsStoredOnceAndAcknowledged(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	hold := func(ids []string) {
		for _, id := range ids {
			if id == "req-000000" {
				once.Do(func() { <-release }) // the first insert waits past AckWait
			}
		}
	}
	e := startWith(t, storetest.Start(t), ingest.Options{BatchSize: 50, FlushInterval: 20 * time.Millisecond, AckWait: time.Second}, hold)
	now := time.Now()
	e.nats.PublishRequests(t, events(5, now))
	// The server redelivers the unacknowledged message once AckWait passes.
	testenv.Eventually(t, 20*time.Second, "a redelivery", func() bool {
		info, err := e.nats.JS.PushConsumer(context.Background(), bus.StreamEvents, bus.ConsumerLogdRequests)
		if err != nil {
			return false
		}
		ci, err := info.Info(context.Background())
		return err == nil && ci.NumRedelivered > 0
	})
	close(release)
	testenv.Eventually(t, 20*time.Second, "stored and every copy acknowledged", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 5 && e.backlog(t, bus.ConsumerLogdRequests) == 0
	})
	e.store.mu.Lock()
	inserts := e.store.inserts["req-000000"]
	e.store.mu.Unlock()
	if inserts != 1 {
		t.Fatalf("event inserted by %d batches, want 1: the redelivered copy waits for the first", inserts)
	}
	if r := overall(t, e.db, now); r.Requests != 5 {
		t.Fatalf("overall rollup counts %d requests, want 5", r.Requests)
	}
}

func TestUnstorableMessagesAndEventsGoToTheDeadLetterSubjectAndDoNotBlock(t *testing.T) {
	e := start(t, storetest.Start(t), ingest.Options{BatchSize: 10, FlushInterval: 50 * time.Millisecond})
	now := time.Now()
	good := events(3, now)
	e.nats.Publish(t, bus.SubjectEventRequests, "garbage", []byte("{not json"))
	e.nats.Publish(t, bus.SubjectEventRequests, "singular", good[0]) // an event, not a batch
	// One bad event inside a valid batch is dead-lettered alone; the rest is stored.
	e.nats.Publish(t, bus.SubjectEventErrors, "mixed",
		[]byte(`{"v":1,"events":[{"v":1,"time":"2026-11-27T06:00:00Z","message":"no id"},{"v":1,"id":"er1","time":"2026-11-27T06:00:00Z","code":429}]}`))
	e.nats.PublishRequests(t, good)

	testenv.Eventually(t, 10*time.Second, "valid events stored", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 3 && e.count(t, logstore.CollErrors, bson.M{"_id": "er1"}) == 1
	})
	testenv.Eventually(t, 10*time.Second, "both consumers drained", func() bool {
		return e.backlog(t, bus.ConsumerLogdRequests) == 0 && e.backlog(t, bus.ConsumerLogdErrors) == 0
	})
	ctx := context.Background()
	stream, err := e.nats.JS.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("%d dead letters, want 3", info.State.Msgs)
	}
	byPayload := map[string]bus.DeadLetter{}
	for seq := uint64(1); seq <= 3; seq++ {
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
		byPayload[dl.Payload] = dl
	}
	if dl := byPayload["{not json"]; dl.Subject != bus.SubjectEventRequests || dl.Reason == "" {
		t.Fatalf("garbage dead letter = %+v (all: %+v)", dl, byPayload)
	}
	singular, _ := json.Marshal(good[0])
	if dl := byPayload[string(singular)]; dl.Subject != bus.SubjectEventRequests || dl.Reason != "not a request batch: no events" {
		t.Fatalf("singular-event dead letter = %+v (all: %+v)", dl, byPayload)
	}
	noID := `{"v":1,"time":"2026-11-27T06:00:00Z","message":"no id"}`
	if dl := byPayload[noID]; dl.Subject != bus.SubjectEventErrors || dl.Reason != "event has no id" {
		t.Fatalf("single-event dead letter = %+v (all: %+v)", dl, byPayload)
	}
}

// storedOnceEach fails unless every event of evs has exactly one request log.
func storedOnceEach(t *testing.T, e *env, evs []bus.RequestEvent) {
	t.Helper()
	for _, ev := range evs {
		if n := testenv.CountRequestLogs(e.db, ev.ID); n != 1 {
			t.Fatalf("event %s stored %d times", ev.ID, n)
		}
	}
}

// lastDeadLetter returns the dead-letter stream and the last letter logd put on it.
func lastDeadLetter(t *testing.T, e *env) (jetstream.Stream, bus.DeadLetter) {
	t.Helper()
	ctx := context.Background()
	stream, err := e.nats.JS.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, bus.SubjectDLQLogd)
	if err != nil {
		t.Fatal(err)
	}
	var dl bus.DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil {
		t.Fatal(err)
	}
	return stream, dl
}

// Compressed batches are decompressed into one buffer, batch after batch. A
// small compressed batch with one bad event, after a large one, stores its
// valid events and dead-letters the bad event's own JSON.
func TestACompressedBatchWithABadEventAfterALargerOneIsSplitAlone(t *testing.T) {
	e := start(t, storetest.Start(t), ingest.Options{BatchSize: 10, FlushInterval: 50 * time.Millisecond})
	evs := events(30, time.Now())
	large, err := json.Marshal(bus.RequestBatch{V: bus.Version, Events: evs[:29]})
	if err != nil {
		t.Fatal(err)
	}
	last, err := json.Marshal(evs[29])
	if err != nil {
		t.Fatal(err)
	}
	noID := `{"v":1,"time":"2026-11-27T06:00:00Z","route":"gemini.generateContent"}`
	mixed := []byte(`{"v":1,"events":[` + noID + `,` + string(last) + `]}`)
	e.nats.PublishEncoded(t, bus.SubjectEventRequests, "large", bus.EncodingS2, bus.EncodeBatchS2(nil, large))
	e.nats.PublishEncoded(t, bus.SubjectEventRequests, "mixed", bus.EncodingS2, bus.EncodeBatchS2(nil, mixed))

	testenv.Eventually(t, 10*time.Second, "all 30 valid events stored", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 30
	})
	storedOnceEach(t, e, evs)
	_, dl := lastDeadLetter(t, e)
	if dl.Payload != noID || dl.Reason != "event has no id" {
		t.Fatalf("dead letter = %+v, want the event without an id", dl)
	}
}

// Edge sends large batches S2-compressed (bus.HeaderEncoding); earlier
// edges, and small batches, send plain JSON. Both are stored alike. A
// compressed payload that does not decode is dead-lettered as base64 (the
// bytes are not text) and blocks nothing.
func TestCompressedAndPlainBatchesAreStoredAlikeAndAnUndecodableOneIsDeadLettered(t *testing.T) {
	e := start(t, storetest.Start(t), ingest.Options{BatchSize: 10, FlushInterval: 50 * time.Millisecond})
	evs := events(40, time.Now())
	plain, err := json.Marshal(bus.RequestBatch{V: bus.Version, Events: evs[:20]})
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := json.Marshal(bus.RequestBatch{V: bus.Version, Events: evs[20:]})
	if err != nil {
		t.Fatal(err)
	}
	z := bus.EncodeBatchS2(nil, zipped)
	e.nats.PublishEncoded(t, bus.SubjectEventRequests, "plain", "", plain)
	e.nats.PublishEncoded(t, bus.SubjectEventRequests, "s2", bus.EncodingS2, z)
	broken := append([]byte(nil), z[:len(z)/2]...)
	e.nats.PublishEncoded(t, bus.SubjectEventRequests, "broken", bus.EncodingS2, broken)

	testenv.Eventually(t, 10*time.Second, "both batches stored", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 40
	})
	testenv.Eventually(t, 10*time.Second, "consumer drained", func() bool {
		return e.backlog(t, bus.ConsumerLogdRequests) == 0
	})
	storedOnceEach(t, e, evs)
	stream, dl := lastDeadLetter(t, e)
	raw, err := base64.StdEncoding.DecodeString(dl.Payload)
	if err != nil || dl.PayloadEncoding != "base64" || !bytes.Equal(raw, broken) || !strings.HasPrefix(dl.Reason, "undecodable batch payload: s2 payload") {
		t.Fatalf("dead letter = %+v (payload decodes: %v)", dl, err)
	}
	if info, err := stream.Info(context.Background()); err != nil || info.State.Msgs != 1 {
		t.Fatalf("dead letters: %+v, %v; want the broken batch alone", info, err)
	}
}

func TestMongoOutageHoldsAcksAndCatchesUpAfterwards(t *testing.T) {
	fdb := storetest.StartRestartable(t)
	e := start(t, fdb.URI, ingest.Options{BatchSize: 50, FlushInterval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	now := time.Now()
	evs := events(300, now)
	e.nats.PublishRequestsPer(t, evs[:100], 10)
	testenv.Eventually(t, 20*time.Second, "first 100 stored", func() bool { return testenv.CountRequestLogs(e.db, "") == 100 })

	fdb.Stop()
	e.nats.PublishRequestsPer(t, evs[100:], 10)
	// While the store is down nothing more may be acknowledged: 20 messages of 10.
	testenv.Eventually(t, 10*time.Second, "messages delivered and held", func() bool { return e.backlog(t, bus.ConsumerLogdRequests) == 20 })
	time.Sleep(500 * time.Millisecond)
	if n := e.backlog(t, bus.ConsumerLogdRequests); n != 20 {
		t.Fatalf("backlog %d messages while the store is down, want 20", n)
	}

	fdb.Restart(t)
	testenv.Eventually(t, 60*time.Second, "all 300 stored", func() bool { return testenv.CountRequestLogs(e.db, "") == 300 })
	testenv.Eventually(t, 20*time.Second, "backlog drained", func() bool { return e.backlog(t, bus.ConsumerLogdRequests) == 0 })
	e.stop()
	if r := overall(t, e.db, now); r.Requests != 300 {
		t.Fatalf("overall rollup counts %d requests, want 300", r.Requests)
	}
}

// A NATS node that dies takes the deliveries it was relaying with it: the
// consumer counts them as pending an ack for AckWait (an hour here), though
// logd never got them. logd notices deliveries pending that it does not
// hold and has them delivered again, so their logs are stored now.
func TestDeliveriesLostOnTheWayAreDeliveredAgainBeforeAckWait(t *testing.T) {
	e := start(t, storetest.Start(t), ingest.Options{RequestMessages: 2, AckWait: time.Hour, BacklogEvery: 200 * time.Millisecond})
	testenv.Eventually(t, 20*time.Second, "logd's consumer", func() bool {
		_, err := ingest.Backlog(context.Background(), e.nats.JS, bus.ConsumerLogdRequests)
		return err == nil
	})
	// The lost deliveries: a member of logd's queue group that takes
	// messages and goes away without acknowledging them.
	lost := e.nats.Conn(t)
	var mu sync.Mutex
	took := 0
	sub, err := lost.QueueSubscribe(bus.SubjectDeliverLogdRequests, bus.ConsumerLogdRequests, func(m *nats.Msg) {
		mu.Lock()
		took++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	e.nats.PublishRequestsPer(t, events(60, time.Now()), 1)
	testenv.Eventually(t, 20*time.Second, "a delivery taken by the vanished member", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return took > 0
	})
	_ = sub.Unsubscribe()
	testenv.Eventually(t, 60*time.Second, "all 60 request logs, the lost ones delivered again", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 60
	})
	mu.Lock()
	t.Logf("%d deliveries were lost on the way and delivered again", took)
	mu.Unlock()
}

// Batches are decoded into reused arrays: a log must have only what its own
// event says, never a field left by an event of an earlier batch, also after
// a batch over bus.MaxBatchEvents (which a producer may send).
func TestALogCarriesNothingOverFromAnEarlierBatch(t *testing.T) {
	e := start(t, storetest.Start(t), ingest.Options{BatchSize: 10, FlushInterval: 20 * time.Millisecond})
	at := time.Now().UTC().Truncate(time.Second)
	full := events(bus.MaxBatchEvents+44, at)
	for i := range full {
		ev := &full[i]
		ev.ID = "full-" + ev.ID
		ev.Upstream, ev.Stream, ev.TokenHint, ev.KeyHint, ev.KeyKind = "gemini-2.5-pro", true, "sk-…abcd", "AIza…wxyz", "paid"
		ev.Class, ev.TTFBMS, ev.Replica, ev.ClientError = "rate_limited", 7, "edge-1", "upstream said no"
	}
	bare := events(bus.MaxBatchEvents, at)
	for i := range bare {
		bare[i].ID = "bare-" + bare[i].ID
	}
	for _, evs := range [][]bus.RequestEvent{full, bare} {
		before := testenv.CountRequestLogs(e.db, "")
		e.nats.PublishRequestsPer(t, evs, len(evs)) // one message
		testenv.Eventually(t, 10*time.Second, "batch stored", func() bool {
			return testenv.CountRequestLogs(e.db, "") == before+int64(len(evs))
		})
	}
	page, err := e.store.RequestLogs(context.Background(), logapi.RequestLogQuery{Limit: 1000, Count: "none"})
	if want := len(full) + len(bare); err != nil || len(page.Logs) != want {
		t.Fatalf("listed %d logs, %v; want %d", len(page.Logs), err, want)
	}
	for _, l := range page.Logs {
		carried := l.Upstream != "" || l.Stream || l.TokenHint != "" || l.KeyHint != "" || l.KeyKind != "" ||
			l.Class != "" || l.TTFBMS != 0 || l.Replica != "" || l.Error != ""
		if strings.HasPrefix(l.ID, "bare-") == carried {
			t.Fatalf("log %s: %+v", l.ID, l)
		}
	}
}
