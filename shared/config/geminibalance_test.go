package config

import (
	"strings"
	"testing"
)

func TestDotEnvParsesGeminiBalanceForms(t *testing.T) {
	in := `# comment
export API_KEYS=["a","b"]
ALLOWED_TOKENS='["sk-1"]'
AUTH_TOKEN="pass # not a comment"
LOG_LEVEL=INFO # a comment
SAFETY_SETTINGS="[
  {\"category\": \"HARM_CATEGORY_HARASSMENT\", \"threshold\": \"OFF\"}
]"
EMPTY=
`
	got, err := ParseDotEnv(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"API_KEYS": `["a","b"]`, "ALLOWED_TOKENS": `["sk-1"]`, "AUTH_TOKEN": "pass # not a comment", "LOG_LEVEL": "INFO",
		"SAFETY_SETTINGS": "[\n  {\"category\": \"HARM_CATEGORY_HARASSMENT\", \"threshold\": \"OFF\"}\n]", "EMPTY": "",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d variables, want %d: %q", len(got), len(want), got)
	}
	for _, kv := range got {
		if want[kv[0]] != kv[1] {
			t.Errorf("%s = %q, want %q", kv[0], kv[1], want[kv[0]])
		}
	}
	if _, err := ParseDotEnv(strings.NewReader("A=\"open\n")); err == nil || !strings.Contains(err.Error(), "A") {
		t.Errorf("an unterminated quote must fail naming the variable, got %v", err)
	}
}

func TestGeminiBalanceValueFormsAreAccepted(t *testing.T) {
	env := map[string]string{
		"THINKING_BUDGET_MAP": `{'gemini-2.5-flash': -1, 'gemini-2.5-pro': 1024.0}`,
		"SHOW_SEARCH_LINK":    "True",
		"LOG_LEVEL":           "INFO",
	}
	s, err := LoadSettingsFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if s.ThinkingBudgetMap["gemini-2.5-flash"] != -1 || s.ThinkingBudgetMap["gemini-2.5-pro"] != 1024 || !s.ShowSearchLink {
		t.Fatalf("%+v", s)
	}
	env["THINKING_BUDGET_MAP"] = `{"gemini-2.5-pro": 10.5}`
	if _, err := LoadSettingsFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil || !strings.Contains(err.Error(), "THINKING_BUDGET_MAP") {
		t.Fatalf("a fractional budget must fail naming the variable, got %v", err)
	}
}

func TestUnsupportedNamesEachSetVariable(t *testing.T) {
	env := map[string]string{"UPLOAD_PROVIDER": "smms", "MYSQL_HOST": "db", "OSS_REGION": "", "MAX_FAILURES": "10"}
	got := Unsupported(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if len(got) != 2 || !strings.HasPrefix(got[0], "MYSQL_HOST (") || !strings.HasPrefix(got[1], "UPLOAD_PROVIDER (") {
		t.Fatalf("Unsupported = %q", got)
	}
	for name := range GeminiBalanceOnly {
		if Known(name) {
			t.Errorf("%s is both read and listed as unsupported", name)
		}
	}
}
