package redact

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzBody: whatever upstream sends, the scrubbed body holds no AIza-shaped
// key, no known token (raw or once JSON-decoded), and valid JSON stays valid.
func FuzzBody(f *testing.F) {
	const tok = "sk-gb-0123456789abcdefghijklmn"
	for _, seed := range []string{
		suspended,
		`[{"error":{"code":403,"message":"Consumer 'api_key:` + key + `' has been suspended."}}]`,
		`{"error":{"message":"` + strings.Replace(key, "S", `\u0053`, 1) + `"}}`,
		`{"error":{"message":"` + key + key + `"}}`,
		`{"error":{"message":"AIza` + strings.Repeat("x", 31) + key + `"}}`,
		`{"error":{"message":"unknown name \"` + tok + `\""}}`,
		`{"error":{"message":"token sk-gb-0123456789abcdefghijklmn\/x"}}`,
		`{"a":{"metadata":{"consumer":1,"containerInfo":{"x":[1,2]},"service":"s"}}}`,
		"plain " + key + " text",
		`{"error":{"code":429,"message":"quota\nretry","status":"RESOURCE_EXHAUSTED"}}`,
		`https://x/y?key=secret-token-value&z=1`,
		`{"\u0041Iza":"` + key + `"}`,
		`[1,2.5e3,true,null,"x",{}]`,
	} {
		f.Add([]byte(seed))
	}
	var s Scrubber
	s.SetKnown([]string{tok, "mytoken/with<odd>&chars"})
	f.Fuzz(func(t *testing.T, in []byte) {
		out := s.Body(in, "attempt-secret-1234")
		if keyShape.Match(out) {
			t.Fatalf("AIza key survived: %q -> %q", in, out)
		}
		for _, sec := range []string{tok, "mytoken/with<odd>&chars", "attempt-secret-1234"} {
			if bytes.Contains(out, []byte(sec)) {
				t.Fatalf("secret %q survived: %q -> %q", sec, in, out)
			}
		}
		if json.Valid(bytes.TrimSpace(in)) && len(bytes.TrimSpace(in)) > 0 {
			if !json.Valid(out) {
				t.Fatalf("valid JSON became invalid: %q -> %q", in, out)
			}
			var v any
			if json.Unmarshal(out, &v) == nil {
				dec := fmtJSON(v)
				if keyShape.MatchString(dec) {
					t.Fatalf("AIza key survives decoding: %q -> %q", in, out)
				}
				for _, sec := range []string{tok, "mytoken/with<odd>&chars", "attempt-secret-1234"} {
					if strings.Contains(dec, sec) {
						t.Fatalf("secret %q survives decoding: %q -> %q", sec, in, out)
					}
				}
			}
		}
	})
}

// FuzzText: the text scrubber never leaves a key shape or a given secret.
func FuzzText(f *testing.F) {
	for _, seed := range []string{key, key + key, "AIza" + strings.Repeat("A", 31) + key, "a sk-gb-0123456789abcdefghijklmn b", "x?key=abc&y"} {
		f.Add(seed, "sk-gb-0123456789abcdefghijklmn")
	}
	f.Fuzz(func(t *testing.T, in, secret string) {
		out := Secrets(in, secret)
		if keyShape.MatchString(out) {
			t.Fatalf("AIza key survived: %q -> %q", in, out)
		}
		if len(secret) >= MinSecret && strings.Contains(out, secret) {
			t.Fatalf("secret %q survived: %q -> %q", secret, in, out)
		}
	})
}
