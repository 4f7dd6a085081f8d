package convert

import (
	"encoding/json"
	"strconv"
	"strings"
)

// ResponsesMeta is what the Responses output side needs from the request.
type ResponsesMeta struct {
	ID           string // "resp_…"
	CreatedAt    int64
	Model        string // the model the client asked for
	ShowThinking bool   // thought parts become reasoning items with a summary
	Echo         ResponsesEcho
	NewStem      func() string // random part of item ids; nil means RandomID(24)
}

// Meta builds the ResponsesMeta of a plan.
func (p *ResponsesPlan) Meta(id string, created int64) ResponsesMeta {
	return ResponsesMeta{ID: id, CreatedAt: created, Model: p.Model.Requested, ShowThinking: p.ShowThinking, Echo: p.Echo}
}

func (m *ResponsesMeta) stem() string { return stemOf(m.NewStem) }

// Response is the Responses API's response object, the non-stream body and
// the payload of the response.* lifecycle events.
type Response struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	Error              *ResponseError     `json:"error"`
	IncompleteDetails  *IncompleteDetails `json:"incomplete_details"`
	Model              string             `json:"model"`
	Output             []OutputItem       `json:"output"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Store              bool               `json:"store"`
	Truncation         string             `json:"truncation"`
	Usage              *ResponsesUsage    `json:"usage"`
	ResponsesEcho
}

// ResponseError is a failed response's error.
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// IncompleteDetails says why a response stopped early.
type IncompleteDetails struct {
	Reason string `json:"reason"`
}

// OutputItem is one element of output: a message, a reasoning item or a
// function_call. The slices and arguments are pointers so that an item's
// own fields are always present (content: []) and the others absent.
type OutputItem struct {
	Type      string         `json:"type"`
	ID        string         `json:"id"`
	Status    string         `json:"status,omitempty"`
	Role      string         `json:"role,omitempty"`
	Content   *[]OutputText  `json:"content,omitempty"`
	Summary   *[]SummaryText `json:"summary,omitempty"`
	CallID    string         `json:"call_id,omitempty"`
	Name      string         `json:"name,omitempty"`
	Arguments *string        `json:"arguments,omitempty"`
}

// OutputText is a message's text part.
type OutputText struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
	Logprobs    []any  `json:"logprobs"`
}

// SummaryText is one part of a reasoning item's summary.
type SummaryText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// ResponsesUsage is the Responses API's token accounting.
type ResponsesUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

// ResponsesUsageFrom maps usageMetadata the way the chat route does: output
// = candidates + thoughts, the thoughts as reasoning tokens.
func ResponsesUsageFrom(u *UsageMetadata) *ResponsesUsage {
	cu := UsageFrom(u)
	out := &ResponsesUsage{InputTokens: cu.PromptTokens, OutputTokens: cu.CompletionTokens, TotalTokens: cu.TotalTokens}
	out.InputTokensDetails.CachedTokens = cu.PromptTokensDetails.CachedTokens
	out.OutputTokensDetails.ReasoningTokens = cu.CompletionTokensDetails.ReasoningTokens
	return out
}

// ResponseFromGemini converts a non-stream Gemini answer. It runs the stream
// converter without emitting events, so both forms hold the same items.
func ResponseFromGemini(g *GenerateContentResponse, meta ResponsesMeta) *Response {
	s := &ResponsesStream{meta: meta, quiet: true, cur: -1}
	s.FeedResponse(nil, g)
	s.Finish(nil)
	return &s.final
}

// ResponsesStream turns Gemini stream chunks into Responses API SSE events
// (event: <type>, data: <json with type and sequence_number>). The first
// call emits response.created and response.in_progress; thought parts open
// a reasoning item (when summaries are shown), text a message item with one
// output_text part, and each functionCall is a whole function_call item.
// Finish ends with response.completed (or .incomplete / .failed by Gemini's
// finish reason); Fail ends a broken stream with response.failed.
type ResponsesStream struct {
	meta     ResponsesMeta
	quiet    bool // build the response only (non-stream)
	seq      int
	started  bool
	finished bool
	items    []OutputItem
	cur      int // index of the open reasoning or message item, -1 for none
	text     strings.Builder
	usage    *UsageMetadata
	reason   string
	blocked  bool
	final    Response
}

// NewResponsesStream starts a stream converter.
func NewResponsesStream(meta ResponsesMeta) *ResponsesStream {
	return &ResponsesStream{meta: meta, cur: -1}
}

// rsEvent is every Responses stream event; each kind sets its own fields.
type rsEvent struct {
	Type           string      `json:"type"`
	SequenceNumber int         `json:"sequence_number"`
	Response       *Response   `json:"response,omitempty"`
	OutputIndex    *int        `json:"output_index,omitempty"`
	ItemID         string      `json:"item_id,omitempty"`
	ContentIndex   *int        `json:"content_index,omitempty"`
	SummaryIndex   *int        `json:"summary_index,omitempty"`
	Item           *OutputItem `json:"item,omitempty"`
	Part           any         `json:"part,omitempty"`
	Delta          *string     `json:"delta,omitempty"`
	Text           *string     `json:"text,omitempty"`
	Arguments      *string     `json:"arguments,omitempty"`
	Logprobs       *[]any      `json:"logprobs,omitempty"`
}

var idx0 = 0

func (s *ResponsesStream) emit(dst []byte, ev rsEvent) []byte {
	if s.quiet {
		return dst
	}
	ev.SequenceNumber = s.seq
	s.seq++
	b, err := json.Marshal(ev)
	if err != nil {
		b = []byte(`{"type":"error","code":"server_error","message":"encode event"}`)
	}
	dst = append(dst, "event: "...)
	dst = append(dst, ev.Type...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, b...)
	return append(dst, "\n\n"...)
}

func (s *ResponsesStream) response(status string) *Response {
	r := &Response{
		ID: s.meta.ID, Object: "response", CreatedAt: s.meta.CreatedAt, Status: status, Model: s.meta.Model,
		Output: append([]OutputItem{}, s.items...), Truncation: "disabled", ResponsesEcho: s.meta.Echo,
	}
	if s.usage != nil {
		r.Usage = ResponsesUsageFrom(s.usage)
	}
	return r
}

func (s *ResponsesStream) begin(dst []byte) []byte {
	if s.started {
		return dst
	}
	s.started = true
	dst = s.emit(dst, rsEvent{Type: "response.created", Response: s.response("in_progress")})
	return s.emit(dst, rsEvent{Type: "response.in_progress", Response: s.response("in_progress")})
}

// Feed converts one Gemini chunk (the JSON of one SSE data line). A chunk
// carrying an error object returns *UpstreamError; the caller then ends the
// stream with Fail.
func (s *ResponsesStream) Feed(dst []byte, data []byte) ([]byte, error) {
	return feedChunk(dst, data, s.FeedResponse)
}

// FeedResponse converts one decoded Gemini chunk. Only the first candidate
// counts: the Responses API has no n.
func (s *ResponsesStream) FeedResponse(dst []byte, r *GenerateContentResponse) []byte {
	dst = s.begin(dst)
	if r.UsageMetadata != nil {
		u := *r.UsageMetadata // cumulative: the last one holds the totals
		s.usage = &u
	}
	if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		s.blocked = true
	}
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
		switch {
		case p.FunctionCall != nil:
			dst = s.call(dst, p)
		case p.Thought:
			if s.meta.ShowThinking && p.Text != "" {
				dst = s.open(dst, "reasoning")
				dst = s.delta(dst, p.Text)
			}
		case isContent(p):
			dst = s.open(dst, "message")
			if p.InlineData == nil && p.ExecutableCode == nil && p.CodeExecutionResult == nil {
				dst = s.delta(dst, p.Text)
			} else {
				dst = s.delta(dst, string(appendPartText(nil, p)))
			}
		}
	}
	return dst
}

// open makes sure the open item is of kind, closing another one first.
func (s *ResponsesStream) open(dst []byte, kind string) []byte {
	if s.cur >= 0 && s.items[s.cur].Type == kind {
		return dst
	}
	dst = s.closeItem(dst)
	idx := len(s.items)
	it := OutputItem{Type: kind}
	if kind == "reasoning" {
		it.ID, it.Summary = "rs_"+s.meta.stem(), &[]SummaryText{}
	} else {
		it.ID, it.Status, it.Role, it.Content = "msg_"+s.meta.stem(), "in_progress", "assistant", &[]OutputText{}
	}
	s.items = append(s.items, it)
	s.cur = idx
	s.text.Reset()
	dst = s.emit(dst, rsEvent{Type: "response.output_item.added", OutputIndex: &idx, Item: &it})
	if kind == "reasoning" {
		return s.emit(dst, rsEvent{Type: "response.reasoning_summary_part.added", ItemID: it.ID, OutputIndex: &idx, SummaryIndex: &idx0, Part: SummaryText{Type: "summary_text"}})
	}
	return s.emit(dst, rsEvent{Type: "response.content_part.added", ItemID: it.ID, OutputIndex: &idx, ContentIndex: &idx0, Part: outputText("")})
}

func outputText(t string) OutputText {
	return OutputText{Type: "output_text", Text: t, Annotations: []any{}, Logprobs: []any{}}
}

func (s *ResponsesStream) delta(dst []byte, d string) []byte {
	if d == "" {
		return dst
	}
	s.text.WriteString(d)
	if s.quiet {
		return dst
	}
	// The one event per chunk, written by hand (the same bytes json.Marshal
	// of rsEvent gives, less its HTML escaping): the stream's hot path.
	it := &s.items[s.cur]
	typ, index := "response.output_text.delta", `,"content_index":0`
	if it.Type == "reasoning" {
		typ, index = "response.reasoning_summary_text.delta", `,"summary_index":0`
	}
	dst = append(dst, "event: "...)
	dst = append(dst, typ...)
	dst = append(dst, "\ndata: {\"type\":\""...)
	dst = append(dst, typ...)
	dst = append(dst, `","sequence_number":`...)
	dst = strconv.AppendInt(dst, int64(s.seq), 10)
	s.seq++
	dst = append(dst, `,"output_index":`...)
	dst = strconv.AppendInt(dst, int64(s.cur), 10)
	dst = append(dst, `,"item_id":`...)
	dst = appendString(dst, it.ID)
	dst = append(dst, index...)
	dst = append(dst, `,"delta":`...)
	dst = appendString(dst, d)
	if it.Type != "reasoning" {
		dst = append(dst, `,"logprobs":[]`...)
	}
	return append(dst, "}\n\n"...)
}

