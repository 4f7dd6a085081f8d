package openai_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	oai "github.com/openai/openai-go/v3"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// The converted route is accounted like the native one: one request event
// with route, requested and upstream model, the client token's id (never the
// token), the key's hint and the token usage.
func TestChatPublishesRequestEventWithUsage(t *testing.T) {
	e := newEnv(t, envOptions{})
	msgs := make(chan *nats.Msg, 16)
	sub, err := e.nc.ChanSubscribe(bus.SubjectEventRequests, msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text("ok")},
		Usage: &fakegemini.UsageMetadata{PromptTokenCount: 5, CandidatesTokenCount: 1, ThoughtsTokenCount: 3, TotalTokenCount: 9}})
	cl := e.client("/v1", token)
	if _, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model: "gemini-2.5-flash-search", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		var b bus.RequestBatch
		data, err := bus.DecodeBatch(m.Header.Get(bus.HeaderEncoding), m.Data)
		if err == nil {
			err = json.Unmarshal(data, &b)
		}
		if err != nil || len(b.Events) != 1 {
			t.Fatalf("batch %s: %v", m.Data, err)
		}
		ev := b.Events[0]
		if ev.Route != "openai.chat" || ev.Model != "gemini-2.5-flash-search" || ev.Upstream != "gemini-2.5-flash" || !ev.Success || ev.Status != 200 {
			t.Errorf("event %+v", ev)
		}
		if ev.TokenID != redact.ID(token) || ev.KeyHint == "" || ev.Usage.Total != 9 || ev.Usage.Thoughts != 3 {
			t.Errorf("event accounting %+v", ev)
		}
		if containsSecret(string(data)) {
			t.Errorf("event carries a secret: %s", data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no request event")
	}
}

func containsSecret(s string) bool {
	return strings.Contains(s, token) || strings.Contains(s, "AIzaSyGOOD-key-0000000000000000000001")
}
