package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/keyd/keystore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

func geminiKey(i int) string { return fmt.Sprintf("AIzaSyKeydComponentTest%016d", i) }

func settingsWith(keys ...string) config.Settings {
	s := config.Defaults()
	s.APIKeys = keys
	return s
}

const testModel = "gemini-2.5-flash"

func acquire(t *testing.T, nc *nats.Conn, req bus.AcquireRequest) bus.AcquireReply {
	t.Helper()
	if req.Model == "" {
		req.Model = testModel
	}
	return call[bus.AcquireReply](t, nc, bus.SubjectKeyAcquire, req)
}

func report(t *testing.T, nc *nats.Conn, r bus.Report) {
	t.Helper()
	data, _ := json.Marshal(r)
	if err := nc.Publish(bus.SubjectKeyReport, data); err != nil {
		t.Fatal(err)
	}
}

func TestFirstStartImportsConfiguredKeysOnceDeduplicated(t *testing.T) {
	st := newStack(t)
	s := settingsWith(geminiKey(1), geminiKey(2), geminiKey(1), " "+geminiKey(2)+" ")
	s.VertexAPIKeys = []string{"AQ.vertex-express-key-0000000000000001"}
	s.PaidKey = "AIzaSyPaidKeyForImages000000000000000000"
	r := st.start(replicaOpts{name: "a", settings: s})
	stats := call[keyapi.StatsReply](t, st.nc, bus.SubjectKeyStats, nil)
	if stats.Total != 4 || stats.Counts[bus.KindGemini][bus.KeyActive] != 2 ||
		stats.Counts[bus.KindVertex][bus.KeyActive] != 1 || stats.Counts[bus.KindPaid][bus.KeyActive] != 1 {
		t.Fatalf("stats after import = %+v, want 2 gemini, 1 vertex, 1 paid", stats)
	}
	// Keys deleted by an admin do not come back from API_KEYS on the next start.
	del := call[keyapi.ChangeReply](t, st.nc, bus.SubjectKeyDelete, keyapi.Selection{IDs: []string{redact.ID(geminiKey(1))}})
	if del.Changed != 1 {
		t.Fatalf("delete = %+v", del)
	}
	r.stop()
	st.start(replicaOpts{name: "a2", settings: s})
	stats = call[keyapi.StatsReply](t, st.nc, bus.SubjectKeyStats, nil)
	if stats.Total != 3 {
		t.Fatalf("after restart total = %d, want 3 (no re-import)", stats.Total)
	}
}

func TestAcquireAndReportOverNATS(t *testing.T) {
	st := newStack(t)
	st.start(replicaOpts{name: "a", settings: settingsWith(geminiKey(1), geminiKey(2), geminiKey(3))})

	// Key-state events are on the durable stream for taps.
	cons, err := st.js.OrderedConsumer(context.Background(), bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectEventKeyState}})
	if err != nil {
		t.Fatal(err)
	}

	bad := redact.ID(geminiKey(2))
	rep := acquire(t, st.nc, bus.AcquireRequest{Kind: bus.KindGemini})
	if rep.ID == "" || rep.Secret == "" || rep.Hint != redact.Hint(rep.Secret) {
		t.Fatalf("acquire = %+v", rep)
	}
	report(t, st.nc, bus.Report{ID: bad, Model: testModel, Class: string(outcome.KeyInvalid), Status: 400, Reason: "API_KEY_INVALID"})
	eventually(t, "key disabled", func() bool {
		g := call[keyapi.GetReply](t, st.nc, bus.SubjectKeyGet, keyapi.GetRequest{ID: bad})
		return g.Key != nil && g.Key.Status == bus.KeyDisabled
	})
	for i := 0; i < 30; i++ {
		if got := acquire(t, st.nc, bus.AcquireRequest{}); got.ID == bad || got.ID == "" {
			t.Fatalf("acquire %d = %+v; the disabled key or none", i, got)
		}
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("no key-state event on %s: %v", bus.SubjectEventKeyState, err)
	}
	var ev bus.KeyStateEvent
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.KeyID != bad || ev.To != bus.KeyDisabled || ev.Replica != "a" {
		t.Fatalf("event = %+v (%v)", ev, err)
	}
	if strings.Contains(string(msg.Data()), geminiKey(2)) {
		t.Fatal("key-state event carries the full key")
	}

	// Every key disabled: the answer says so.
	call[keyapi.ChangeReply](t, st.nc, bus.SubjectKeyDisable, keyapi.Selection{All: true})
	if got := acquire(t, st.nc, bus.AcquireRequest{}); got.NoKey != bus.NoKeyAllDisabled {
		t.Fatalf("all disabled: %+v", got)
	}
	// Reset by status brings them back.
	res := call[keyapi.ChangeReply](t, st.nc, bus.SubjectKeyReset, keyapi.Selection{Status: bus.KeyDisabled})
	if res.Changed != 3 {
		t.Fatalf("reset = %+v", res)
	}
	if got := acquire(t, st.nc, bus.AcquireRequest{}); got.ID == "" {
		t.Fatalf("after reset: %+v", got)
	}
}

