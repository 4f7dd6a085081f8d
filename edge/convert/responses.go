package convert

// One concern, kept whole: the OpenAI Responses request → Gemini (the answer side is responses_stream.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gemini-balance-go/edge/models"
)

// OpenAI Responses API (POST /v1/responses) → Gemini generateContent. The
// request side reuses the chat converter's pieces (content parts, schema
// reduction, reasoning effort, the injections), so the two OpenAI surfaces
// send Gemini the same body for the same intent. The response side, the
// object and its SSE events, is in responses_stream.go.

// ResponsesRequest is the body of POST /v1/responses. Union fields (input,
// tool_choice, function_call_output.output) stay raw and are read where they
// are converted, so an error names the exact field.
type ResponsesRequest struct {
	Model              string             `json:"model"`
	Instructions       *string            `json:"instructions"`
	Input              json.RawMessage    `json:"input"`
	Tools              []ResponsesTool    `json:"tools"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	ParallelToolCalls  *bool              `json:"parallel_tool_calls"`
	Text               *ResponsesText     `json:"text"`
	Reasoning          *ResponsesThinking `json:"reasoning"`
	Include            []string           `json:"include"`
	MaxOutputTokens    *int               `json:"max_output_tokens"`
	Temperature        *float64           `json:"temperature"`
	TopP               *float64           `json:"top_p"`
	Store              *bool              `json:"store"`
	PreviousResponseID string             `json:"previous_response_id"`
	Background         *bool              `json:"background"`
	Stream             bool               `json:"stream"`
	Metadata           json.RawMessage    `json:"metadata"`
}

// ResponsesItem is one element of input: a message (type "message" or just
// a role), a function_call replayed from an earlier answer, its
// function_call_output, or a reasoning item.
type ResponsesItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// ResponsesPart is one element of a message's content or of a
// function_call_output's output list.
type ResponsesPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL string `json:"image_url"`
	FileID   string `json:"file_id"`
	FileData string `json:"file_data"`
	FileURL  string `json:"file_url"`
	Filename string `json:"filename"`
}

// ResponsesTool is one entry of tools; functions are flat
// ({"type":"function","name":…,"parameters":…}).
type ResponsesTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// ResponsesText is text: the output format.
type ResponsesText struct {
	Format *struct {
		Type   string          `json:"type"`
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict *bool           `json:"strict"`
	} `json:"format"`
}

// ResponsesThinking is reasoning: effort and whether to return summaries.
type ResponsesThinking struct {
	Effort  string `json:"effort"`
	Summary string `json:"summary"`
}

// ResponsesPlan is a converted Responses request.
type ResponsesPlan struct {
	Model  models.Model
	Stream bool
	Body   *GenerateContentRequest
	Drops  []Drop
	// ShowThinking returns thought parts as reasoning items with a summary
	// (the client asked for reasoning.summary and thoughts come back).
	ShowThinking bool
	// Echo is what the response object repeats from the request.
	Echo ResponsesEcho
}

// ResponsesEcho holds the request fields a Response object repeats.
type ResponsesEcho struct {
	Instructions      *string         `json:"instructions"`
	MaxOutputTokens   *int            `json:"max_output_tokens"`
	Metadata          json.RawMessage `json:"metadata"`
	ParallelToolCalls bool            `json:"parallel_tool_calls"`
	Reasoning         json.RawMessage `json:"reasoning"`
	Temperature       *float64        `json:"temperature"`
	Text              json.RawMessage `json:"text"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	Tools             json.RawMessage `json:"tools"`
	TopP              *float64        `json:"top_p"`
}

// ParseResponsesRequest decodes a Responses body. A malformed body gives a
// *FieldError naming the field.
func ParseResponsesRequest(body []byte) (*ResponsesRequest, error) {
	return decodeBody[ResponsesRequest](body)
}

