package convert

import (
	"slices"
	"strings"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/shared/config"
)

// ResolveModel resolves a chat request's model through the models package,
// which the native routes share, and turns what cannot be served into an
// error naming the field: a missing model, a FILTERED_MODELS one, or a
// -search variant of a base that SEARCH_MODELS does not list.
func ResolveModel(name string, s *config.Settings) (models.Model, error) {
	m := models.Resolve(name, s)
	switch {
	case m.Requested == "":
		return m, fieldErr("model", "is required")
	case m.UnofferedSearch():
		return m, fieldErr("model", "%s is not offered: %s is not in SEARCH_MODELS", m.Requested, strings.TrimSuffix(m.Upstream, models.SuffixSearch))
	case m.Filtered(s):
		return m, fieldErr("model", "%s is not supported", m.Requested)
	}
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
func inject(req *GenerateContentRequest, m models.Model, s *config.Settings, hasMedia, clientThinking bool, drops *[]Drop) {
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
