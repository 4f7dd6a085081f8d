package native

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/guard"
)

// Inject applies the injection policy (models.Decide) to a
// generateContent request body and leaves every other byte as the client
// sent it (unknown fields, toolConfig, thoughtSignature, snake_case names,
// the client's own safetySettings). It reads the request's facts from the
// JSON, lets the policy decide, and edits the JSON in place by path, so it
// never re-encodes what it does not touch; when nothing applies it returns
// body itself. A body that is not a JSON object is returned unchanged for
// upstream to judge. The error is the policy's *models.OfferError.
//
// applied names what changed, for logs and tests.
func Inject(body []byte, m models.Model, st *config.Settings) (out []byte, applied []string, err error) {
	if err := m.Offered(); err != nil {
		return body, nil, err
	}
	if !guard.Valid(body) {
		return body, nil, nil
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return body, nil, nil
	}

	// The request's facts, under whichever spelling the client used. One
	// pass over the top level: a lookup of an absent key would scan the
	// whole body (contents included) each time.
	var top struct{ gc, gcSnake, ss, ssSnake, sys, sysSnake, tools, contents gjson.Result }
	root.ForEach(func(k, v gjson.Result) bool {
		var slot *gjson.Result
		switch k.Str {
		case "generationConfig":
			slot = &top.gc
		case "generation_config":
			slot = &top.gcSnake
		case "safetySettings":
			slot = &top.ss
		case "safety_settings":
			slot = &top.ssSnake
		case "systemInstruction":
			slot = &top.sys
		case "system_instruction":
			slot = &top.sysSnake
		case "tools":
			slot = &top.tools
		case "contents":
			slot = &top.contents
		}
		if slot != nil && !slot.Exists() { // the first of duplicate keys, as gjson.Get finds
			*slot = v
		}
		return true
	})
	gcKey, gc := first("generationConfig", top.gc, "generation_config", top.gcSnake)
	if gc.Exists() && !gc.IsObject() {
		gc = gjson.Result{} // null or junk: treat as absent, replace below
	}
	tcKey, tc := pick(gc, "thinkingConfig", "thinking_config")
	_, tb := pick(tc, "thinkingBudget", "thinking_budget")
	_, tl := pick(tc, "thinkingLevel", "thinking_level")
	_, ti := pick(tc, "includeThoughts", "include_thoughts")
	_, mime := pick(gc, "responseMimeType", "response_mime_type")
	_, rm := pick(gc, "responseModalities", "response_modalities")
	_, ss := first("safetySettings", top.ss, "safety_settings", top.ssSnake)
	sysKey, sys := first("systemInstruction", top.sys, "system_instruction", top.sysSnake)
	tools := top.tools
	has := func(camel, snake string) bool {
		found := false
		each(tools, func(t gjson.Result) {
			if t.Get(camel).Exists() || t.Get(snake).Exists() {
				found = true
			}
		})
		return found
	}
	mt := strings.ToLower(strings.TrimSpace(mime.String()))
	media, calls := scanParts(top.contents)
	f := models.Facts{
		HasMedia:         media,
		FunctionCalling:  calls || has("functionDeclarations", "function_declarations"),
		StructuredOutput: mt != "" && mt != "text/plain",
		ClientThinking:   tb.Exists() || tl.Exists(),
		ThinkingOff:      tb.Exists() && tb.Type == gjson.Number && tb.Int() == 0,
		ClientSafety:     ss.Exists(),
		ClientModalities: rm.Exists(),
		HasSystem:        sys.Exists() && sys.Type != gjson.Null,
	}
	// Gemini's own default is no thoughts: a native client that did not ask
	// for them said no, and SHOW_THINKING_PROCESS does not override it.
	thoughts := ti.Exists() && ti.Bool()
	f.IncludeThoughts = &thoughts
	in, err := models.Decide(m, st, f)
	if err != nil || in.Empty() {
		return body, nil, err
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
	gcPath := gcKey
	ensureGC := func() {
		if !gc.Exists() {
			set(gcPath, []byte("{}"), "")
			gc = gjson.Parse("{}")
		}
	}

	if in.DropSystem {
		if next, err := sjson.DeleteBytes(out, sysKey); err == nil {
			out = next
			applied = append(applied, "-systemInstruction")
		}
	}
	if in.ResponseModalities != nil {
		ensureGC()
		raw, _ := json.Marshal(in.ResponseModalities)
		set(gcPath+".responseModalities", raw, "responseModalities")
	}
	if in.ThinkingBudget != nil || in.ThinkingLevel != "" || in.IncludeThoughts {
		ensureGC()
		if tc.Exists() && !tc.IsObject() {
			set(gcPath+"."+tcKey, []byte("{}"), "")
		}
		tcPath := gcPath + "." + tcKey
		if in.ThinkingBudget != nil {
			set(tcPath+".thinkingBudget", []byte(strconv.Itoa(*in.ThinkingBudget)), "thinkingBudget")
		}
		if in.ThinkingLevel != "" {
			set(tcPath+".thinkingLevel", []byte(strconv.Quote(in.ThinkingLevel)), "thinkingLevel")
		}
		if in.IncludeThoughts {
			set(tcPath+".includeThoughts", []byte("true"), "includeThoughts")
		}
	}
	if in.SafetySettings != nil {
		set("safetySettings", safetyJSON(st), "safetySettings")
	}

	var add []string
	for _, t := range in.Tools {
		snake := map[string]string{models.ToolGoogleSearch: "google_search", models.ToolCodeExecution: "code_execution", models.ToolURLContext: "url_context"}[t]
		if !has(t, snake) {
			add = append(add, `{"`+t+`":{}}`)
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
	return out, applied, nil
}

// scanParts walks the contents' parts once (keys only; values are
// skipped) for media (inline or file data) and function calling (a call or
// a response), in either spelling.
func scanParts(contents gjson.Result) (media, calls bool) {
	contents.ForEach(func(_, c gjson.Result) bool {
		c.Get("parts").ForEach(func(_, p gjson.Result) bool {
			p.ForEach(func(k, _ gjson.Result) bool {
				switch k.Str {
				case "inlineData", "inline_data", "fileData", "file_data":
					media = true
				case "functionCall", "function_call", "functionResponse", "function_response":
					calls = true
				}
				return true
			})
			return !(media && calls)
		})
		return !(media && calls)
	})
	return media, calls
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

func toolName(raw string) string {
	if i := strings.IndexByte(raw[2:], '"'); i > 0 {
		return raw[2 : 2+i]
	}
	return "tool"
}

// first returns the first of two spellings present (camel first), under
// the camel name when neither is.
func first(camel string, c gjson.Result, snake string, sn gjson.Result) (string, gjson.Result) {
	switch {
	case c.Exists():
		return camel, c
	case sn.Exists():
		return snake, sn
	}
	return camel, gjson.Result{}
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
