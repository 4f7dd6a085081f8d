package convert

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/shared/config"
)

// Fetcher downloads an http(s) image a client referenced by URL. It is
// injected so that conversion itself does no I/O; the edge's implementation
// limits size and time and refuses private and loopback addresses.
type Fetcher interface {
	Fetch(ctx context.Context, rawURL string) (mimeType string, data []byte, err error)
}

// What one chat request may make the gateway fetch or reference; beyond
// them the request is refused with 400 before anything is sent upstream.
const (
	// MaxImageFetches bounds the http(s) image_url downloads of a request
	// (each at most 20 MiB and 15 s, see edge/openai.Fetcher).
	MaxImageFetches = 10
	// MaxImageFetchBytes bounds their total size: Gemini's own cap on the
	// inline data of one request (20 MB).
	MaxImageFetchBytes = 20 << 20
	// MaxFileRefs bounds the parts that reference a file by id or URI (file
	// parts with file_id, image_url of an uploaded file or a video).
	MaxFileRefs = 32
)

// Options are what a conversion needs besides the request.
type Options struct {
	Settings *config.Settings // live settings snapshot; required
	Fetcher  Fetcher          // nil refuses http(s) image URLs
}

// ChatPlan is a converted chat request: the Gemini body and what the
// response side needs to know.
type ChatPlan struct {
	Model        models.Model
	Stream       bool
	IncludeUsage bool
	Body         *GenerateContentRequest
	Drops        []Drop
	ShowThinking bool   // return thoughts as reasoning_content
	SearchLinks  bool   // append citations (SHOW_SEARCH_LINK on a -search model)
	AudioFormat  string // "wav" or "pcm16" when audio output was asked for
}

// ParseChatRequest decodes a chat completions body. A malformed body gives a
// *FieldError naming the field.
func ParseChatRequest(body []byte) (*ChatRequest, error) {
	var req ChatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, decodeError(err)
	}
	return &req, nil
}

// ChatToGemini converts a chat request. Errors are *FieldError (the client's
// fault, answer 400) unless the fetcher failed for another reason.
func ChatToGemini(ctx context.Context, req *ChatRequest, opt Options) (*ChatPlan, error) {
	s := opt.Settings
	m, err := ResolveModel(req.Model, s)
	if err != nil {
		return nil, err
	}
	if len(req.Messages) == 0 {
		return nil, fieldErr("messages", "must hold at least one message")
	}
	plan := &ChatPlan{
		Model:        m,
		Stream:       req.Stream,
		IncludeUsage: req.Stream && req.StreamOptions != nil && req.StreamOptions.IncludeUsage,
		ShowThinking: s.ShowThinkingProcess,
		SearchLinks:  s.ShowSearchLink && m.Search,
	}
	c := converter{ctx: ctx, opt: opt, plan: plan, names: map[string]string{}}
	body := &GenerateContentRequest{}
	plan.Body = body
	if err := c.messages(req.Messages, body); err != nil {
		return nil, err
	}
	if err := c.tools(req, body); err != nil {
		return nil, err
	}
	clientThinking, err := c.generation(req, body)
	if err != nil {
		return nil, err
	}
	if ws := bytes.TrimSpace(req.WebSearchOptions); len(ws) > 0 && string(ws) != "null" {
		// web_search_options asks for search grounding: behave as -search.
		m.Search = true
		plan.Model.Search = true
		plan.SearchLinks = s.ShowSearchLink
	}
	inject(body, m, s, c.hasMedia, clientThinking, &plan.Drops)
	return plan, nil
}

type converter struct {
	ctx      context.Context
	opt      Options
	plan     *ChatPlan
	names    map[string]string // tool_call_id → function name, from assistant turns
	hasMedia bool
	fetches  int   // image URLs downloaded so far
	fetched  int64 // their bytes
	refs     int   // parts referencing a file
}

// fileRef counts a part that references a file, refusing one past MaxFileRefs.
func (c *converter) fileRef(field string) error {
	if c.refs++; c.refs > MaxFileRefs {
		return fieldErr(field, "a request may reference at most %d files", MaxFileRefs)
	}
	return nil
}

func (c *converter) drop(field, reason string) {
	c.plan.Drops = append(c.plan.Drops, Drop{field, reason})
}

