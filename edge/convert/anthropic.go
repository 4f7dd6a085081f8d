package convert

// One concern, kept whole: the Anthropic Messages request → Gemini (the answer side is anthropic_response.go).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/shared/config"
)

// Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens) to
// Gemini and back. The request side reuses the chat converter's media,
// schema and thinking helpers and ends in the same inject step, so a model
// gets the same server-side injections whichever surface it is called on.
//
// Thought signatures cross the stateless client twice over: as the signature
// of a thinking block placed just before the part that carried it (what
// Anthropic clients replay verbatim), and inside the tool_use id (which comes
// back as tool_result.tool_use_id even from clients that drop thinking
// blocks). Both are tagged so a real Claude signature never reaches Gemini.

// MessagesRequest is the body of POST /v1/messages (and count_tokens, which
// has no max_tokens or stream).
type MessagesRequest struct {
	Model         string             `json:"model"`
	MaxTokens     *int               `json:"max_tokens"`
	System        json.RawMessage    `json:"system"`
	Messages      []AnthropicMessage `json:"messages"`
	Tools         []AnthropicTool    `json:"tools"`
	ToolChoice    *AnthropicChoice   `json:"tool_choice"`
	Thinking      *AnthropicThinking `json:"thinking"`
	StopSequences []string           `json:"stop_sequences"`
	Temperature   *float64           `json:"temperature"`
	TopP          *float64           `json:"top_p"`
	TopK          *int               `json:"top_k"`
	Stream        bool               `json:"stream"`
	OutputConfig  *struct {
		Effort string `json:"effort"`
		Format *struct {
			Type   string          `json:"type"`
			Schema json.RawMessage `json:"schema"`
		} `json:"format"`
	} `json:"output_config"`
}

// AnthropicMessage is one turn; Content is a string or an array of blocks.
type AnthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// AnthropicBlock is any content block; Type says which fields apply.
type AnthropicBlock struct {
	Type      string           `json:"type"`
	Text      string           `json:"text"`
	Source    *AnthropicSource `json:"source"`
	ID        string           `json:"id"`          // tool_use
	Name      string           `json:"name"`        // tool_use
	Input     json.RawMessage  `json:"input"`       // tool_use
	ToolUseID string           `json:"tool_use_id"` // tool_result
	Content   json.RawMessage  `json:"content"`     // tool_result: string or blocks
	IsError   bool             `json:"is_error"`    // tool_result
	Thinking  string           `json:"thinking"`    // thinking
	Signature string           `json:"signature"`   // thinking
	Data      string           `json:"data"`        // redacted_thinking
}

// AnthropicSource is an image or document source.
type AnthropicSource struct {
	Type      string `json:"type"` // base64, url, file, text
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
	FileID    string `json:"file_id"`
}

// AnthropicTool is a client tool (name, input_schema) or a server tool
// (a versioned type such as web_search_20250305).
type AnthropicTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// AnthropicChoice is tool_choice.
type AnthropicChoice struct {
	Type                   string `json:"type"` // auto, any, none, tool
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

// AnthropicThinking is thinking: enabled{budget_tokens}, disabled, adaptive.
type AnthropicThinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
}

// MessagesPlan is a converted Messages request.
type MessagesPlan struct {
	Model  models.Model
	Stream bool
	Body   *GenerateContentRequest
	Drops  []Drop
}

// ParseMessagesRequest decodes a Messages body; errors are *FieldError.
func ParseMessagesRequest(body []byte) (*MessagesRequest, error) {
	return decodeBody[MessagesRequest](body)
}

// ClaudeModelError is the refusal of a claude-* model name: the gateway
// serves Gemini only and does not guess which Gemini model a client meant.
func ClaudeModelError(name string) *FieldError {
	return fieldErr("model", "%s is not served here: this gateway serves Gemini models; name one (e.g. gemini-2.5-pro), "+
		"for Claude Code with ANTHROPIC_MODEL and ANTHROPIC_DEFAULT_{OPUS,SONNET,HAIKU}_MODEL", name)
}

// IsClaudeModel tells the names of Anthropic's own models.
func IsClaudeModel(name string) bool {
	n := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "models/"))
	return strings.HasPrefix(n, "claude") || strings.HasPrefix(n, "anthropic")
}

