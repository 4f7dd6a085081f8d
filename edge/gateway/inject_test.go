package gateway_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// injectCase is one request, described by its facts, that every surface
// builds in its own wire format. want is the injected view of the upstream
// body (see injectedView) every surface must produce.
type injectCase struct {
	name     string
	model    string
	settings func(*config.Settings)
	system   bool  // a system instruction
	image    bool  // an inline image in the user turn
	function bool  // one function tool
	jsonMode bool  // JSON output asked for
	budget   *int  // the client's own thinking budget
	thoughts *bool // the client's own includeThoughts
	want     map[string]string
	// wantUnsaidThoughts is includeThoughts on a surface whose protocol
	// cannot say it (OpenAI chat); a surface where absence means no (native)
	// expects "" when the case leaves thoughts unsaid.
	wantUnsaidThoughts string
	refused            bool // 400 and nothing upstream
}

// injectSurface sends a case through one client-facing surface. Responses
// and Messages are added as rows here.
type injectSurface struct {
	name string
	// unsaidMeansNo: the protocol's own default for thoughts is "no", so a
	// request that leaves them unsaid gets none (Gemini native).
	unsaidMeansNo bool
	// says reports whether the protocol can express the case at all (the
	// Responses API has no thinking budget and no "no thoughts").
	says func(c injectCase) bool
	send func(e *env, c injectCase) *http.Response
}

