package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// The Anthropic Messages surface across processes, with the official
// anthropic-sdk-go client (Bearer as the SDK sends it, and x-api-key as
// Claude Code does): plain turns, count_tokens, errors in Anthropic's shape,
// failover before the first byte, and a Gemini 3 tool loop, streamed and not,
// in which the thought signature Gemini returned reaches Gemini again.
func TestAnthropicSDKRunsTurnsToolLoopsAndFailoverThroughTheGateway(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 2, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	tap := tapEvents(t, s)
	fake := s.Fake()
	tok := s.Tokens()[0]
	bearer := func(edge int) anthropic.Client {
		return anthropic.NewClient(option.WithBaseURL(s.EdgeURL(edge)+"/"), option.WithAPIKey(tok), option.WithMaxRetries(0))
	}
	xAPIKey := anthropic.NewClient(option.WithBaseURL(s.EdgeURL(1)+"/"), option.WithHeader("X-Api-Key", tok), option.WithMaxRetries(0))

	t.Run("plain turn and count_tokens", func(t *testing.T) {
		for name, c := range map[string]anthropic.Client{"bearer": bearer(0), "x-api-key": xAPIKey} {
			msg, err := c.Messages.New(ctx, anthropic.MessageNewParams{
				Model: "gemini-2.5-flash", MaxTokens: 256,
				System:   []anthropic.TextBlockParam{{Text: "Be brief."}},
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("ping " + name))},
			})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := textOf(msg); got != "echo: ping "+name || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.InputTokens == 0 {
				t.Errorf("%s: text %q stop %q usage %+v", name, got, msg.StopReason, msg.Usage)
			}
		}
		counter := bearer(1)
		n, err := counter.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
			Model:    "gemini-2.5-flash",
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count these words please"))},
		})
		if err != nil || n.InputTokens == 0 {
			t.Fatalf("count_tokens: %v %+v", err, n)
		}
	})

	t.Run("errors in Anthropic's shape", func(t *testing.T) {
		c := bearer(0)
		_, err := c.Messages.New(ctx, anthropic.MessageNewParams{
			Model: "claude-sonnet-4-6", MaxTokens: 64,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))},
		})
		var ae *anthropic.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || !strings.Contains(ae.Error(), "not_found_error") {
			t.Fatalf("claude model: %v", err)
		}
		bad := anthropic.NewClient(option.WithBaseURL(s.EdgeURL(0)+"/"), option.WithAPIKey("sk-not-a-token"), option.WithMaxRetries(0))
		_, err = bad.Messages.New(ctx, anthropic.MessageNewParams{
			Model: "gemini-2.5-flash", MaxTokens: 64,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))},
		})
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || !strings.Contains(ae.Error(), "authentication_error") {
			t.Fatalf("bad token: %v", err)
		}
	})

	t.Run("stream fails over before the first byte", func(t *testing.T) {
		// Two keys answer 503 once each. The client never retries (max
		// retries 0), so every stream below succeeds only if the gateway
		// moved to another key before its first byte.
		keys := s.Keys()
		if err := fake.SetKeys(ctx, map[string]fakegemini.Behaviour{
			keys[0]: {Status: fakegemini.Unavailable, Times: 1}, keys[1]: {Status: fakegemini.Unavailable, Times: 1},
		}); err != nil {
			t.Fatal(err)
		}
		before, _ := fake.Stats(ctx)
		c := bearer(0)
		for i := range 6 {
			stream := c.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
				Model: "gemini-2.5-flash", MaxTokens: 256,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("alpha beta gamma"))},
			})
			var msg anthropic.Message
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if got := textOf(&msg); got != "echo: alpha beta gamma" || msg.StopReason != anthropic.StopReasonEndTurn {
				t.Fatalf("stream %d: %q stop %q", i, got, msg.StopReason)
			}
		}
		after, _ := fake.Stats(ctx)
		if after.KeyHits[keys[0]] == before.KeyHits[keys[0]] || after.KeyHits[keys[1]] == before.KeyHits[keys[1]] {
			t.Fatalf("a failing key was never tried (hits %v → %v): the failover went unexercised", before.KeyHits, after.KeyHits)
		}
	})

	const model = "gemini-3-pro-preview"
	weather := anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name: "get_weather", Description: anthropic.String("Weather for a city"),
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}, Required: []string{"city"}},
	}}
	for _, streamed := range []bool{false, true} {
		name := map[bool]string{false: "tool loop", true: "streamed tool loop"}[streamed]
		t.Run(name, func(t *testing.T) {
			sig := "e2e-signature-" + strings.ReplaceAll(name, " ", "-")
			if err := fake.Script(ctx, model,
				fakegemini.Reply{Parts: []fakegemini.Part{
					fakegemini.Thought("I need the weather."),
					fakegemini.Call("get_weather", map[string]any{"city": "Oslo"}).Signed(sig),
				}},
				fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text("Sunny in Oslo.")}},
			); err != nil {
				t.Fatal(err)
			}
			c := bearer(1)
			params := anthropic.MessageNewParams{
				Model: model, MaxTokens: 4096, Tools: []anthropic.ToolUnionParam{weather},
				Thinking: anthropic.ThinkingConfigParamOfEnabled(2048),
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Oslo?"))},
			}
			turn := func() *anthropic.Message {
				if !streamed {
					msg, err := c.Messages.New(ctx, params)
					if err != nil {
						t.Fatal(err)
					}
					return msg
				}
				st := c.Messages.NewStreaming(ctx, params)
				msg := &anthropic.Message{}
				for st.Next() {
					if err := msg.Accumulate(st.Current()); err != nil {
						t.Fatal(err)
					}
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
				return msg
			}
			first := turn()
			if first.StopReason != anthropic.StopReasonToolUse {
				t.Fatalf("first turn stop %q: %+v", first.StopReason, first.Content)
			}
			var call anthropic.ContentBlockUnion
			thought := ""
			for _, b := range first.Content {
				switch b.Type {
				case "tool_use":
					call = b
				case "thinking":
					thought += b.Thinking
				}
			}
			var args struct{ City string }
			if call.Name != "get_weather" || json.Unmarshal(call.Input, &args) != nil || args.City != "Oslo" {
				t.Fatalf("tool_use %+v", call)
			}
			if thought != "I need the weather." {
				t.Errorf("thinking came back as %q", thought)
			}
			params.Messages = append(params.Messages, first.ToParam(),
				anthropic.NewUserMessage(anthropic.NewToolResultBlock(call.ID, `{"forecast":"sunny"}`, false)))
			second := turn()
			if got := textOf(second); got != "Sunny in Oslo." || second.StopReason != anthropic.StopReasonEndTurn {
				t.Fatalf("second turn %q stop %q", got, second.StopReason)
			}
			method := map[bool]string{false: "generateContent", true: "streamGenerateContent"}[streamed]
			up, ok, err := fake.Last(ctx, fakegemini.Filter{Model: model, Method: method})
			if err != nil || !ok {
				t.Fatalf("no upstream %s (%v)", method, err)
			}
			var sent struct {
				Contents []struct {
					Role  string `json:"role"`
					Parts []struct {
						FunctionCall     *struct{ Name string } `json:"functionCall"`
						FunctionResponse *struct {
							Name     string
							Response map[string]any
						} `json:"functionResponse"`
						ThoughtSignature []byte `json:"thoughtSignature"`
					} `json:"parts"`
				} `json:"contents"`
			}
			if err := json.Unmarshal(up.Body, &sent); err != nil || len(sent.Contents) != 3 {
				t.Fatalf("second upstream body: %v %s", err, up.Body)
			}
			m, u := sent.Contents[1], sent.Contents[2]
			if m.Role != "model" || len(m.Parts) == 0 || m.Parts[0].FunctionCall == nil || string(m.Parts[0].ThoughtSignature) != sig {
				t.Fatalf("the model turn sent back lost Gemini's signature %q: %s", sig, up.Body)
			}
			if u.Parts[0].FunctionResponse == nil || u.Parts[0].FunctionResponse.Name != "get_weather" || u.Parts[0].FunctionResponse.Response["forecast"] != "sunny" {
				t.Fatalf("the tool result did not become a functionResponse: %s", up.Body)
			}
		})
	}
	t.Run("stream broken after the first byte ends with an error event", func(t *testing.T) {
		// Every key breaks its stream after one element: nothing may be
		// retried once text went out, and the SDK must see an error, not a
		// clean end.
		keys := s.Keys()
		broken := map[string]fakegemini.Behaviour{}
		for _, k := range keys {
			broken[k] = fakegemini.Behaviour{FailAfter: 1, StreamError: fakegemini.Unavailable}
		}
		if err := fake.SetKeys(ctx, broken); err != nil {
			t.Fatal(err)
		}
		defer func() {
			for _, k := range keys {
				broken[k] = fakegemini.Behaviour{}
			}
			_ = fake.SetKeys(ctx, broken)
		}()
		c := bearer(1)
		stream := c.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
			Model: "gemini-2.5-flash", MaxTokens: 256,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("one two three four five six"))},
		})
		var msg anthropic.Message
		for stream.Next() {
			_ = msg.Accumulate(stream.Current())
		}
		err := stream.Err()
		if err == nil || !strings.Contains(err.Error(), "overloaded_error") {
			t.Fatalf("broken stream ended with %v, want an overloaded_error", err)
		}
		if msg.ID == "" || len(msg.Content) == 0 || strings.HasSuffix(textOf(&msg), "six") {
			t.Fatalf("what came before the break: id %q content %+v", msg.ID, msg.Content)
		}
	})
	noSecrets(t, s, tap)
}

func textOf(m *anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}