// MessagesToGemini converts a Messages request. count is true for
// count_tokens (max_tokens is not required there). Errors are *FieldError
// unless the fetcher failed for another reason.
func MessagesToGemini(ctx context.Context, req *MessagesRequest, opt Options, count bool) (*MessagesPlan, error) {
	s := opt.Settings
	if IsClaudeModel(req.Model) {
		return nil, ClaudeModelError(req.Model)
	}
	m, err := ResolveModel(req.Model, s)
	if err != nil {
		return nil, err
	}
	if !count {
		if req.MaxTokens == nil {
			return nil, fieldErr("max_tokens", "is required")
		}
		if *req.MaxTokens < 1 {
			return nil, fieldErr("max_tokens", "must be at least 1")
		}
	}
	if len(req.Messages) == 0 {
		return nil, fieldErr("messages", "must hold at least one message")
	}
	chat := &ChatPlan{Model: m}
	c := converter{ctx: ctx, opt: opt, plan: chat, names: map[string]string{}}
	body := &GenerateContentRequest{}
	if err := c.anthropicSystem(req.System, body); err != nil {
		return nil, err
	}
	if err := c.anthropicMessages(req.Messages, body); err != nil {
		return nil, err
	}
	if err := c.anthropicTools(req, body); err != nil {
		return nil, err
	}
	clientThinking, err := c.anthropicGeneration(req, body, count)
	if err != nil {
		return nil, err
	}
	inject(body, m, s, c.hasMedia, clientThinking, &chat.Drops)
	if gc := body.GenerationConfig; gc != nil && gc.ThinkingConfig != nil && *gc.ThinkingConfig == (ThinkingConfig{thoughtsSaid: true}) {
		gc.ThinkingConfig = nil // "no thoughts" and nothing else: the default, sent as nothing
		if gc.empty() {
			body.GenerationConfig = nil
		}
	}
	return &MessagesPlan{Model: m, Stream: req.Stream && !count, Body: body, Drops: chat.Drops}, nil
}

// CountTokensBody is the body of Gemini's :countTokens for a converted
// request: the generateContentRequest form, so system and tools count too.
func (p *MessagesPlan) CountTokensBody() ([]byte, error) {
	inner := struct {
		Model             string      `json:"model"`
		Contents          []Content   `json:"contents"`
		SystemInstruction *Content    `json:"systemInstruction,omitempty"`
		Tools             []Tool      `json:"tools,omitempty"`
		ToolConfig        *ToolConfig `json:"toolConfig,omitempty"`
	}{"models/" + p.Model.Upstream, p.Body.Contents, p.Body.SystemInstruction, p.Body.Tools, p.Body.ToolConfig}
	return json.Marshal(struct {
		GenerateContentRequest any `json:"generateContentRequest"`
	}{inner})
}

func (c *converter) anthropicSystem(raw json.RawMessage, body *GenerateContentRequest) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var parts []Part
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fieldErr("system", "invalid string")
		}
		if s != "" {
			parts = append(parts, Part{Text: s})
		}
	case '[':
		var blocks []AnthropicBlock
		if err := json.Unmarshal(raw, &blocks); err != nil {
			return fieldErr("system", "want a string or an array of text blocks: %v", decodeError(err).Msg)
		}
		for i, b := range blocks {
			if b.Type != "text" {
				return fieldErr(fmt.Sprintf("system[%d].type", i), "want text, got %q", b.Type)
			}
			if b.Text != "" {
				parts = append(parts, Part{Text: b.Text})
			}
		}
	default:
		return fieldErr("system", "want a string or an array of text blocks")
	}
	if len(parts) > 0 {
		body.SystemInstruction = &Content{Parts: parts}
	}
	return nil
}

// anthropicBlocks decodes a content: a string is one text block.
func anthropicBlocks(raw json.RawMessage, field string) ([]AnthropicBlock, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fieldErr(field, "is required")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fieldErr(field, "invalid string")
		}
		return []AnthropicBlock{{Type: "text", Text: s}}, nil
	case '[':
		var blocks []AnthropicBlock
		if err := json.Unmarshal(raw, &blocks); err != nil {
			return nil, fieldErr(field, "want an array of content blocks: %v", decodeError(err).Msg)
		}
		return blocks, nil
	}
	return nil, fieldErr(field, "want a string or an array of content blocks")
}

