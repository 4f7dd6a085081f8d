package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/fakegemini"
	"github.com/gemini-balance-go/testkit/wait"
)

// A streamed answer crosses edge's relay intact through either replica, and its event
// says it was a stream.
func TestStreamThroughEachEdgeArrivesWholeInOrder(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 2, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tap := tapEvents(t, s)
	prompt := "one two three four five six seven"
	for i := range 2 {
		var text strings.Builder
		n := 0
		for chunk, err := range s.Gemini(t, i).Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text(prompt), nil) {
			if err != nil {
				t.Fatalf("edge-%d: %v", i, err)
			}
			n++
			text.WriteString(chunk.Text())
		}
		if n < 2 || text.String() != "echo: "+prompt {
			t.Errorf("edge-%d: %d chunks, %q", i, n, text.String())
		}
	}
	tap.waitFor(t, ctx, func(msgs []*nats.Msg) bool {
		streams := 0
		for _, ev := range requestEvents(msgs) {
			if ev.Stream && ev.Success {
				streams++
			}
		}
		return streams == 2
	}, "two successful stream request events")
	noSecrets(t, s, tap)
}

// A key Google rejects costs the client nothing: edge retries on another key, and the
// failed attempt is published as an error event that names the key only by hint.
func TestRejectedKeyIsRetriedOnAnotherKeyAndReportedWithoutTheKey(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bad := s.Keys()[0]
	if err := s.Fake().SetKeys(ctx, map[string]fakegemini.Behaviour{bad: {Status: fakegemini.Invalid}}); err != nil {
		t.Fatal(err)
	}
	tap := tapEvents(t, s)
	c := s.Gemini(t, 0)
	for range 6 {
		if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil); err != nil {
			t.Fatalf("request failed although two good keys remain: %v", err)
		}
	}
	st, err := s.Fake().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.KeyHits[bad] == 0 {
		t.Skip("the rejected key was never tried (rotation skipped it); nothing to observe")
	}
	tap.waitFor(t, ctx, func(msgs []*nats.Msg) bool {
		for _, ev := range errorEvents(msgs) {
			if ev.UpstreamStatus == 400 {
				return true
			}
		}
		return false
	}, "an error event for the rejected key's 400")
	noSecrets(t, s, tap)
}

// admind's health report counts the replicas of every service process, and notices a
// killed replica.
func TestAdminHealthCountsReplicasOfEveryProcess(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 2, Keyds: 2})
	waitHealth(t, s, map[string]int{"edge": 2, "keyd": 2, "logd": 1, "admind": 1, "schedulerd": 1})
	s.Kill("edge-1")
	waitHealth(t, s, map[string]int{"edge": 1, "keyd": 2, "logd": 1, "admind": 1, "schedulerd": 1})
}

