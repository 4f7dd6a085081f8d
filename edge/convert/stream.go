package convert

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Stream turns Gemini stream chunks into OpenAI chat.completion.chunk SSE
// events. Feed it one Gemini chunk at a time and append what it returns to
// the response; call Finish once the upstream stream ended cleanly. It keeps
// one id and created time across chunks, sends the role delta first, one
// finish chunk per choice, the usage chunk when asked, then [DONE]. Events
// are appended to a caller's buffer so a relay can reuse one buffer for the
// whole stream.
type Stream struct {
	meta         ResponseMeta
	includeUsage bool
	head         []byte // `data: {"id":…,"model":…,"choices":[` shared by every chunk
	choices      []choiceState
	usage        UsageMetadata
	blocked      bool
	finished     bool
	scratch      []byte
}

type choiceState struct {
	index     int
	calls     int
	reason    string
	citations []byte
}

// NewStream starts a stream converter.
func NewStream(meta ResponseMeta, includeUsage bool) *Stream {
	s := &Stream{meta: meta, includeUsage: includeUsage}
	h := append([]byte(nil), `data: {"id":`...)
	h = appendString(h, meta.ID)
	h = append(h, `,"object":"chat.completion.chunk","created":`...)
	h = strconv.AppendInt(h, meta.Created, 10)
	h = append(h, `,"model":`...)
	h = appendString(h, meta.Model)
	s.head = append(h, `,"choices":[`...)
	return s
}

// UpstreamError is a Gemini error that arrived inside the stream.
type UpstreamError struct {
	Code    int
	Status  string
	Message string
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("upstream error %d %s: %s", e.Code, e.Status, e.Message)
}

// feedChunk decodes one Gemini chunk (the JSON of one SSE data line) for a
// stream converter's FeedResponse. A chunk carrying an error object
// returns *UpstreamError and converts nothing.
func feedChunk(dst, data []byte, feed func([]byte, *GenerateContentResponse) []byte) ([]byte, error) {
	var r GenerateContentResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return dst, fmt.Errorf("decode upstream chunk: %w", err)
	}
	if r.Error != nil {
		return dst, &UpstreamError{Code: r.Error.Code, Status: r.Error.Status, Message: r.Error.Message}
	}
	return feed(dst, &r), nil
}

// Feed converts one Gemini chunk (the JSON of one SSE data line). A chunk
// carrying an error object returns *UpstreamError; the caller then ends the
// stream with AppendStreamError.
func (s *Stream) Feed(dst []byte, data []byte) ([]byte, error) {
	return feedChunk(dst, data, s.FeedResponse)
}

// FeedResponse converts one decoded Gemini chunk.
func (s *Stream) FeedResponse(dst []byte, r *GenerateContentResponse) []byte {
	if r.UsageMetadata != nil {
		s.usage = *r.UsageMetadata // cumulative: the last one holds the totals
	}
	if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		s.blocked = true
	}
	for i := range r.Candidates {
		cand := &r.Candidates[i]
		st, fresh := s.choice(cand.Index)
		if fresh {
			dst = s.open(dst, cand.Index)
			dst = append(dst, `"role":"assistant","content":""`...)
			dst = s.close(dst, "")
		}
		if cand.FinishReason != "" {
			st.reason = cand.FinishReason
		}
		if s.meta.SearchLinks && cand.GroundingMetadata != nil {
			st.citations = appendCitations(st.citations[:0], cand.GroundingMetadata)
		}
		if cand.Content == nil {
			continue
		}
		parts := cand.Content.Parts
		if s.meta.ShowThinking && hasPart(parts, func(p *Part) bool { return p.Thought && p.Text != "" }) {
			dst = s.open(dst, cand.Index)
			dst = append(dst, `"reasoning_content":"`...)
			for j := range parts {
				if parts[j].Thought {
					dst = appendEscaped(dst, parts[j].Text)
				}
			}
			dst = append(dst, '"')
			dst = s.close(dst, "")
		}
		if hasPart(parts, isContent) {
			dst = s.open(dst, cand.Index)
			dst = append(dst, `"content":"`...)
			for j := range parts {
				p := &parts[j]
				if !isContent(p) {
					continue
				}
				if p.InlineData == nil && p.ExecutableCode == nil && p.CodeExecutionResult == nil {
					dst = appendEscaped(dst, p.Text)
					continue
				}
				s.scratch = appendPartText(s.scratch[:0], p)
				dst = appendEscaped(dst, bytesString(s.scratch))
			}
			dst = append(dst, '"')
			dst = s.close(dst, "")
		}
		if hasPart(parts, func(p *Part) bool { return p.FunctionCall != nil }) {
			dst = s.open(dst, cand.Index)
			dst = append(dst, `"tool_calls":[`...)
			n := 0
			for j := range parts {
				p := &parts[j]
				if p.FunctionCall == nil {
					continue
				}
				if n > 0 {
					dst = append(dst, ',')
				}
				n++
				args := p.FunctionCall.Args
				if len(args) == 0 || string(args) == "null" {
					args = json.RawMessage(`{}`)
				}
				dst = append(dst, `{"index":`...)
				dst = strconv.AppendInt(dst, int64(st.calls), 10)
				dst = append(dst, `,"id":`...)
				dst = appendString(dst, EncodeToolCallID(s.meta.stem(), p.ThoughtSignature))
				dst = append(dst, `,"type":"function","function":{"name":`...)
				dst = appendString(dst, p.FunctionCall.Name)
				dst = append(dst, `,"arguments":"`...)
				s.scratch = appendCompact(s.scratch[:0], args)
				dst = appendEscaped(dst, bytesString(s.scratch))
				dst = append(dst, `"}}`...)
				st.calls++
			}
			dst = append(dst, ']')
			dst = s.close(dst, "")
		}
	}
	return dst
}

