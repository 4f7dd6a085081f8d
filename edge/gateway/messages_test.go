package gateway_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// postMessages sends an Anthropic request the way the Anthropic SDKs do:
// the client token in x-api-key, anthropic-version set.
func (e *env) postMessages(path, body string, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	if hdr == nil {
		hdr = map[string]string{"x-api-key": token}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

type anthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func readAnthropicError(t *testing.T, res *http.Response) anthropicError {
	t.Helper()
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var ae anthropicError
	if err := json.Unmarshal(b, &ae); err != nil || ae.Type != "error" || ae.Error.Type == "" || ae.Error.Message == "" {
		t.Fatalf("error body is not Anthropic-shaped: %s", b)
	}
	return ae
}

type sseEvent struct {
	name string
	data map[string]any
}

func readSSE(t *testing.T, body io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var d map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d); err != nil {
				t.Fatalf("event %s: invalid JSON %q", name, line)
			}
			out = append(out, sseEvent{name, d})
		}
	}
	return out
}

func TestMessagesAnswersInAnthropicShapeWithTheClientTokenInXAPIKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.postMessages("/v1/messages?beta=true", `{"model":"gemini-2.5-flash","max_tokens":256,"system":"Be brief.",
		"messages":[{"role":"user","content":[{"type":"text","text":"hello there"}]}]}`, nil)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	var msg struct {
		ID, Type, Role, Model, StopReason string
		Content                           []struct{ Type, Text string }
		Usage                             struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		}
	}
	_ = json.Unmarshal(b, &msg)
	var raw map[string]any
	_ = json.Unmarshal(b, &raw)
	msg.StopReason, _ = raw["stop_reason"].(string)
	var text strings.Builder
	for _, c := range msg.Content {
		if c.Type == "text" {
			text.WriteString(c.Text)
		}
	}
	if !strings.HasPrefix(msg.ID, "msg_") || msg.Type != "message" || msg.Role != "assistant" || msg.Model != "gemini-2.5-flash" ||
		text.String() != "echo: hello there" || msg.StopReason != "end_turn" || msg.Usage.InputTokens == 0 {
		t.Fatalf("answer = %s", b)
	}
	up, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"})
	if !strings.Contains(string(up.Body), `"systemInstruction":{"parts":[{"text":"Be brief."}]}`) {
		t.Errorf("system prompt did not reach Gemini: %s", up.Body)
	}
	for name, vals := range up.Header {
		if strings.Contains(strings.Join(vals, " "), token) {
			t.Errorf("client token forwarded upstream in %s", name)
		}
	}
}

func TestMessagesStreamFailsOverBeforeTheFirstByte(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyDown, keyGood1}, settings: func(s *config.Settings) { s.MaxRetries = 2 }})
	e.fake.SetKey(keyDown, fakegemini.Behaviour{Status: fakegemini.Unavailable})
	for i := range 3 { // whichever key keyd hands out first, every stream is served
		res := e.postMessages("/v1/messages", `{"model":"gemini-2.5-flash","max_tokens":256,"stream":true,
			"messages":[{"role":"user","content":"one two three"}]}`, map[string]string{"Authorization": "Bearer " + token})
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream %d: status %d %s", i, res.StatusCode, res.Header.Get("Content-Type"))
		}
		evs := readSSE(t, res.Body)
		res.Body.Close()
		var names []string
		var text strings.Builder
		for _, ev := range evs {
			names = append(names, ev.name)
			if d, ok := ev.data["delta"].(map[string]any); ok && d["type"] == "text_delta" {
				text.WriteString(d["text"].(string))
			}
		}
		if names[0] != "message_start" || names[len(names)-1] != "message_stop" || names[len(names)-2] != "message_delta" {
			t.Fatalf("stream %d events %v", i, names)
		}
		if text.String() != "echo: one two three" {
			t.Fatalf("stream %d text %q", i, text.String())
		}
		if sr := evs[len(evs)-2].data["delta"].(map[string]any)["stop_reason"]; sr != "end_turn" {
			t.Fatalf("stream %d stop_reason %v", i, sr)
		}
	}
	if e.fake.Hits(keyDown) == 0 {
		t.Fatal("the failing key was never tried: the test proves nothing")
	}
}