func TestAdminBulkAddListAndReveal(t *testing.T) {
	st := newStack(t)
	st.start(replicaOpts{name: "a", settings: settingsWith(geminiKey(1))})
	text := fmt.Sprintf("keys:\n%s,\n%s ; %s\nnot-a-key-at-all AQ.vertex-express-key-0000000000000009", geminiKey(1), geminiKey(2), geminiKey(2))
	add := call[keyapi.AddReply](t, st.nc, bus.SubjectKeyAdd, keyapi.AddRequest{Text: text})
	if add.AddedCount != 2 || add.DupCount != 2 || add.InvalidCnt != 1 {
		t.Fatalf("add = %+v, want 2 added (gemini + vertex), 2 duplicates, 1 invalid", add)
	}
	if strings.Contains(fmt.Sprint(add), geminiKey(2)) {
		t.Fatal("add reply carries a full key")
	}
	list := call[keyapi.ListReply](t, st.nc, bus.SubjectKeyList, keyapi.ListRequest{Kind: bus.KindGemini, PageSize: 1, Page: 2})
	if list.Total != 2 || len(list.Keys) != 1 {
		t.Fatalf("list = %+v", list)
	}
	rev := call[keyapi.RevealReply](t, st.nc, bus.SubjectKeyReveal, keyapi.GetRequest{ID: list.Keys[0].ID})
	if redact.ID(rev.Secret) != list.Keys[0].ID {
		t.Fatalf("reveal returned a different key")
	}
	vtx := call[keyapi.ListReply](t, st.nc, bus.SubjectKeyList, keyapi.ListRequest{Kind: bus.KindVertex})
	if vtx.Total != 1 {
		t.Fatalf("vertex keys = %d, want 1", vtx.Total)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	st := newStack(t)
	s := settingsWith(geminiKey(1), geminiKey(2), geminiKey(3))
	r := st.start(replicaOpts{name: "a", settings: s, encKey: "passphrase"})
	cooled, failing := redact.ID(geminiKey(1)), redact.ID(geminiKey(2))
	report(t, st.nc, bus.Report{ID: cooled, Model: testModel, Class: string(outcome.RateLimited), Status: 429, RetryDelay: int64(time.Hour / time.Millisecond)})
	report(t, st.nc, bus.Report{ID: failing, Model: testModel, Class: string(outcome.ServerError), Status: 503})
	report(t, st.nc, bus.Report{ID: failing, Model: testModel, Class: string(outcome.ServerError), Status: 503})
	eventually(t, "reports applied", func() bool {
		g := call[keyapi.GetReply](t, st.nc, bus.SubjectKeyGet, keyapi.GetRequest{ID: failing})
		return g.Key != nil && g.Key.Failures == 2
	})
	r.stop()

	st.start(replicaOpts{name: "b", settings: s, encKey: "passphrase"})
	g := call[keyapi.GetReply](t, st.nc, bus.SubjectKeyGet, keyapi.GetRequest{ID: cooled})
	if g.Key == nil || g.Key.Status != bus.KeyCooling || len(g.Key.Cooldowns) != 1 || g.Key.Cooldowns[0].Model != testModel {
		t.Fatalf("cooldown lost across restart: %+v", g.Key)
	}
	if g := call[keyapi.GetReply](t, st.nc, bus.SubjectKeyGet, keyapi.GetRequest{ID: failing}); g.Key.Failures != 2 {
		t.Fatalf("failure count lost across restart: %+v", g.Key)
	}
	for i := 0; i < 10; i++ {
		if got := acquire(t, st.nc, bus.AcquireRequest{}); got.ID == cooled {
			t.Fatal("a key cooling before the restart was handed out after it")
		}
	}
	// The third failure disables: the count carried over.
	report(t, st.nc, bus.Report{ID: failing, Model: testModel, Class: string(outcome.Timeout)})
	eventually(t, "third failure disables", func() bool {
		g := call[keyapi.GetReply](t, st.nc, bus.SubjectKeyGet, keyapi.GetRequest{ID: failing})
		return g.Key.Status == bus.KeyDisabled
	})
}

func TestWrongOrMissingEncryptionKeyRefusesToStart(t *testing.T) {
	st := newStack(t)
	s := settingsWith(geminiKey(1))
	st.start(replicaOpts{name: "a", settings: s, encKey: "right"}).stop()

	for _, key := range []string{"wrong", ""} {
		_, err := New(context.Background(), st.newDeps(replicaOpts{name: "x", settings: s, encKey: key}))
		if err == nil {
			t.Fatalf("ENCRYPTION_KEY %q: started on keys it cannot read", key)
		}
		if !errors.Is(err, keystore.ErrEncryptionKeyWrong) && !errors.Is(err, keystore.ErrEncryptionKeyMissing) || !strings.Contains(err.Error(), "ENCRYPTION_KEY") {
			t.Fatalf("ENCRYPTION_KEY %q: error %q does not say what to fix", key, err)
		}
	}
	// Unencrypted stores keep working without a key.
	st2 := newStack(t)
	st2.start(replicaOpts{name: "plain", settings: s})
	if got := acquire(t, st2.nc, bus.AcquireRequest{}); got.Secret != geminiKey(1) {
		t.Fatalf("plaintext store: %+v", got)
	}
}

func TestRecoverTickRestoresGoodKeysAgainstFakeUpstream(t *testing.T) {
	good, bad := geminiKey(1), geminiKey(2)
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{good}}) // bad answers API_KEY_INVALID
	st := newStack(t)
	s := settingsWith(good, bad, geminiKey(3))
	s.BaseURL = fake.URL
	s.TestModel = testModel
	st.start(replicaOpts{name: "a", settings: s})
	st.start(replicaOpts{name: "b", settings: s})
	fake.AddKeys(geminiKey(3))

	// Both keys get disabled by soft failures.
	for _, id := range []string{redact.ID(good), redact.ID(bad)} {
		call[keyapi.ChangeReply](t, st.nc, bus.SubjectKeyDisable, keyapi.Selection{IDs: []string{id}, Reason: "test"})
	}
	tick := bus.Tick{V: bus.Version, Name: "recover", Slot: "2026-11-27T08:00", Time: time.Now()}
	data, _ := json.Marshal(tick)
	if _, err := st.js.Publish(context.Background(), bus.SubjectTickRecover, data, jetstream.WithMsgID(bus.TickMsgID(tick))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "good key restored on tick", func() bool {
		g := call[keyapi.GetReply](t, st.nc, bus.SubjectKeyGet, keyapi.GetRequest{ID: redact.ID(good)})
		return g.Key.Status == bus.KeyActive
	})
	// Keys are verified concurrently: the bad key's verdict may land just after the good one's.
	var g keyapi.GetReply
	eventually(t, "bad key's verify recorded", func() bool {
		g = call[keyapi.GetReply](t, st.nc, bus.SubjectKeyGet, keyapi.GetRequest{ID: redact.ID(bad)})
		return g.Key.LastError != ""
	})
	if g.Key.Status != bus.KeyDisabled || !strings.Contains(g.Key.LastError, "key_invalid") {
		t.Fatalf("bad key after tick: %+v", g.Key)
	}
	// One replica handled the tick: each disabled key was verified once.
	verifies := 0
	for _, r := range fake.Requests(fakegemini.Filter{}) {
		if r.Method == "generateContent" {
			verifies++
			if r.Header.Get("x-goog-api-key") == "" || strings.Contains(r.RawQuery, "key=") {
				t.Fatalf("verify must send the key in x-goog-api-key only: %+v", r)
			}
		}
	}
	if verifies != 2 {
		t.Fatalf("upstream saw %d verify calls, want 2 (one replica per tick)", verifies)
	}

	// Manual verify of everything reports a result per key.
	v := call[keyapi.VerifyReply](t, st.nc, bus.SubjectKeyVerify, keyapi.Selection{All: true})
	if len(v.Results) != 3 || v.OK != 2 || v.Failed != 1 {
		t.Fatalf("verify all = %+v", v)
	}
}