func (c *converter) messages(msgs []Message, body *GenerateContentRequest) error {
	gemini3 := isGemini3(c.plan.Model.Upstream)
	for i := range msgs {
		msg := &msgs[i]
		field := fmt.Sprintf("messages[%d]", i)
		switch msg.Role {
		case "system", "developer":
			parts, err := c.content(msg.Content, field+".content", true)
			if err != nil {
				return err
			}
			if len(parts) == 0 {
				continue
			}
			if body.SystemInstruction == nil {
				body.SystemInstruction = &Content{}
			}
			body.SystemInstruction.Parts = append(body.SystemInstruction.Parts, parts...)
		case "user":
			parts, err := c.content(msg.Content, field+".content", false)
			if err != nil {
				return err
			}
			if len(parts) > 0 {
				body.Contents = append(body.Contents, Content{Role: "user", Parts: parts})
			}
		case "assistant":
			parts, err := c.content(msg.Content, field+".content", false)
			if err != nil {
				return err
			}
			calls := msg.ToolCalls
			if msg.FunctionCall != nil && len(calls) == 0 {
				calls = []ToolCall{{ID: msg.FunctionCall.Name, Type: "function", Function: *msg.FunctionCall}}
			}
			signed := false
			for j := range calls {
				tc := &calls[j]
				f := fmt.Sprintf("%s.tool_calls[%d]", field, j)
				if tc.Function.Name == "" {
					return fieldErr(f+".function.name", "is required")
				}
				args := json.RawMessage(`{}`)
				if a := strings.TrimSpace(tc.Function.Arguments); a != "" {
					if !json.Valid([]byte(a)) || a[0] != '{' {
						return fieldErr(f+".function.arguments", "want a JSON object encoded as a string")
					}
					args = json.RawMessage(a)
				}
				if tc.ID != "" {
					c.names[tc.ID] = tc.Function.Name
				}
				p := Part{FunctionCall: &FunctionCall{Name: tc.Function.Name, Args: args}, ThoughtSignature: DecodeToolCallID(tc.ID)}
				signed = signed || p.ThoughtSignature != ""
				parts = append(parts, p)
			}
			if gemini3 {
				// Images a Gemini 3 image model made come back through the
				// client as markdown without their signature.
				for k := range parts {
					if parts[k].InlineData != nil && parts[k].ThoughtSignature == "" {
						parts[k].ThoughtSignature = "skip_thought_signature_validator"
					}
				}
			}
			if gemini3 && !signed && len(calls) > 0 {
				// History from another model or client: Gemini 3 wants a
				// signature on the first call of a turn; this is its
				// documented escape hatch.
				for k := range parts {
					if parts[k].FunctionCall != nil {
						parts[k].ThoughtSignature = "skip_thought_signature_validator"
						break
					}
				}
			}
			if len(parts) > 0 {
				body.Contents = append(body.Contents, Content{Role: "model", Parts: parts})
			}
		case "tool", "function":
			name := msg.Name
			if msg.Role == "tool" {
				if msg.ToolCallID == "" {
					return fieldErr(field+".tool_call_id", "is required")
				}
				n, ok := c.names[msg.ToolCallID]
				if !ok {
					return fieldErr(field+".tool_call_id", "%q matches no tool call of an earlier assistant message", msg.ToolCallID)
				}
				name = n
			} else if name == "" {
				return fieldErr(field+".name", "is required")
			}
			resp, err := c.toolResult(msg.Content, field+".content")
			if err != nil {
				return err
			}
			p := Part{FunctionResponse: &FunctionResponse{Name: name, Response: resp}}
			// Parallel results answer one model turn together.
			if n := len(body.Contents); n > 0 && body.Contents[n-1].Role == "user" && isResponseTurn(body.Contents[n-1]) {
				body.Contents[n-1].Parts = append(body.Contents[n-1].Parts, p)
			} else {
				body.Contents = append(body.Contents, Content{Role: "user", Parts: []Part{p}})
			}
		case "":
			return fieldErr(field+".role", "is required")
		default:
			return fieldErr(field+".role", "unknown role %q", msg.Role)
		}
	}
	if len(body.Contents) == 0 {
		return fieldErr("messages", "hold no user or assistant content")
	}
	return nil
}

func isResponseTurn(c Content) bool {
	for _, p := range c.Parts {
		if p.FunctionResponse == nil {
			return false
		}
	}
	return len(c.Parts) > 0
}