func TestMessagesStreamBrokenMidwayEndsWithAnErrorEvent(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.SetKey(keyGood1, fakegemini.Behaviour{FailAfter: 1, StreamError: fakegemini.Unavailable})
	res := e.postMessages("/v1/messages", `{"model":"gemini-2.5-flash","max_tokens":256,"stream":true,
		"messages":[{"role":"user","content":"one two three four"}]}`, nil)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	evs := readSSE(t, res.Body)
	last := evs[len(evs)-1]
	if last.name != "error" {
		t.Fatalf("last event %s, want error", last.name)
	}
	if typ := last.data["error"].(map[string]any)["type"]; typ != "overloaded_error" {
		t.Fatalf("error event type %v, want overloaded_error for upstream's 503", typ)
	}
	for _, ev := range evs {
		if ev.name == "message_stop" {
			t.Fatal("a broken stream must not claim a clean message_stop")
		}
	}
}

func TestMessagesErrorsComeInAnthropicShapeWithTruthfulStatus(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyLimited}})
	body := `{"model":"gemini-2.5-flash","max_tokens":64,"messages":[{"role":"user","content":"x"}]}`
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		hdr    map[string]string
		status int
		typ    string
		in     string
	}{
		{"no token", "/v1/messages", body, map[string]string{}, 401, "authentication_error", "x-api-key"},
		{"wrong token", "/v1/messages", body, map[string]string{"x-api-key": "sk-wrong"}, 401, "authentication_error", "invalid client token"},
		{"claude model", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":"x"}]}`, nil, 404, "not_found_error", "ANTHROPIC_MODEL"},
		{"bad json", "/v1/messages", `{"model":`, nil, 400, "invalid_request_error", "body"},
		{"no max_tokens", "/v1/messages", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_request_error", "max_tokens"},
		{"unknown tool_use_id", "/v1/messages/count_tokens", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_x","content":"r"}]}]}`, nil, 400, "invalid_request_error", "tool_use_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.postMessages(tc.path, tc.body, tc.hdr)
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
			ae := readAnthropicError(t, res)
			if ae.Error.Type != tc.typ || !strings.Contains(ae.Error.Message, tc.in) {
				t.Errorf("error %+v, want type %s mentioning %q", ae.Error, tc.typ, tc.in)
			}
		})
	}

	// Upstream's own 400 reaches the client as invalid_request_error, with
	// the upstream key scrubbed from the message.
	e.fake.SetKey(keyGood1, fakegemini.Behaviour{Status: fakegemini.BadRequest, Message: "bad thing for key " + keyGood1})
	e.fake.SetKey(keyLimited, fakegemini.Behaviour{Status: fakegemini.BadRequest, Message: "bad thing for key " + keyLimited})
	res := e.postMessages("/v1/messages", body, nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("upstream 400 answered %d", res.StatusCode)
	}
	ae := readAnthropicError(t, res)
	if ae.Error.Type != "invalid_request_error" || strings.Contains(ae.Error.Message, keyGood1) || strings.Contains(ae.Error.Message, keyLimited) ||
		!strings.Contains(ae.Error.Message, "bad thing") {
		t.Errorf("upstream 400 became %+v", ae.Error)
	}

	// Every key rate limited: 429 rate_limit_error with retry-after.
	e.fake.SetKey(keyGood1, fakegemini.Behaviour{Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(30 * time.Second)})
	e.fake.SetKey(keyLimited, fakegemini.Behaviour{Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(30 * time.Second)})
	res = e.postMessages("/v1/messages", strings.Replace(body, `"max_tokens":64`, `"max_tokens":64,"stream":true`, 1), nil)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("all keys limited: status %d retry-after %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if ae := readAnthropicError(t, res); ae.Error.Type != "rate_limit_error" {
		t.Errorf("429 became %+v", ae.Error)
	}
}

