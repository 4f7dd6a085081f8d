package convert

import (
	"bytes"
	"context"

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
	return decodeBody[ChatRequest](body)
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