// ResponsesToGemini converts a Responses request. Errors are *FieldError
// (answer 400) unless the fetcher failed for another reason.
//
// Nothing is stored: previous_response_id and store:true are refused, and a
// client sends the whole conversation (as Codex does, with store:false).
func ResponsesToGemini(ctx context.Context, req *ResponsesRequest, opt Options) (*ResponsesPlan, error) {
	s := opt.Settings
	m, err := ResolveModel(req.Model, s)
	if err != nil {
		return nil, err
	}
	if req.PreviousResponseID != "" {
		return nil, fieldErr("previous_response_id", "is not supported: this gateway stores no responses; send the whole conversation in input (with store: false)")
	}
	if req.Store != nil && *req.Store {
		return nil, fieldErr("store", "true is not supported: this gateway stores no responses; send store: false (or leave it out) and replay the conversation in input")
	}
	if req.Background != nil && *req.Background {
		return nil, fieldErr("background", "true is not supported: background responses need a stored response")
	}
	plan := &ResponsesPlan{Model: m, Stream: req.Stream}
	chat := &ChatPlan{Model: m}
	c := converter{ctx: ctx, opt: opt, plan: chat, names: map[string]string{}}
	body := &GenerateContentRequest{}
	plan.Body = body
	if req.Instructions != nil && *req.Instructions != "" {
		body.SystemInstruction = &Content{Parts: []Part{{Text: *req.Instructions}}}
	}
	if err := c.responsesInput(req.Input, body); err != nil {
		return nil, err
	}
	search, err := c.responsesTools(req, body)
	if err != nil {
		return nil, err
	}
	clientThinking, summary, err := c.responsesGeneration(req, body)
	if err != nil {
		return nil, err
	}
	if search {
		m.Search = true
		plan.Model.Search = true
	}
	inject(body, m, s, c.hasMedia, clientThinking, &chat.Drops)
	// A summary is something the client asks for: thoughts come back when it
	// does, whatever the default.
	if summary && thinks(m.Upstream, s) {
		gc := genConfig(body)
		if gc.ThinkingConfig == nil {
			gc.ThinkingConfig = &ThinkingConfig{}
		}
		if gc.ThinkingConfig.ThinkingBudget == nil || *gc.ThinkingConfig.ThinkingBudget != 0 {
			gc.ThinkingConfig.IncludeThoughts = true
		}
	}
	// Thoughts reach the client only when it asked for summaries, as on
	// OpenAI; the body itself stays what the injection policy decided.
	if gc := body.GenerationConfig; summary && gc != nil && gc.ThinkingConfig != nil {
		plan.ShowThinking = gc.ThinkingConfig.IncludeThoughts
	}
	plan.Drops = chat.Drops
	plan.Echo = responsesEcho(req)
	return plan, nil
}

// responsesInput converts input: a string is one user message, a list holds
// items in conversation order.
func (c *converter) responsesInput(raw json.RawMessage, body *GenerateContentRequest) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return fieldErr("input", "is required")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fieldErr("input", "invalid string")
		}
		if s == "" {
			return fieldErr("input", "is empty")
		}
		body.Contents = append(body.Contents, Content{Role: "user", Parts: []Part{{Text: s}}})
		return nil
	}
	if raw[0] != '[' {
		return fieldErr("input", "want a string or an array of input items")
	}
	var items []ResponsesItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return fieldErr("input", "want an array of input items: %v", decodeError(err).Msg)
	}
	for i := range items {
		if err := c.responsesItem(&items[i], fmt.Sprintf("input[%d]", i), body); err != nil {
			return err
		}
	}
	if len(body.Contents) == 0 {
		return fieldErr("input", "holds no user or assistant content")
	}
	c.signUnsignedCalls(body)
	return nil
}

func (c *converter) responsesItem(it *ResponsesItem, field string, body *GenerateContentRequest) error {
	typ := it.Type
	if typ == "" && it.Role != "" {
		typ = "message"
	}
	switch typ {
	case "message":
		switch it.Role {
		case "system", "developer":
			parts, err := c.responsesContent(it.Content, field+".content", true)
			if err != nil {
				return err
			}
			if len(parts) > 0 {
				if body.SystemInstruction == nil {
					body.SystemInstruction = &Content{}
				}
				body.SystemInstruction.Parts = append(body.SystemInstruction.Parts, parts...)
			}
		case "user", "assistant":
			parts, err := c.responsesContent(it.Content, field+".content", false)
			if err != nil {
				return err
			}
			role := "user"
			if it.Role == "assistant" {
				role = "model"
			}
			appendTurn(body, role, parts)
		case "":
			return fieldErr(field+".role", "is required")
		default:
			return fieldErr(field+".role", "want user, assistant, system or developer, got %q", it.Role)
		}
	case "function_call":
		if it.Name == "" {
			return fieldErr(field+".name", "is required")
		}
		if it.CallID == "" {
			return fieldErr(field+".call_id", "is required")
		}
		args := json.RawMessage(`{}`)
		if a := strings.TrimSpace(it.Arguments); a != "" {
			if !json.Valid([]byte(a)) || a[0] != '{' {
				return fieldErr(field+".arguments", "want a JSON object encoded as a string")
			}
			args = json.RawMessage(a)
		}
		c.names[it.CallID] = it.Name
		appendTurn(body, "model", []Part{{FunctionCall: &FunctionCall{Name: it.Name, Args: args}, ThoughtSignature: DecodeToolCallID(it.CallID)}})
	case "function_call_output":
		if it.CallID == "" {
			return fieldErr(field+".call_id", "is required")
		}
		name, ok := c.names[it.CallID]
		if !ok {
			return fieldErr(field+".call_id", "%q matches no function_call item earlier in input", it.CallID)
		}
		resp, err := c.responsesOutput(it.Output, field+".output")
		if err != nil {
			return err
		}
		p := Part{FunctionResponse: &FunctionResponse{Name: name, Response: resp}}
		// The results of one step answer the model turn together.
		if n := len(body.Contents); n > 0 && isResponseTurn(body.Contents[n-1]) {
			body.Contents[n-1].Parts = append(body.Contents[n-1].Parts, p)
		} else {
			body.Contents = append(body.Contents, Content{Role: "user", Parts: []Part{p}})
		}
	case "reasoning":
		// Gemini takes no thoughts back; the signatures it needs ride on call ids.
	case "item_reference":
		return fieldErr(field+".type", "item_reference needs stored responses, which this gateway does not keep")
	case "":
		return fieldErr(field+".type", "is required")
	default:
		c.drop(field, fmt.Sprintf("input item type %q has no Gemini equivalent", typ))
	}
	return nil
}