func (c *converter) anthropicMessages(msgs []AnthropicMessage, body *GenerateContentRequest) error {
	gemini3 := isGemini3(c.plan.Model.Upstream)
	for i := range msgs {
		msg := &msgs[i]
		field := fmt.Sprintf("messages[%d]", i)
		blocks, err := anthropicBlocks(msg.Content, field+".content")
		if err != nil {
			return err
		}
		var parts []Part
		switch msg.Role {
		case "user":
			parts, err = c.anthropicUser(blocks, field+".content")
		case "assistant":
			parts, err = c.anthropicAssistant(blocks, field+".content", gemini3)
		case "":
			return fieldErr(field+".role", "is required")
		default:
			return fieldErr(field+".role", "want user or assistant, got %q", msg.Role)
		}
		if err != nil {
			return err
		}
		if len(parts) == 0 {
			continue
		}
		role := "user"
		if msg.Role == "assistant" {
			role = "model"
		}
		// Consecutive turns of one role are one Gemini turn.
		if n := len(body.Contents); n > 0 && body.Contents[n-1].Role == role {
			body.Contents[n-1].Parts = append(body.Contents[n-1].Parts, parts...)
		} else {
			body.Contents = append(body.Contents, Content{Role: role, Parts: parts})
		}
	}
	if len(body.Contents) == 0 {
		return fieldErr("messages", "hold no content")
	}
	return nil
}

func (c *converter) anthropicUser(blocks []AnthropicBlock, field string) ([]Part, error) {
	var results, rest []Part
	for j := range blocks {
		b := &blocks[j]
		f := fmt.Sprintf("%s[%d]", field, j)
		switch b.Type {
		case "text":
			if b.Text != "" {
				rest = append(rest, Part{Text: b.Text})
			}
		case "image", "document":
			p, ok, err := c.anthropicMedia(b, f)
			if err != nil {
				return nil, err
			}
			if ok {
				rest = append(rest, p)
			}
		case "tool_result":
			if b.ToolUseID == "" {
				return nil, fieldErr(f+".tool_use_id", "is required")
			}
			name, ok := c.names[b.ToolUseID]
			if !ok {
				return nil, fieldErr(f+".tool_use_id", "%q matches no tool_use of an earlier assistant message", b.ToolUseID)
			}
			resp, media, err := c.anthropicToolResult(b, f)
			if err != nil {
				return nil, err
			}
			results = append(results, Part{FunctionResponse: &FunctionResponse{Name: name, Response: resp}})
			rest = append(rest, media...)
		case "thinking", "redacted_thinking", "tool_use":
			return nil, fieldErr(f+".type", "%s blocks belong in assistant messages", b.Type)
		case "":
			return nil, fieldErr(f+".type", "is required")
		default:
			c.drop(f, fmt.Sprintf("content block type %q has no Gemini equivalent", b.Type))
		}
	}
	// Function responses lead the turn, answering the model's calls in order.
	return append(results, rest...), nil
}

func (c *converter) anthropicMedia(b *AnthropicBlock, f string) (Part, bool, error) {
	src := b.Source
	if src == nil {
		return Part{}, false, fieldErr(f+".source", "is required")
	}
	c.hasMedia = true
	switch src.Type {
	case "base64":
		if src.MediaType == "" || !strings.Contains(src.MediaType, "/") {
			return Part{}, false, fieldErr(f+".source.media_type", "is required (e.g. image/png)")
		}
		if src.Data == "" {
			return Part{}, false, fieldErr(f+".source.data", "is required")
		}
		return Part{InlineData: &Blob{MimeType: src.MediaType, Data: src.Data}}, true, nil
	case "url":
		if src.URL == "" {
			return Part{}, false, fieldErr(f+".source.url", "is required")
		}
		p, err := c.imageURL(src.URL, f+".source.url")
		return p, err == nil, err
	case "file":
		if src.FileID == "" {
			return Part{}, false, fieldErr(f+".source.file_id", "is required")
		}
		if err := c.fileRef(f + ".source.file_id"); err != nil {
			return Part{}, false, err
		}
		return Part{FileData: &FileData{FileURI: c.fileURI(src.FileID)}}, true, nil
	case "text":
		if b.Type == "document" {
			return Part{Text: src.Data}, src.Data != "", nil
		}
	case "":
		return Part{}, false, fieldErr(f+".source.type", "is required")
	}
	return Part{}, false, fieldErr(f+".source.type", "unsupported %s source type %q", b.Type, src.Type)
}