// closeItem finishes the open reasoning or message item.
func (s *ResponsesStream) closeItem(dst []byte) []byte {
	if s.cur < 0 {
		return dst
	}
	idx := s.cur
	s.cur = -1
	it := &s.items[idx]
	text := s.text.String()
	if it.Type == "reasoning" {
		*it.Summary = []SummaryText{{Type: "summary_text", Text: text}}
		dst = s.emit(dst, rsEvent{Type: "response.reasoning_summary_text.done", ItemID: it.ID, OutputIndex: &idx, SummaryIndex: &idx0, Text: &text})
		dst = s.emit(dst, rsEvent{Type: "response.reasoning_summary_part.done", ItemID: it.ID, OutputIndex: &idx, SummaryIndex: &idx0, Part: SummaryText{Type: "summary_text", Text: text}})
	} else {
		*it.Content = []OutputText{outputText(text)}
		it.Status = "completed"
		dst = s.emit(dst, rsEvent{Type: "response.output_text.done", ItemID: it.ID, OutputIndex: &idx, ContentIndex: &idx0, Text: &text, Logprobs: &[]any{}})
		dst = s.emit(dst, rsEvent{Type: "response.content_part.done", ItemID: it.ID, OutputIndex: &idx, ContentIndex: &idx0, Part: outputText(text)})
	}
	done := *it
	return s.emit(dst, rsEvent{Type: "response.output_item.done", OutputIndex: &idx, Item: &done})
}