// content converts a message content: null, a string or an array of parts.
func (c *converter) content(raw json.RawMessage, field string, textOnly bool) ([]Part, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fieldErr(field, "invalid string")
		}
		if s == "" {
			return nil, nil
		}
		return c.textParts(nil, s, textOnly), nil
	case '[':
		var items []ContentPart
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fieldErr(field, "want an array of content parts: %v", decodeError(err).Msg)
		}
		parts := make([]Part, 0, len(items))
		for j := range items {
			if items[j].Type == "text" {
				parts = c.textParts(parts, items[j].Text, textOnly)
				continue
			}
			p, ok, err := c.part(&items[j], fmt.Sprintf("%s[%d]", field, j), textOnly)
			if err != nil {
				return nil, err
			}
			if ok {
				parts = append(parts, p)
			}
		}
		return parts, nil
	}
	return nil, fieldErr(field, "want a string, an array of content parts or null")
}

// textParts appends a text as parts. Markdown images with data: URLs (how
// this route returns generated images) become inlineData again, so a
// multi-turn image chat sends pictures, not megabytes of base64 text.
func (c *converter) textParts(dst []Part, s string, textOnly bool) []Part {
	if s == "" {
		return dst
	}
	if textOnly || !strings.Contains(s, "](data:image/") {
		return append(dst, Part{Text: s})
	}
	for s != "" {
		i := strings.Index(s, "![")
		if i < 0 {
			break
		}
		j := strings.Index(s[i:], "](data:image/")
		if j < 0 {
			break
		}
		k := strings.IndexByte(s[i+j:], ')')
		if k < 0 {
			break
		}
		url := s[i+j+2 : i+j+k]
		p, err := dataURLPart(url, "")
		if err != nil || strings.ContainsAny(s[i+2:i+j], "\n]") {
			// Not one of ours: keep the text as it is up to here.
			dst = appendText(dst, s[:i+j+k+1])
			s = s[i+j+k+1:]
			continue
		}
		dst = appendText(dst, strings.TrimRight(s[:i], " \n"))
		dst = append(dst, p)
		c.hasMedia = true
		s = strings.TrimLeft(s[i+j+k+1:], " \n")
	}
	return appendText(dst, s)
}

func appendText(dst []Part, s string) []Part {
	if s == "" {
		return dst
	}
	return append(dst, Part{Text: s})
}

func (c *converter) part(it *ContentPart, field string, textOnly bool) (Part, bool, error) {
	if textOnly && it.Type != "text" {
		c.drop(field, "system messages take text only")
		return Part{}, false, nil
	}
	switch it.Type {
	case "text":
		return Part{Text: it.Text}, it.Text != "", nil
	case "refusal":
		return Part{Text: it.Refusal}, it.Refusal != "", nil
	case "image_url":
		if it.ImageURL == nil || it.ImageURL.URL == "" {
			return Part{}, false, fieldErr(field+".image_url.url", "is required")
		}
		c.hasMedia = true
		p, err := c.imageURL(it.ImageURL.URL, field+".image_url.url")
		return p, err == nil, err
	case "input_audio", "input_video":
		in, kind := it.InputAudio, "audio"
		if it.Type == "input_video" {
			in, kind = it.InputVideo, "video"
		}
		f := field + "." + it.Type
		if in == nil || in.Data == "" {
			return Part{}, false, fieldErr(f+".data", "is required")
		}
		mime, ok := mediaMime(kind, in.Format)
		if !ok {
			return Part{}, false, fieldErr(f+".format", "unsupported %s format %q", kind, in.Format)
		}
		c.hasMedia = true
		if strings.HasPrefix(in.Data, "data:") {
			p, err := dataURLPart(in.Data, f+".data")
			return p, err == nil, err
		}
		return Part{InlineData: &Blob{MimeType: mime, Data: in.Data}}, true, nil
	case "file":
		if it.File == nil {
			return Part{}, false, fieldErr(field+".file", "is required")
		}
		c.hasMedia = true
		switch {
		case strings.HasPrefix(it.File.FileData, "data:"):
			p, err := dataURLPart(it.File.FileData, field+".file.file_data")
			return p, err == nil, err
		case it.File.FileData != "":
			mime := mimeByName(it.File.Filename)
			if mime == "" {
				return Part{}, false, fieldErr(field+".file.filename", "cannot tell the type of %q; send file_data as a data: URL", it.File.Filename)
			}
			return Part{InlineData: &Blob{MimeType: mime, Data: it.File.FileData}}, true, nil
		case it.File.FileID != "":
			if err := c.fileRef(field + ".file.file_id"); err != nil {
				return Part{}, false, err
			}
			return Part{FileData: &FileData{MimeType: mimeByName(it.File.Filename), FileURI: c.fileURI(it.File.FileID)}}, true, nil
		}
		return Part{}, false, fieldErr(field+".file.file_data", "file_data or file_id is required")
	case "":
		return Part{}, false, fieldErr(field+".type", "is required")
	}
	return Part{}, false, fieldErr(field+".type", "unsupported content part type %q", it.Type)
}

