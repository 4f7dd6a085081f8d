package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

// sseEvents reads the data payloads of an SSE body until EOF.
func sseEvents(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func textOf(t *testing.T, data string) string {
	var r genai.GenerateContentResponse
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		t.Fatalf("bad event %s: %v", data, err)
	}
	return r.Text()
}

var threeChunks = [][]fakegemini.Part{{fakegemini.Text("alpha ")}, {fakegemini.Text("beta ")}, {fakegemini.Text("gamma")}}

func TestMidStreamFailureEndsWithAnErrorEventAndNoRepeatedText(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    fakegemini.Behaviour
	}{
		{"upstream error event", fakegemini.Behaviour{FailAfter: 2, StreamError: fakegemini.Unavailable}},
		{"connection cut", fakegemini.Behaviour{FailAfter: 2, Cut: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}})
			b := tc.b
			e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Chunks: threeChunks, Behaviour: &b})
			res := e.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"text":"go"}]}]}`)
			defer res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			evs := sseEvents(t, res.Body)
			if len(evs) != 3 {
				t.Fatalf("want 2 content events and 1 error event, got %d: %q", len(evs), evs)
			}
			if got := textOf(t, evs[0]) + textOf(t, evs[1]); got != "alpha beta " {
				t.Errorf("text %q", got)
			}
			if !gjson.Get(evs[2], "error.code").Exists() || gjson.Get(evs[2], "error.message").Str == "" {
				t.Errorf("last event is not a Gemini error: %s", evs[2])
			}
			if st := e.fake.Stats(); st.Total != 1 {
				t.Errorf("the stream was restarted upstream: %d calls %v", st.Total, st.KeyHits)
			}
		})
	}
}

func TestMidStreamFailureInTheJSONArrayFormKeepsTheArrayValid(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Chunks: threeChunks, Behaviour: &fakegemini.Behaviour{FailAfter: 2, Cut: true}})
	res := e.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", `{"contents":[{"parts":[{"text":"go"}]}]}`)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var arr []json.RawMessage
	if err := json.Unmarshal(b, &arr); err != nil {
		t.Fatalf("not a JSON array after a mid-stream failure: %v\n%s", err, b)
	}
	if len(arr) != 3 || !gjson.GetBytes(arr[2], "error.code").Exists() {
		t.Fatalf("want 2 elements and an error element: %s", b)
	}
	if got := textOf(t, string(arr[0])) + textOf(t, string(arr[1])); got != "alpha beta " {
		t.Errorf("text %q", got)
	}
}

func TestSDKSeesTheMidStreamErrorAfterTheTextItGot(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Chunks: threeChunks, Behaviour: &fakegemini.Behaviour{FailAfter: 2}})
	var text strings.Builder
	var streamErr error
	for chunk, err := range e.client(token).Models.GenerateContentStream(ctxTimeout(t), "gemini-2.5-flash", genai.Text("go"), nil) {
		if err != nil {
			streamErr = err
			break
		}
		text.WriteString(chunk.Text())
	}
	if text.String() != "alpha beta " || streamErr == nil {
		t.Fatalf("text %q, err %v", text.String(), streamErr)
	}
}

// slowStream makes the fake send one chunk and then hold the stream open.
func slowStream(e *env) {
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Chunks: threeChunks, Behaviour: &fakegemini.Behaviour{ChunkDelay: fakegemini.Duration(time.Hour)}})
}

func TestFirstEventReachesTheClientBeforeUpstreamHasFinished(t *testing.T) {
	e := newEnv(t, envOptions{})
	slowStream(e)
	ctx, cancel := context.WithCancel(ctxTimeout(t))
	defer cancel()
	for chunk, err := range e.client(token).Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("go"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Text() != "alpha " {
			t.Fatalf("first chunk %q", chunk.Text())
		}
		r, ok := e.fake.Last(fakegemini.Filter{Method: "streamGenerateContent"})
		if !ok || r.Done {
			t.Fatal("the first event arrived only after upstream had finished its stream")
		}
		break
	}
}

func TestClientDisconnectCancelsTheUpstreamCall(t *testing.T) {
	e := newEnv(t, envOptions{})
	slowStream(e)
	ctx, cancel := context.WithCancel(ctxTimeout(t))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
		strings.NewReader(`{"contents":[{"parts":[{"text":"go"}]}]}`))
	req.Header.Set("x-goog-api-key", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event: %q %v", line, err)
	}
	cancel()
	res.Body.Close()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := e.fake.WaitFor(wctx, func(s fakegemini.Stats) bool { return s.Cancelled == 1 }); err != nil {
		t.Fatalf("upstream call was not cancelled after the client left: %+v", e.fake.Stats())
	}
}

// Every streaming surface goes through the one pump (relay.Pump): the first
// event reaches the client while upstream still holds the stream open, and
// a client that leaves cancels the upstream call.
func TestEveryStreamingSurfaceFlushesPerEventAndCancelsUpstreamWhenTheClientGoes(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i, tc := range []struct{ name, path, header, body string }{
		{"gemini sse", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "x-goog-api-key",
			`{"contents":[{"parts":[{"text":"go"}]}]}`},
		{"gemini json array", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", "x-goog-api-key",
			`{"contents":[{"parts":[{"text":"go"}]}]}`},
		{"openai chat", "/v1/chat/completions", "Authorization",
			`{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"go"}]}`},
		{"openai responses", "/v1/responses", "Authorization",
			`{"model":"gemini-2.5-flash","stream":true,"input":"go"}`},
		{"anthropic messages", "/v1/messages", "x-api-key",
			`{"model":"gemini-2.5-flash","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"go"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slowStream(e)
			ctx, cancel := context.WithCancel(ctxTimeout(t))
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.header == "Authorization" {
				req.Header.Set("Authorization", "Bearer "+token)
			} else {
				req.Header.Set(tc.header, token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(res.Body)
				t.Fatalf("status %d: %s", res.StatusCode, b)
			}
			// Read until the first text arrives: upstream holds its second
			// chunk for an hour, so the text can only come by a flush.
			br := bufio.NewReader(res.Body)
			var got strings.Builder
			for !strings.Contains(got.String(), `"alpha "`) {
				line, err := br.ReadString('\n')
				got.WriteString(line)
				if err != nil {
					t.Fatalf("stream ended before the first text: %v; got %q", err, got.String())
				}
			}
			if r, ok := e.fake.Last(fakegemini.Filter{Method: "streamGenerateContent"}); !ok || r.Done {
				t.Fatal("the first event arrived only after upstream had finished its stream")
			}
			cancel()
			res.Body.Close()
			wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer wcancel()
			if err := e.fake.WaitFor(wctx, func(s fakegemini.Stats) bool { return s.Cancelled == i+1 }); err != nil {
				t.Fatalf("upstream call was not cancelled after the client left: %+v", e.fake.Stats())
			}
		})
	}
}

