package redact

import (
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
