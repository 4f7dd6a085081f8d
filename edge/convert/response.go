package convert

import (
	"encoding/base64"
	"strings"
)

// ResponseMeta is what the response side needs from the request.
type ResponseMeta struct {
	ID           string // "chatcmpl-…", the same on every chunk of a stream
	Created      int64
	Model        string // the model name the client asked for
	ShowThinking bool
	SearchLinks  bool
	AudioFormat  string        // "wav" or "pcm16" when audio output was asked for
	NewStem      func() string // random part of tool-call ids; nil means RandomID(24)
}

// Meta builds the ResponseMeta of a plan.
func (p *ChatPlan) Meta(id string, created int64) ResponseMeta {
	return ResponseMeta{ID: id, Created: created, Model: p.Model.Requested, ShowThinking: p.ShowThinking, SearchLinks: p.SearchLinks, AudioFormat: p.AudioFormat}
}

// stemOf is the random part of a new tool-call id: newStem's (tests pin
// it) or RandomID(24).
func stemOf(newStem func() string) string {
	if newStem != nil {
		return newStem()
	}
	return RandomID(24)
}

func (m *ResponseMeta) stem() string { return stemOf(m.NewStem) }

// AudioOutput is message.audio when audio output was asked for.
type AudioOutput struct {
	ID         string `json:"id"`
	Data       string `json:"data"`
	ExpiresAt  int64  `json:"expires_at"`
	Transcript string `json:"transcript"`
}

// FromGemini converts a non-stream Gemini response: one choice per candidate.
func FromGemini(resp *GenerateContentResponse, meta ResponseMeta) *ChatCompletion {
	out := &ChatCompletion{
		ID:      meta.ID,
		Object:  "chat.completion",
		Created: meta.Created,
		Model:   meta.Model,
		Choices: make([]Choice, 0, max(1, len(resp.Candidates))),
	}
	if resp.UsageMetadata != nil {
		u := UsageFrom(resp.UsageMetadata)
		out.Usage = &u
	}
	if len(resp.Candidates) == 0 {
		// A blocked prompt has no candidates: say so with content_filter.
		empty := ""
		out.Choices = append(out.Choices, Choice{
			Message:      ResponseMessage{Role: "assistant", Content: &empty, Annotations: []struct{}{}},
			FinishReason: FinishReason("", resp.PromptFeedback != nil && resp.PromptFeedback.BlockReason != "", false),
		})
		return out
	}
	for i := range resp.Candidates {
		cand := &resp.Candidates[i]
		var text, reasoning strings.Builder
		var calls []ToolCall
		var audio *AudioOutput
		if cand.Content != nil {
			for j := range cand.Content.Parts {
				p := &cand.Content.Parts[j]
				switch {
				case p.FunctionCall != nil:
					calls = append(calls, toolCall(p, len(calls), meta.stem(), false))
				case p.Thought:
					if meta.ShowThinking {
						reasoning.WriteString(p.Text)
					}
				case p.InlineData != nil && strings.HasPrefix(p.InlineData.MimeType, "audio/"):
					audio = &AudioOutput{ID: "audio_" + meta.stem(), Data: audioData(p.InlineData, meta.AudioFormat), ExpiresAt: meta.Created + 3600}
				default:
					text.Write(appendPartText(nil, p))
				}
			}
		}
		if meta.SearchLinks {
			text.Write(appendCitations(nil, cand.GroundingMetadata))
		}
		msg := ResponseMessage{Role: "assistant", ReasoningContent: reasoning.String(), ToolCalls: calls, Annotations: []struct{}{}}
		if s := text.String(); s != "" || len(calls) == 0 {
			msg.Content = &s
		}
		if audio != nil {
			msg.Audio = audio
		}
		out.Choices = append(out.Choices, Choice{
			Index:        cand.Index,
			Message:      msg,
			FinishReason: FinishReason(cand.FinishReason, false, len(calls) > 0),
		})
	}
	return out
}