// anthropicToolResult makes a functionResponse.response: a JSON object text
// goes as is, other text as {"result": ...} ({"error": ...} when is_error);
// image blocks become parts of the same user turn.
func (c *converter) anthropicToolResult(b *AnthropicBlock, f string) (json.RawMessage, []Part, error) {
	var text strings.Builder
	var media []Part
	raw := bytes.TrimSpace(b.Content)
	if len(raw) > 0 && string(raw) != "null" {
		blocks, err := anthropicBlocks(raw, f+".content")
		if err != nil {
			return nil, nil, err
		}
		for k := range blocks {
			bk := &blocks[k]
			switch bk.Type {
			case "text":
				text.WriteString(bk.Text)
			case "image", "document":
				p, ok, err := c.anthropicMedia(bk, fmt.Sprintf("%s.content[%d]", f, k))
				if err != nil {
					return nil, nil, err
				}
				if ok {
					media = append(media, p)
				}
			default:
				c.drop(fmt.Sprintf("%s.content[%d]", f, k), fmt.Sprintf("tool_result block type %q has no Gemini equivalent", bk.Type))
			}
		}
	}
	t := strings.TrimSpace(text.String())
	if !b.IsError && t != "" && t[0] == '{' && json.Valid([]byte(t)) {
		return json.RawMessage(t), media, nil
	}
	key := `{"result":`
	if b.IsError {
		key = `{"error":`
	}
	out := append(make([]byte, 0, len(t)+16), key...)
	if t != "" && json.Valid([]byte(t)) {
		out = append(out, t...)
	} else {
		out = appendString(out, text.String())
	}
	return append(out, '}'), media, nil
}

func (c *converter) anthropicAssistant(blocks []AnthropicBlock, field string, gemini3 bool) ([]Part, error) {
	var parts []Part
	pending := ""   // signature of a thinking block, for the next part
	signed := false // a call of this turn carries a signature
	firstCall := -1 // index in parts of the turn's first functionCall
	for j := range blocks {
		b := &blocks[j]
		f := fmt.Sprintf("%s[%d]", field, j)
		switch b.Type {
		case "thinking":
			if sig := DecodeThinkingSignature(b.Signature); sig != "" {
				pending = sig
			}
		case "redacted_thinking":
			if sig := DecodeThinkingSignature(b.Data); sig != "" {
				pending = sig
			}
		case "text":
			if b.Text == "" {
				continue
			}
			parts = append(parts, Part{Text: b.Text, ThoughtSignature: pending})
			pending = ""
		case "tool_use":
			if b.Name == "" {
				return nil, fieldErr(f+".name", "is required")
			}
			if b.ID == "" {
				return nil, fieldErr(f+".id", "is required")
			}
			args := json.RawMessage(`{}`)
			if in := bytes.TrimSpace(b.Input); len(in) > 0 && string(in) != "null" {
				if in[0] != '{' {
					return nil, fieldErr(f+".input", "want a JSON object")
				}
				args = in
			}
			c.names[b.ID] = b.Name
			sig := pending
			if sig == "" {
				sig = DecodeToolUseID(b.ID)
			}
			pending = ""
			signed = signed || sig != ""
			if firstCall < 0 {
				firstCall = len(parts)
			}
			parts = append(parts, Part{FunctionCall: &FunctionCall{Name: b.Name, Args: args}, ThoughtSignature: sig})
		case "image", "document", "tool_result":
			return nil, fieldErr(f+".type", "%s blocks belong in user messages", b.Type)
		case "":
			return nil, fieldErr(f+".type", "is required")
		default:
			c.drop(f, fmt.Sprintf("content block type %q has no Gemini equivalent", b.Type))
		}
	}
	if gemini3 && !signed && firstCall >= 0 {
		// History from another model or client: Gemini 3 wants a signature
		// on the first call of a turn; this is its documented escape hatch.
		parts[firstCall].ThoughtSignature = "skip_thought_signature_validator"
	}
	return parts, nil
}

