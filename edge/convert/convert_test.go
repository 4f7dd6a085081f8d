package convert

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func convertBody(t *testing.T, body string) (*ChatPlan, error) {
	t.Helper()
	req, err := ParseChatRequest([]byte(body))
	if err != nil {
		return nil, err
	}
	return ChatToGemini(context.Background(), req, Options{Settings: testSettings(), Fetcher: &fakeFetcher{}})
}

func TestBadRequestNamesTheField(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"not JSON", `{"model":`, "body"},
		{"model missing", `{"messages":[{"role":"user","content":"hi"}]}`, "model"},
		{"no messages", `{"model":"gemini-2.5-flash","messages":[]}`, "messages"},
		{"messages wrong type", `{"model":"gemini-2.5-flash","messages":"hi"}`, "messages"},
		{"unknown role", `{"model":"gemini-2.5-flash","messages":[{"role":"robot","content":"hi"}]}`, "messages[0].role"},
		{"content a number", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":5}]}`, "messages[0].content"},
		{"unknown part type", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"hologram"}]}]}`, "messages[0].content[0].type"},
		{"bad data url", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"ftp image", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image fetch fails", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/missing.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"audio format", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"midi"}}]}]}`, "messages[0].content[0].input_audio.format"},
		{"arguments not JSON", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"unknown tool_call_id", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"1"}]}`, "messages[1].tool_call_id"},
		{"bad tool_choice", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}`, "tool_choice"},
		{"tool_choice undeclared", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, "tool_choice.function.name"},
		{"schema not an object", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":[1]}}]}`, "tools[0].function.parameters"},
		{"response_format type", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}`, "response_format.type"},
		{"json_schema missing", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}}`, "response_format.json_schema.schema"},
		{"n zero", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"n":0}`, "n"},
		{"max_tokens negative", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"max_tokens":-5}`, "max_tokens"},
		{"stop a number", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"stop":7}`, "stop"},
		{"temperature a string", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"temperature":"hot"}`, "temperature"},
		{"reasoning_effort", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"reasoning_effort":"extreme"}`, "reasoning_effort"},
		{"search not offered", `{"model":"gemini-2.0-flash-search","messages":[{"role":"user","content":"x"}]}`, "model"},
		{"filtered model", `{"model":"chat-bison-001","messages":[{"role":"user","content":"x"}]}`, "model"},
		{"only system", `{"model":"gemini-2.5-flash","messages":[{"role":"system","content":"be nice"}]}`, "messages"},
		{"modalities", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"modalities":["smell"]}`, "modalities[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := convertBody(t, tc.body)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want a *FieldError, got %v", err)
			}
			if fe.Field != tc.field {
				t.Errorf("field = %q, want %q (%v)", fe.Field, tc.field, fe)
			}
		})
	}
}

func TestToolCallIDCarriesThoughtSignature(t *testing.T) {
	for _, sig := range []string{"CikBcsjafF+/9w==", "AY89a1b2", "skip_thought_signature_validator", ""} {
		id := EncodeToolCallID("abc123", sig)
		if !strings.HasPrefix(id, "call_abc123") {
			t.Errorf("id %q lost its prefix", id)
		}
		if got := DecodeToolCallID(id); got != sig {
			t.Errorf("signature %q came back as %q (id %q)", sig, got, id)
		}
	}
	if DecodeToolCallID("call_plain") != "" || DecodeToolCallID("toolu_01.") != "" {
		t.Error("an id without a signature must decode to none")
	}
}

// A Gemini 3 turn with parallel calls goes out as OpenAI tool_calls and comes
// back in the client's follow-up with the signature on the same call.
func TestThoughtSignatureSurvivesRoundTrip(t *testing.T) {
	var resp GenerateContentResponse
	_ = json.Unmarshal([]byte(`{"candidates":[{"content":{"role":"model","parts":[
		{"functionCall":{"name":"a","args":{"x":1}},"thoughtSignature":"c2lnbmF0dXJlLW9uZQ=="},
		{"functionCall":{"name":"b","args":{}}}]},"finishReason":"STOP"}]}`), &resp)
	out := FromGemini(&resp, ResponseMeta{ID: "chatcmpl-1", Model: "gemini-3-pro-preview"})
	calls := out.Choices[0].Message.ToolCalls
	if len(calls) != 2 || out.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("calls %+v finish %q", calls, out.Choices[0].FinishReason)
	}
	follow := map[string]any{
		"model": "gemini-3-pro-preview",
		"messages": []any{
			map[string]any{"role": "user", "content": "go"},
			map[string]any{"role": "assistant", "content": nil, "tool_calls": calls},
			map[string]any{"role": "tool", "tool_call_id": calls[0].ID, "content": `{"ok":true}`},
			map[string]any{"role": "tool", "tool_call_id": calls[1].ID, "content": "done"},
		},
	}
	body, _ := json.Marshal(follow)
	plan, err := convertBody(t, string(body))
	if err != nil {
		t.Fatal(err)
	}
	model := plan.Body.Contents[1]
	if model.Parts[0].ThoughtSignature != "c2lnbmF0dXJlLW9uZQ==" || model.Parts[1].ThoughtSignature != "" {
		t.Errorf("signatures after round trip: %q %q", model.Parts[0].ThoughtSignature, model.Parts[1].ThoughtSignature)
	}
	replies := plan.Body.Contents[2]
	if len(replies.Parts) != 2 || replies.Parts[0].FunctionResponse.Name != "a" || replies.Parts[1].FunctionResponse.Name != "b" {
		t.Errorf("function responses not grouped by name/order: %+v", replies)
	}
}

