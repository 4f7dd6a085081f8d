package convert

import (
	"slices"
	"strings"

	"github.com/gemini-balance-go/shared/config"
)

// Derived-model suffixes, as in gemini-balance.
const (
	SuffixSearch      = "-search"
	SuffixImage       = "-image"
	SuffixNonThinking = "-non-thinking"
	// SuffixChat after CREATE_IMAGE_MODEL names the image chat model.
	SuffixChat = "-chat"
)

// Model is a requested model name resolved into the upstream model and the
// behaviour its suffixes ask for.
type Model struct {
	Requested   string `json:"requested"`              // as the client named it
	Upstream    string `json:"upstream"`               // sent to Gemini
	Search      bool   `json:"search,omitempty"`       // -search: googleSearch tool, citations
	Image       bool   `json:"image,omitempty"`        // -image or an -image-generation model: text+image output
	NonThinking bool   `json:"non_thinking,omitempty"` // -non-thinking: thinking off (or lowest)
}

// ResolveModel strips derived-model suffixes in any combination
// (x-search-non-thinking works) and applies MODEL_ALIASES. A suffix is only
// stripped when its base is configured for it, so real model names that
// happen to end in -image (gemini-2.5-flash-image) pass through unchanged.
func ResolveModel(name string, s *config.Settings) (Model, error) {
	name = strings.TrimPrefix(strings.TrimSpace(name), "models/")
	m := Model{Requested: name}
	if name == "" {
		return m, fieldErr("model", "is required")
	}
	base := name
	if s.CreateImageModel != "" && name == s.CreateImageModel+SuffixChat {
		// gemini-balance's image chat model: the image model, chatting.
		m.Upstream, m.Image = s.CreateImageModel, true
		return m, nil
	}
	for changed := true; changed; {
		changed = false
		switch {
		case strings.HasSuffix(base, SuffixNonThinking):
			base, m.NonThinking, changed = strings.TrimSuffix(base, SuffixNonThinking), true, true
		case strings.HasSuffix(base, SuffixSearch):
			b := strings.TrimSuffix(base, SuffixSearch)
			if !slices.Contains(s.SearchModels, b) {
				return m, fieldErr("model", "%s is not offered: %s is not in SEARCH_MODELS", name, b)
			}
			base, m.Search, changed = b, true, true
		case strings.HasSuffix(base, SuffixImage) && slices.Contains(s.ImageModels, strings.TrimSuffix(base, SuffixImage)):
			base, m.Image, changed = strings.TrimSuffix(base, SuffixImage), true, true
		}
	}
	if alias, ok := s.ExtraModelAliases[base]; ok && alias != "" {
		base = alias
	}
	if strings.HasSuffix(base, "-image-generation") {
		m.Image = true
	}
	if slices.Contains(s.FilteredModels, base) || slices.Contains(s.FilteredModels, name) {
		return m, fieldErr("model", "%s is not supported", name)
	}
	m.Upstream = base
	return m, nil
}

// isGemini3 tells Gemini 3 models (thinkingLevel, signatures required).
func isGemini3(model string) bool { return strings.Contains(model, "gemini-3") }

// thinks reports a model that accepts thinkingConfig.
func thinks(model string, s *config.Settings) bool {
	if strings.Contains(model, "tts") {
		return false
	}
	if slices.Contains(s.ThinkingModels, model) || isGemini3(model) {
		return true
	}
	if strings.Contains(model, "image") {
		return false
	}
	// The -latest aliases point at 2.5-or-newer thinking models.
	return strings.Contains(model, "gemini-2.5") || (strings.HasPrefix(model, "gemini-") && strings.HasSuffix(model, "-latest"))
}

// Injections are what the server adds to every converted request, the same
// rules as on the native path: tools for -search, codeExecution and
// urlContext; image output; safety settings; default thinking.
func inject(req *GenerateContentRequest, m Model, s *config.Settings, hasMedia, clientThinking bool, drops *[]Drop) {
	if len(req.SafetySettings) == 0 {
		for _, ss := range s.SafetySettings {
			req.SafetySettings = append(req.SafetySettings, SafetySetting(ss))
		}
	}

	hasFunctions := false
	for _, t := range req.Tools {
		hasFunctions = hasFunctions || len(t.FunctionDeclarations) > 0
	}
	jsonMode := req.GenerationConfig != nil && req.GenerationConfig.ResponseMimeType == "application/json"
	// Gemini rejects built-in tools next to function declarations, and any
	// tool with JSON output (gemini-balance issues #264, #238).
	if !hasFunctions && !jsonMode {
		var t Tool
		if m.Search {
			t.GoogleSearch = &struct{}{}
		}
		if s.CodeExecutionEnabled && !m.Search && !m.Image && !hasMedia {
			t.CodeExecution = &struct{}{}
		}
		if s.URLContextEnabled && slices.Contains(s.URLContextModels, m.Upstream) {
			t.URLContext = &struct{}{}
		}
		if t.GoogleSearch != nil || t.CodeExecution != nil || t.URLContext != nil {
			req.Tools = append(req.Tools, t)
		}
	} else if m.Search {
		*drops = append(*drops, Drop{"model", "googleSearch left out: Gemini does not combine it with function tools or JSON output"})
	}

	if m.Image {
		gc := genConfig(req)
		gc.ResponseModalities = []string{"TEXT", "IMAGE"}
		if req.SystemInstruction != nil {
			req.SystemInstruction = nil
			*drops = append(*drops, Drop{"messages", "system instruction left out: image output models reject it"})
		}
	}

	if clientThinking || !thinks(m.Upstream, s) {
		return
	}
	var tc ThinkingConfig
	switch {
	case m.NonThinking && isGemini3(m.Upstream):
		tc.ThinkingLevel = "LOW"
		if strings.Contains(m.Upstream, "flash") {
			tc.ThinkingLevel = "MINIMAL"
		}
	case m.NonThinking:
		b := 0
		if strings.Contains(m.Upstream, "gemini-2.5-pro") {
			b = 128 // 2.5 Pro cannot turn thinking off; 128 is its floor
		}
		tc.ThinkingBudget = &b
	default:
		if b, ok := s.ThinkingBudgetMap[m.Upstream]; ok {
			tc.ThinkingBudget = &b
		}
	}
	tc.IncludeThoughts = s.ShowThinkingProcess && (tc.ThinkingBudget == nil || *tc.ThinkingBudget != 0)
	if tc.ThinkingBudget != nil || tc.ThinkingLevel != "" || tc.IncludeThoughts {
		genConfig(req).ThinkingConfig = &tc
	}
}

func genConfig(req *GenerateContentRequest) *GenerationConfig {
	if req.GenerationConfig == nil {
		req.GenerationConfig = &GenerationConfig{}
	}
	return req.GenerationConfig
}