// appendTurn adds parts as a turn of role, merged into the previous turn
// when that one has the same role and is not a turn of tool results.
func appendTurn(body *GenerateContentRequest, role string, parts []Part) {
	if len(parts) == 0 {
		return
	}
	if n := len(body.Contents); n > 0 && body.Contents[n-1].Role == role && !isResponseTurn(body.Contents[n-1]) {
		body.Contents[n-1].Parts = append(body.Contents[n-1].Parts, parts...)
		return
	}
	body.Contents = append(body.Contents, Content{Role: role, Parts: parts})
}

// signUnsignedCalls gives Gemini 3 its documented placeholder signature on
// the first call of a model turn whose calls carry none (history from
// another model or client), as the chat route does.
func (c *converter) signUnsignedCalls(body *GenerateContentRequest) {
	if !isGemini3(c.plan.Model.Upstream) {
		return
	}
	for i := range body.Contents {
		turn := &body.Contents[i]
		if turn.Role != "model" {
			continue
		}
		first, signed := -1, false
		for k := range turn.Parts {
			if turn.Parts[k].FunctionCall != nil {
				if first < 0 {
					first = k
				}
				signed = signed || turn.Parts[k].ThoughtSignature != ""
			}
		}
		if first >= 0 && !signed {
			turn.Parts[first].ThoughtSignature = "skip_thought_signature_validator"
		}
	}
}

// responsesContent converts a message's content: a string or a list of parts.
func (c *converter) responsesContent(raw json.RawMessage, field string, textOnly bool) ([]Part, error) {
	s, items, err := contentItems[ResponsesPart](raw, field, "want a string or an array of content parts")
	if err != nil || items == nil {
		return appendText(nil, s), err
	}
	return itemParts(items, field, nil, func(it *ResponsesPart, f string) (Part, bool, error) { return c.responsesPart(it, f, textOnly) })
}

func (c *converter) responsesPart(it *ResponsesPart, field string, textOnly bool) (Part, bool, error) {
	switch it.Type {
	case "input_text", "output_text", "text", "summary_text":
		return Part{Text: it.Text}, it.Text != "", nil
	case "refusal":
		return Part{Text: it.Refusal}, it.Refusal != "", nil
	case "":
		return Part{}, false, fieldErr(field+".type", "is required")
	}
	if textOnly {
		c.drop(field, "system and developer messages take text only")
		return Part{}, false, nil
	}
	switch it.Type {
	case "input_image":
		c.hasMedia = true
		switch {
		case it.ImageURL != "":
			p, err := c.imageURL(it.ImageURL, field+".image_url")
			return p, err == nil, err
		case it.FileID != "":
			if err := c.fileRef(field + ".file_id"); err != nil {
				return Part{}, false, err
			}
			return Part{FileData: &FileData{FileURI: c.fileURI(it.FileID)}}, true, nil
		}
		return Part{}, false, fieldErr(field+".image_url", "image_url or file_id is required")
	case "input_file":
		c.hasMedia = true
		switch {
		case strings.HasPrefix(it.FileData, "data:"):
			p, err := dataURLPart(it.FileData, field+".file_data")
			return p, err == nil, err
		case it.FileData != "":
			mime := mimeByName(it.Filename)
			if mime == "" {
				return Part{}, false, fieldErr(field+".filename", "cannot tell the type of %q; send file_data as a data: URL", it.Filename)
			}
			return Part{InlineData: &Blob{MimeType: mime, Data: it.FileData}}, true, nil
		case it.FileID != "":
			if err := c.fileRef(field + ".file_id"); err != nil {
				return Part{}, false, err
			}
			return Part{FileData: &FileData{MimeType: mimeByName(it.Filename), FileURI: c.fileURI(it.FileID)}}, true, nil
		case it.FileURL != "":
			p, err := c.imageURL(it.FileURL, field+".file_url")
			if err == nil && p.FileData != nil && p.FileData.MimeType == "" {
				p.FileData.MimeType = mimeByName(it.Filename)
			}
			return p, err == nil, err
		}
		return Part{}, false, fieldErr(field+".file_data", "file_data, file_id or file_url is required")
	}
	return Part{}, false, fieldErr(field+".type", "unsupported content part type %q", it.Type)
}

