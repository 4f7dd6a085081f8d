package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultsMatchGeminiBalance(t *testing.T) {
	s := Defaults()
	if s.MaxFailures != 3 || s.MaxRetries != 3 || s.TimeOut != 300 || s.TestModel != "gemini-2.5-flash-lite" {
		t.Fatalf("unexpected defaults: %+v", s)
	}
	if len(s.SafetySettings) != 5 || s.SafetySettings[0].Threshold != "OFF" {
		t.Fatalf("safety defaults: %+v", s.SafetySettings)
	}
	if !s.ShowThinkingProcess || !s.ProxiesConsistentHash {
		t.Fatal("bool defaults lost")
	}
}

func TestListsAcceptJSONAndText(t *testing.T) {
	for _, raw := range []string{`["a","b"]`, "a,b", "a\nb", " a , b ,", `"a", "b"`} {
		got, err := ParseList(raw)
		if err != nil || strings.Join(got, "|") != "a|b" {
			t.Errorf("ParseList(%q) = %v, %v", raw, got, err)
		}
	}
}

func TestBadValueNamesTheVariable(t *testing.T) {
	cases := map[string]string{
		"MAX_FAILURES":        "many",
		"SHOW_SEARCH_LINK":    "perhaps",
		"THINKING_BUDGET_MAP": "{not json",
		"MAX_RETRIES":         "0",
		"LOG_LEVEL":           "loud",
	}
	for name, val := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, val)
			_, err := LoadSettings()
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("want an error naming %s, got %v", name, err)
			}
		})
	}
}

func TestEnvironmentOverridesDefaults(t *testing.T) {
	t.Setenv("API_KEYS", "k1,k2")
	t.Setenv("THINKING_BUDGET_MAP", `{"gemini-2.5-flash": -1}`)
	t.Setenv("BASE_URL", "http://127.0.0.1:9/v1beta/")
	t.Setenv("CUSTOM_HEADERS", `{"X-A":"1"}`)
	s, err := LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.APIKeys) != 2 || s.ThinkingBudgetMap["gemini-2.5-flash"] != -1 || s.CustomHeaders["X-A"] != "1" {
		t.Fatalf("%+v", s)
	}
	if s.BaseURL != "http://127.0.0.1:9" {
		t.Fatalf("BASE_URL not normalised: %q", s.BaseURL)
	}
}

func TestInfraDefaults(t *testing.T) {
	in, err := LoadInfra()
	if err != nil || in.Port != 8000 || in.NATSListen != "127.0.0.1:4222" || in.Replica == "" {
		t.Fatalf("%+v %v", in, err)
	}
}

func TestTrustedProxiesAreCheckedNamingTheVariable(t *testing.T) {
	t.Setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7")
	in, err := LoadInfra()
	if err != nil || len(in.TrustedProxies) != 2 {
		t.Fatalf("valid list: %v %v", in.TrustedProxies, err)
	}
	t.Setenv("TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")
	if _, err := LoadInfra(); err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES") {
		t.Fatalf("bad entry: %v", err)
	}
}

func TestTheAdminPasswordIsDroppedFromTheEnvironmentsClientTokens(t *testing.T) {
	t.Setenv("AUTH_TOKEN", "admin-password-1")
	t.Setenv("ALLOWED_TOKENS", `["sk-a", " admin-password-1 "]`)
	s, err := LoadSettings()
	if err != nil || len(s.AllowedTokens) != 1 || s.AllowedTokens[0] != "sk-a" {
		t.Fatalf("ALLOWED_TOKENS = %v, %v", s.AllowedTokens, err)
	}
}

func TestJetStreamReplicasIsBoundedAndNamed(t *testing.T) {
	for _, bad := range []string{"0", "6", "three"} {
		t.Setenv("JETSTREAM_REPLICAS", bad)
		if _, err := LoadInfra(); err == nil || !strings.Contains(err.Error(), "JETSTREAM_REPLICAS") {
			t.Errorf("JETSTREAM_REPLICAS=%s: want an error naming it, got %v", bad, err)
		}
	}
	t.Setenv("JETSTREAM_REPLICAS", "3")
	in, err := LoadInfra()
	if err != nil || in.JetStreamReplicas != 3 {
		t.Fatalf("JETSTREAM_REPLICAS=3: %+v, %v", in.JetStreamReplicas, err)
	}
	t.Setenv("JETSTREAM_REPLICAS", "")
	if in, _ := LoadInfra(); in.JetStreamReplicas != 1 {
		t.Fatalf("default replicas %d, want 1", in.JetStreamReplicas)
	}
}

// TICK_INTERVAL is a positive Go duration; anything else fails naming it,
// and unset means the real schedules.
func TestTickIntervalIsAPositiveDurationNamedWhenBad(t *testing.T) {
	if in, err := LoadInfra(); err != nil || in.TickInterval != 0 {
		t.Fatalf("unset: %v, %v; want 0 (the schedules)", in.TickInterval, err)
	}
	t.Setenv("TICK_INTERVAL", "2s")
	if in, err := LoadInfra(); err != nil || in.TickInterval != 2*time.Second {
		t.Fatalf("2s: %v, %v", in.TickInterval, err)
	}
	for _, bad := range []string{"2", "-1s", "0s", "soon"} {
		t.Setenv("TICK_INTERVAL", bad)
		if _, err := LoadInfra(); err == nil || !strings.Contains(err.Error(), "TICK_INTERVAL") || !strings.Contains(err.Error(), "positive duration") {
			t.Errorf("TICK_INTERVAL=%s: want an error naming it, got %v", bad, err)
		}
	}
}
