package convert

import (
	"encoding/json"
	"strconv"
)

// MessagesMeta is what the Messages response side needs from the request.
type MessagesMeta struct {
	ID      string        // "msg_…"
	Model   string        // the model name the client asked for
	NewStem func() string // random part of tool_use ids; nil means RandomID(24)
}

func (m *MessagesMeta) stem() string { return stemOf(m.NewStem) }

// AnthropicMessageResponse is a non-stream Messages answer.
type AnthropicMessageResponse struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []MessageBlock `json:"content"`
	StopReason   string         `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        AnthropicUsage `json:"usage"`
}

// MessageBlock is one content block of an answer.
type MessageBlock struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text,omitempty"`
	Thinking  *string         `json:"thinking,omitempty"`
	Signature *string         `json:"signature,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
}

// AnthropicUsage is Anthropic's token accounting: input excludes cache reads.
type AnthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// AnthropicUsageFrom maps usageMetadata (H.5): input = prompt + tool-use
// prompt − cached, output = candidates + thoughts.
func AnthropicUsageFrom(u *UsageMetadata) AnthropicUsage {
	if u == nil {
		return AnthropicUsage{}
	}
	return AnthropicUsage{
		InputTokens:          max(u.PromptTokenCount+u.ToolUsePromptTokenCount-u.CachedContentTokenCount, 0),
		OutputTokens:         u.CandidatesTokenCount + u.ThoughtsTokenCount,
		CacheReadInputTokens: u.CachedContentTokenCount,
	}
}

// StopReason maps a Gemini finish to Anthropic's stop_reason.
func StopReason(reason string, blocked, calls bool) string {
	switch FinishReason(reason, blocked, calls) {
	case "length":
		return "max_tokens"
	case "content_filter":
		return "refusal"
	case "tool_calls":
		return "tool_use"
	}
	return "end_turn"
}

// MessagesFromGemini converts a non-stream Gemini response (first candidate).
func MessagesFromGemini(resp *GenerateContentResponse, meta MessagesMeta) *AnthropicMessageResponse {
	out := &AnthropicMessageResponse{ID: meta.ID, Type: "message", Role: "assistant", Model: meta.Model,
		Content: []MessageBlock{}, Usage: AnthropicUsageFrom(resp.UsageMetadata)}
	blocked := resp.PromptFeedback != nil && resp.PromptFeedback.BlockReason != ""
	if len(resp.Candidates) == 0 {
		out.StopReason = StopReason("", blocked, false)
		return out
	}
	cand := &resp.Candidates[0]
	calls := 0
	var thinking *MessageBlock // open thinking block, until a non-thought part
	flush := func() {
		if thinking != nil {
			out.Content = append(out.Content, *thinking)
			thinking = nil
		}
	}
	if cand.Content != nil {
		for j := range cand.Content.Parts {
			p := &cand.Content.Parts[j]
			if p.Thought {
				if thinking == nil || *thinking.Signature != "" {
					flush()
					thinking = newThinkingBlock()
				}
				*thinking.Thinking += p.Text
				if p.ThoughtSignature != "" {
					*thinking.Signature = EncodeThinkingSignature(p.ThoughtSignature)
				}
				continue
			}
			if p.ThoughtSignature != "" {
				// The signature rides on a thinking block just before its part.
				if thinking == nil || *thinking.Signature != "" {
					flush()
					thinking = newThinkingBlock()
				}
				*thinking.Signature = EncodeThinkingSignature(p.ThoughtSignature)
			}
			flush()
			switch {
			case p.FunctionCall != nil:
				calls++
				out.Content = append(out.Content, MessageBlock{Type: "tool_use",
					ID: EncodeToolUseID(meta.stem(), p.ThoughtSignature), Name: p.FunctionCall.Name, Input: callArgs(p.FunctionCall.Args)})
			default:
				text := string(appendPartText(nil, p))
				if text == "" {
					continue
				}
				if n := len(out.Content); n > 0 && out.Content[n-1].Type == "text" {
					*out.Content[n-1].Text += text
					continue
				}
				out.Content = append(out.Content, MessageBlock{Type: "text", Text: &text})
			}
		}
	}
	flush()
	out.StopReason = StopReason(cand.FinishReason, blocked, calls > 0)
	return out
}

func newThinkingBlock() *MessageBlock {
	t, s := "", ""
	return &MessageBlock{Type: "thinking", Thinking: &t, Signature: &s}
}

// callArgs is a functionCall's args as a compact JSON object.
func callArgs(args json.RawMessage) json.RawMessage {
	c := appendCompact(nil, args)
	if len(c) == 0 || string(c) == "null" {
		return json.RawMessage(`{}`)
	}
	return c
}

// MessagesStream turns Gemini stream chunks into Anthropic SSE events
// (message_start, ping, content_block_start/delta/stop, message_delta,
// message_stop). Feed it one Gemini chunk at a time; call Finish once the
// upstream stream ended cleanly, or AppendMessagesError when it broke.
type MessagesStream struct {
	meta     MessagesMeta
	started  bool
	finished bool
	index    int    // index of the next block
	open     string // type of the open block: "", "text", "thinking"
	signed   bool   // the open thinking block got its signature
	calls    int
	reason   string
	blocked  bool
	usage    UsageMetadata
	scratch  []byte
}

// NewMessagesStream starts a stream converter.
func NewMessagesStream(meta MessagesMeta) *MessagesStream { return &MessagesStream{meta: meta} }

// Feed converts one Gemini chunk (the JSON of one SSE data line). A chunk
// carrying an error object returns *UpstreamError.
func (s *MessagesStream) Feed(dst, data []byte) ([]byte, error) {
	return feedChunk(dst, data, s.FeedResponse)
}

// FeedResponse converts one decoded Gemini chunk.
func (s *MessagesStream) FeedResponse(dst []byte, r *GenerateContentResponse) []byte {
	if r.UsageMetadata != nil {
		s.usage = *r.UsageMetadata // cumulative: the last one holds the totals
	}
	if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		s.blocked = true
	}
	dst = s.start(dst)
	if len(r.Candidates) == 0 {
		return dst
	}
	cand := &r.Candidates[0]
	if cand.FinishReason != "" {
		s.reason = cand.FinishReason
	}
	if cand.Content == nil {
		return dst
	}
	for j := range cand.Content.Parts {
		p := &cand.Content.Parts[j]
		if p.Thought {
			if s.open != "thinking" || s.signed {
				dst = s.openBlock(dst, "thinking", `{"type":"thinking","thinking":"","signature":""}`)
			}
			if p.Text != "" {
				dst = s.delta(dst, `"type":"thinking_delta","thinking":`, p.Text)
			}
			if p.ThoughtSignature != "" {
				dst = s.delta(dst, `"type":"signature_delta","signature":`, EncodeThinkingSignature(p.ThoughtSignature))
				s.signed = true
			}
			continue
		}
		if p.ThoughtSignature != "" {
			if s.open != "thinking" || s.signed {
				dst = s.openBlock(dst, "thinking", `{"type":"thinking","thinking":"","signature":""}`)
			}
			dst = s.delta(dst, `"type":"signature_delta","signature":`, EncodeThinkingSignature(p.ThoughtSignature))
			s.signed = true
		}
		if p.FunctionCall != nil {
			s.scratch = append(s.scratch[:0], `{"type":"tool_use","id":`...)
			s.scratch = appendString(s.scratch, EncodeToolUseID(s.meta.stem(), p.ThoughtSignature))
			s.scratch = append(s.scratch, `,"name":`...)
			s.scratch = appendString(s.scratch, p.FunctionCall.Name)
			s.scratch = append(s.scratch, `,"input":{}}`...)
			dst = s.openBlock(dst, "tool_use", string(s.scratch))
			dst = s.delta(dst, `"type":"input_json_delta","partial_json":`, string(callArgs(p.FunctionCall.Args)))
			dst = s.closeBlock(dst)
			s.calls++
			continue
		}
		text := p.Text
		if p.InlineData != nil || p.ExecutableCode != nil || p.CodeExecutionResult != nil {
			text = string(appendPartText(nil, p))
		}
		if text == "" {
			continue
		}
		if s.open != "text" {
			dst = s.openBlock(dst, "text", `{"type":"text","text":""}`)
		}
		dst = s.delta(dst, `"type":"text_delta","text":`, text)
	}
	return dst
}

// start sends message_start and a ping once.
func (s *MessagesStream) start(dst []byte) []byte {
	if s.started {
		return dst
	}
	s.started = true
	u := AnthropicUsageFrom(&s.usage)
	dst = append(dst, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
	dst = appendString(dst, s.meta.ID)
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendString(dst, s.meta.Model)
	dst = append(dst, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.InputTokens), 10)
	dst = append(dst, `,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.CacheReadInputTokens), 10)
	dst = append(dst, "}}}\n\n"...)
	return append(dst, "event: ping\ndata: {\"type\":\"ping\"}\n\n"...)
}

