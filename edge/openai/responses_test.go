package openai_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

var rsWeatherTool = responses.ToolUnionParam{OfFunction: &responses.FunctionToolParam{
	Name:        "get_weather",
	Description: oai.String("Weather by city"),
	Strict:      oai.Bool(true),
	Parameters: map[string]any{
		"type":                 "object",
		"properties":           map[string]any{"city": map[string]any{"type": "string"}},
		"required":             []string{"city"},
		"additionalProperties": false,
	},
}}

func rsInput(items ...responses.ResponseInputItemUnionParam) responses.ResponseNewParamsInputUnion {
	return responses.ResponseNewParamsInputUnion{OfInputItemList: items}
}

// The non-stream answer is a response object the SDK reads: output text,
// status, usage with reasoning tokens; instructions reach Gemini as the
// system instruction. Thoughts stay out of the output unless the client
// asked for a reasoning summary.
func TestResponsesNonStreamAnswersWithOutputText(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Thought("Private musing."), fakegemini.Text("Hello there.")},
		Usage: &fakegemini.UsageMetadata{PromptTokenCount: 12, CandidatesTokenCount: 3, ThoughtsTokenCount: 20, TotalTokenCount: 35}})
	cl := e.client("/v1", token)
	res, err := cl.Responses.New(ctxTimeout(t), responses.ResponseNewParams{
		Model:        "gemini-2.5-flash",
		Instructions: oai.String("Be brief."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: oai.String("Say hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputText() != "Hello there." || res.Status != "completed" || !strings.HasPrefix(res.ID, "resp_") || len(res.Output) != 1 {
		t.Fatalf("response %s", res.RawJSON())
	}
	if res.Usage.InputTokens != 12 || res.Usage.OutputTokens != 23 || res.Usage.OutputTokensDetails.ReasoningTokens != 20 || res.Usage.TotalTokens != 35 {
		t.Errorf("usage %+v", res.Usage)
	}
	up := e.lastBody("generateContent")
	if dig(up, "systemInstruction", "parts", 0, "text") != "Be brief." || dig(up, "contents", 0, "parts", 0, "text") != "Say hello" {
		t.Errorf("upstream body %v", up)
	}
}

// A stream carries the Responses events in their documented order with
// monotonic sequence numbers, and ends with response.completed holding the
// whole output; reasoning summaries come when asked, and the effort becomes
// a thinking budget.
func TestResponsesStreamEmitsLifecycleEventsInOrder(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Chunks: [][]fakegemini.Part{
		{fakegemini.Thought("Greeting needed.")},
		{fakegemini.Text("Hel")},
		{fakegemini.Text("lo")},
	}, Usage: &fakegemini.UsageMetadata{PromptTokenCount: 5, CandidatesTokenCount: 2, ThoughtsTokenCount: 7, TotalTokenCount: 14}})
	cl := e.client("/v1", token)
	stream := cl.Responses.NewStreaming(ctxTimeout(t), responses.ResponseNewParams{
		Model:     "gemini-2.5-flash",
		Input:     responses.ResponseNewParamsInputUnion{OfString: oai.String("Say hello")},
		Reasoning: shared.ReasoningParam{Effort: shared.ReasoningEffortLow, Summary: shared.ReasoningSummaryAuto},
	})
	var types []string
	var text, summary strings.Builder
	var completed responses.Response
	seq := int64(-1)
	for stream.Next() {
		ev := stream.Current()
		if ev.SequenceNumber != seq+1 {
			t.Errorf("sequence_number %d after %d", ev.SequenceNumber, seq)
		}
		seq = ev.SequenceNumber
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.reasoning_summary_text.delta":
			summary.WriteString(ev.Delta)
		case "response.completed":
			completed = ev.Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"response.created", "response.in_progress",
		"response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
		"response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.completed",
	}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("events\n got %v\nwant %v", types, want)
	}
	if text.String() != "Hello" || summary.String() != "Greeting needed." {
		t.Errorf("text %q, summary %q", text.String(), summary.String())
	}
	if completed.Status != "completed" || completed.OutputText() != "Hello" || len(completed.Output) != 2 || completed.Output[0].Type != "reasoning" {
		t.Errorf("completed response %s", completed.RawJSON())
	}
	if completed.Usage.OutputTokensDetails.ReasoningTokens != 7 || completed.Usage.OutputTokens != 9 {
		t.Errorf("usage %+v", completed.Usage)
	}
	tc := dig(e.lastBody("streamGenerateContent"), "generationConfig", "thinkingConfig")
	if dig(tc, "thinkingBudget") != float64(1024) || dig(tc, "includeThoughts") != true {
		t.Errorf("thinkingConfig %v", tc)
	}
}