func TestMessagesCountTokensCountsSystemMessagesAndTools(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.postMessages("/v1/messages/count_tokens", `{"model":"gemini-2.5-flash","system":"a system prompt of some length",
		"messages":[{"role":"user","content":"how many tokens is this?"}],
		"tools":[{"name":"lookup","description":"look a word up","input_schema":{"type":"object","properties":{"w":{"type":"string"}}}}]}`, nil)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out struct {
		InputTokens int `json:"input_tokens"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.InputTokens == 0 {
		t.Fatalf("count_tokens: %d %s", res.StatusCode, b)
	}
	up, ok := e.fake.Last(fakegemini.Filter{Method: "countTokens"})
	if !ok || !strings.Contains(string(up.Body), `"generateContentRequest"`) || !strings.Contains(string(up.Body), "a system prompt of some length") ||
		!strings.Contains(string(up.Body), "look a word up") {
		t.Fatalf("upstream countTokens body: %s", up.Body)
	}
}

// A Gemini 3 tool loop: the signature Gemini put on its functionCall comes
// back to Gemini on the next turn, on that functionCall, streamed or not.
func TestMessagesToolLoopCarriesTheThoughtSignatureBackToGemini(t *testing.T) {
	const model = "gemini-3-pro-preview"
	for _, stream := range []bool{false, true} {
		e := newEnv(t, envOptions{})
		e.fake.Script(model, fakegemini.Reply{Parts: []fakegemini.Part{
			fakegemini.Thought("need the weather"),
			fakegemini.Call("get_weather", map[string]any{"city": "Oslo"}).Signed("gemini-sig-1"),
		}}, fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text("Sunny in Oslo.")}})
		first := `{"model":"` + model + `","max_tokens":1024,"stream":` + map[bool]string{true: "true", false: "false"}[stream] + `,
			"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
			"messages":[{"role":"user","content":"Weather in Oslo?"}]}`
		res := e.postMessages("/v1/messages", first, nil)
		var content []map[string]any
		stop := ""
		if stream {
			blocks := map[int]map[string]any{}
			for _, ev := range readSSE(t, res.Body) {
				switch ev.name {
				case "content_block_start":
					blocks[int(ev.data["index"].(float64))] = ev.data["content_block"].(map[string]any)
				case "content_block_delta":
					b := blocks[int(ev.data["index"].(float64))]
					d := ev.data["delta"].(map[string]any)
					switch d["type"] {
					case "thinking_delta":
						b["thinking"] = b["thinking"].(string) + d["thinking"].(string)
					case "signature_delta":
						b["signature"] = d["signature"]
					case "input_json_delta":
						var in map[string]any
						_ = json.Unmarshal([]byte(d["partial_json"].(string)), &in)
						b["input"] = in
					}
				case "message_delta":
					stop = ev.data["delta"].(map[string]any)["stop_reason"].(string)
				}
			}
			for i := 0; i < len(blocks); i++ {
				content = append(content, blocks[i])
			}
		} else {
			var msg struct {
				Content    []map[string]any `json:"content"`
				StopReason string           `json:"stop_reason"`
			}
			_ = json.NewDecoder(res.Body).Decode(&msg)
			content, stop = msg.Content, msg.StopReason
		}
		res.Body.Close()
		if stop != "tool_use" {
			t.Fatalf("stream=%v: stop_reason %q, content %v", stream, stop, content)
		}
		var toolID string
		for _, b := range content {
			if b["type"] == "tool_use" {
				toolID = b["id"].(string)
			}
		}
		assistant, _ := json.Marshal(content)
		second := `{"model":"` + model + `","max_tokens":1024,
			"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
			"messages":[{"role":"user","content":"Weather in Oslo?"},{"role":"assistant","content":` + string(assistant) + `},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + toolID + `","content":"sunny"}]}]}`
		res = e.postMessages("/v1/messages", second, nil)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "Sunny in Oslo.") {
			t.Fatalf("stream=%v: second turn %d %s", stream, res.StatusCode, b)
		}
		up, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"})
		var sent struct {
			Contents []struct {
				Role  string `json:"role"`
				Parts []struct {
					FunctionCall     *struct{ Name string } `json:"functionCall"`
					FunctionResponse *struct{ Name string } `json:"functionResponse"`
					ThoughtSignature string                 `json:"thoughtSignature"`
				} `json:"parts"`
			} `json:"contents"`
		}
		_ = json.Unmarshal(up.Body, &sent)
		if len(sent.Contents) != 3 || sent.Contents[1].Role != "model" || sent.Contents[1].Parts[0].FunctionCall == nil ||
			sent.Contents[1].Parts[0].ThoughtSignature != "Z2VtaW5pLXNpZy0x" /* base64("gemini-sig-1") */ ||
			sent.Contents[2].Parts[0].FunctionResponse == nil || sent.Contents[2].Parts[0].FunctionResponse.Name != "get_weather" {
			t.Fatalf("stream=%v: second turn sent upstream: %s", stream, up.Body)
		}
	}
}

// Hostile bodies get a clear Anthropic-shaped 400 and never reach upstream.
func TestMessagesRefusesHostileBodiesBeforeUpstream(t *testing.T) {
	e := newEnv(t, envOptions{})
	deep := `{"model":"gemini-2.5-flash","max_tokens":9,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":` +
		strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}]}]}`
	for name, body := range map[string]string{
		"deep nesting":     deep,
		"not json":         "\x00\xff not json",
		"wrong types":      `{"model":["x"],"max_tokens":"many","messages":{}}`,
		"tool_use in user": `{"model":"gemini-2.5-flash","max_tokens":9,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}`,
		"bad tool input":   `{"model":"gemini-2.5-flash","max_tokens":9,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":"rm -rf"}]}]}`,
	} {
		res := e.postMessages("/v1/messages", body, nil)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", name, res.StatusCode)
		}
		if ae := readAnthropicError(t, res); ae.Error.Type != "invalid_request_error" {
			t.Errorf("%s: %+v", name, ae.Error)
		}
	}
	if n := e.fake.Stats().Total; n != 0 {
		t.Errorf("refused bodies reached upstream: %d calls", n)
	}
}

