package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Chat tools and tool_choice → Gemini functionDeclarations and toolConfig.

// toolResult makes a functionResponse.response object from a tool message:
// a JSON object goes as is, any other JSON value or plain text is wrapped as
// {"result": ...}.
func (c *converter) toolResult(raw json.RawMessage, field string) (json.RawMessage, error) {
	parts, err := c.content(raw, field, true)
	if err != nil {
		return nil, err
	}
	var text string
	if len(parts) == 1 {
		text = parts[0].Text
	} else {
		var sb strings.Builder
		for _, p := range parts {
			sb.WriteString(p.Text)
		}
		text = sb.String()
	}
	t := strings.TrimSpace(text)
	if t != "" && t[0] == '{' && json.Valid([]byte(t)) {
		return json.RawMessage(t), nil
	}
	out := make([]byte, 0, len(t)+16)
	out = append(out, `{"result":`...)
	if t != "" && json.Valid([]byte(t)) {
		out = append(out, t...)
	} else {
		out = appendString(out, text)
	}
	return append(out, '}'), nil
}

func (c *converter) tools(req *ChatRequest, body *GenerateContentRequest) error {
	defs := req.Functions
	fieldOf := func(i int) string { return fmt.Sprintf("functions[%d]", i) }
	if len(req.Tools) > 0 {
		defs = make([]FunctionDef, 0, len(req.Tools))
		idx := make([]int, 0, len(req.Tools))
		for i, t := range req.Tools {
			if t.Type != "function" && t.Type != "" {
				c.drop(fmt.Sprintf("tools[%d]", i), fmt.Sprintf("tool type %q has no Gemini equivalent", t.Type))
				continue
			}
			if t.Function == nil {
				return fieldErr(fmt.Sprintf("tools[%d].function", i), "is required")
			}
			defs = append(defs, *t.Function)
			idx = append(idx, i)
		}
		fieldOf = func(i int) string { return fmt.Sprintf("tools[%d].function", idx[i]) }
	}
	var decls []FunctionDeclaration
	seen := map[string]bool{}
	search := false
	for i, d := range defs {
		f := fieldOf(i)
		if d.Name == "" {
			return fieldErr(f+".name", "is required")
		}
		if d.Name == "googleSearch" || d.Name == "google_search" {
			search = true // a client's web-search toggle
			continue
		}
		if seen[d.Name] {
			c.drop(f, "duplicate function name "+d.Name)
			continue
		}
		seen[d.Name] = true
		fd, err := c.declaration(d.Name, d.Description, d.Parameters, f+".parameters")
		if err != nil {
			return err
		}
		decls = append(decls, fd)
	}
	if len(decls) > 0 {
		body.Tools = append(body.Tools, Tool{FunctionDeclarations: decls})
	} else if search {
		body.Tools = append(body.Tools, Tool{GoogleSearch: &struct{}{}})
	}
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls && len(decls) > 0 {
		c.drop("parallel_tool_calls", "Gemini cannot forbid parallel calls")
	}

	choice, field := req.ToolChoice, "tool_choice"
	if len(bytes.TrimSpace(choice)) == 0 && len(req.FunctionCall) > 0 {
		choice, field = req.FunctionCall, "function_call"
	}
	fcc, err := toolChoice(choice, field, seen)
	if err != nil {
		return err
	}
	if fcc != nil {
		if len(decls) == 0 && fcc.Mode != "NONE" {
			return fieldErr(field, "names a tool mode but the request declares no function tools")
		}
		if len(decls) > 0 {
			body.ToolConfig = &ToolConfig{FunctionCallingConfig: fcc}
		}
	}
	return nil
}

func toolChoice(raw json.RawMessage, field string, declared map[string]bool) (*FunctionCallingConfig, error) {
	if fcc, done, err := toolChoiceString(raw, field, "none, auto, required or a function", "any"); done {
		return fcc, err
	}
	var obj struct {
		Type     string `json:"type"`
		Name     string `json:"name"` // legacy function_call {"name": ...}
		Function *struct {
			Name string `json:"name"`
		} `json:"function"`
		AllowedTools *struct {
			Mode  string `json:"mode"`
			Tools []struct {
				Function *struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tools"`
		} `json:"allowed_tools"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fieldErr(field, "want a string or an object")
	}
	switch {
	case obj.Type == "allowed_tools" && obj.AllowedTools != nil:
		cfg := &FunctionCallingConfig{Mode: "VALIDATED"}
		if obj.AllowedTools.Mode == "required" {
			cfg.Mode = "ANY"
		}
		for i, t := range obj.AllowedTools.Tools {
			if t.Function == nil || !declared[t.Function.Name] {
				return nil, fieldErr(fmt.Sprintf("%s.allowed_tools.tools[%d].function.name", field, i), "is not a declared function")
			}
			cfg.AllowedFunctionNames = append(cfg.AllowedFunctionNames, t.Function.Name)
		}
		return cfg, nil
	case obj.Function != nil:
		return namedChoice(obj.Function.Name, field+".function.name", declared)
	case obj.Name != "":
		return namedChoice(obj.Name, field+".name", declared)
	}
	return nil, fieldErr(field+".type", "want function or allowed_tools")
}

// declaration makes a function declaration of every surface: the parameter
// schema reduced to what Gemini takes, left out when it says nothing.
func (c *converter) declaration(name, description string, params json.RawMessage, field string) (FunctionDeclaration, error) {
	fd := FunctionDeclaration{Name: name, Description: description}
	if p := bytes.TrimSpace(params); len(p) > 0 && string(p) != "null" {
		schema, err := reduceSchema(p, field, &c.plan.Drops)
		if err != nil {
			return fd, err
		}
		if !emptyObjectSchema(schema) {
			fd.ParametersJSONSchema = schema
		}
	}
	return fd, nil
}

// toolChoiceString maps the string forms of tool_choice the OpenAI surfaces
// share (none, auto, required, plus extra names for required). It reports
// done=false for an object, which each surface reads its own way.
func toolChoiceString(raw json.RawMessage, field, want string, required ...string) (fcc *FunctionCallingConfig, done bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true, nil
	}
	if raw[0] != '"' {
		return nil, false, nil
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	switch {
	case s == "none":
		return &FunctionCallingConfig{Mode: "NONE"}, true, nil
	case s == "auto":
		return &FunctionCallingConfig{Mode: "AUTO"}, true, nil
	case s == "required" || slices.Contains(required, s):
		return &FunctionCallingConfig{Mode: "ANY"}, true, nil
	}
	return nil, true, fieldErr(field, "want %s, got %q", want, s)
}

// namedChoice is a tool_choice naming one declared function: call it.
func namedChoice(name, field string, declared map[string]bool) (*FunctionCallingConfig, error) {
	if name == "" {
		return nil, fieldErr(field, "is required")
	}
	if !declared[name] {
		return nil, fieldErr(field, "%q is not a declared function", name)
	}
	return &FunctionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{name}}, nil
}