// fileURI turns a file id ("files/abc", "abc" or a full URI) into a File API URI.
func (c *converter) fileURI(id string) string {
	if strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://") {
		return id
	}
	return c.opt.Settings.BaseURL + "/v1beta/files/" + strings.TrimPrefix(id, "files/")
}

func (c *converter) imageURL(u, field string) (Part, error) {
	if strings.HasPrefix(u, "data:") {
		return dataURLPart(u, field)
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return Part{}, fieldErr(field, "want a data: URL or an http(s) URL")
	}
	// Files the upstream already holds and YouTube videos go by reference.
	if strings.HasPrefix(u, c.opt.Settings.BaseURL+"/v1beta/files/") ||
		strings.HasPrefix(u, "https://generativelanguage.googleapis.com/v1beta/files/") ||
		parsed.Host == "www.youtube.com" || parsed.Host == "youtube.com" || parsed.Host == "youtu.be" {
		if err := c.fileRef(field); err != nil {
			return Part{}, err
		}
		return Part{FileData: &FileData{FileURI: u}}, nil
	}
	if c.opt.Fetcher == nil {
		return Part{}, fieldErr(field, "image URLs are not fetched here; send a data: URL")
	}
	if c.fetches++; c.fetches > MaxImageFetches {
		return Part{}, fieldErr(field, "a request may fetch at most %d image URLs; send the rest as data: URLs", MaxImageFetches)
	}
	mime, data, err := c.opt.Fetcher.Fetch(c.ctx, u)
	if err != nil {
		return Part{}, fieldErr(field, "cannot fetch image: %v", err)
	}
	if c.fetched += int64(len(data)); c.fetched > MaxImageFetchBytes {
		return Part{}, fieldErr(field, "the images fetched for one request may total at most %d bytes", MaxImageFetchBytes)
	}
	return Part{InlineData: &Blob{MimeType: mime, Data: base64.StdEncoding.EncodeToString(data)}}, nil
}

// dataURLPart decodes the header of a data: URL; base64 payloads are passed
// on without copying.
func dataURLPart(u, field string) (Part, error) {
	rest := strings.TrimPrefix(u, "data:")
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return Part{}, fieldErr(field, "malformed data: URL (no comma)")
	}
	meta, payload := rest[:comma], rest[comma+1:]
	isB64 := strings.HasSuffix(meta, ";base64")
	mime := strings.TrimSuffix(meta, ";base64")
	if i := strings.IndexByte(mime, ';'); i >= 0 {
		mime = mime[:i]
	}
	mime = strings.ToLower(strings.TrimSpace(mime))
	if mime == "" || !strings.Contains(mime, "/") {
		return Part{}, fieldErr(field, "data: URL needs a media type, e.g. data:image/png;base64,...")
	}
	if mime == "image/jpg" {
		mime = "image/jpeg"
	}
	if payload == "" {
		return Part{}, fieldErr(field, "data: URL holds no data")
	}
	if !isB64 {
		raw, err := url.PathUnescape(payload)
		if err != nil {
			return Part{}, fieldErr(field, "malformed data: URL payload")
		}
		payload = base64.StdEncoding.EncodeToString([]byte(raw))
	}
	return Part{InlineData: &Blob{MimeType: mime, Data: payload}}, nil
}

