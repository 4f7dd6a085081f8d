package native

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/guard"
)

// Inject applies the documented, settings-driven changes to a
// generateContent request body and leaves every other byte as the client
// sent it (unknown fields, toolConfig, thoughtSignature, snake_case names,
// the client's own safetySettings). It edits the JSON in place by path, so
// it never re-encodes what it does not touch, and when nothing applies it
// returns body itself. A body that is not a JSON object is returned
// unchanged for upstream to judge.
//
// The changes, each only when the client has not set the field itself:
//   - -search: a googleSearch tool;
//   - -image: responseModalities TEXT and IMAGE;
//   - -non-thinking: thinkingBudget 0, or the model's minimum;
//   - THINKING_BUDGET_MAP: the model's default thinkingBudget;
//   - SAFETY_SETTINGS when the client sent no safety settings;
//   - codeExecution (TOOLS_CODE_EXECUTION_ENABLED) and urlContext
//     (URL_CONTEXT_ENABLED, URL_CONTEXT_MODELS), never together with JSON
//     mode, function tools or a function-calling conversation.
//
// applied names what changed, for logs and tests.
func Inject(body []byte, m models.Model, st *config.Settings) (out []byte, applied []string) {
	budget, hasBudget := st.ThinkingBudgetMap[m.Upstream]
	urlCtx := st.URLContextEnabled && slices.Contains(st.URLContextModels, m.Upstream)
	if !m.Search && !m.Image && !m.NonThinking && !hasBudget && len(st.SafetySettings) == 0 && !st.CodeExecutionEnabled && !urlCtx {
		return body, nil
	}
	if !guard.Valid(body) {
		return body, nil
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return body, nil
	}
	out = body
	set := func(path string, raw []byte, what string) {
		if next, err := sjson.SetRawBytes(out, path, raw); err == nil {
			out = next
			if what != "" {
				applied = append(applied, what)
			}
		}
	}

	// generationConfig, under whichever name the client used.
	gcKey, gc := pick(root, "generationConfig", "generation_config")
	if gc.Exists() && !gc.IsObject() {
		gc = gjson.Result{} // null or junk: treat as absent, replace below
	}
	gcPath := gcKey
	ensureGC := func() {
		if !gc.Exists() {
			set(gcPath, []byte("{}"), "")
			gc = gjson.Parse("{}")
		}
	}

	if m.Image {
		if _, rm := pick(gc, "responseModalities", "response_modalities"); !rm.Exists() {
			ensureGC()
			set(gcPath+".responseModalities", []byte(`["TEXT","IMAGE"]`), "responseModalities")
		}
	}

	tcKey, tc := pick(gc, "thinkingConfig", "thinking_config")
	_, tb := pick(tc, "thinkingBudget", "thinking_budget")
	_, tl := pick(tc, "thinkingLevel", "thinking_level")
	if !tb.Exists() && !tl.Exists() {
		field, value := "", ""
		switch {
		case m.NonThinking:
			field, value = minimalThinking(m.Upstream)
		case hasBudget:
			field, value = "thinkingBudget", strconv.Itoa(budget)
		}
		if field != "" {
			ensureGC()
			if tc.Exists() && !tc.IsObject() {
				set(gcPath+"."+tcKey, []byte("{}"), "")
			}
			set(gcPath+"."+tcKey+"."+field, []byte(value), field)
		}
	}

	if len(st.SafetySettings) > 0 {
		if _, ss := pick(root, "safetySettings", "safety_settings"); !ss.Exists() {
			set("safetySettings", safetyJSON(st), "safetySettings")
		}
	}

	// Tools.
	tools := root.Get("tools")
	has := func(camel, snake string) bool {
		found := false
		each(tools, func(t gjson.Result) {
			if t.Get(camel).Exists() || t.Get(snake).Exists() {
				found = true
			}
		})
		return found
	}
	var add []string
	if m.Search && !has("googleSearch", "google_search") {
		add = append(add, `{"googleSearch":{}}`)
	}
	if st.CodeExecutionEnabled || urlCtx {
		_, mime := pick(gc, "responseMimeType", "response_mime_type")
		jsonMode := strings.EqualFold(strings.TrimSpace(mime.String()), "application/json")
		functions := has("functionDeclarations", "function_declarations") ||
			bytes.Contains(body, []byte(`"functionCall"`)) || bytes.Contains(body, []byte(`"function_call"`))
		if !jsonMode && !functions {
			if st.CodeExecutionEnabled && !m.Search && !m.Image && !has("codeExecution", "code_execution") {
				add = append(add, `{"codeExecution":{}}`)
			}
			if urlCtx && !has("urlContext", "url_context") {
				add = append(add, `{"urlContext":{}}`)
			}
		}
	}
	if len(add) > 0 {
		switch {
		case tools.IsArray():
			for _, t := range add {
				set("tools.-1", []byte(t), toolName(t))
			}
		case tools.IsObject(): // gemini-balance accepted a single tool object
			set("tools", []byte("["+tools.Raw+","+strings.Join(add, ",")+"]"), "tools")
		default:
			set("tools", []byte("["+strings.Join(add, ",")+"]"), "tools")
		}
	}
	return out, applied
}

