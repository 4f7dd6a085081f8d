package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gemini-balance-go/shared/config"
)

// Chat output controls → Gemini generationConfig: sampling, formats, modalities and thinking.

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
		applied, err := c.effort(gc, "reasoning_effort", e)
		if err != nil {
			return false, err
		}
		clientThinking = applied
	}

	if !gc.empty() {
		body.GenerationConfig = gc
	}
	return clientThinking, nil
}

// effort applies a reasoning effort to gc: the model's thinking config, or
// a drop when the model does not think. It reports whether it applied one.
func (c *converter) effort(gc *GenerationConfig, field, effort string) (bool, error) {
	tc, err := thinkingFor(effort, c.plan.Model.Upstream, c.opt.Settings)
	if err != nil {
		return false, err
	}
	if tc == nil {
		c.drop(field, c.plan.Model.Upstream+" does not think")
		return false, nil
	}
	gc.ThinkingConfig = tc
	return true, nil
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