// responsesOutput makes a functionResponse.response from a
// function_call_output: a string as the chat route takes a tool message, a
// list of parts by its text.
func (c *converter) responsesOutput(raw json.RawMessage, field string) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var items []ResponsesPart
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fieldErr(field, "want a string or an array of content parts: %v", decodeError(err).Msg)
		}
		var sb strings.Builder
		for j := range items {
			switch items[j].Type {
			case "input_text", "output_text", "text":
				sb.WriteString(items[j].Text)
			case "":
				return nil, fieldErr(fmt.Sprintf("%s[%d].type", field, j), "is required")
			default:
				c.drop(fmt.Sprintf("%s[%d]", field, j), "function outputs take text only")
			}
		}
		b, _ := json.Marshal(sb.String())
		raw = b
	}
	return c.toolResult(raw, field)
}

// responsesTools maps the function tools and tool_choice. It reports
// whether a web_search tool asked for Google Search grounding.
func (c *converter) responsesTools(req *ResponsesRequest, body *GenerateContentRequest) (search bool, err error) {
	var decls []FunctionDeclaration
	seen := map[string]bool{}
	for i, t := range req.Tools {
		f := fmt.Sprintf("tools[%d]", i)
		switch t.Type {
		case "function":
		case "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11":
			search = true
			continue
		case "":
			return false, fieldErr(f+".type", "is required")
		default:
			c.drop(f, fmt.Sprintf("tool type %q has no Gemini equivalent", t.Type))
			continue
		}
		if t.Name == "" {
			return false, fieldErr(f+".name", "is required")
		}
		if seen[t.Name] {
			c.drop(f, "duplicate function name "+t.Name)
			continue
		}
		seen[t.Name] = true
		fd, err := c.declaration(t.Name, t.Description, t.Parameters, f+".parameters")
		if err != nil {
			return false, err
		}
		decls = append(decls, fd)
	}
	if len(decls) > 0 {
		body.Tools = append(body.Tools, Tool{FunctionDeclarations: decls})
		if search {
			c.drop("tools", "web_search left out: Gemini does not combine Google Search with function tools")
			search = false
		}
	}
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls && len(decls) > 0 {
		c.drop("parallel_tool_calls", "Gemini cannot forbid parallel calls")
	}
	fcc, err := responsesToolChoice(req.ToolChoice, seen, &c.plan.Drops)
	if err != nil {
		return false, err
	}
	if fcc != nil {
		if len(decls) == 0 && fcc.Mode != "NONE" && fcc.Mode != "AUTO" {
			return false, fieldErr("tool_choice", "requires a function call but the request declares no function tools")
		}
		if len(decls) > 0 {
			body.ToolConfig = &ToolConfig{FunctionCallingConfig: fcc}
		}
	}
	return search, nil
}

// responsesToolChoice maps tool_choice: none/auto/required, a named function
// ({"type":"function","name":…}) or allowed_tools.
func responsesToolChoice(raw json.RawMessage, declared map[string]bool, drops *[]Drop) (*FunctionCallingConfig, error) {
	if fcc, done, err := toolChoiceString(raw, "tool_choice", "none, auto, required or an object"); done {
		return fcc, err
	}
	var obj struct {
		Type  string `json:"type"`
		Name  string `json:"name"`
		Mode  string `json:"mode"`
		Tools []struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fieldErr("tool_choice", "want a string or an object")
	}
	switch obj.Type {
	case "function":
		return namedChoice(obj.Name, "tool_choice.name", declared)
	case "allowed_tools":
		cfg := &FunctionCallingConfig{Mode: "VALIDATED"}
		switch obj.Mode {
		case "", "auto":
		case "required":
			cfg.Mode = "ANY"
		default:
			return nil, fieldErr("tool_choice.mode", "want auto or required, got %q", obj.Mode)
		}
		for i, t := range obj.Tools {
			if t.Type != "function" {
				*drops = append(*drops, Drop{fmt.Sprintf("tool_choice.tools[%d]", i), "only function tools can be allowed"})
				continue
			}
			if !declared[t.Name] {
				return nil, fieldErr(fmt.Sprintf("tool_choice.tools[%d].name", i), "%q is not a declared function", t.Name)
			}
			cfg.AllowedFunctionNames = append(cfg.AllowedFunctionNames, t.Name)
		}
		return cfg, nil
	case "":
		return nil, fieldErr("tool_choice.type", "is required")
	}
	*drops = append(*drops, Drop{"tool_choice", fmt.Sprintf("tool choice %q has no Gemini equivalent", obj.Type)})
	return nil, nil
}

