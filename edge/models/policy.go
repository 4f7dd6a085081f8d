package models

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gemini-balance-go/shared/config"
)

// Facts are what a generateContent request already says, as each surface
// reads them from its own wire format (the native route from JSON, the
// converters from the Gemini body they built).
type Facts struct {
	HasMedia bool // inline or file media in the contents
	// FunctionCalling: function declarations, or a functionCall or
	// functionResponse already in the conversation.
	FunctionCalling bool
	// StructuredOutput: a responseMimeType other than text/plain (JSON or
	// enum mode); Gemini rejects built-in tools next to it.
	StructuredOutput bool
	ClientThinking   bool // the client set a thinking budget or level
	ThinkingOff      bool // ... and that setting is a budget of 0
	// IncludeThoughts is the client's own choice; nil when its protocol has
	// no way to say (OpenAI chat), so SHOW_THINKING_PROCESS decides. Native
	// requests pass false when absent: Gemini's default is no thoughts, and
	// a client reading parts[0].text must not get a thought summary.
	IncludeThoughts  *bool
	ClientSafety     bool // the client sent safety settings
	ClientModalities bool // the client set responseModalities
	HasSystem        bool // a system instruction is present
}

// Built-in tools the policy may add, by their Gemini field names.
const (
	ToolGoogleSearch  = "googleSearch"
	ToolCodeExecution = "codeExecution"
	ToolURLContext    = "urlContext"
)

// Injection is the policy's decision. The surfaces apply it to their own
// representation and change nothing else; a field already present in the
// request is never overwritten (Decide only asks for what is absent).
type Injection struct {
	Tools              []string // built-in tools to add when not already present
	ResponseModalities []string // set generationConfig.responseModalities
	DropSystem         bool     // remove the system instruction
	ThinkingBudget     *int     // set thinkingConfig.thinkingBudget
	ThinkingLevel      string   // set thinkingConfig.thinkingLevel
	IncludeThoughts    bool     // set thinkingConfig.includeThoughts true
	SafetySettings     []config.SafetySetting
	// Notes say what the model name asked for but was left out, and why,
	// as (field, reason) pairs a converter reports as dropped.
	Notes []Note
}

// Note is one thing left out of a request, and why.
type Note struct{ Field, Reason string }

// Empty reports a decision that changes nothing.
func (in *Injection) Empty() bool {
	return len(in.Tools) == 0 && in.ResponseModalities == nil && !in.DropSystem && in.ThinkingBudget == nil &&
		in.ThinkingLevel == "" && !in.IncludeThoughts && in.SafetySettings == nil
}

// OfferError is a model name this gateway does not serve; surfaces answer
// it with 400 in their own error shape.
type OfferError struct{ Field, Message string }

func (e *OfferError) Error() string { return e.Field + ": " + e.Message }

// Offered refuses a -search name whose base SEARCH_MODELS does not list:
// Resolve leaves such a name unresolved, and no model of that name exists
// upstream either, so both routes refuse it here (gemini-balance: 400
// "Model X is not supported") instead of spending a key on a 404.
func (m Model) Offered() error {
	if m.UnofferedSearch() {
		return &OfferError{"model", fmt.Sprintf("%s is not offered: %s is not in SEARCH_MODELS", m.Requested, strings.TrimSuffix(m.Upstream, SuffixSearch))}
	}
	return nil
}

// IsGemini3 tells Gemini 3 models (thinkingLevel, signatures required).
func IsGemini3(model string) bool { return strings.Contains(model, "gemini-3") }

// IsTTS tells speech-output models, which take no tools and no thinking.
func IsTTS(model string) bool { return strings.Contains(model, "tts") }

// Thinks reports a model that accepts thinkingConfig: THINKING_MODELS, any
// Gemini 3, and the 2.5 family (with the -latest aliases that point at it),
// but not TTS or 2.5 image-output models.
func Thinks(model string, st *config.Settings) bool {
	if IsTTS(model) {
		return false
	}
	if slices.Contains(st.ThinkingModels, model) || IsGemini3(model) {
		return true
	}
	if strings.Contains(model, "image") {
		return false
	}
	return strings.Contains(model, "gemini-2.5") || (strings.HasPrefix(model, "gemini-") && strings.HasSuffix(model, "-latest"))
}