// A streamed tool loop on a Gemini 3 model: the function_call item's
// call_id carries the thought signature, the client replays the item with
// its function_call_output, and Gemini gets the signature back on the call.
func TestResponsesToolLoopRoundTripsThoughtSignature(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-3-pro-preview",
		fakegemini.Reply{Chunks: [][]fakegemini.Part{{fakegemini.Call("get_weather", map[string]any{"city": "Oslo"}).Signed("sig-for-oslo")}}},
		fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text("It is 4 degrees in Oslo.")}},
	)
	cl := e.client("/v1", token)
	ctx := ctxTimeout(t)
	input := []responses.ResponseInputItemUnionParam{responses.ResponseInputItemParamOfMessage("Weather in Oslo?", responses.EasyInputMessageRoleUser)}
	params := responses.ResponseNewParams{Model: "gemini-3-pro-preview", Input: rsInput(input...), Tools: []responses.ToolUnionParam{rsWeatherTool},
		Store: oai.Bool(false)}
	stream := cl.Responses.NewStreaming(ctx, params)
	var calls []responses.ResponseFunctionToolCall
	var argDeltas strings.Builder
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "response.function_call_arguments.delta":
			argDeltas.WriteString(ev.Delta)
		case "response.output_item.done":
			if ev.Item.Type == "function_call" {
				calls = append(calls, ev.Item.AsFunctionCall())
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].Name != "get_weather" || calls[0].Arguments != `{"city":"Oslo"}` || argDeltas.String() != calls[0].Arguments {
		t.Fatalf("calls %+v, argument deltas %q", calls, argDeltas.String())
	}
	call := calls[0].ToParam()
	out := responses.ResponseInputItemParamOfFunctionCallOutput(`{"tempC":4}`)
	out.OfFunctionCallOutput.CallID = oai.String(calls[0].CallID)
	params.Input = rsInput(append(input, responses.ResponseInputItemUnionParam{OfFunctionCall: &call}, out)...)
	final, err := cl.Responses.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if final.OutputText() != "It is 4 degrees in Oslo." {
		t.Errorf("final answer %s", final.RawJSON())
	}
	up := e.lastBody("generateContent")
	model := dig(up, "contents", 1)
	sig, _ := base64.StdEncoding.DecodeString(dig(model, "parts", 0, "thoughtSignature").(string))
	if dig(model, "role") != "model" || dig(model, "parts", 0, "functionCall", "name") != "get_weather" || string(sig) != "sig-for-oslo" {
		t.Errorf("model turn after the round trip: %v", model)
	}
	if r := dig(up, "contents", 2, "parts", 0, "functionResponse"); dig(r, "name") != "get_weather" || dig(r, "response", "tempC") != float64(4) {
		t.Errorf("function response %v", r)
	}
}