// responsesGeneration maps the output controls. It reports whether the
// client chose the thinking settings and whether it asked for summaries.
func (c *converter) responsesGeneration(req *ResponsesRequest, body *GenerateContentRequest) (clientThinking, summary bool, err error) {
	gc := &GenerationConfig{Temperature: req.Temperature, TopP: req.TopP}
	if req.MaxOutputTokens != nil {
		if *req.MaxOutputTokens < 1 {
			return false, false, fieldErr("max_output_tokens", "must be at least 1")
		}
		gc.MaxOutputTokens = req.MaxOutputTokens
	}
	if req.Text != nil && req.Text.Format != nil {
		f := req.Text.Format
		switch f.Type {
		case "", "text":
		case "json_object":
			gc.ResponseMimeType = "application/json"
		case "json_schema":
			if len(bytes.TrimSpace(f.Schema)) == 0 || string(bytes.TrimSpace(f.Schema)) == "null" {
				return false, false, fieldErr("text.format.schema", "is required")
			}
			schema, err := reduceSchema(f.Schema, "text.format.schema", &c.plan.Drops)
			if err != nil {
				return false, false, err
			}
			gc.ResponseMimeType = "application/json"
			gc.ResponseJSONSchema = schema
		default:
			return false, false, fieldErr("text.format.type", "want text, json_object or json_schema, got %q", f.Type)
		}
	}
	if r := req.Reasoning; r != nil {
		switch r.Summary {
		case "", "none":
		case "auto", "concise", "detailed":
			summary = true
		default:
			return false, false, fieldErr("reasoning.summary", "want auto, concise or detailed, got %q", r.Summary)
		}
		if r.Effort != "" {
			applied, err := c.effort(gc, "reasoning.effort", r.Effort)
			if err != nil {
				return false, false, fieldErr("reasoning.effort", "want none, minimal, low, medium, high, xhigh or max, got %q", r.Effort)
			}
			clientThinking = clientThinking || applied
		}
	}
	if !gc.empty() {
		body.GenerationConfig = gc
	}
	return clientThinking, summary, nil
}

// responsesEcho copies what a Response object repeats, with OpenAI's
// defaults where the request left a field out.
func responsesEcho(req *ResponsesRequest) ResponsesEcho {
	e := ResponsesEcho{
		Instructions:      req.Instructions,
		MaxOutputTokens:   req.MaxOutputTokens,
		Metadata:          json.RawMessage(`{}`),
		ParallelToolCalls: req.ParallelToolCalls == nil || *req.ParallelToolCalls,
		Reasoning:         json.RawMessage(`{"effort":null,"summary":null}`),
		Temperature:       req.Temperature,
		Text:              json.RawMessage(`{"format":{"type":"text"}}`),
		ToolChoice:        json.RawMessage(`"auto"`),
		Tools:             json.RawMessage(`[]`),
		TopP:              req.TopP,
	}
	if m := bytes.TrimSpace(req.Metadata); len(m) > 0 && m[0] == '{' {
		e.Metadata = m
	}
	if tc := bytes.TrimSpace(req.ToolChoice); len(tc) > 0 && string(tc) != "null" {
		e.ToolChoice = tc
	}
	if len(req.Tools) > 0 {
		e.Tools, _ = json.Marshal(req.Tools)
	}
	if req.Text != nil && req.Text.Format != nil {
		e.Text, _ = json.Marshal(req.Text)
	}
	if req.Reasoning != nil {
		r := struct {
			Effort  *string `json:"effort"`
			Summary *string `json:"summary"`
		}{}
		if req.Reasoning.Effort != "" {
			r.Effort = &req.Reasoning.Effort
		}
		if req.Reasoning.Summary != "" {
			r.Summary = &req.Reasoning.Summary
		}
		e.Reasoning, _ = json.Marshal(r)
	}
	return e
}