func mediaMime(kind, format string) (string, bool) {
	f := strings.ToLower(strings.TrimSpace(format))
	if kind == "audio" {
		switch f {
		case "wav", "mp3", "aiff", "aac", "ogg", "flac", "webm":
			return "audio/" + f, true
		case "mpeg":
			return "audio/mp3", true
		case "pcm16", "pcm":
			return "audio/L16;codec=pcm;rate=24000", true
		}
		return "", false
	}
	switch f {
	case "mp4", "mpeg", "mov", "avi", "webm", "wmv", "3gpp":
		if f == "mov" {
			return "video/quicktime", true
		}
		if f == "avi" {
			return "video/x-msvideo", true
		}
		return "video/" + f, true
	case "flv":
		return "video/x-flv", true
	}
	return "", false
}

func mimeByName(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".pdf":
		return "application/pdf"
	case ".txt":
		return "text/plain"
	case ".md":
		return "text/markdown"
	case ".csv":
		return "text/csv"
	case ".html", ".htm":
		return "text/html"
	case ".json":
		return "application/json"
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".webp":
		return "image/webp"
	case ".gif":
		return "image/gif"
	case ".mp3":
		return "audio/mp3"
	case ".wav":
		return "audio/wav"
	case ".mp4":
		return "video/mp4"
	}
	return ""
}

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
		fd := FunctionDeclaration{Name: d.Name, Description: d.Description}
		if p := bytes.TrimSpace(d.Parameters); len(p) > 0 && string(p) != "null" {
			schema, err := reduceSchema(p, f+".parameters", &c.plan.Drops)
			if err != nil {
				return err
			}
			if !emptyObjectSchema(schema) {
				fd.ParametersJSONSchema = schema
			}
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
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		switch s {
		case "none":
			return &FunctionCallingConfig{Mode: "NONE"}, nil
		case "auto":
			return &FunctionCallingConfig{Mode: "AUTO"}, nil
		case "required", "any":
			return &FunctionCallingConfig{Mode: "ANY"}, nil
		}
		return nil, fieldErr(field, "want none, auto, required or a function, got %q", s)
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
	named := func(name, f string) (*FunctionCallingConfig, error) {
		if name == "" {
			return nil, fieldErr(f, "is required")
		}
		if !declared[name] {
			return nil, fieldErr(f, "%q is not a declared function", name)
		}
		return &FunctionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{name}}, nil
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
		return named(obj.Function.Name, field+".function.name")
	case obj.Name != "":
		return named(obj.Name, field+".name")
	}
	return nil, fieldErr(field+".type", "want function or allowed_tools")
}