func (c *converter) anthropicTools(req *MessagesRequest, body *GenerateContentRequest) error {
	var decls []FunctionDeclaration
	seen := map[string]bool{}
	search := false
	for i, t := range req.Tools {
		f := fmt.Sprintf("tools[%d]", i)
		if t.Type != "" && t.Type != "custom" {
			if strings.HasPrefix(t.Type, "web_search") {
				search = true
				continue
			}
			c.drop(f, fmt.Sprintf("server tool %q has no Gemini equivalent", t.Type))
			continue
		}
		if t.Name == "" {
			return fieldErr(f+".name", "is required")
		}
		if seen[t.Name] {
			return fieldErr(f+".name", "duplicate tool name %q", t.Name)
		}
		seen[t.Name] = true
		fd, err := c.declaration(t.Name, t.Description, t.InputSchema, f+".input_schema")
		if err != nil {
			return err
		}
		decls = append(decls, fd)
	}
	if len(decls) > 0 {
		body.Tools = append(body.Tools, Tool{FunctionDeclarations: decls})
		if search {
			c.drop("tools", "web search left out: Gemini does not combine it with function tools")
		}
	} else if search {
		body.Tools = append(body.Tools, Tool{GoogleSearch: &struct{}{}})
	}
	tc := req.ToolChoice
	if tc == nil {
		return nil
	}
	var fcc *FunctionCallingConfig
	switch tc.Type {
	case "auto":
		fcc = &FunctionCallingConfig{Mode: "AUTO"}
	case "any":
		fcc = &FunctionCallingConfig{Mode: "ANY"}
	case "none":
		fcc = &FunctionCallingConfig{Mode: "NONE"}
	case "tool":
		if tc.Name == "" {
			return fieldErr("tool_choice.name", "is required")
		}
		if !seen[tc.Name] {
			return fieldErr("tool_choice.name", "%q is not a declared tool", tc.Name)
		}
		fcc = &FunctionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{tc.Name}}
	default:
		return fieldErr("tool_choice.type", "want auto, any, none or tool, got %q", tc.Type)
	}
	if tc.DisableParallelToolUse && len(decls) > 0 {
		c.drop("tool_choice.disable_parallel_tool_use", "Gemini cannot forbid parallel calls")
	}
	if len(decls) == 0 {
		if fcc.Mode != "NONE" && fcc.Mode != "AUTO" {
			return fieldErr("tool_choice", "names a tool mode but the request declares no tools")
		}
		return nil
	}
	body.ToolConfig = &ToolConfig{FunctionCallingConfig: fcc}
	return nil
}

// anthropicGeneration maps the output controls and thinking. It reports
// whether the client chose the thinking settings, which then win over the
// defaults of inject.
func (c *converter) anthropicGeneration(req *MessagesRequest, body *GenerateContentRequest, count bool) (bool, error) {
	gc := &GenerationConfig{Temperature: req.Temperature, TopP: req.TopP, TopK: req.TopK}
	if !count {
		gc.MaxOutputTokens = req.MaxTokens
	}
	for i, s := range req.StopSequences {
		if s == "" {
			return false, fieldErr(fmt.Sprintf("stop_sequences[%d]", i), "must not be empty")
		}
	}
	if len(req.StopSequences) > 0 {
		gc.StopSequences = req.StopSequences
	}
	model := c.plan.Model.Upstream
	st := c.opt.Settings
	clientThinking := false
	effort := ""
	if oc := req.OutputConfig; oc != nil {
		effort = oc.Effort
		if f := oc.Format; f != nil {
			switch f.Type {
			case "json_schema":
				if len(bytes.TrimSpace(f.Schema)) == 0 {
					return false, fieldErr("output_config.format.schema", "is required")
				}
				schema, err := reduceSchema(f.Schema, "output_config.format.schema", &c.plan.Drops)
				if err != nil {
					return false, err
				}
				gc.ResponseMimeType = "application/json"
				gc.ResponseJSONSchema = schema
			default:
				return false, fieldErr("output_config.format.type", "want json_schema, got %q", f.Type)
			}
		}
	}
	if th := req.Thinking; th != nil {
		switch th.Type {
		case "enabled":
			if th.BudgetTokens < 1024 {
				return false, fieldErr("thinking.budget_tokens", "must be at least 1024")
			}
			if req.MaxTokens != nil && th.BudgetTokens >= *req.MaxTokens {
				return false, fieldErr("thinking.budget_tokens", "must be less than max_tokens")
			}
			if !thinks(model, st) {
				c.drop("thinking", model+" does not think")
				break
			}
			clientThinking = true
			gc.ThinkingConfig = budgetThinking(th.BudgetTokens, model, st)
		case "disabled":
			tc, _ := thinkingFor("none", model, st)
			if tc != nil {
				tc.IncludeThoughts = false
				gc.ThinkingConfig = tc
				clientThinking = true
			}
		case "adaptive":
			if !thinks(model, st) {
				c.drop("thinking", model+" does not think")
				break
			}
			clientThinking = true
			gc.ThinkingConfig = &ThinkingConfig{IncludeThoughts: true}
			if effort != "" {
				tc, err := anthropicEffort(effort, model, st)
				if err != nil {
					return false, err
				}
				gc.ThinkingConfig = tc
			}
		case "":
			return false, fieldErr("thinking.type", "is required")
		default:
			return false, fieldErr("thinking.type", "want enabled, disabled or adaptive, got %q", th.Type)
		}
	} else if effort != "" {
		tc, err := anthropicEffort(effort, model, st)
		if err != nil {
			return false, err
		}
		if tc != nil {
			tc.IncludeThoughts = st.ShowThinkingProcess
			gc.ThinkingConfig = tc
			clientThinking = true
		}
	} else if thinks(model, st) {
		// No thinking parameter means no thinking blocks on Anthropic's API:
		// the protocol says it, so SHOW_THINKING_PROCESS does not fill in
		// (the one injection policy; the budget is still the policy's).
		gc.ThinkingConfig = &ThinkingConfig{thoughtsSaid: true}
	}
	if !gc.empty() {
		body.GenerationConfig = gc
	}
	return clientThinking, nil
}