var injectSurfaces = []injectSurface{
	{name: "native", unsaidMeansNo: true, send: func(e *env, c injectCase) *http.Response {
		parts := []any{map[string]any{"text": "hi"}}
		if c.image {
			parts = append(parts, map[string]any{"inlineData": map[string]any{"mimeType": "image/png", "data": tinyPNG}})
		}
		body := map[string]any{"contents": []any{map[string]any{"role": "user", "parts": parts}}}
		if c.system {
			body["systemInstruction"] = map[string]any{"parts": []any{map[string]any{"text": "be brief"}}}
		}
		if c.function {
			body["tools"] = []any{map[string]any{"functionDeclarations": []any{map[string]any{"name": "lookup", "description": "look up"}}}}
		}
		gc := map[string]any{}
		if c.jsonMode {
			gc["responseMimeType"] = "application/json"
		}
		tc := map[string]any{}
		if c.budget != nil {
			tc["thinkingBudget"] = *c.budget
		}
		if c.thoughts != nil {
			tc["includeThoughts"] = *c.thoughts
		}
		if len(tc) > 0 {
			gc["thinkingConfig"] = tc
		}
		if len(gc) > 0 {
			body["generationConfig"] = gc
		}
		raw, _ := json.Marshal(body)
		return e.post("/v1beta/models/"+c.model+":generateContent", string(raw))
	}},
	{name: "openai-chat", send: func(e *env, c injectCase) *http.Response {
		var msgs []any
		if c.system {
			msgs = append(msgs, map[string]any{"role": "system", "content": "be brief"})
		}
		content := []any{map[string]any{"type": "text", "text": "hi"}}
		if c.image {
			content = append(content, map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64," + tinyPNG}})
		}
		msgs = append(msgs, map[string]any{"role": "user", "content": content})
		body := map[string]any{"model": c.model, "messages": msgs}
		if c.function {
			body["tools"] = []any{map[string]any{"type": "function", "function": map[string]any{"name": "lookup", "description": "look up"}}}
		}
		if c.jsonMode {
			body["response_format"] = map[string]any{"type": "json_object"}
		}
		tc := map[string]any{}
		if c.budget != nil {
			tc["thinking_budget"] = *c.budget
		}
		if c.thoughts != nil {
			tc["include_thoughts"] = *c.thoughts
		}
		if len(tc) > 0 {
			body["extra_body"] = map[string]any{"google": map[string]any{"thinking_config": tc}}
		}
		raw, _ := json.Marshal(body)
		return e.postBearer("/v1/chat/completions", raw)
	}},
	{name: "openai-responses", says: func(c injectCase) bool { return c.budget == nil && (c.thoughts == nil || *c.thoughts) },
		send: func(e *env, c injectCase) *http.Response {
			content := []any{map[string]any{"type": "input_text", "text": "hi"}}
			if c.image {
				content = append(content, map[string]any{"type": "input_image", "image_url": "data:image/png;base64," + tinyPNG})
			}
			body := map[string]any{"model": c.model, "input": []any{map[string]any{"role": "user", "content": content}}}
			if c.system {
				body["instructions"] = "be brief"
			}
			if c.function {
				body["tools"] = []any{map[string]any{"type": "function", "name": "lookup", "description": "look up"}}
			}
			if c.jsonMode {
				body["text"] = map[string]any{"format": map[string]any{"type": "json_object"}}
			}
			if c.thoughts != nil && *c.thoughts {
				body["reasoning"] = map[string]any{"summary": "auto"}
			}
			raw, _ := json.Marshal(body)
			return e.postBearer("/v1/responses", raw)
		}},
	{name: "anthropic-messages", unsaidMeansNo: true, says: func(c injectCase) bool { return c.budget == nil && c.thoughts == nil },
		send: func(e *env, c injectCase) *http.Response {
			content := []any{map[string]any{"type": "text", "text": "hi"}}
			if c.image {
				content = append(content, map[string]any{"type": "image", "source": map[string]any{"type": "base64", "media_type": "image/png", "data": tinyPNG}})
			}
			body := map[string]any{"model": c.model, "max_tokens": 256, "messages": []any{map[string]any{"role": "user", "content": content}}}
			if c.system {
				body["system"] = "be brief"
			}
			if c.function {
				body["tools"] = []any{map[string]any{"name": "lookup", "description": "look up", "input_schema": map[string]any{"type": "object"}}}
			}
			if c.jsonMode {
				body["output_config"] = map[string]any{"format": map[string]any{"type": "json_schema", "schema": map[string]any{"type": "object"}}}
			}
			raw, _ := json.Marshal(body)
			return e.postBearer("/v1/messages", raw)
		}},
}

// postBearer posts a JSON body to an OpenAI-style route with the client token.
func (e *env) postBearer(path string, raw []byte) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(string(raw)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

const tinyPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

// injectedView is what the injection policy controls in an upstream body:
// built-in tools, output modalities, thinking, safety settings and the
// system instruction. Everything else is each surface's own conversion.
func injectedView(body []byte) map[string]string {
	v := map[string]string{}
	var builtins []string
	gjson.GetBytes(body, "tools").ForEach(func(_, t gjson.Result) bool {
		t.ForEach(func(k, _ gjson.Result) bool {
			if k.Str != "functionDeclarations" && k.Str != "function_declarations" {
				builtins = append(builtins, k.Str)
			}
			return true
		})
		return true
	})
	v["tools"] = strings.Join(builtins, ",")
	gc := gjson.GetBytes(body, "generationConfig")
	v["modalities"] = gc.Get("responseModalities").Raw
	v["budget"] = gc.Get("thinkingConfig.thinkingBudget").Raw
	v["level"] = gc.Get("thinkingConfig.thinkingLevel").Str
	v["thoughts"] = ""
	if gc.Get("thinkingConfig.includeThoughts").Bool() {
		v["thoughts"] = "true" // an explicit false and an absent field mean the same
	}
	v["safety"] = strconv.Itoa(int(gjson.GetBytes(body, "safetySettings.#").Int()))
	v["system"] = strconv.FormatBool(gjson.GetBytes(body, "systemInstruction").Exists())
	return v
}

func intp(i int) *int    { return &i }
func boolp(b bool) *bool { return &b }

// TestEverySurfaceInjectsTheSame runs each case through every surface and
// checks that the upstream bodies agree on everything the policy controls.
func TestEverySurfaceInjectsTheSame(t *testing.T) {
	e := newEnv(t, envOptions{})
	base := config.Defaults()
	base.BaseURL = e.fake.URL
	base.VertexExpressBaseURL = e.fake.URL + "/v1beta1/publishers/google"
	base.AllowedTokens = []string{token}
	base.SearchModels = []string{"gemini-2.5-flash", "gemini-2.5-pro"}
	base.ThinkingModels = []string{"gemini-2.5-flash", "gemini-2.5-pro"}
	noSafety := func(s *config.Settings) { s.SafetySettings = nil }
	codeExec := func(s *config.Settings) { s.SafetySettings = nil; s.CodeExecutionEnabled = true }
	// plain: what a request to a thinking model with default settings gets.
	plain := map[string]string{"tools": "", "modalities": "", "budget": "", "level": "", "safety": "5", "system": "false"}
	with := func(over map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range plain {
			out[k] = v
		}
		for k, v := range over {
			out[k] = v
		}
		return out
	}
	cases := []injectCase{
		{name: "defaults on a thinking model", model: "gemini-2.5-flash", system: true,
			want: with(map[string]string{"system": "true"}), wantUnsaidThoughts: "true"},
		{name: "SHOW_THINKING_PROCESS off", model: "gemini-2.5-flash", settings: func(s *config.Settings) { s.ShowThinkingProcess = false },
			want: plain},
		{name: "no thinking on a model that does not think", model: "gemini-2.0-flash", want: plain},
		{name: "empty SAFETY_SETTINGS adds none", model: "gemini-2.0-flash", settings: noSafety, want: with(map[string]string{"safety": "0"})},
		{name: "search adds googleSearch", model: "gemini-2.5-flash-search",
			want: with(map[string]string{"tools": "googleSearch"}), wantUnsaidThoughts: "true"},
		{name: "search left out next to function tools", model: "gemini-2.5-flash-search", function: true,
			want: plain, wantUnsaidThoughts: "true"},
		{name: "search left out with JSON output", model: "gemini-2.5-flash-search", jsonMode: true,
			want: plain, wantUnsaidThoughts: "true"},
		{name: "unoffered search is refused", model: "gemini-2.0-flash-search", refused: true},
		{name: "code execution", model: "gemini-2.0-flash", settings: codeExec,
			want: with(map[string]string{"tools": "codeExecution", "safety": "0"})},
		{name: "no code execution with media", model: "gemini-2.0-flash", settings: codeExec, image: true,
			want: with(map[string]string{"safety": "0"})},
		{name: "no code execution on search", model: "gemini-2.5-flash-search", settings: codeExec,
			want: with(map[string]string{"tools": "googleSearch", "safety": "0"}), wantUnsaidThoughts: "true"},
		{name: "code execution and url context", model: "gemini-2.0-flash",
			settings: func(s *config.Settings) { codeExec(s); s.URLContextEnabled = true },
			want:     with(map[string]string{"tools": "codeExecution,urlContext", "safety": "0"})},
		{name: "non-thinking flash turns thinking off", model: "gemini-2.5-flash-non-thinking",
			want: with(map[string]string{"budget": "0"})},
		{name: "non-thinking 2.5 pro uses its floor and no thoughts", model: "gemini-2.5-pro-non-thinking",
			want: with(map[string]string{"budget": "128"})},
		{name: "non-thinking gemini 3 pro uses LOW", model: "gemini-3-pro-preview-non-thinking",
			want: with(map[string]string{"level": "LOW"})},
		{name: "non-thinking gemini 3 flash uses MINIMAL", model: "gemini-3-flash-preview-non-thinking",
			want: with(map[string]string{"level": "MINIMAL"})},
		{name: "non-thinking on a model that does not think adds nothing", model: "gemini-2.0-flash-non-thinking", want: plain},
		{name: "client budget beats non-thinking", model: "gemini-2.5-flash-non-thinking", budget: intp(2048),
			want: with(map[string]string{"budget": "2048"}), wantUnsaidThoughts: "true"},
		{name: "THINKING_BUDGET_MAP default", model: "gemini-2.5-flash",
			settings: func(s *config.Settings) { s.ThinkingBudgetMap = map[string]int{"gemini-2.5-flash": 512} },
			want:     with(map[string]string{"budget": "512"}), wantUnsaidThoughts: "true"},
		{name: "client budget beats the map", model: "gemini-2.5-flash", budget: intp(1024),
			settings: func(s *config.Settings) { s.ThinkingBudgetMap = map[string]int{"gemini-2.5-flash": 512} },
			want:     with(map[string]string{"budget": "1024"}), wantUnsaidThoughts: "true"},
		{name: "client budget 0 gets no thoughts", model: "gemini-2.5-flash", budget: intp(0),
			want: with(map[string]string{"budget": "0"})},
		{name: "client says no thoughts", model: "gemini-2.5-flash", thoughts: boolp(false), want: plain},
		{name: "client asks for thoughts", model: "gemini-2.5-flash", thoughts: boolp(true), settings: func(s *config.Settings) { s.ShowThinkingProcess = false },
			want: with(map[string]string{"thoughts": "true"})},
		{name: "image variant: modalities, no system, no code execution", model: "gemini-2.0-flash-exp-image", system: true,
			settings: codeExec,
			want:     with(map[string]string{"modalities": `["TEXT","IMAGE"]`, "safety": "0"})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := base
			if c.settings != nil {
				c.settings(&st)
			}
			e.settings.Set(st)
			for _, s := range injectSurfaces {
				if s.says != nil && !s.says(c) {
					continue
				}
				e.fake.Reset()
				res := s.send(e, c)
				res.Body.Close()
				got := e.fake.Requests(fakegemini.Filter{Method: "generateContent"})
				if c.refused {
					if res.StatusCode != http.StatusBadRequest || len(got) != 0 {
						t.Fatalf("%s: status %d, %d upstream calls; want 400 and none", s.name, res.StatusCode, len(got))
					}
					continue
				}
				if res.StatusCode != http.StatusOK || len(got) != 1 {
					t.Fatalf("%s: status %d, %d upstream calls", s.name, res.StatusCode, len(got))
				}
				if !strings.HasPrefix(c.model, got[0].Model) {
					t.Errorf("%s: upstream model %q", s.name, got[0].Model)
				}
				view := injectedView(got[0].Body)
				want := map[string]string{}
				for k, v := range c.want {
					want[k] = v
				}
				if _, set := want["thoughts"]; !set {
					want["thoughts"] = c.wantUnsaidThoughts
					if c.thoughts == nil && s.unsaidMeansNo {
						want["thoughts"] = ""
					}
				}
				for k, w := range want {
					if view[k] != w {
						t.Errorf("%s: %s = %q, want %q\nbody %s", s.name, k, view[k], w, got[0].Body)
					}
				}
			}
		})
	}
}