// generation maps the output controls. It reports whether the client chose
// the thinking settings (reasoning_effort), which then win over defaults.
func (c *converter) generation(req *ChatRequest, body *GenerateContentRequest) (bool, error) {
	gc := &GenerationConfig{
		Temperature:      req.Temperature,
		TopP:             req.TopP,
		TopK:             req.TopK,
		Seed:             req.Seed,
		PresencePenalty:  req.PresencePenalty,
		FrequencyPenalty: req.FrequencyPenalty,
	}
	if req.N != nil {
		if *req.N < 1 {
			return false, fieldErr("n", "must be at least 1")
		}
		if *req.N > 1 {
			gc.CandidateCount = req.N
		}
	}
	maxTok, field := req.MaxCompletionTokens, "max_completion_tokens"
	if maxTok == nil {
		maxTok, field = req.MaxTokens, "max_tokens"
	}
	if maxTok != nil {
		if *maxTok < 1 {
			return false, fieldErr(field, "must be at least 1")
		}
		gc.MaxOutputTokens = maxTok
	}
	if stop := bytes.TrimSpace(req.Stop); len(stop) > 0 && string(stop) != "null" {
		if stop[0] == '"' {
			var s string
			_ = json.Unmarshal(stop, &s)
			if s != "" {
				gc.StopSequences = []string{s}
			}
		} else if err := json.Unmarshal(stop, &gc.StopSequences); err != nil {
			return false, fieldErr("stop", "want a string or an array of strings")
		}
	}
	if req.Logprobs != nil && *req.Logprobs {
		c.drop("logprobs", "log probabilities are not returned on this route")
	}

	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			gc.ResponseMimeType = "application/json"
		case "json_schema":
			if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
				return false, fieldErr("response_format.json_schema.schema", "is required")
			}
			schema, err := reduceSchema(rf.JSONSchema.Schema, "response_format.json_schema.schema", &c.plan.Drops)
			if err != nil {
				return false, err
			}
			gc.ResponseMimeType = "application/json"
			gc.ResponseJSONSchema = schema
		default:
			return false, fieldErr("response_format.type", "want text, json_object or json_schema, got %q", rf.Type)
		}
	}

	for i, mod := range req.Modalities {
		switch mod {
		case "text":
		case "audio":
			gc.ResponseModalities = []string{"AUDIO"}
			voice := ""
			c.plan.AudioFormat = "wav"
			if req.Audio != nil {
				voice = req.Audio.Voice
				if req.Audio.Format == "pcm16" {
					c.plan.AudioFormat = "pcm16"
				} else if req.Audio.Format != "" && req.Audio.Format != "wav" {
					return false, fieldErr("audio.format", "want wav or pcm16, got %q", req.Audio.Format)
				}
			}
			gc.SpeechConfig = &SpeechConfig{VoiceConfig: &VoiceConfig{PrebuiltVoiceConfig: &PrebuiltVoiceConfig{VoiceName: Voice(voice, c.opt.Settings.TTSVoiceName)}}}
		case "image":
			gc.ResponseModalities = []string{"TEXT", "IMAGE"}
		default:
			return false, fieldErr(fmt.Sprintf("modalities[%d]", i), "want text, audio or image, got %q", mod)
		}
	}

	clientThinking := false
	google := req.Google
	if google == nil && req.ExtraBody != nil {
		google = req.ExtraBody.Google
	}
	if google != nil && google.ThinkingConfig != nil {
		tc := google.ThinkingConfig
		gc.ThinkingConfig = &ThinkingConfig{ThinkingBudget: tc.ThinkingBudget, ThinkingLevel: strings.ToUpper(tc.ThinkingLevel)}
		if tc.IncludeThoughts != nil { // otherwise the injection policy decides
			gc.ThinkingConfig.IncludeThoughts, gc.ThinkingConfig.thoughtsSaid = *tc.IncludeThoughts, true
		}
		// As on the native route: only a budget or level is the client's own
		// thinking; include_thoughts alone leaves the defaults to the policy.
		clientThinking = tc.ThinkingBudget != nil || tc.ThinkingLevel != ""
	} else if e := req.ReasoningEffort; e != "" {
		tc, err := thinkingFor(e, c.plan.Model.Upstream, c.opt.Settings)
		if err != nil {
			return false, err
		}
		if tc != nil {
			gc.ThinkingConfig = tc
			clientThinking = true
		} else {
			c.drop("reasoning_effort", c.plan.Model.Upstream+" does not think")
		}
	}

	if !gc.empty() {
		body.GenerationConfig = gc
	}
	return clientThinking, nil
}

// thinkingFor maps reasoning_effort: Gemini 3 takes a level, 2.5 a budget
// (Google's own compatibility layer uses low 1024, medium 8192, high 24576).
func thinkingFor(effort, model string, s *config.Settings) (*ThinkingConfig, error) {
	switch effort {
	case "none", "minimal", "low", "medium", "high", "xhigh", "max":
	default:
		return nil, fieldErr("reasoning_effort", "want none, minimal, low, medium, high, xhigh or max, got %q", effort)
	}
	if !thinks(model, s) {
		return nil, nil
	}
	// "none" asks for no thoughts; otherwise the injection policy decides.
	tc := &ThinkingConfig{thoughtsSaid: effort == "none"}
	if isGemini3(model) {
		pro := strings.Contains(model, "pro")
		switch effort {
		case "none", "minimal":
			tc.ThinkingLevel = "MINIMAL"
			if pro {
				tc.ThinkingLevel = "LOW"
			}
		case "low":
			tc.ThinkingLevel = "LOW"
		case "medium":
			tc.ThinkingLevel = "MEDIUM"
			if pro {
				tc.ThinkingLevel = "HIGH"
			}
		default:
			tc.ThinkingLevel = "HIGH"
		}
		return tc, nil
	}
	pro := strings.Contains(model, "pro")
	var b int
	switch effort {
	case "none":
		b = 0
		if pro {
			b = 128
		}
	case "minimal":
		b = 512
	case "low":
		b = 1024
	case "medium":
		b = 8192
	case "high":
		b = 24576
	default:
		b = 24576
		if pro {
			b = 32768
		}
	}
	tc.ThinkingBudget = &b
	return tc, nil
}
