package convert

import (
	"errors"
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
	if m.Requested == "" {
		return m, fieldErr("model", "is required")
	}
	if err := m.Offered(); err != nil {
		var oe *models.OfferError
		if errors.As(err, &oe) {
			return m, fieldErr(oe.Field, "%s", oe.Message)
		}
		return m, err
	}
	if m.Filtered(s) {
		return m, fieldErr("model", "%s is not supported", m.Requested)
	}
	return m, nil
}

// isGemini3 tells Gemini 3 models (thinkingLevel, signatures required).
func isGemini3(model string) bool { return models.IsGemini3(model) }

// thinks reports a model that accepts thinkingConfig.
func thinks(model string, s *config.Settings) bool { return models.Thinks(model, s) }

// inject applies the one injection policy (models.Decide, which the native
// route applies too) to a converted request: it reads the request's facts
// from req, and adds only what the policy decides, never overwriting what
// the conversion already set. hasMedia says the client sent media;
// clientThinking says the client's own thinking budget or level is in req;
// an includeThoughts there counts as the client's choice when true (false
// only when the conversion marked it as said). What the model name asked for but was
// left out is reported in drops.
func inject(req *GenerateContentRequest, m models.Model, s *config.Settings, hasMedia, clientThinking bool, drops *[]Drop) {
	f := models.Facts{
		HasMedia:       hasMedia,
		ClientThinking: clientThinking,
		ClientSafety:   len(req.SafetySettings) > 0,
		HasSystem:      req.SystemInstruction != nil,
	}
	for _, t := range req.Tools {
		f.FunctionCalling = f.FunctionCalling || len(t.FunctionDeclarations) > 0
	}
	for i := range req.Contents {
		for j := range req.Contents[i].Parts {
			p := &req.Contents[i].Parts[j]
			f.FunctionCalling = f.FunctionCalling || p.FunctionCall != nil || p.FunctionResponse != nil
			f.HasMedia = f.HasMedia || p.InlineData != nil || p.FileData != nil
		}
	}
	if gc := req.GenerationConfig; gc != nil {
		mt := strings.ToLower(strings.TrimSpace(gc.ResponseMimeType))
		f.StructuredOutput = mt != "" && mt != "text/plain"
		f.ClientModalities = len(gc.ResponseModalities) > 0
		if tc := gc.ThinkingConfig; tc != nil {
			f.ThinkingOff = clientThinking && tc.ThinkingBudget != nil && *tc.ThinkingBudget == 0
			if tc.IncludeThoughts || tc.thoughtsSaid {
				f.IncludeThoughts = &tc.IncludeThoughts
			}
		}
	}
	in, err := models.Decide(m, s, f)
	if err != nil {
		// ResolveModel refused unoffered names already; nothing to add.
		*drops = append(*drops, Drop{"model", err.Error()})
		return
	}
	for _, n := range in.Notes {
		*drops = append(*drops, Drop{n.Field, n.Reason})
	}
	for _, ss := range in.SafetySettings {
		req.SafetySettings = append(req.SafetySettings, SafetySetting(ss))
	}
	if in.DropSystem {
		req.SystemInstruction = nil
	}
	if in.ResponseModalities != nil {
		genConfig(req).ResponseModalities = in.ResponseModalities
	}
	if in.ThinkingBudget != nil || in.ThinkingLevel != "" || in.IncludeThoughts {
		gc := genConfig(req)
		if gc.ThinkingConfig == nil {
			gc.ThinkingConfig = &ThinkingConfig{}
		}
		tc := gc.ThinkingConfig
		if in.ThinkingBudget != nil {
			tc.ThinkingBudget = in.ThinkingBudget
		}
		if in.ThinkingLevel != "" {
			tc.ThinkingLevel = in.ThinkingLevel
		}
		tc.IncludeThoughts = tc.IncludeThoughts || in.IncludeThoughts
	}
	if len(in.Tools) > 0 {
		var add Tool
		for _, name := range in.Tools {
			if hasTool(req.Tools, name) {
				continue
			}
			switch name {
			case models.ToolGoogleSearch:
				add.GoogleSearch = &struct{}{}
			case models.ToolCodeExecution:
				add.CodeExecution = &struct{}{}
			case models.ToolURLContext:
				add.URLContext = &struct{}{}
			}
		}
		if add.GoogleSearch != nil || add.CodeExecution != nil || add.URLContext != nil {
			req.Tools = append(req.Tools, add)
		}
	}
}

// hasTool reports a built-in tool already in the request.
func hasTool(tools []Tool, name string) bool {
	for _, t := range tools {
		switch {
		case name == models.ToolGoogleSearch && t.GoogleSearch != nil,
			name == models.ToolCodeExecution && t.CodeExecution != nil,
			name == models.ToolURLContext && t.URLContext != nil:
			return true
		}
	}
	return false
}

func genConfig(req *GenerateContentRequest) *GenerationConfig {
	if req.GenerationConfig == nil {
		req.GenerationConfig = &GenerationConfig{}
	}
	return req.GenerationConfig
}
