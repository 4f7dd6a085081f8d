package gateway_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

func TestEachRequestPublishesOneRequestEventAndOneErrorEventPerFailedAttempt(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyDown, keyGood1}})
	e.fake.SetKey(keyDown, fakegemini.Behaviour{Status: fakegemini.Unavailable})
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"count me"}]}]}`)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	reqs, errs := e.collectEvents(t, 1, 1)
	if len(reqs) != 1 || len(errs) != 1 {
		t.Fatalf("got %d request and %d error events", len(reqs), len(errs))
	}
	r := reqs[0]
	if r.Route != "gemini.generateContent" || r.Model != "gemini-2.5-flash" || r.Attempts != 2 || r.Status != 200 || !r.Success ||
		r.KeyID != redact.ID(keyGood1) || r.KeyHint != redact.Hint(keyGood1) || r.TokenID != redact.ID(token) ||
		r.Usage.Prompt == 0 || r.Usage.Total == 0 || r.LatencyMS <= 0 || r.V != bus.Version {
		t.Errorf("request event: %+v", r)
	}
	x := errs[0]
	if x.RequestID != r.ID || x.KeyID != redact.ID(keyDown) || x.Class != "server_error" || x.UpstreamStatus != 503 ||
		x.Attempt != 1 || !strings.Contains(x.Message, "overloaded") || x.RequestBody != "" {
		t.Errorf("error event: %+v", x)
	}
}

// The recorded body is the one sent upstream (with injections), as
// gemini-balance records the upstream payload.
func TestAStreamThatFailsMidwayIsLoggedAsAFailureWithTheRequestBodyWhenAsked(t *testing.T) {
	e := newEnv(t, envOptions{settings: func(s *config.Settings) { s.ErrorLogRecordRequestBody = true }})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Chunks: threeChunks, Behaviour: &fakegemini.Behaviour{FailAfter: 1}})
	body := `{"contents":[{"parts":[{"text":"record me"}]}]}`
	res := e.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", body)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	reqs, errs := e.collectEvents(t, 1, 1)
	if len(reqs) != 1 || len(errs) != 1 {
		t.Fatalf("got %d request and %d error events", len(reqs), len(errs))
	}
	if r := reqs[0]; r.Status != 200 || r.Success || r.ClientError == "" || !r.Stream || r.Class != "server_error" {
		t.Errorf("request event: %+v", r)
	}
	if x := errs[0]; !strings.Contains(x.RequestBody, `"record me"`) || x.ErrorType != "gemini-chat-stream" || x.UpstreamStatus != 503 {
		t.Errorf("error event: %+v", x)
	}
}

// collectEvents reads request and error batches from GB_EVENTS until it has
// the wanted numbers of events (or ten seconds pass), checking that every
// batch message has a Nats-Msg-Id of its own and that no full secret is in
// any payload.
func (e *env) collectEvents(t *testing.T, wantReqs, wantErrs int) ([]bus.RequestEvent, []bus.ErrorEvent) {
	t.Helper()
	ctx := ctxTimeout(t)
	cons, err := e.js.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectEventRequests, bus.SubjectEventErrors}})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []bus.RequestEvent
	var errs []bus.ErrorEvent
	msgIDs := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for (len(reqs) < wantReqs || len(errs) < wantErrs) && time.Now().Before(deadline) {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			continue
		}
		data, err := bus.DecodeBatch(msg.Headers().Get(bus.HeaderEncoding), msg.Data())
		if err != nil {
			t.Fatalf("batch does not decode: %v", err)
		}
		payload := string(data) // a search of compressed bytes would find nothing
		for _, secret := range []string{keyDown, keyGood1, token} {
			if strings.Contains(payload, secret) {
				t.Fatalf("event carries a full secret: %s", payload)
			}
		}
		if id := msg.Headers().Get("Nats-Msg-Id"); id == "" || msgIDs[id] {
			t.Errorf("batch Nats-Msg-Id %q missing or repeated", id)
		} else {
			msgIDs[id] = true
		}
		switch msg.Subject() {
		case bus.SubjectEventRequests:
			var b bus.RequestBatch
			if err := json.Unmarshal(data, &b); err != nil || b.V != bus.Version {
				t.Fatalf("request batch: %v: %s", err, payload)
			}
			reqs = append(reqs, b.Events...)
		case bus.SubjectEventErrors:
			var b bus.ErrorBatch
			if err := json.Unmarshal(data, &b); err != nil || b.V != bus.Version {
				t.Fatalf("error batch: %v: %s", err, payload)
			}
			errs = append(errs, b.Events...)
		}
	}
	return reqs, errs
}