func TestFinishReasonMapping(t *testing.T) {
	cases := []struct {
		reason        string
		blocked, call bool
		want          string
	}{
		{"STOP", false, false, "stop"},
		{"", false, false, "stop"},
		{"MAX_TOKENS", false, false, "length"},
		{"MAX_TOKENS", false, true, "length"},
		{"SAFETY", false, false, "content_filter"},
		{"RECITATION", false, false, "content_filter"},
		{"BLOCKLIST", false, false, "content_filter"},
		{"PROHIBITED_CONTENT", false, false, "content_filter"},
		{"SPII", false, false, "content_filter"},
		{"IMAGE_SAFETY", false, false, "content_filter"},
		{"STOP", false, true, "tool_calls"},
		{"", true, false, "content_filter"},
		{"MALFORMED_FUNCTION_CALL", false, false, "stop"},
	}
	for _, c := range cases {
		if got := FinishReason(c.reason, c.blocked, c.call); got != c.want {
			t.Errorf("FinishReason(%q,%v,%v) = %q, want %q", c.reason, c.blocked, c.call, got, c.want)
		}
	}
}

func TestUsageCountsThoughtsAsCompletion(t *testing.T) {
	u := UsageFrom(&UsageMetadata{PromptTokenCount: 15, CandidatesTokenCount: 935, ThoughtsTokenCount: 1304, CachedContentTokenCount: 8, TotalTokenCount: 2254})
	if u.PromptTokens != 15 || u.CompletionTokens != 2239 || u.TotalTokens != 2254 ||
		u.CompletionTokensDetails.ReasoningTokens != 1304 || u.PromptTokensDetails.CachedTokens != 8 {
		t.Errorf("usage %+v", u)
	}
}

func TestStreamWithoutIncludeUsageSendsNoUsage(t *testing.T) {
	s := NewStream(ResponseMeta{ID: "chatcmpl-x", Model: "m"}, false)
	out, err := s.Feed(nil, []byte(`{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"totalTokenCount":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	out = s.Finish(out)
	out = s.Finish(out) // idempotent
	text := string(out)
	if strings.Contains(text, "usage") {
		t.Errorf("usage sent without include_usage:\n%s", text)
	}
	if strings.Count(text, `"finish_reason":"stop"`) != 1 || strings.Count(text, "[DONE]") != 1 {
		t.Errorf("want exactly one finish chunk and one [DONE]:\n%s", text)
	}
	if !strings.HasPrefix(text, `data: {"id":"chatcmpl-x"`) || !strings.Contains(text, `"delta":{"role":"assistant","content":""}`) {
		t.Errorf("role delta must come first:\n%s", text)
	}
}

func TestStreamErrorChunkIsReported(t *testing.T) {
	s := NewStream(ResponseMeta{ID: "chatcmpl-x", Model: "m"}, true)
	_, err := s.Feed(nil, []byte(`{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`))
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Code != 503 {
		t.Fatalf("want UpstreamError 503, got %v", err)
	}
	ev := string(AppendStreamError(nil, "The model is overloaded.", "server_error", ""))
	var parsed struct {
		Error struct {
			Message string  `json:"message"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(ev, "data: "), "\n\n")), &parsed); err != nil || parsed.Error.Message != "The model is overloaded." || parsed.Error.Code != nil {
		t.Errorf("error event %q: %v", ev, err)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", "quote\" back\\ slash", "ctl\x00\x1f\n\r\t", "html <b>&</b>", "bad utf8 \xff\xfe", "ünïcödé ✓ \u2028 \u2029", ""} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q round-tripped to %q, want %q", s, back, wantBack)
		}
	}
}

func TestVoiceMapping(t *testing.T) {
	if Voice("alloy", "Zephyr") != "Zephyr" || Voice("KORE", "Zephyr") != "Kore" || Voice("nobody", "Puck") != "Puck" || Voice("onyx", "") != "Orus" {
		t.Error("voice mapping")
	}
}

func TestWAVHeader(t *testing.T) {
	w := WAV([]byte{1, 2, 3, 4}, 24000)
	if len(w) != 48 || string(w[0:4]) != "RIFF" || string(w[8:12]) != "WAVE" || string(w[36:40]) != "data" {
		t.Errorf("bad header % x", w[:44])
	}
	if PCMRate("audio/L16;codec=pcm;rate=16000") != 16000 || PCMRate("audio/L16") != 24000 {
		t.Error("rate parsing")
	}
}

func TestToolCallArgumentsAreCompacted(t *testing.T) {
	got := string(appendCompact(nil, []byte("{\n  \"city\": \"Oslo  Nord\",\n  \"q\": \"a\\\" b\"\n}")))
	if got != `{"city":"Oslo  Nord","q":"a\" b"}` {
		t.Errorf("compact = %s", got)
	}
}

func TestImageChatModelAlias(t *testing.T) {
	s := testSettings()
	m, err := ResolveModel(s.CreateImageModel+"-chat", s)
	if err != nil || m.Upstream != s.CreateImageModel || !m.Image {
		t.Errorf("%+v %v", m, err)
	}
}
