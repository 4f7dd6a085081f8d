package openai_test

import (
	"strings"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"

	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

func TestStreamedToolCallsAccumulate(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Chunks: [][]fakegemini.Part{
		{fakegemini.Thought("Two cities.")},
		{fakegemini.Call("get_weather", map[string]any{"city": "Oslo"}).Signed("sig-a"), fakegemini.Call("get_weather", map[string]any{"city": "Bergen"})},
	}})
	cl := e.client("/v1", token)
	stream := cl.Chat.Completions.NewStreaming(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model: "gemini-2.5-flash", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Oslo and Bergen?")},
		Tools: []oai.ChatCompletionToolUnionParam{weatherTool},
	})
	var acc oai.ChatCompletionAccumulator
	first := true
	for stream.Next() {
		c := stream.Current()
		if first && (len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant") {
			t.Errorf("first chunk is not the role delta: %s", c.RawJSON())
		}
		first = false
		acc.AddChunk(c)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	calls := acc.Choices[0].Message.ToolCalls
	if len(calls) != 2 || acc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("calls %+v finish %q", calls, acc.Choices[0].FinishReason)
	}
	if calls[0].Function.Arguments != `{"city":"Oslo"}` || calls[1].Function.Arguments != `{"city":"Bergen"}` {
		t.Errorf("arguments %q %q", calls[0].Function.Arguments, calls[1].Function.Arguments)
	}
	if convert.DecodeToolCallID(calls[0].ID) == "" || convert.DecodeToolCallID(calls[1].ID) != "" {
		t.Errorf("signature should ride on the first id only: %q %q", calls[0].ID, calls[1].ID)
	}
}

func TestStreamFailureMidwayEndsWithErrorEvent(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{
		Chunks:    [][]fakegemini.Part{{fakegemini.Text("one ")}, {fakegemini.Text("two ")}, {fakegemini.Text("three")}},
		Behaviour: &fakegemini.Behaviour{FailAfter: 2, StreamError: fakegemini.Unavailable},
	})
	cl := e.client("/v1", token)
	stream := cl.Chat.Completions.NewStreaming(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model: "gemini-2.5-flash", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("count")},
	})
	var text strings.Builder
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			text.WriteString(ch.Delta.Content)
		}
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "overloaded") {
		t.Fatalf("want the upstream error as a stream error, got %v", err)
	}
	if text.String() != "one two " {
		t.Errorf("text before the failure %q (must not be repeated)", text.String())
	}
	if n := e.fake.Stats().MethodHits["streamGenerateContent"]; n != 1 {
		t.Errorf("a started stream must not be retried: %d upstream streams", n)
	}
}

func TestFakeStreamSendsKeepAlivesWhileWaiting(t *testing.T) {
	e := newEnv(t, envOptions{settings: func(s *config.Settings) { s.FakeStreamEnabled = true; s.FakeStreamIntervalSeconds = 1 }})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text("late answer")},
		Behaviour: &fakegemini.Behaviour{Delay: fakegemini.Duration(2500 * time.Millisecond)}})
	res := e.postRaw("/v1/chat/completions", `{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	body := readAll(t, res)
	if res.StatusCode != 200 || !strings.HasPrefix(body, ": keep-alive\n\n") || !strings.Contains(body, "late answer") || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("status %d body:\n%s", res.StatusCode, body)
	}
}

// A passthrough stream comes back as upstream framed it, the body goes up
// whole, and the key's outcome is a success, not an "empty" answer.
func TestPassthroughStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.postRaw("/openai/v1/chat/completions", `{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"hi there"}],"extra_field":{"kept":true}}`)
	body := readAll(t, res)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") || !strings.Contains(body, "data: ") || !strings.Contains(body, "hi there") {
		t.Fatalf("status %d body %s", res.StatusCode, body)
	}
	r, _ := e.fake.Last(fakegemini.Filter{Method: "openai.chat"})
	if !strings.Contains(string(r.Body), `"extra_field":{"kept":true}`) {
		t.Errorf("body not kept whole: %s", r.Body)
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "Bearer AIza") || r.Header.Get("x-goog-api-key") != "" {
		t.Errorf("pool key not sent as Bearer: Authorization=%q x-goog-api-key=%q", auth, r.Header.Get("x-goog-api-key"))
	}
	if n := strings.Count(body, "data: "); n < 2 {
		t.Errorf("stream arrived as %d events, want it relayed event by event:\n%s", n, body)
	}
	eventually(t, "keyd got the report", func() bool { return len(e.keyd.Reports()) > 0 })
	if rep := e.keyd.Reports()[len(e.keyd.Reports())-1]; rep.Class != "success" {
		t.Errorf("passthrough stream reported %q to keyd, want success", rep.Class)
	}
}
