package convert

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gemini-balance-go/edge/models"
)

// TestMessagesRequestGolden pins Anthropic Messages → Gemini for the request
// corpus (count_tokens.json goes through the count_tokens conversion and
// also pins the :countTokens body).
func TestMessagesRequestGolden(t *testing.T) {
	requestGolden(t, "testdata/anthropic/request/*.json", func(t *testing.T, f string, body []byte) any {
		count := strings.Contains(f, "count_tokens")
		plan, err := pipeline(ParseMessagesRequest, func(ctx context.Context, req *MessagesRequest, opt Options) (*MessagesPlan, error) {
			return MessagesToGemini(ctx, req, opt, count)
		}, Options{Settings: testSettings(), Fetcher: &fakeFetcher{}})(body)
		if err != nil {
			t.Fatal(err)
		}
		out := struct {
			Model       models.Model            `json:"model"`
			Stream      bool                    `json:"stream"`
			Drops       []Drop                  `json:"drops"`
			Body        *GenerateContentRequest `json:"body"`
			CountTokens json.RawMessage         `json:"count_tokens_body,omitempty"`
		}{Model: plan.Model, Stream: plan.Stream, Drops: plan.Drops, Body: plan.Body}
		if count {
			if out.CountTokens, err = plan.CountTokensBody(); err != nil {
				t.Fatal(err)
			}
		}
		return out
	})
}

// TestMessagesResponseGolden pins Gemini → Anthropic (non-stream).
func TestMessagesResponseGolden(t *testing.T) {
	responseGolden(t, "testdata/anthropic/response/*.json", func(resp *GenerateContentResponse) any {
		return MessagesFromGemini(resp, MessagesMeta{ID: "msg_test", Model: "gemini-3-pro-preview", NewStem: stems()})
	})
}

// TestMessagesStreamGolden pins the stream converter: each .jsonl line is
// one Gemini SSE chunk; the golden file is the SSE the client receives.
func TestMessagesStreamGolden(t *testing.T) {
	streamGolden(t, "testdata/anthropic/stream/*.jsonl", func() feeder {
		return NewMessagesStream(MessagesMeta{ID: "msg_test", Model: "gemini-3-pro-preview", NewStem: stems()})
	}, checkAnthropicSSE)
}

// checkAnthropicSSE checks every event is "event: <name>" then a data line
// whose JSON type is that name, and that block indexes open and close in order.
func checkAnthropicSSE(t *testing.T, out []byte) {
	t.Helper()
	open := -1
	next := 0
	for _, ev := range strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n") {
		name, rest, ok := strings.Cut(ev, "\n")
		data, ok2 := strings.CutPrefix(rest, "data: ")
		if !ok || !ok2 || !strings.HasPrefix(name, "event: ") {
			t.Fatalf("not an Anthropic SSE event: %q", ev)
		}
		var v struct {
			Type  string `json:"type"`
			Index *int   `json:"index"`
		}
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatalf("invalid JSON in %q: %v", ev, err)
		}
		if v.Type != strings.TrimPrefix(name, "event: ") {
			t.Fatalf("event %s carries type %s", name, v.Type)
		}
		switch v.Type {
		case "content_block_start":
			if open >= 0 || *v.Index != next {
				t.Fatalf("block %d starts while %d is open (next %d)", *v.Index, open, next)
			}
			open = *v.Index
		case "content_block_delta":
			if *v.Index != open {
				t.Fatalf("delta for block %d while %d is open", *v.Index, open)
			}
		case "content_block_stop":
			if *v.Index != open {
				t.Fatalf("stop for block %d while %d is open", *v.Index, open)
			}
			open, next = -1, next+1
		}
	}
	if open >= 0 {
		t.Fatalf("block %d never stopped", open)
	}
}

