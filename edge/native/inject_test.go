package native

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/shared/config"
)

func settings(f func(*config.Settings)) *config.Settings {
	s := config.Defaults()
	s.ThinkingModels = []string{"gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-pro-preview"}
	if f != nil {
		f(&s)
	}
	return &s
}

func TestInjectAppliesOnlyTheDocumentedChanges(t *testing.T) {
	plain := models.Model{Requested: "gemini-2.5-flash", Upstream: "gemini-2.5-flash"}
	search := models.Model{Requested: "gemini-2.5-flash-search", Upstream: "gemini-2.5-flash", Search: true}
	image := models.Model{Requested: "gemini-2.0-flash-exp-image", Upstream: "gemini-2.0-flash-exp", Image: true}
	noThink := func(base string) models.Model {
		return models.Model{Requested: base + "-non-thinking", Upstream: base, NonThinking: true}
	}
	noSafety := func(s *config.Settings) { s.SafetySettings = nil }
	for _, tc := range []struct {
		name   string
		st     *config.Settings
		m      models.Model
		body   string
		checks map[string]string // gjson path → raw value expected in the output; "" = absent
		same   bool              // body must come back byte for byte
	}{
		{name: "client safety settings win", st: settings(nil), m: plain,
			body: `{"contents":[],"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_ONLY_HIGH"}]}`, same: true},
		{name: "snake_case safety settings count as sent", st: settings(nil), m: plain,
			body: `{"contents":[],"safety_settings":[]}`, same: true},
		{name: "safety settings added when none sent", st: settings(nil), m: plain, body: `{"contents":[]}`,
			checks: map[string]string{"safetySettings.0.category": `"HARM_CATEGORY_HARASSMENT"`, "safetySettings.#": "5"}},
		{name: "search adds googleSearch", st: settings(noSafety), m: search, body: `{"contents":[],"tools":[{"codeExecution":{}}]}`,
			checks: map[string]string{"tools.0": `{"codeExecution":{}}`, "tools.1": `{"googleSearch":{}}`}},
		{name: "search keeps an existing snake_case google_search", st: settings(noSafety), m: search, body: `{"tools":[{"google_search":{}}]}`, same: true},
		{name: "image writes into the client's snake_case generation_config", st: settings(noSafety), m: image,
			body:   `{"generation_config":{"temperature":0.5}}`,
			checks: map[string]string{"generation_config.responseModalities": `["TEXT","IMAGE"]`, "generation_config.temperature": "0.5", "generationConfig": ""}},
		{name: "non-thinking flash budget 0", st: settings(noSafety), m: noThink("gemini-2.5-flash"), body: `{}`,
			checks: map[string]string{"generationConfig.thinkingConfig.thinkingBudget": "0"}},
		{name: "non-thinking pro uses the minimum budget", st: settings(noSafety), m: noThink("gemini-2.5-pro"), body: `{"generationConfig":{"thinkingConfig":{"includeThoughts":true}}}`,
			checks: map[string]string{"generationConfig.thinkingConfig.thinkingBudget": "128", "generationConfig.thinkingConfig.includeThoughts": "true"}},
		{name: "non-thinking gemini 3 uses a level", st: settings(noSafety), m: noThink("gemini-3-pro-preview"), body: `{}`,
			checks: map[string]string{"generationConfig.thinkingConfig.thinkingLevel": `"LOW"`}},
		{name: "client thinking level is left alone", st: settings(noSafety), m: noThink("gemini-2.5-flash"),
			body: `{"generationConfig":{"thinking_config":{"thinking_level":"HIGH"}}}`, same: true},
		{name: "thinking budget map default", st: settings(func(s *config.Settings) {
			s.SafetySettings = nil
			s.ThinkingBudgetMap = map[string]int{"gemini-2.5-flash": 512}
		}),
			m: plain, body: `{"contents":[]}`, checks: map[string]string{"generationConfig.thinkingConfig.thinkingBudget": "512"}},
		{name: "code execution and url context added", st: settings(func(s *config.Settings) {
			s.SafetySettings = nil
			s.CodeExecutionEnabled = true
			s.URLContextEnabled = true
		}),
			m: plain, body: `{"contents":[]}`, checks: map[string]string{"tools.0": `{"codeExecution":{}}`, "tools.1": `{"urlContext":{}}`}},
		{name: "never with JSON mode", st: settings(func(s *config.Settings) {
			s.SafetySettings = nil
			s.CodeExecutionEnabled = true
			s.URLContextEnabled = true
		}),
			m: plain, body: `{"generationConfig":{"responseMimeType":"application/json"}}`, same: true},
		{name: "never with function tools", st: settings(func(s *config.Settings) { s.SafetySettings = nil; s.CodeExecutionEnabled = true }),
			m: plain, body: `{"tools":[{"functionDeclarations":[{"name":"f"}]}]}`, same: true},
		{name: "never in a function-calling conversation", st: settings(func(s *config.Settings) { s.SafetySettings = nil; s.CodeExecutionEnabled = true }),
			m: plain, body: `{"contents":[{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]}]}`, same: true},
		{name: "url context only for listed models", st: settings(func(s *config.Settings) { s.SafetySettings = nil; s.URLContextEnabled = true }),
			m: models.Model{Requested: "gemma-3", Upstream: "gemma-3"}, body: `{}`, same: true},
		{name: "a single tool object becomes a list", st: settings(noSafety), m: search, body: `{"tools":{"codeExecution":{}}}`,
			checks: map[string]string{"tools.0": `{"codeExecution":{}}`, "tools.1": `{"googleSearch":{}}`}},
		{name: "not JSON is left for upstream to judge", st: settings(nil), m: search, body: `{"contents":[`, same: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, _ := Inject([]byte(tc.body), tc.m, tc.st)
			if tc.same && string(out) != tc.body {
				t.Fatalf("changed:\n%s\n%s", tc.body, out)
			}
			if !tc.same && !gjson.ValidBytes(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
			for path, want := range tc.checks {
				got := gjson.GetBytes(out, path)
				if want == "" && got.Exists() || want != "" && got.Raw != want {
					t.Errorf("%s = %s, want %s\n%s", path, got.Raw, want, out)
				}
			}
		})
	}
}