func TestFunctionCallingRoundTripKeepsThoughtSignature(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(token)
	ctx := ctxTimeout(t)
	call := fakegemini.Call("get_weather", map[string]any{"city": "Oslo"}).Signed("sig-oslo-1")
	e.fake.Script("gemini-3-pro-preview", fakegemini.Reply{Parts: []fakegemini.Part{call}})
	tools := &genai.GenerateContentConfig{Tools: []*genai.Tool{{FunctionDeclarations: []*genai.FunctionDeclaration{{
		Name: "get_weather", Parameters: &genai.Schema{Type: genai.TypeObject, Properties: map[string]*genai.Schema{"city": {Type: genai.TypeString}}}}}}}}
	user := genai.NewContentFromText("weather in Oslo?", genai.RoleUser)
	res, err := c.Models.GenerateContent(ctx, "gemini-3-pro-preview", []*genai.Content{user}, tools)
	if err != nil {
		t.Fatal(err)
	}
	part := res.Candidates[0].Content.Parts[0]
	if part.FunctionCall == nil || string(part.ThoughtSignature) != "sig-oslo-1" {
		t.Fatalf("the model's call lost its signature: %+v", part)
	}
	reply := genai.NewContentFromFunctionResponse("get_weather", map[string]any{"tempC": 4}, genai.RoleUser)
	if _, err := c.Models.GenerateContent(ctx, "gemini-3-pro-preview", []*genai.Content{user, res.Candidates[0].Content, reply}, tools); err != nil {
		t.Fatal(err)
	}
	last, _ := e.fake.Last(fakegemini.Filter{Model: "gemini-3-pro-preview"})
	sig := gjson.GetBytes(last.Body, "contents.1.parts.0.thoughtSignature").Str
	if sig != "c2lnLW9zbG8tMQ==" { // base64("sig-oslo-1")
		t.Fatalf("signature sent upstream = %q; body %s", sig, last.Body)
	}

	// The same over a stream.
	e.fake.Script("gemini-3-pro-preview", fakegemini.Reply{Parts: []fakegemini.Part{call}})
	for chunk, err := range c.Models.GenerateContentStream(ctx, "gemini-3-pro-preview", []*genai.Content{user}, tools) {
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range chunk.Candidates[0].Content.Parts {
			if p.FunctionCall != nil && string(p.ThoughtSignature) != "sig-oslo-1" {
				t.Fatalf("streamed call lost its signature: %+v", p)
			}
		}
	}
}

func TestUnknownFieldsAndClientSettingsReachUpstreamByteForByte(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := `{ "contents": [ {"role":"user","parts":[{"text":"hi","thought_signature":"c2ln","futurePartField":{"a":1}}]} ],
  "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
  "tools": [{"function_declarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}}}]}],
  "generation_config": {"temperature": 0.25, "thinking_config": {"thinking_budget": 7}, "someNewKnob": [1, 2.50, "x"]},
  "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
  "cachedContent": "cachedContents/abc", "futureTopLevel": {"nested": [true, null, {"k": "v"}]}, "serviceTier": "flex" }`
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", body)
	res.Body.Close()
	last, ok := e.fake.Last(fakegemini.Filter{Method: "generateContent"})
	if !ok || !bytes.Equal(last.Body, []byte(body)) {
		t.Fatalf("upstream got a different body:\nsent %s\ngot  %s", body, last.Body)
	}

	// With an injection (-search adds googleSearch), every other field is
	// still the client's bytes. The function tools go first: Gemini refuses
	// googleSearch next to them, so the policy would leave it out; so does a
	// cache (Gemini refuses tools beside cachedContent).
	body, _ = sjson.Delete(body, "tools")
	body, _ = sjson.Delete(body, "cachedContent")
	res = e.post("/v1beta/models/gemini-2.5-flash-search:generateContent", body)
	res.Body.Close()
	last, _ = e.fake.Last(fakegemini.Filter{Method: "generateContent"})
	if last.Model != "gemini-2.5-flash" {
		t.Errorf("derived model sent upstream as %q", last.Model)
	}
	for _, k := range []string{"contents", "toolConfig", "generation_config", "safetySettings", "futureTopLevel", "serviceTier"} {
		if got, want := gjson.GetBytes(last.Body, k).Raw, gjson.Get(body, k).Raw; got != want {
			t.Errorf("%s changed:\nwant %s\ngot  %s", k, want, got)
		}
	}
	tools := gjson.GetBytes(last.Body, "tools")
	if tools.Raw != `[{"googleSearch":{}}]` {
		t.Errorf("tools: %s", tools.Raw)
	}
}