// call emits one whole function_call item. Its call_id carries the Gemini
// thoughtSignature, so a client that answers with function_call_output and
// replays the call gives the signature back.
func (s *ResponsesStream) call(dst []byte, p *Part) []byte {
	dst = s.closeItem(dst)
	stem := s.meta.stem()
	args := string(appendCompact(nil, p.FunctionCall.Args))
	if args == "" || args == "null" {
		args = "{}"
	}
	empty := ""
	idx := len(s.items)
	it := OutputItem{Type: "function_call", ID: "fc_" + stem, Status: "in_progress", CallID: EncodeToolCallID(stem, p.ThoughtSignature), Name: p.FunctionCall.Name, Arguments: &empty}
	dst = s.emit(dst, rsEvent{Type: "response.output_item.added", OutputIndex: &idx, Item: &it})
	dst = s.emit(dst, rsEvent{Type: "response.function_call_arguments.delta", ItemID: it.ID, OutputIndex: &idx, Delta: &args})
	dst = s.emit(dst, rsEvent{Type: "response.function_call_arguments.done", ItemID: it.ID, OutputIndex: &idx, Arguments: &args})
	it.Arguments, it.Status = &args, "completed"
	s.items = append(s.items, it)
	done := it
	return s.emit(dst, rsEvent{Type: "response.output_item.done", OutputIndex: &idx, Item: &done})
}