func TestTwoReplicasShareStateChanges(t *testing.T) {
	st := newStack(t)
	keys := []string{geminiKey(1), geminiKey(2), geminiKey(3), geminiKey(4)}
	a := st.start(replicaOpts{name: "a", settings: settingsWith(keys...)})
	b := st.start(replicaOpts{name: "b", settings: settingsWith(keys...)})
	ctx := context.Background()

	// Disabled through one replica, never handed out by the other.
	off := redact.ID(keys[0])
	a.svc.Disable(ctx, keyapi.Selection{IDs: []string{off}})
	eventually(t, "b sees the disable", func() bool {
		k, _ := b.svc.Pool().Get(off)
		return k.Disabled
	})
	for i := 0; i < 100; i++ {
		if got := b.svc.Acquire(bus.AcquireRequest{Model: testModel}); got.ID == off {
			t.Fatal("replica b handed out a key disabled through replica a")
		}
	}

	// A cooldown set on b applies on a.
	cool := redact.ID(keys[1])
	b.svc.Report(bus.Report{ID: cool, Model: testModel, Class: string(outcome.RateLimited), Status: 429, RetryDelay: 60000})
	eventually(t, "a sees the cooldown", func() bool {
		k, _ := a.svc.Pool().Get(cool)
		return k.Status(time.Now()) == bus.KeyCooling
	})

	// Soft failures reported to different replicas add up to MAX_FAILURES.
	soft := redact.ID(keys[2])
	a.svc.Report(bus.Report{ID: soft, Model: testModel, Class: string(outcome.ServerError), Status: 500})
	b.svc.Report(bus.Report{ID: soft, Model: testModel, Class: string(outcome.ServerError), Status: 500})
	eventually(t, "counts merged", func() bool {
		ka, _ := a.svc.Pool().Get(soft)
		kb, _ := b.svc.Pool().Get(soft)
		return ka.Failures == 2 && kb.Failures == 2
	})
	a.svc.Report(bus.Report{ID: soft, Model: testModel, Class: string(outcome.Timeout)})
	eventually(t, "disabled on both", func() bool {
		ka, _ := a.svc.Pool().Get(soft)
		kb, _ := b.svc.Pool().Get(soft)
		return ka.Disabled && kb.Disabled
	})

	// Adding and deleting keys propagates.
	added := a.svc.Add(ctx, keyapi.AddRequest{Keys: []string{geminiKey(9)}})
	if added.AddedCount != 1 {
		t.Fatalf("add = %+v", added)
	}
	newID := redact.ID(geminiKey(9))
	eventually(t, "b has the new key", func() bool { _, ok := b.svc.Pool().Get(newID); return ok })
	if k, _ := b.svc.Pool().Get(newID); k.Secret != geminiKey(9) {
		t.Fatal("b loaded the new key without its secret")
	}
	b.svc.Delete(ctx, keyapi.Selection{IDs: []string{newID}})
	eventually(t, "a dropped the deleted key", func() bool { _, ok := a.svc.Pool().Get(newID); return !ok })

	// A weight set through a reaches b.
	w, note := 5, "team A"
	if g := a.svc.Update(ctx, keyapi.UpdateRequest{ID: cool, Weight: &w, Note: &note}); g.Key == nil || g.Key.Weight != 5 {
		t.Fatalf("update = %+v", g)
	}
	eventually(t, "b has the weight", func() bool { k, _ := b.svc.Pool().Get(cool); return k.Weight == 5 && k.Note == "team A" })

	// Re-enabling through b reaches a.
	b.svc.Enable(ctx, keyapi.Selection{IDs: []string{off}})
	eventually(t, "a sees the enable", func() bool { k, _ := a.svc.Pool().Get(off); return !k.Disabled })
}