// MinimalThinking is "thinking off" for a model that thinks: budget 0 where
// thinking can be disabled, the floor where it cannot (2.5 Pro: 128), and
// on Gemini 3 the lowest level the model takes (MINIMAL exists only on the
// Flash family; LOW is accepted by every Gemini 3 model).
func MinimalThinking(model string) (budget *int, level string) {
	switch {
	case IsGemini3(model) && strings.Contains(model, "flash"):
		return nil, "MINIMAL"
	case IsGemini3(model):
		return nil, "LOW"
	case strings.Contains(model, "2.5-pro"):
		b := 128
		return &b, ""
	}
	b := 0
	return &b, ""
}

// Decide is the one injection policy every surface (native, OpenAI chat,
// Responses, Messages) applies. From the resolved model, the live settings
// and what the request already says, it decides:
//   - tools: googleSearch for -search; codeExecution (TOOLS_CODE_EXECUTION_ENABLED)
//     except on -search and image models and when media is present; urlContext
//     (URL_CONTEXT_ENABLED, URL_CONTEXT_MODELS). None of them next to function
//     calling or structured output, which Gemini rejects (gemini-balance
//     #264, #238), and none on TTS models;
//   - image output (-image, -image-generation, CREATE_IMAGE_MODEL-chat):
//     responseModalities TEXT and IMAGE, and no system instruction, which
//     those models reject;
//   - thinking, only on a model that thinks and only when the client set
//     none: -non-thinking → MinimalThinking, else THINKING_BUDGET_MAP;
//   - includeThoughts when SHOW_THINKING_PROCESS, the client's protocol
//     left it unsaid, the model thinks and thinking is not switched off;
//   - SAFETY_SETTINGS when the client sent none.
//
// The error is an OfferError for a model name that is not served.
func Decide(m Model, st *config.Settings, f Facts) (Injection, error) {
	var in Injection
	if err := m.Offered(); err != nil {
		return in, err
	}
	if !f.ClientSafety && len(st.SafetySettings) > 0 {
		in.SafetySettings = st.SafetySettings
	}
	if m.Image {
		if !f.ClientModalities {
			in.ResponseModalities = []string{"TEXT", "IMAGE"}
		}
		if f.HasSystem {
			in.DropSystem = true
			in.Notes = append(in.Notes, Note{"system", "system instruction left out: image output models reject it"})
		}
	}

	if !IsTTS(m.Upstream) {
		var tools []string
		if m.Search {
			tools = append(tools, ToolGoogleSearch)
		}
		if st.CodeExecutionEnabled && !m.Search && !m.Image && !f.HasMedia {
			tools = append(tools, ToolCodeExecution)
		}
		if st.URLContextEnabled && slices.Contains(st.URLContextModels, m.Upstream) {
			tools = append(tools, ToolURLContext)
		}
		switch {
		case len(tools) == 0:
		case f.FunctionCalling || f.StructuredOutput:
			if m.Search {
				in.Notes = append(in.Notes, Note{"model", "googleSearch left out: Gemini does not combine it with function tools or structured output"})
			}
		default:
			in.Tools = tools
		}
	}

	if !Thinks(m.Upstream, st) {
		return in, nil
	}
	off := f.ThinkingOff
	if !f.ClientThinking {
		switch budget, ok := st.ThinkingBudgetMap[m.Upstream]; {
		case m.NonThinking:
			in.ThinkingBudget, in.ThinkingLevel = MinimalThinking(m.Upstream)
			off = true
		case ok:
			in.ThinkingBudget = &budget
			off = budget == 0
		}
	}
	in.IncludeThoughts = f.IncludeThoughts == nil && st.ShowThinkingProcess && !off
	return in, nil
}