// waitHealth polls until the report matches: readiness does not imply the micro service
// is registered yet, and a dead replica drops out only after the ping window.
func waitHealth(t *testing.T, s *stack.Stack, want map[string]int) {
	t.Helper()
	wait.ForState(t, fmt.Sprintf("health replicas %v", want), func() (bool, string) {
		got := health(t, s)
		for k, v := range want {
			if got[k] != v {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
}

func health(t *testing.T, s *stack.Stack) map[string]int {
	t.Helper()
	resp, err := http.Get(s.AdminURL() + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var rep struct {
		Services []struct {
			Name     string
			Replicas int
		}
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("health %d: %s", resp.StatusCode, body)
	}
	out := map[string]int{}
	for _, sv := range rep.Services {
		out[sv.Name] = sv.Replicas
	}
	return out
}

// The tick path across processes: schedulerd's recover tick reaches keyd, which
// re-verifies a key disabled earlier and brings it back once Google accepts it again.
func TestRecoverTickRestoresAKeyThatWorksAgain(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Without: []string{"admind"},
		ServiceEnv: map[string]map[string]string{"schedulerd": {"TICK_INTERVAL": "1s"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bad := s.Keys()[0]
	fake := s.Fake()
	if err := fake.SetKeys(ctx, map[string]fakegemini.Behaviour{bad: {Status: fakegemini.Invalid}}); err != nil {
		t.Fatal(err)
	}
	tap := tapEvents(t, s)
	sendUntilTried(t, ctx, s, bad)
	var keyID string
	tap.waitFor(t, ctx, func(msgs []*nats.Msg) bool {
		for _, m := range msgs {
			var ev bus.KeyStateEvent
			if m.Subject == bus.SubjectEventKeyState && json.Unmarshal(m.Data, &ev) == nil && ev.To == bus.KeyDisabled {
				keyID = ev.KeyID
				return true
			}
		}
		return false
	}, "a key-state event disabling the rejected key")

	if err := fake.SetKeys(ctx, map[string]fakegemini.Behaviour{bad: {}}); err != nil {
		t.Fatal(err)
	}
	tap.waitFor(t, ctx, func(msgs []*nats.Msg) bool {
		ticks, restored := 0, false
		for _, m := range msgs {
			if m.Subject == bus.SubjectTickRecover {
				ticks++
			}
			var ev bus.KeyStateEvent
			if m.Subject == bus.SubjectEventKeyState && json.Unmarshal(m.Data, &ev) == nil && ev.KeyID == keyID && ev.To == bus.KeyActive {
				restored = true
			}
		}
		return ticks > 0 && restored
	}, "a recover tick and the key restored to active")
	noSecrets(t, s, tap)
}

// A client that goes away mid-stream cancels the upstream call: the fake, a separate
// process behind edge, sees its request cancelled long before the stream would end.
func TestClientDisconnectCancelsTheUpstreamStream(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fake := s.Fake()
	slow := map[string]fakegemini.Behaviour{}
	for _, k := range s.Keys() {
		slow[k] = fakegemini.Behaviour{ChunkDelay: fakegemini.Duration(time.Hour)}
	}
	if err := fake.SetKeys(ctx, slow); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	for chunk, err := range s.Gemini(t, 0).Models.GenerateContentStream(sctx, "gemini-2.5-flash", genai.Text("a b c d e f"), nil) {
		if err != nil {
			t.Fatalf("first event: %v", err)
		}
		if chunk.Text() == "" {
			t.Fatal("first event carried no text")
		}
		break // the client stops reading and hangs up
	}
	scancel()
	st, err := fake.WaitCancelled(ctx, 1, 20*time.Second)
	if err != nil {
		t.Fatalf("upstream call not cancelled: %v", err)
	}
	if st.Cancelled != 1 {
		t.Errorf("cancelled = %d", st.Cancelled)
	}
}

// A file uploaded through one edge is bound (through keyd, in MongoDB) to the key that
// uploaded it: a later generate call that references it — through the other edge —
// goes out on that key, which is the only one Google lets read the file.
func TestUploadedFileIsUsedWithItsUploadingKeyThroughAnyEdge(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 2, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := s.Gemini(t, 0).Files.Upload(ctx, strings.NewReader("%PDF-1.4 e2e"), &genai.UploadFileConfig{MIMEType: "application/pdf", DisplayName: "e2e"})
	if err != nil {
		t.Fatalf("upload through edge-0: %v", err)
	}
	up, ok, err := s.Fake().Last(ctx, fakegemini.Filter{Method: "files.create"})
	if err != nil || !ok {
		t.Fatalf("fake saw no upload start: %v", err)
	}
	c1 := s.Gemini(t, 1)
	for i := range 4 { // more calls than keys: rotation alone would hit another key
		if _, err := c1.Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{{Role: "user", Parts: []*genai.Part{
			genai.NewPartFromURI(f.URI, "application/pdf"), genai.NewPartFromText("summarise")}}}, nil); err != nil {
			t.Fatalf("call %d with the file through edge-1: %v", i, err)
		}
	}
	reqs, err := s.Fake().Requests(ctx, fakegemini.Filter{Method: "generateContent"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if r.Key != up.Key {
			t.Errorf("a call referencing the file went out on another key (status %d)", r.Status)
		}
	}
	if got, err := c1.Files.Get(ctx, f.Name, nil); err != nil || got.Name != f.Name {
		t.Fatalf("get through edge-1: %v", err)
	}
}

// NATS is the backbone: when nats-server is killed and comes back (same port, same
// JetStream store), every service reconnects on its own, requests are answered again,
// and their rows still reach MongoDB.
func TestServicesRecoverWhenNATSServerIsKilledAndRestarted(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := s.Gemini(t, 0)
	if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("before"), nil); err != nil {
		t.Fatal(err)
	}
	db := s.Mongo(t)
	waitRows := func(want int64, what string) {
		t.Helper()
		for {
			n, err := countRequestLogs(ctx, db, func(r *logstore.RequestLog) bool { return r.Success })
			if err == nil && n >= want {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %d rows (err %v)", what, n, err)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	waitRows(1, "rows before the NATS restart") // steady state: logd is consuming
	s.Kill("nats")
	s.Start("nats")
	var err error
	for {
		if _, err = c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("after"), nil); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("edge never answered again after the NATS restart: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	waitRows(2, "rows after the NATS restart")
}

// A 429 with RetryInfo cools the key for the delay Google asked for: keyd publishes the
// cooldown, and no later request is sent upstream on that key while it lasts.
func TestRateLimitedKeyCoolsForTheRetryDelayGoogleGave(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	limited := s.Keys()[0]
	fake := s.Fake()
	if err := fake.SetKeys(ctx, map[string]fakegemini.Behaviour{limited: {Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(10 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	tap := tapEvents(t, s)
	sendUntilTried(t, ctx, s, limited)
	var cooled time.Time
	tap.waitFor(t, ctx, func(msgs []*nats.Msg) bool {
		for _, m := range msgs {
			var ev bus.KeyStateEvent
			if m.Subject == bus.SubjectEventKeyState && json.Unmarshal(m.Data, &ev) == nil && ev.To == bus.KeyCooling {
				cooled = ev.Until
				return true
			}
		}
		return false
	}, "a key-state event cooling the rate-limited key")
	if until := time.Until(cooled); until < 5*time.Minute {
		t.Errorf("cooldown ends in %s; Google asked for 10m", until.Round(time.Second))
	}
	before, _ := fake.Stats(ctx)
	c := s.Gemini(t, 0)
	for range 9 {
		if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("again"), nil); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := fake.Stats(ctx)
	if after.KeyHits[limited] != before.KeyHits[limited] {
		t.Errorf("cooling key used %d more times", after.KeyHits[limited]-before.KeyHits[limited])
	}
	noSecrets(t, s, tap)
}

// After the first byte there is no failover: a failure in the middle of a stream reaches
// the client as the stream's error, text already sent is not repeated, and upstream saw
// exactly one call. Both framings: SSE (genai) and the JSON array (raw HTTP).
func TestMidStreamFailureEndsTheStreamWithoutRetry(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fake := s.Fake()
	flaky := map[string]fakegemini.Behaviour{}
	for _, k := range s.Keys() {
		flaky[k] = fakegemini.Behaviour{FailAfter: 1}
	}
	if err := fake.SetKeys(ctx, flaky); err != nil {
		t.Fatal(err)
	}
	var texts []string
	var streamErr error
	for chunk, err := range s.Gemini(t, 0).Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("a b c d e f"), nil) {
		if err != nil {
			streamErr = err
			break
		}
		texts = append(texts, chunk.Text())
	}
	var ae genai.APIError
	if len(texts) != 1 || !errors.As(streamErr, &ae) || ae.Code != 503 {
		t.Fatalf("texts %q, err %v", texts, streamErr)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.EdgeURL(0)+"/v1beta/models/gemini-2.5-flash:streamGenerateContent",
		strings.NewReader(`{"contents":[{"role":"user","parts":[{"text":"a b c d e f"}]}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", s.Tokens()[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var elems []map[string]any
	if err := json.Unmarshal(raw, &elems); err != nil {
		t.Fatalf("JSON-array stream with a failure must still parse: %v\n%s", err, raw)
	}
	if len(elems) != 2 || elems[1]["error"] == nil {
		t.Fatalf("want one answer element then one error element: %s", raw)
	}
	st, err := fake.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.MethodHits["streamGenerateContent"] != 2 {
		t.Errorf("upstream saw %d stream calls for 2 client streams (a retry after the first byte?)", st.MethodHits["streamGenerateContent"])
	}
}

// sendUntilTried sends requests through edge 0 until the fake upstream has
// seen key; every one of them must succeed (other good keys remain).
func sendUntilTried(t *testing.T, ctx context.Context, s *stack.Stack, key string) {
	t.Helper()
	c := s.Gemini(t, 0)
	for {
		if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil); err != nil {
			t.Fatalf("request failed although two good keys remain: %v", err)
		}
		if st, _ := s.Fake().Stats(ctx); st.KeyHits[key] > 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("key %s was never tried", redact.Hint(key))
		}
	}
}