// A replica reads the pool from MongoDB while others keep changing keys; a
// change made in that window (persisted only at the other replica's next
// flush) must still reach it.
func TestReplicaStartingDuringAStateChangeDoesNotMissIt(t *testing.T) {
	st := newStack(t)
	keys := []string{geminiKey(1), geminiKey(2)}
	aDeps := st.newDeps(replicaOpts{name: "a", settings: settingsWith(keys...)})
	aDeps.FlushEvery = time.Hour // a's change stays out of MongoDB while b loads
	a := st.startWith("a", aDeps)
	bad := redact.ID(keys[0])

	bDeps := st.newDeps(replicaOpts{name: "b", settings: settingsWith(keys...)})
	bDeps.beforeLoad = func(b *Service) {
		a.svc.Report(bus.Report{ID: bad, Model: testModel, Class: string(outcome.KeyInvalid), Status: 400})
		if k, _ := a.svc.Pool().Get(bad); !k.Disabled {
			t.Error("a did not disable the invalid key")
		}
		// Wait until b has received a's state change, before b reads MongoDB.
		eventually(t, "b receives the sync message", func() bool {
			b.syncMu.Lock()
			defer b.syncMu.Unlock()
			return len(b.syncBuf) > 0
		})
	}
	b := st.startWith("b", bDeps).svc
	if k, _ := b.Pool().Get(bad); !k.Disabled {
		t.Fatal("replica b missed a key disabled by replica a while b was loading its pool")
	}
	for i := 0; i < 50; i++ {
		if got := b.Acquire(bus.AcquireRequest{Model: testModel}); got.ID == bad {
			t.Fatal("replica b handed out the key replica a disabled")
		}
	}
}