// A signature Gemini returned must reach Gemini again on the next turn,
// whichever carrier the client kept: the thinking block, or only the
// tool_use id (clients that drop thinking blocks).
func TestThoughtSignatureRoundTripsThroughAnthropicHistory(t *testing.T) {
	resp := GenerateContentResponse{Candidates: []Candidate{{Content: &Content{Role: "model", Parts: []Part{
		{FunctionCall: &FunctionCall{Name: "Read", Args: json.RawMessage(`{"f":"a"}`)}, ThoughtSignature: "c2lnLUE="},
	}}, FinishReason: "STOP"}}}
	msg := MessagesFromGemini(&resp, MessagesMeta{ID: "msg_1", Model: "gemini-3-pro-preview"})
	if msg.StopReason != "tool_use" || len(msg.Content) != 2 || msg.Content[0].Type != "thinking" || msg.Content[1].Type != "tool_use" {
		t.Fatalf("answer = %+v", msg)
	}
	full, _ := json.Marshal(msg.Content)
	var onlyToolUse []MessageBlock
	onlyToolUse = append(onlyToolUse, msg.Content[1])
	noThinking, _ := json.Marshal(onlyToolUse)
	for name, assistant := range map[string][]byte{"thinking block": full, "tool_use id": noThinking} {
		t.Run(name, func(t *testing.T) {
			body := `{"model":"gemini-3-pro-preview","max_tokens":100,"messages":[{"role":"user","content":"go"},` +
				`{"role":"assistant","content":` + string(assistant) + `},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + msg.Content[1].ID + `","content":"ok"}]}]}`
			req, err := ParseMessagesRequest([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := MessagesToGemini(context.Background(), req, Options{Settings: testSettings()}, false)
			if err != nil {
				t.Fatal(err)
			}
			call := plan.Body.Contents[1].Parts[0]
			if call.FunctionCall == nil || call.ThoughtSignature != "c2lnLUE=" {
				t.Fatalf("model turn sent upstream = %+v, want the functionCall with signature c2lnLUE=", plan.Body.Contents[1])
			}
			if fr := plan.Body.Contents[2].Parts[0].FunctionResponse; fr == nil || fr.Name != "Read" {
				t.Fatalf("tool_result did not become a functionResponse named Read: %+v", plan.Body.Contents[2])
			}
		})
	}
}

func TestMessagesRequestErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`, "model"},
		{`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{`{"model":"gemini-2.5-flash","max_tokens":10,"messages":[]}`, "messages"},
		{`{"model":"gemini-2.5-flash","max_tokens":10,"messages":[{"role":"system","content":"x"}]}`, "messages[0].role"},
		{`{"model":"gemini-2.5-flash","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"nope"}]}]}`, "messages[0].content[0].tool_use_id"},
		{`{"model":"gemini-2.5-flash","max_tokens":10,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"tool","name":"f"}}`, "tool_choice.name"},
		{`{"model":"gemini-2.5-flash","max_tokens":2000,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":100}}`, "thinking.budget_tokens"},
		{`{"model":"gemini-2.5-flash","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"AA"}}]}]}`, "messages[0].content[0].source.media_type"},
		{`{"model":"gemini-2.5-flash","max_tokens":10,"messages":[{"role":"user","content":7}]}`, "messages[0].content"},
	} {
		req, err := ParseMessagesRequest([]byte(tc.body))
		if err == nil {
			_, err = MessagesToGemini(context.Background(), req, Options{Settings: testSettings()}, false)
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: error %v, want one naming %s", tc.body, err, tc.field)
		}
	}
}

// FuzzMessagesToGemini: arbitrary bodies never panic, a rejected body names
// the field at fault, an accepted one yields valid JSON for Gemini.
// Explore with go test -run '^$' -fuzz FuzzMessagesToGemini ./convert
func FuzzMessagesToGemini(f *testing.F) {
	requestSeeds(f, "testdata/anthropic/request/*.json",
		`{}`, `null`, `[]`, `{"model":"gemini-2.5-flash","max_tokens":1,"messages":[null]}`,
		`{"model":"gemini-2.5-flash","max_tokens":1,"messages":[{"role":"user","content":[null]}]}`,
		`{"model":"gemini-2.5-flash","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"toolu_a_gs1!!","name":"f","input":[1]}]}]}`,
		`{"model":"gemini-2.5-flash","max_tokens":1,"system":[{"type":"image"}],"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"gemini-3-pro-preview","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":[{"type":"image","source":null}]}]}]}`,
		`{"model":"gemini-2.5-flash","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{"properties":{"a":{"anyOf":[1]}}}}]}`,
	)
	conv := pipeline(ParseMessagesRequest, messagesToGemini, Options{Settings: testSettings(), Fetcher: &fakeFetcher{}})
	fuzzRequest(f, conv, messagesBody, func(t *testing.T, plan *MessagesPlan) {
		if _, merr := plan.CountTokensBody(); merr != nil {
			t.Fatalf("accepted body gives an invalid countTokens body: %v", merr)
		}
	})
}

// FuzzMessagesStreamFeed: arbitrary chunks never panic, and what the stream
// converter emits is always well-formed Anthropic SSE with balanced blocks.
func FuzzMessagesStreamFeed(f *testing.F) {
	for _, line := range chunkSeeds("testdata/anthropic/stream/*.jsonl") {
		f.Add(line, line)
	}
	f.Add([]byte(`{"error":{"code":500}}`), []byte(`{}`))
	f.Add([]byte(`{"candidates":[{"content":{"parts":[{"functionCall":{"name":"\u0000","args":null},"thoughtSignature":"%%"}]}}]}`), []byte(`{"candidates":[]}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s := NewMessagesStream(MessagesMeta{ID: "msg_f", Model: "m"})
		out, _ := s.Feed(nil, a)
		out, _ = s.Feed(out, b)
		out = s.Finish(out)
		checkAnthropicSSE(t, out)
	})
}

// Conversion cost of the Messages surface: a Gemini 3 tool-loop request
// (parse + convert + encode) and one streamed text chunk into a reused
// buffer. Run: go test -run '^$' -bench Messages -benchmem ./convert
func BenchmarkMessagesRequest(b *testing.B) {
	benchRequest(b, "testdata/anthropic/request/tool_loop_gemini3.json", pipeline(ParseMessagesRequest, messagesToGemini, Options{Settings: testSettings()}), messagesBody)
}

func BenchmarkMessagesStreamChunk(b *testing.B) {
	benchChunk(b, NewMessagesStream(MessagesMeta{ID: "msg_b", Model: "gemini-2.5-flash"}))
}