// A 429 on the first key is retried on another before the first byte; the
// client sees one clean stream.
func TestResponsesStreamFailsOverBeforeFirstByte(t *testing.T) {
	limited, good := "AIzaSyLIMITED-key-00000000000000000001", "AIzaSyGOOD-key-0000000000000000000002"
	e := newEnv(t, envOptions{keys: []string{limited, good}})
	e.fake.SetKey(limited, fakegemini.Behaviour{Status: fakegemini.RateLimited})
	cl := e.client("/v1", token)
	var text strings.Builder
	for i := 0; i < 2; i++ { // whichever key keyd picks first, both get tried
		stream := cl.Responses.NewStreaming(ctxTimeout(t), responses.ResponseNewParams{Model: "gemini-2.5-flash",
			Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("one two")}})
		text.Reset()
		for stream.Next() {
			if ev := stream.Current(); ev.Type == "response.output_text.delta" {
				text.WriteString(ev.Delta)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if text.String() != "echo: one two" {
			t.Errorf("streamed %q", text.String())
		}
	}
	if e.fake.Hits(limited) == 0 || e.fake.Hits(good) < 2 {
		t.Errorf("hits: limited %d, good %d", e.fake.Hits(limited), e.fake.Hits(good))
	}
}

// A stream that breaks after its first byte ends with response.failed
// carrying the upstream error; nothing is retried.
func TestResponsesStreamBrokenMidwayEndsWithResponseFailed(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{
		Chunks:    [][]fakegemini.Part{{fakegemini.Text("one ")}, {fakegemini.Text("two ")}, {fakegemini.Text("three")}},
		Behaviour: &fakegemini.Behaviour{FailAfter: 2, StreamError: fakegemini.RateLimited},
	})
	cl := e.client("/v1", token)
	stream := cl.Responses.NewStreaming(ctxTimeout(t), responses.ResponseNewParams{Model: "gemini-2.5-flash",
		Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("count")}})
	var text strings.Builder
	var last responses.ResponseStreamEventUnion
	for stream.Next() {
		last = stream.Current()
		if last.Type == "response.output_text.delta" {
			text.WriteString(last.Delta)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if last.Type != "response.failed" || last.Response.Status != "failed" || last.Response.Error.Code != "rate_limit_exceeded" {
		t.Fatalf("last event %s", last.RawJSON())
	}
	if text.String() != "one two " {
		t.Errorf("text before the failure %q", text.String())
	}
	if n := e.fake.Stats().MethodHits["streamGenerateContent"]; n != 1 {
		t.Errorf("a started stream must not be retried: %d upstream streams", n)
	}
}

// Bad requests get a 400 in OpenAI's shape naming the field, and reach no
// upstream; upstream errors keep their status.
func TestResponsesErrorsAreTruthful(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/v1", token)
	for _, tc := range []struct {
		name  string
		p     responses.ResponseNewParams
		param string
	}{
		{"previous_response_id", responses.ResponseNewParams{Model: "gemini-2.5-flash", PreviousResponseID: oai.String("resp_x"),
			Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")}}, "previous_response_id"},
		{"store", responses.ResponseNewParams{Model: "gemini-2.5-flash", Store: oai.Bool(true),
			Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")}}, "store"},
		{"orphan output", responses.ResponseNewParams{Model: "gemini-2.5-flash", Input: rsInput(func() responses.ResponseInputItemUnionParam {
			o := responses.ResponseInputItemParamOfFunctionCallOutput("x")
			o.OfFunctionCallOutput.CallID = oai.String("call_nowhere")
			return o
		}())}, "input[0].call_id"},
		{"no model", responses.ResponseNewParams{Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")}}, "model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cl.Responses.New(ctxTimeout(t), tc.p)
			var apiErr *oai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != tc.param || apiErr.Type != "invalid_request_error" {
				t.Fatalf("want 400 naming %s, got %v", tc.param, err)
			}
		})
	}
	if n := e.fake.Stats().Total; n != 0 {
		t.Errorf("bad requests reached upstream %d times", n)
	}
	res := e.postRaw("/v1/responses", `{"model":"gemini-2.5-flash","input":[{"role":"user","content":[{"type":"input_text","text":"x"}]}`)
	if body := readAll(t, res); res.StatusCode != 400 || !strings.Contains(body, `"invalid_request_error"`) {
		t.Errorf("truncated JSON: %d %s", res.StatusCode, body)
	}
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Fail: fakegemini.BadRequest})
	_, err := cl.Responses.New(ctxTimeout(t), responses.ResponseNewParams{Model: "gemini-2.5-flash", Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")}})
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "invalid_value" {
		t.Errorf("upstream 400: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/responses/resp_abc", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, got); got.StatusCode != 404 || !strings.Contains(body, "stores no responses") {
		t.Errorf("GET a response: %d %s", got.StatusCode, body)
	}
}

// FAKE_STREAM_ENABLED gives a Responses client the same events from one
// non-stream upstream call.
func TestResponsesFakeStreamSendsOneAnswer(t *testing.T) {
	e := newEnv(t, envOptions{settings: func(s *config.Settings) { s.FakeStreamEnabled = true }})
	cl := e.client("/hf/v1", token)
	stream := cl.Responses.NewStreaming(ctxTimeout(t), responses.ResponseNewParams{Model: "gemini-2.5-flash",
		Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hello")}})
	var done responses.Response
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.completed" {
			done = ev.Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if done.OutputText() != "echo: hello" {
		t.Errorf("completed %s", done.RawJSON())
	}
	if e.fake.Stats().MethodHits["streamGenerateContent"] != 0 {
		t.Error("fake stream must call the non-stream method upstream")
	}
}

// What openai-go actually sends (typed params, not hand-written JSON)
// reaches Gemini as meant: input parts, text.format json_schema, a named
// tool_choice and reasoning effort on a Gemini 3 model.
func TestResponsesSDKParamsReachGeminiAsMeant(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-3-flash-preview", fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text(`{"city":"Oslo"}`)}})
	cl := e.client("/v1", token)
	content := responses.ResponseInputMessageContentListParam{
		{OfInputText: &responses.ResponseInputTextParam{Text: "Which city is this?"}},
		{OfInputImage: &responses.ResponseInputImageParam{ImageURL: oai.String("data:image/png;base64,iVBORw0KGgo="), Detail: responses.ResponseInputImageDetailAuto}},
		{OfInputFile: &responses.ResponseInputFileParam{FileData: oai.String("data:application/pdf;base64,JVBERi0x"), Filename: oai.String("guide.pdf")}},
	}
	res, err := cl.Responses.New(ctxTimeout(t), responses.ResponseNewParams{
		Model:      "gemini-3-flash-preview",
		Input:      rsInput(responses.ResponseInputItemParamOfMessage(content, responses.EasyInputMessageRoleUser)),
		Tools:      []responses.ToolUnionParam{rsWeatherTool},
		ToolChoice: responses.ResponseNewParamsToolChoiceUnion{OfFunctionTool: &responses.ToolChoiceFunctionParam{Name: "get_weather"}},
		Text: responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigUnionParam{OfJSONSchema: &responses.ResponseFormatTextJSONSchemaConfigParam{
			Name: "city", Schema: map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
		}}},
		Reasoning: shared.ReasoningParam{Effort: shared.ReasoningEffortMinimal},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputText() != `{"city":"Oslo"}` {
		t.Errorf("answer %s", res.RawJSON())
	}
	up := e.lastBody("generateContent")
	parts := dig(up, "contents", 0, "parts")
	if dig(parts, 1, "inlineData", "mimeType") != "image/png" || dig(parts, 2, "inlineData", "mimeType") != "application/pdf" {
		t.Errorf("parts %v", parts)
	}
	gc := dig(up, "generationConfig")
	if dig(gc, "responseMimeType") != "application/json" || dig(gc, "responseJsonSchema", "properties", "city", "type") != "string" {
		t.Errorf("generationConfig %v", gc)
	}
	if dig(gc, "thinkingConfig", "thinkingLevel") != "MINIMAL" || dig(gc, "thinkingConfig", "thinkingBudget") != nil {
		t.Errorf("thinkingConfig %v", dig(gc, "thinkingConfig"))
	}
	fcc := dig(up, "toolConfig", "functionCallingConfig")
	if dig(fcc, "mode") != "ANY" || dig(fcc, "allowedFunctionNames", 0) != "get_weather" {
		t.Errorf("functionCallingConfig %v", fcc)
	}
	if dig(up, "tools", 0, "functionDeclarations", 0, "name") != "get_weather" {
		t.Errorf("tools %v", dig(up, "tools"))
	}
}