func TestFileBindingsOverNATS(t *testing.T) {
	st := newStack(t)
	st.start(replicaOpts{name: "a", settings: settingsWith(geminiKey(1))})
	keyID := redact.ID(geminiKey(1))
	bind := func(b bus.FileBinding) {
		if r := call[keyapi.OKReply](t, st.nc, bus.SubjectFileBind, b); !r.OK {
			t.Fatalf("bind %+v: %+v", b, r)
		}
	}
	// A pending upload is visible to any edge replica by its upload id.
	bind(bus.FileBinding{UploadID: "u-1", UploadURL: "http://upstream/upload?upload_id=u-1", KeyID: keyID, TokenID: "tok-a"})
	if r := call[keyapi.FileReply](t, st.nc, bus.SubjectFileLookup, keyapi.FileQuery{UploadID: "u-1", TokenID: "tok-a"}); r.File == nil || r.File.KeyID != keyID {
		t.Fatalf("pending upload lookup: %+v", r)
	}
	bind(bus.FileBinding{Name: "files/a1", UploadID: "u-1", KeyID: keyID, TokenID: "tok-a"})
	bind(bus.FileBinding{Name: "files/b1", KeyID: keyID, TokenID: "tok-b"})

	if r := call[keyapi.FileReply](t, st.nc, bus.SubjectFileLookup, keyapi.FileQuery{Name: "files/a1", TokenID: "tok-a"}); r.File == nil || r.File.KeyID != keyID {
		t.Fatalf("owner lookup: %+v", r)
	}
	if r := call[keyapi.FileReply](t, st.nc, bus.SubjectFileLookup, keyapi.FileQuery{Name: "files/a1", TokenID: "tok-b"}); r.File != nil {
		t.Fatal("another client token saw the file")
	}
	list := call[keyapi.FileListReply](t, st.nc, bus.SubjectFileList, keyapi.FileListRequest{TokenID: "tok-b"})
	if len(list.Files) != 1 || list.Files[0].Name != "files/b1" {
		t.Fatalf("tok-b list = %+v", list)
	}
	if r := call[keyapi.OKReply](t, st.nc, bus.SubjectFileDelete, keyapi.FileQuery{Name: "files/a1", TokenID: "tok-b"}); r.Found {
		t.Fatal("another client token deleted the binding")
	}
	if r := call[keyapi.OKReply](t, st.nc, bus.SubjectFileDelete, keyapi.FileQuery{Name: "files/a1", TokenID: "tok-a"}); !r.Found {
		t.Fatal("owner could not delete the binding")
	}
}