// A managed token's model allow-list holds on the Messages routes too.
func TestMessagesApplyTheTokensModelAllowList(t *testing.T) {
	e := newEnv(t, envOptions{})
	const limited = "sk-gb-limited-token-00000000000000000001"
	// As admind publishes it: an entry in the client-tokens bucket.
	kv, err := e.js.KeyValue(ctxTimeout(t), bus.BucketClientTokens)
	if err != nil {
		t.Fatal(err)
	}
	entry, _ := json.Marshal(bus.ClientToken{V: 1, ID: redact.ID(limited), Name: "ci", Hint: redact.Hint(limited),
		SHA256: bus.TokenSHA256(limited), Models: []string{"gemini-2.5-flash"}})
	if _, err := kv.Put(ctxTimeout(t), redact.ID(limited), entry); err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{"x-api-key": limited}
	eventually(t, func() bool { // the edge applies the entry within moments
		res := e.postMessages("/v1/messages", `{"model":"gemini-2.5-flash","max_tokens":9,"messages":[{"role":"user","content":"x"}]}`, hdr)
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	for _, path := range []string{"/v1/messages", "/v1/messages/count_tokens"} {
		res := e.postMessages(path, `{"model":"gemini-2.5-pro","max_tokens":9,"messages":[{"role":"user","content":"x"}]}`, hdr)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: other model answered %d", path, res.StatusCode)
		}
		if ae := readAnthropicError(t, res); ae.Error.Type != "permission_error" {
			t.Errorf("%s: %+v", path, ae.Error)
		}
	}
	if n := e.fake.ModelHits("gemini-2.5-pro"); n != 0 {
		t.Errorf("a refused model reached upstream %d times", n)
	}
}