// Finish ends a cleanly finished stream with the terminal event Gemini's
// finish reason calls for. Calling it twice appends nothing.
func (s *ResponsesStream) Finish(dst []byte) []byte {
	if s.finished {
		return dst
	}
	dst = s.begin(dst)
	dst = s.closeItem(dst)
	s.finished = true
	status, typ := "completed", "response.completed"
	var incomplete *IncompleteDetails
	var fail *ResponseError
	switch {
	case s.blocked:
		status, incomplete = "incomplete", &IncompleteDetails{Reason: "content_filter"}
	case s.reason == "MAX_TOKENS":
		status, incomplete = "incomplete", &IncompleteDetails{Reason: "max_output_tokens"}
	case FinishReason(s.reason, false, false) == "content_filter":
		status, incomplete = "incomplete", &IncompleteDetails{Reason: "content_filter"}
	case s.reason == "MALFORMED_FUNCTION_CALL" || s.reason == "UNEXPECTED_TOOL_CALL" || s.reason == "TOO_MANY_TOOL_CALLS":
		status, fail = "failed", &ResponseError{Code: "server_error", Message: "Gemini ended the answer with " + s.reason}
	}
	if incomplete != nil {
		typ = "response.incomplete"
	} else if fail != nil {
		typ = "response.failed"
	}
	r := s.response(status)
	r.IncompleteDetails, r.Error = incomplete, fail
	s.final = *r
	return s.emit(dst, rsEvent{Type: typ, Response: r})
}

// Fail ends a stream that broke after its first byte: the open item is cut
// (status incomplete) and response.failed carries the error. code is
// OpenAI's (rate_limit_exceeded, …); "" means server_error.
func (s *ResponsesStream) Fail(dst []byte, message, _, code string) []byte {
	if s.finished {
		return dst
	}
	dst = s.begin(dst)
	s.finished = true
	if s.cur >= 0 {
		it := &s.items[s.cur]
		text := s.text.String()
		if it.Type == "reasoning" {
			*it.Summary = []SummaryText{{Type: "summary_text", Text: text}}
		} else {
			*it.Content = []OutputText{outputText(text)}
			it.Status = "incomplete"
		}
		s.cur = -1
	}
	if code == "" {
		code = "server_error"
	}
	r := s.response("failed")
	r.Error = &ResponseError{Code: code, Message: message}
	s.final = *r
	return s.emit(dst, rsEvent{Type: "response.failed", Response: r})
}