type safetyEntry struct {
	st  *config.Settings
	raw []byte
}

var safetyCache atomic.Pointer[safetyEntry]

// safetyJSON encodes SAFETY_SETTINGS once per settings version (the live
// settings pointer changes on every update).
func safetyJSON(st *config.Settings) []byte {
	if e := safetyCache.Load(); e != nil && e.st == st {
		return e.raw
	}
	raw, _ := json.Marshal(st.SafetySettings)
	safetyCache.Store(&safetyEntry{st: st, raw: raw})
	return raw
}

// minimalThinking is the "thinking off" setting per model family: budget 0
// where thinking can be disabled, the smallest budget or level elsewhere.
func minimalThinking(model string) (field, value string) {
	switch {
	case strings.Contains(model, "gemini-3") && strings.Contains(model, "pro"):
		return "thinkingLevel", `"LOW"`
	case strings.Contains(model, "gemini-3"):
		return "thinkingLevel", `"MINIMAL"`
	case strings.Contains(model, "2.5-pro"):
		return "thinkingBudget", "128"
	}
	return "thinkingBudget", "0"
}

func toolName(raw string) string {
	if i := strings.IndexByte(raw[2:], '"'); i > 0 {
		return raw[2 : 2+i]
	}
	return "tool"
}

// pick returns the first of two spellings present in obj (camel first).
func pick(obj gjson.Result, camel, snake string) (string, gjson.Result) {
	if !obj.Exists() {
		return camel, gjson.Result{}
	}
	if r := obj.Get(camel); r.Exists() {
		return camel, r
	}
	if r := obj.Get(snake); r.Exists() {
		return snake, r
	}
	return camel, gjson.Result{}
}

// each visits the tools whether sent as an array or a single object.
func each(tools gjson.Result, f func(gjson.Result)) {
	switch {
	case tools.IsArray():
		tools.ForEach(func(_, t gjson.Result) bool { f(t); return true })
	case tools.IsObject():
		f(tools)
	}
}

// RewriteModelField points a body's "model" fields (countTokens'
// generateContentRequest.model, embedding requests) from a derived name to
// the upstream model. Other bytes are untouched.
func RewriteModelField(body []byte, m models.Model) []byte {
	if !m.Derived() || !bytes.Contains(body, []byte(m.Requested)) || !guard.Valid(body) {
		return body
	}
	want := "models/" + m.Upstream
	for _, path := range []string{"model", "generateContentRequest.model", "generate_content_request.model"} {
		if r := gjson.GetBytes(body, path); r.Type == gjson.String && strings.TrimPrefix(r.Str, "models/") == m.Requested {
			if next, err := sjson.SetBytes(body, path, want); err == nil {
				body = next
			}
		}
	}
	if reqs := gjson.GetBytes(body, "requests"); reqs.IsArray() {
		for i, r := range reqs.Array() {
			if mm := r.Get("model"); mm.Type == gjson.String && strings.TrimPrefix(mm.Str, "models/") == m.Requested {
				if next, err := sjson.SetBytes(body, "requests."+strconv.Itoa(i)+".model", want); err == nil {
					body = next
				}
			}
		}
	}
	return body
}