func isContent(p *Part) bool {
	if p.Thought || p.FunctionCall != nil || p.FunctionResponse != nil {
		return false
	}
	if p.InlineData != nil {
		return strings.HasPrefix(p.InlineData.MimeType, "image/")
	}
	return p.Text != "" || p.ExecutableCode != nil || p.CodeExecutionResult != nil
}

func hasPart(parts []Part, f func(*Part) bool) bool {
	for i := range parts {
		if f(&parts[i]) {
			return true
		}
	}
	return false
}

// choice finds or adds the state of a candidate index.
func (s *Stream) choice(index int) (*choiceState, bool) {
	for i := range s.choices {
		if s.choices[i].index == index {
			return &s.choices[i], false
		}
	}
	s.choices = append(s.choices, choiceState{index: index})
	return &s.choices[len(s.choices)-1], true
}

func (s *Stream) open(dst []byte, index int) []byte {
	dst = append(dst, s.head...)
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	return append(dst, `,"delta":{`...)
}

func (s *Stream) close(dst []byte, finish string) []byte {
	dst = append(dst, `},"logprobs":null,"finish_reason":`...)
	if finish == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, finish)
	}
	dst = append(dst, "}]"...)
	if s.includeUsage {
		dst = append(dst, `,"usage":null`...)
	}
	return append(dst, "}\n\n"...)
}

// Finish ends a cleanly finished stream: citations, one finish chunk per
// choice, the usage chunk when include_usage was set, and [DONE]. Calling it
// twice appends nothing.
func (s *Stream) Finish(dst []byte) []byte {
	if s.finished {
		return dst
	}
	s.finished = true
	if len(s.choices) == 0 {
		s.choices = append(s.choices, choiceState{})
		dst = s.open(dst, 0)
		dst = append(dst, `"role":"assistant","content":""`...)
		dst = s.close(dst, "")
	}
	for i := range s.choices {
		st := &s.choices[i]
		if len(st.citations) > 0 {
			dst = s.open(dst, st.index)
			dst = append(dst, `"content":`...)
			dst = appendString(dst, bytesString(st.citations))
			dst = s.close(dst, "")
		}
		dst = s.open(dst, st.index)
		dst = s.close(dst, FinishReason(st.reason, s.blocked, st.calls > 0))
	}
	if s.includeUsage {
		u := UsageFrom(&s.usage)
		dst = append(dst, s.head...)
		dst = append(dst, `],"usage":{"prompt_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.PromptTokens), 10)
		dst = append(dst, `,"completion_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.CompletionTokens), 10)
		dst = append(dst, `,"total_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.TotalTokens), 10)
		dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.PromptTokensDetails.CachedTokens), 10)
		dst = append(dst, `},"completion_tokens_details":{"reasoning_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.CompletionTokensDetails.ReasoningTokens), 10)
		dst = append(dst, "}}}\n\n"...)
	}
	return append(dst, "data: [DONE]\n\n"...)
}

// Usage returns the latest cumulative usage seen on the stream.
func (s *Stream) Usage() UsageMetadata { return s.usage }

// AppendStreamError appends an OpenAI error event, the way a stream that
// failed after its first byte ends. OpenAI SDKs raise it as an APIError.
// code may be "" (null).
func AppendStreamError(dst []byte, message, typ, code string) []byte {
	dst = append(dst, `data: {"error":{"message":`...)
	dst = appendString(dst, message)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, typ)
	dst = append(dst, `,"param":null,"code":`...)
	if code == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, code)
	}
	return append(dst, "}}\n\n"...)
}

// Fail ends a stream that broke after its first byte with an OpenAI error
// event (AppendStreamError).
func (s *Stream) Fail(dst []byte, message, typ, code string) []byte {
	return AppendStreamError(dst, message, typ, code)
}