func toolCall(p *Part, index int, stem string, withIndex bool) ToolCall {
	args := string(appendCompact(nil, p.FunctionCall.Args))
	if args == "" || args == "null" {
		args = "{}"
	}
	tc := ToolCall{ID: EncodeToolCallID(stem, p.ThoughtSignature), Type: "function", Function: FunctionCallParam{Name: p.FunctionCall.Name, Arguments: args}}
	if withIndex {
		tc.Index = &index
	}
	return tc
}

// appendPartText renders a non-thought, non-call part as chat text: text as
// is, images as markdown data URLs, code execution as fenced blocks.
func appendPartText(dst []byte, p *Part) []byte {
	switch {
	case p.InlineData != nil && strings.HasPrefix(p.InlineData.MimeType, "image/"):
		dst = append(dst, "\n\n![image](data:"...)
		dst = append(dst, p.InlineData.MimeType...)
		dst = append(dst, ";base64,"...)
		dst = append(dst, p.InlineData.Data...)
		dst = append(dst, ")\n\n"...)
	case p.ExecutableCode != nil:
		dst = append(dst, "\n```"...)
		dst = append(dst, strings.ToLower(p.ExecutableCode.Language)...)
		dst = append(dst, '\n')
		dst = append(dst, p.ExecutableCode.Code...)
		dst = append(dst, "\n```\n"...)
	case p.CodeExecutionResult != nil:
		dst = append(dst, "\n```\n"...)
		dst = append(dst, p.CodeExecutionResult.Output...)
		dst = append(dst, "\n```\n"...)
	default:
		dst = append(dst, p.Text...)
	}
	return dst
}

// appendCitations renders search grounding as a source list (SHOW_SEARCH_LINK).
func appendCitations(dst []byte, g *GroundingMetadata) []byte {
	if g == nil {
		return dst
	}
	first := true
	for _, ch := range g.GroundingChunks {
		if ch.Web == nil || ch.Web.URI == "" {
			continue
		}
		if first {
			dst = append(dst, "\n\n---\n**Sources**\n"...)
			first = false
		}
		title := ch.Web.Title
		if title == "" {
			title = ch.Web.URI
		}
		dst = append(dst, "- ["...)
		dst = append(dst, title...)
		dst = append(dst, "]("...)
		dst = append(dst, ch.Web.URI...)
		dst = append(dst, ")\n"...)
	}
	return dst
}

func audioData(b *Blob, format string) string {
	if format != "wav" || !strings.Contains(strings.ToLower(b.MimeType), "l16") {
		return b.Data
	}
	pcm, err := base64.StdEncoding.DecodeString(b.Data)
	if err != nil {
		return b.Data
	}
	return base64.StdEncoding.EncodeToString(WAV(pcm, PCMRate(b.MimeType)))
}

// FinishReason maps a Gemini finishReason to OpenAI's. A turn that produced
// function calls ends with tool_calls unless it was cut or filtered.
func FinishReason(reason string, blocked, calls bool) string {
	if blocked {
		return "content_filter"
	}
	switch reason {
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return "content_filter"
	}
	if calls {
		return "tool_calls"
	}
	return "stop"
}

// UsageFrom maps usageMetadata: completion = candidates + thoughts, with the
// thoughts as reasoning tokens and the cached prompt tokens in the details.
func UsageFrom(u *UsageMetadata) Usage {
	prompt := u.PromptTokenCount + u.ToolUsePromptTokenCount
	completion := u.CandidatesTokenCount + u.ThoughtsTokenCount
	total := u.TotalTokenCount
	if total < prompt+completion {
		total = prompt + completion
	}
	return Usage{
		PromptTokens:            prompt,
		CompletionTokens:        completion,
		TotalTokens:             total,
		PromptTokensDetails:     PromptTokensDetails{CachedTokens: u.CachedContentTokenCount},
		CompletionTokensDetails: CompletionTokensDetails{ReasoningTokens: u.ThoughtsTokenCount},
	}
}