func TestMicroServiceIsDiscoverable(t *testing.T) {
	st := newStack(t)
	st.start(replicaOpts{name: "a", settings: settingsWith(geminiKey(1))})
	st.start(replicaOpts{name: "b", settings: settingsWith(geminiKey(1))})
	msg, err := st.nc.Request("$SRV.INFO.keyd", nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Name      string `json:"name"`
		Endpoints []struct {
			Name, Subject string
			QueueGroup    string `json:"queue_group"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	subjects := map[string]string{}
	for _, e := range info.Endpoints {
		subjects[e.Subject] = e.QueueGroup
	}
	for _, s := range []string{bus.SubjectKeyAcquire, bus.SubjectKeyReport, bus.SubjectKeyList, bus.SubjectKeyVerify, bus.SubjectFileBind} {
		if q, ok := subjects[s]; !ok || q == "" {
			t.Fatalf("endpoint %s missing or without a queue group: %v", s, subjects)
		}
	}
	// Both replicas answer pings.
	inbox := nats.NewInbox()
	sub, _ := st.nc.SubscribeSync(inbox)
	defer sub.Unsubscribe()
	_ = st.nc.PublishRequest("$SRV.PING.keyd", inbox, nil)
	seen := 0
	for {
		if _, err := sub.NextMsg(time.Second); err != nil {
			break
		}
		seen++
	}
	if seen != 2 {
		t.Fatalf("%d replicas answered the ping, want 2", seen)
	}
}

func TestSavedSettingsApplyLive(t *testing.T) {
	st := newStack(t)
	s := settingsWith(geminiKey(1), geminiKey(2))
	r := st.start(replicaOpts{name: "a", settings: s})

	next := s
	next.MaxFailures = 1
	next.APIKeys = append([]string{geminiKey(7)}, s.APIKeys...)
	r.settings.Set(next)
	eventually(t, "key added to API_KEYS is imported", func() bool {
		_, ok := r.svc.Pool().Get(redact.ID(geminiKey(7)))
		return ok
	})
	// MAX_FAILURES=1 now: one 5xx disables.
	id := redact.ID(geminiKey(1))
	r.svc.Report(bus.Report{ID: id, Model: testModel, Class: string(outcome.ServerError), Status: 500})
	if k, _ := r.svc.Pool().Get(id); !k.Disabled {
		t.Fatalf("after one 5xx with MAX_FAILURES=1: %+v", k)
	}
}

// Replicas of a fresh deployment start at the same moment: both must come
// up (seed, encryption meta, tick consumer are created by whichever is first).
func TestReplicasStartingTogetherBothServe(t *testing.T) {
	st := newStack(t)
	s := settingsWith(geminiKey(1), geminiKey(2))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 2)
	var done []chan error
	for _, name := range []string{"a", "b"} {
		deps := st.newDeps(replicaOpts{name: name, settings: s, encKey: "together"})
		d := make(chan error, 1)
		done = append(done, d)
		go func() {
			svc, err := New(ctx, deps)
			if err != nil {
				errs <- err
				d <- nil
				return
			}
			errs <- nil
			d <- svc.Run(ctx)
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("replica failed to start: %v", err)
		}
	}
	eventually(t, "both replicas answer", func() bool {
		inbox := nats.NewInbox()
		sub, _ := st.nc.SubscribeSync(inbox)
		defer sub.Unsubscribe()
		_ = st.nc.PublishRequest("$SRV.PING.keyd", inbox, nil)
		n := 0
		for {
			if _, err := sub.NextMsg(200 * time.Millisecond); err != nil {
				return n == 2
			}
			n++
		}
	})
	if stats := call[keyapi.StatsReply](t, st.nc, bus.SubjectKeyStats, nil); stats.Total != 2 {
		t.Fatalf("keys = %d, want 2 (imported once)", stats.Total)
	}
	cancel()
	for _, d := range done {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
}

// keyd needs nothing beyond what deployments/nats/nats.conf grants its user:
// endpoints, replica sync, key-state events and recover ticks all work.
func TestWorksWithTheDeploymentNATSPermissions(t *testing.T) {
	good := geminiKey(1)
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{good, geminiKey(2)}})
	st := newStackWithDeploymentAuth(t)
	s := settingsWith(good, geminiKey(2))
	s.BaseURL = fake.URL
	a := st.start(replicaOpts{name: "a", settings: s})
	b := st.start(replicaOpts{name: "b", settings: s})

	events, err := st.js.OrderedConsumer(context.Background(), bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectEventKeyState}})
	if err != nil {
		t.Fatal(err)
	}
	id := redact.ID(good)
	if got := acquire(t, st.nc, bus.AcquireRequest{}); got.ID == "" {
		t.Fatalf("acquire: %+v", got)
	}
	a.svc.Disable(context.Background(), keyapi.Selection{IDs: []string{id}})
	eventually(t, "b applies a's disable", func() bool { k, _ := b.svc.Pool().Get(id); return k.Disabled })
	b.svc.Report(bus.Report{ID: redact.ID(geminiKey(2)), Model: testModel, Class: string(outcome.ServerError), Status: 500})
	eventually(t, "a applies b's forwarded report", func() bool { k, _ := a.svc.Pool().Get(redact.ID(geminiKey(2))); return k.Failures == 1 })
	if _, err := events.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatalf("no key-state event stored: %v", err)
	}
	tick := bus.Tick{V: bus.Version, Name: "recover", Slot: "perm", Time: time.Now()}
	data, _ := json.Marshal(tick)
	if _, err := st.js.Publish(context.Background(), bus.SubjectTickRecover, data, jetstream.WithMsgID(bus.TickMsgID(tick))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recover tick restores the key", func() bool { k, _ := a.svc.Pool().Get(id); return !k.Disabled })
}

// admind's settings document never carries keys: the first start imports
// them from the environment (Deps.Seed), whatever the live settings hold.
func TestFirstStartImportsTheEnvironmentsKeysNotTheLiveSettings(t *testing.T) {
	st := newStack(t)
	env := settingsWith(geminiKey(1), geminiKey(2))
	d := st.newDeps(replicaOpts{name: "a", settings: config.Defaults()}) // the published document: no keys
	d.Seed = &env
	st.startWith("a", d)
	stats := call[keyapi.StatsReply](t, st.nc, bus.SubjectKeyStats, nil)
	if stats.Total != 2 {
		t.Fatalf("imported %d keys, want the environment's 2", stats.Total)
	}
}

// Reports reach the other replicas in order and in a few messages, not one
// message per request served.
func TestForwardedReportsTravelInBatchesInOrder(t *testing.T) {
	st := newStack(t)
	keys := []string{geminiKey(1), geminiKey(2)}
	a := st.start(replicaOpts{name: "a", settings: settingsWith(keys...)})
	b := st.start(replicaOpts{name: "b", settings: settingsWith(keys...)})
	sub, err := st.nc.SubscribeSync(bus.SubjectKeySync)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	id := redact.ID(keys[0])
	const successes = 300
	for range successes {
		a.svc.Report(bus.Report{ID: id, Model: testModel, Class: string(outcome.Success), Status: 200})
	}
	// After the successes: b resets the count for each of them first.
	a.svc.Report(bus.Report{ID: id, Model: testModel, Class: string(outcome.ServerError), Status: 500})
	eventually(t, "b counted every forwarded report", func() bool {
		k, _ := b.svc.Pool().Get(id)
		return k.Successes == successes && k.Failures == 1
	})
	msgs, reports := 0, 0
	for {
		m, err := sub.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		if m.Header.Get(hdrType) != typeReports {
			continue
		}
		var rs []bus.Report
		if err := json.Unmarshal(m.Data, &rs); err != nil {
			t.Fatal(err)
		}
		msgs, reports = msgs+1, reports+len(rs)
	}
	if reports != successes+1 || msgs > 3 {
		t.Fatalf("%d reports went out in %d messages; want %d in at most 3", reports, msgs, successes+1)
	}
}
