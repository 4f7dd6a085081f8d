package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// The OpenAI Responses API across processes, with the official openai-go client on
// both edges: a non-stream answer, a streamed tool loop on a Gemini 3 model whose
// thought signature must come back to Gemini, failover before the first byte when
// keys answer 429, and GET /v1/models/{id}. Upstream sees only configured keys.
func TestResponsesAPIWithOpenAIClientAcrossEdges(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 2, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	tap := tapEvents(t, s)
	client := func(i int) *openai.Client {
		c := openai.NewClient(option.WithBaseURL(s.EdgeURL(i)+"/v1/"), option.WithAPIKey(s.Tokens()[0]), option.WithMaxRetries(0))
		return &c
	}

	t.Run("non-stream", func(t *testing.T) {
		res, err := client(0).Responses.New(ctx, responses.ResponseNewParams{
			Model: "gemini-2.5-flash", Instructions: openai.String("Be brief."),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("ping responses")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.OutputText() != "echo: ping responses" || res.Status != "completed" {
			t.Errorf("response %s", res.RawJSON())
		}
		last, ok, err := s.Fake().Last(ctx, fakegemini.Filter{Method: "generateContent"})
		if err != nil || !ok {
			t.Fatalf("upstream saw no generateContent (%v)", err)
		}
		if !contains(s.Keys(), last.Key) || strings.Contains(string(last.Body), s.Tokens()[0]) {
			t.Errorf("upstream call did not carry a configured key, or carried the client token")
		}
	})

	t.Run("streamed tool loop keeps the thought signature", func(t *testing.T) {
		if err := s.Fake().Script(ctx, "gemini-3-flash-preview",
			fakegemini.Reply{Chunks: [][]fakegemini.Part{
				{fakegemini.Thought("Need the weather.")},
				{fakegemini.Call("get_weather", map[string]any{"city": "Oslo"}).Signed("e2e-sig-oslo")},
			}},
			fakegemini.Reply{Chunks: [][]fakegemini.Part{{fakegemini.Text("4 degrees ")}, {fakegemini.Text("in Oslo.")}}},
		); err != nil {
			t.Fatal(err)
		}
		tool := responses.ToolUnionParam{OfFunction: &responses.FunctionToolParam{Name: "get_weather", Strict: openai.Bool(true),
			Parameters: map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}}}}
		input := []responses.ResponseInputItemUnionParam{responses.ResponseInputItemParamOfMessage("Weather in Oslo?", responses.EasyInputMessageRoleUser)}
		params := responses.ResponseNewParams{Model: "gemini-3-flash-preview", Tools: []responses.ToolUnionParam{tool}, Store: openai.Bool(false),
			Input: responses.ResponseNewParamsInputUnion{OfInputItemList: input}}
		// Turn one on edge 0, as Codex does: history from output_item.done items.
		stream := client(0).Responses.NewStreaming(ctx, params)
		var done []responses.ResponseOutputItemUnion
		completed := false
		for stream.Next() {
			switch ev := stream.Current(); ev.Type {
			case "response.output_item.done":
				done = append(done, ev.Item)
			case "response.completed":
				completed = true
			}
		}
		if err := stream.Err(); err != nil || !completed {
			t.Fatalf("turn one: completed %v, err %v", completed, err)
		}
		var call responses.ResponseFunctionToolCall
		for _, it := range done {
			if it.Type == "function_call" {
				call = it.AsFunctionCall()
			}
		}
		if call.Name != "get_weather" || call.Arguments != `{"city":"Oslo"}` {
			t.Fatalf("output items %+v", done)
		}
		// Turn two on the other edge: a stateless replay of the call and its output.
		cp := call.ToParam()
		out := responses.ResponseInputItemParamOfFunctionCallOutput("4 degrees")
		out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
		params.Input.OfInputItemList = append(input, responses.ResponseInputItemUnionParam{OfFunctionCall: &cp}, out)
		stream = client(1).Responses.NewStreaming(ctx, params)
		var text strings.Builder
		for stream.Next() {
			if ev := stream.Current(); ev.Type == "response.output_text.delta" {
				text.WriteString(ev.Delta)
			}
		}
		if err := stream.Err(); err != nil || text.String() != "4 degrees in Oslo." {
			t.Fatalf("turn two: %q, %v", text.String(), err)
		}
		last, ok, err := s.Fake().Last(ctx, fakegemini.Filter{Method: "streamGenerateContent"})
		if err != nil || !ok {
			t.Fatalf("no upstream stream (%v)", err)
		}
		var body struct {
			Contents []struct {
				Role  string `json:"role"`
				Parts []struct {
					FunctionCall     *struct{ Name string } `json:"functionCall"`
					FunctionResponse *struct{ Name string } `json:"functionResponse"`
					ThoughtSignature string                 `json:"thoughtSignature"`
				} `json:"parts"`
			} `json:"contents"`
		}
		if err := json.Unmarshal(last.Body, &body); err != nil || len(body.Contents) != 3 {
			t.Fatalf("upstream body %s (%v)", last.Body, err)
		}
		sig, _ := base64.StdEncoding.DecodeString(body.Contents[1].Parts[0].ThoughtSignature)
		if body.Contents[1].Parts[0].FunctionCall == nil || string(sig) != "e2e-sig-oslo" {
			t.Errorf("the model turn did not carry the signature back: %s", last.Body)
		}
		if fr := body.Contents[2].Parts[0].FunctionResponse; fr == nil || fr.Name != "get_weather" {
			t.Errorf("function response %s", last.Body)
		}
	})

	t.Run("failover before the first byte", func(t *testing.T) {
		keys := s.Keys()
		limited := map[string]fakegemini.Behaviour{}
		for _, k := range keys[:len(keys)-1] {
			limited[k] = fakegemini.Behaviour{Status: fakegemini.RateLimited}
		}
		if err := s.Fake().SetKeys(ctx, limited); err != nil {
			t.Fatal(err)
		}
		defer func() {
			ok := map[string]fakegemini.Behaviour{}
			for k := range limited {
				ok[k] = fakegemini.Behaviour{}
			}
			_ = s.Fake().SetKeys(ctx, ok)
		}()
		before, err := s.Fake().Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tried := func(st fakegemini.Stats) int {
			n := 0
			for k := range limited {
				n += st.KeyHits[k] - before.KeyHits[k]
			}
			return n
		}
		for i := 0; i < 6; i++ {
			stream := client(i%2).Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gemini-2.5-flash",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("a b c")}})
			var text strings.Builder
			for stream.Next() {
				if ev := stream.Current(); ev.Type == "response.output_text.delta" {
					text.WriteString(ev.Delta)
				}
			}
			if err := stream.Err(); err != nil || text.String() != "echo: a b c" {
				t.Fatalf("stream %d: %q, %v", i, text.String(), err)
			}
			st, err := s.Fake().Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tried(st) > 0 {
				return // a 429 key was tried first and the client still got one clean stream
			}
		}
		t.Error("no request was ever sent to a rate-limited key first; failover not exercised")
	})

	t.Run("models get", func(t *testing.T) {
		m, err := client(1).Models.Get(ctx, "gemini-2.5-flash")
		if err != nil || m.ID != "gemini-2.5-flash" || m.Object != "model" || m.OwnedBy != "google" {
			t.Fatalf("model %+v, %v", m, err)
		}
		_, err = client(1).Models.Get(ctx, "no-such-model")
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
			t.Errorf("unknown model: %v", err)
		}
	})
	noSecrets(t, s, tap)
}