// anthropicEffort maps output_config.effort (low, medium, high, max) to
// thinking, as reasoning_effort is on the chat route.
func anthropicEffort(effort, model string, st *config.Settings) (*ThinkingConfig, error) {
	switch effort {
	case "low", "medium", "high", "max":
	default:
		return nil, fieldErr("output_config.effort", "want low, medium, high or max, got %q", effort)
	}
	tc, err := thinkingFor(effort, model, st)
	if err != nil || tc == nil {
		return nil, nil
	}
	tc.IncludeThoughts = true
	return tc, nil
}

// budgetThinking maps budget_tokens: Gemini 3 takes a level (the budget's
// nearest), 2.5 the budget clamped to the model's range.
func budgetThinking(budget int, model string, st *config.Settings) *ThinkingConfig {
	if isGemini3(model) {
		effort := "high"
		switch {
		case budget <= 2048:
			effort = "low"
		case budget <= 8192:
			effort = "medium"
		}
		tc, _ := thinkingFor(effort, model, st)
		tc.IncludeThoughts = true
		return tc
	}
	limit := 24576
	if strings.Contains(model, "pro") {
		limit = 32768
	}
	b := min(budget, limit)
	return &ThinkingConfig{ThinkingBudget: &b, IncludeThoughts: true}
}

// Signature carriers. A thinking block's signature is "gsig1." + Gemini's
// base64 signature; a tool_use id is "toolu_<stem>" or
// "toolu_<stem>_gs1<base64url signature>" (Anthropic ids allow
// [A-Za-z0-9_-] only). Anything else is foreign and ignored.
const (
	thinkingSigTag = "gsig1."
	toolUseSigTag  = "_gs1"
)

// EncodeThinkingSignature is the signature field of a thinking block.
func EncodeThinkingSignature(sig string) string { return thinkingSigTag + sig }

// DecodeThinkingSignature returns the Gemini signature a thinking block
// carries, or "" for a foreign one.
func DecodeThinkingSignature(s string) string {
	sig, ok := strings.CutPrefix(s, thinkingSigTag)
	if !ok {
		return ""
	}
	return sig
}

// EncodeToolUseID builds a tool_use id from a random stem and a signature.
func EncodeToolUseID(stem, sig string) string {
	if sig == "" {
		return "toolu_" + stem
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return "toolu_" + stem // the thinking block still carries it
	}
	return "toolu_" + stem + toolUseSigTag + base64.RawURLEncoding.EncodeToString(raw)
}

// DecodeToolUseID returns the signature carried in a tool_use id, if any.
func DecodeToolUseID(id string) string {
	_, enc, ok := strings.Cut(id, toolUseSigTag)
	if !ok || enc == "" {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(raw)
}