func (s *MessagesStream) openBlock(dst []byte, kind, block string) []byte {
	dst = s.closeBlock(dst)
	s.open, s.signed = kind, false
	dst = append(dst, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(s.index), 10)
	dst = append(dst, `,"content_block":`...)
	dst = append(dst, block...)
	return append(dst, "}\n\n"...)
}

func (s *MessagesStream) delta(dst []byte, head, value string) []byte {
	dst = append(dst, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(s.index), 10)
	dst = append(dst, `,"delta":{`...)
	dst = append(dst, head...)
	dst = appendString(dst, value)
	return append(dst, "}}\n\n"...)
}

func (s *MessagesStream) closeBlock(dst []byte) []byte {
	if s.open == "" {
		return dst
	}
	dst = append(dst, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(s.index), 10)
	s.index++
	s.open, s.signed = "", false
	return append(dst, "}\n\n"...)
}

// Finish ends a cleanly finished stream: the open block's stop,
// message_delta with stop_reason and cumulative usage, message_stop.
// Calling it twice appends nothing.
func (s *MessagesStream) Finish(dst []byte) []byte {
	if s.finished {
		return dst
	}
	s.finished = true
	dst = s.start(dst)
	dst = s.closeBlock(dst)
	u := AnthropicUsageFrom(&s.usage)
	dst = append(dst, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"...)
	dst = appendString(dst, StopReason(s.reason, s.blocked, s.calls > 0))
	dst = append(dst, `,"stop_sequence":null},"usage":{"input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.InputTokens), 10)
	dst = append(dst, `,"output_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.OutputTokens), 10)
	dst = append(dst, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.CacheReadInputTokens), 10)
	dst = append(dst, "}}\n\n"...)
	return append(dst, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

// Usage returns the latest cumulative usage seen on the stream.
func (s *MessagesStream) Usage() UsageMetadata { return s.usage }

// AppendMessagesError appends Anthropic's error event, the way a stream that
// failed after its first byte ends; the SDKs raise it as an error.
func AppendMessagesError(dst []byte, typ, message string) []byte {
	dst = append(dst, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"...)
	dst = appendString(dst, typ)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, message)
	return append(dst, "}}\n\n"...)
}
