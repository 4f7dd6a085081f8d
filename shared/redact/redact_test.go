package redact

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

const key = "AIzaSyA1234567890abcdefghijklmnopqrstuv"

func TestHintNeverRevealsTheSecret(t *testing.T) {
	for _, s := range []string{key, "sk-123456", "short", "sk-abcdefghijklmnopqrstuvwxyz0123456789"} {
		h := Hint(s)
		if h == s || strings.Contains(h, s) {
			t.Errorf("Hint(%q) = %q reveals the secret", s, h)
		}
	}
	if got := Hint(key); got != "AIzaSy…stuv" {
		t.Errorf("Hint = %q, want AIzaSy…stuv", got)
	}
}

func TestIDIsStableAndOpaque(t *testing.T) {
	if ID(key) != ID(key) {
		t.Fatal("ID not stable")
	}
	if ID(key) == ID(key+"x") {
		t.Fatal("ID collides")
	}
	if strings.Contains(key, ID(key)) || len(ID(key)) != 16 {
		t.Fatalf("unexpected id %q", ID(key))
	}
}

func TestTextMasksKeysTokensAndQueryParams(t *testing.T) {
	in := `upstream said: API key ` + key + ` not valid; url=https://x/y?alt=sse&key=secret-token-value&z=1 token sk-abcdefghijklmnopqrstuvwxyz`
	out := Text(in)
	for _, leak := range []string{key, "secret-token-value", "sk-abcdefghijklmnopqrstuvwxyz"} {
		if strings.Contains(out, leak) {
			t.Errorf("Text leaked %q: %s", leak, out)
		}
	}
	if !strings.Contains(out, "AIzaSy…stuv") {
		t.Errorf("Text lost the hint: %s", out)
	}
}

func TestSecretsMasksKnownValues(t *testing.T) {
	out := Secrets("token my-client-token-1 used", "my-client-token-1")
	if strings.Contains(out, "my-client-token-1") {
		t.Fatalf("leaked: %s", out)
	}
}

// suspended is Google's CONSUMER_SUSPENDED answer: the key three times.
const suspended = `{
  "error": {
    "code": 403,
    "message": "Permission denied: Consumer 'api_key:` + key + `' has been suspended.",
    "status": "PERMISSION_DENIED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "CONSUMER_SUSPENDED",
        "domain": "googleapis.com",
        "metadata": {
          "consumer": "projects/123456789012",
          "containerInfo": "api_key:` + key + `",
          "service": "generativelanguage.googleapis.com"
        }
      },
      {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        "locale": "en-US",
        "message": "Permission denied: Consumer 'api_key:` + key + `' has been suspended."
      }
    ]
  }
}
`

func TestBodyScrubsConsumerSuspended(t *testing.T) {
	out := Body([]byte(suspended))
	if bytes.Contains(out, []byte(key)) || keyShape.Match(out) {
		t.Fatalf("key survived: %s", out)
	}
	if !json.Valid(out) {
		t.Fatalf("not JSON any more: %s", out)
	}
	var e struct {
		Error struct {
			Code    int
			Message string
			Status  string
			Details []map[string]any
		}
	}
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatal(err)
	}
	if e.Error.Code != 403 || e.Error.Status != "PERMISSION_DENIED" || e.Error.Details[0]["reason"] != "CONSUMER_SUSPENDED" {
		t.Fatalf("shape lost: %s", out)
	}
	md := e.Error.Details[0]["metadata"].(map[string]any)
	if _, ok := md["containerInfo"]; ok {
		t.Errorf("containerInfo kept: %s", out)
	}
	if _, ok := md["consumer"]; ok {
		t.Errorf("consumer kept: %s", out)
	}
	if md["service"] != "generativelanguage.googleapis.com" {
		t.Errorf("service dropped: %s", out)
	}
	if !strings.Contains(e.Error.Message, "AIzaSy…stuv") {
		t.Errorf("message lost its hint: %q", e.Error.Message)
	}
}

func TestBodyScrubsEscapedAndBackToBackKeys(t *testing.T) {
	esc := strings.Replace(key, "A", `\u0041`, 1)
	other := "AIzaSyZ_yxwvutsrqponmlkjihgfedcba98765"
	for name, in := range map[string]string{
		"unicode escape": `{"error":{"message":"key ` + esc + ` bad"}}`,
		"back to back":   `{"error":{"message":"` + key + other + `"}}`,
		"array stream":   `[{"error":{"code":403,"message":"` + key + `"}}]`,
		"plain text":     "Consumer api_key:" + key + " suspended",
		"query param":    `{"error":{"message":"GET https://x/v1beta?key=` + key + `&alt=sse"}}`,
	} {
		out := Body([]byte(in))
		if keyShape.Match(out) || bytes.Contains(out, []byte(key)) || bytes.Contains(out, []byte(other[4:])) {
			t.Errorf("%s: leaked: %s", name, out)
		}
		if json.Valid([]byte(in)) && !json.Valid(out) {
			t.Errorf("%s: JSON broken: %s", name, out)
		}
	}
}

func TestBodyScrubsKnownTokensInEveryEscaping(t *testing.T) {
	var s Scrubber
	tok := "my/client<token>&1"
	s.SetKnown([]string{tok, "admin"})
	for _, in := range []string{
		`{"error":{"message":"unknown name \"my\/client\u003ctoken\u003e\u00261\""}}`,
		`{"error":{"message":"token my/client<token>&1"}}`,
		`not json: my\/client<token>&1 and my/client<token>&1`,
	} {
		out := s.Body([]byte(in))
		if bytes.Contains(out, []byte(tok)) || bytes.Contains(out, []byte(`my\/client`)) {
			t.Errorf("token survived in %s", out)
		}
		var v any
		if json.Unmarshal(out, &v) == nil && strings.Contains(fmtJSON(v), tok) {
			t.Errorf("token survives decoding: %s", out)
		}
	}
	// "admin" is under MinSecret: ordinary words stay.
	if out := s.Text("an admin must re-enable keys"); out != "an admin must re-enable keys" {
		t.Errorf("short secret masked words: %q", out)
	}
	// The caller's own token, passed per call.
	if out := s.Text("echo sk-gb-tokentokentokentoken1 x", "sk-gb-tokentokentokentoken1"); strings.Contains(out, "tokentokentoken") {
		t.Errorf("caller token survived: %q", out)
	}
}

func TestBodyWithoutSecretsIsNotCopied(t *testing.T) {
	in := []byte(`{"error":{"code":429,"message":"quota\nPlease retry in 17s.","status":"RESOURCE_EXHAUSTED"}}`)
	out := Body(in)
	if &out[0] != &in[0] {
		t.Fatal("a clean body was copied")
	}
}

func TestTruncateMasksBeforeCutting(t *testing.T) {
	msg := strings.Repeat("x", 20) + key
	out := Truncate(msg, 30)
	if strings.Contains(out, key[:10]) {
		t.Fatalf("half a key survived the cut: %q", out)
	}
}

var keyShape = regexp.MustCompile(`AIza[0-9A-Za-z_\-]{35}`)

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	var out strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out.WriteString(x + "\n")
		case map[string]any:
			for k, e := range x {
				out.WriteString(k + "\n")
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	_ = b
	return out.String()
}
