package fakegemini

import (
	"crypto/sha256"
	"math"
	"strings"
	"unicode/utf8"
)

// Reading request bodies: fields by either spelling, user text, token counts and deterministic embeddings.

func field(m map[string]any, names ...string) map[string]any {
	v, _ := field2(m, names...).(map[string]any)
	return v
}

func field2(m map[string]any, names ...string) any {
	for _, n := range names {
		if v, ok := m[n]; ok {
			return v
		}
	}
	return nil
}

// lastUserText is the text of the last content turn in a generate request.
func lastUserText(body map[string]any) string {
	cs, _ := body["contents"].([]any)
	for i := len(cs) - 1; i >= 0; i-- {
		if t := strings.Join(texts(cs[i]), " "); t != "" {
			return t
		}
	}
	return ""
}

// texts collects every "text" string below v.
func texts(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "text" {
					out = append(out, s)
				} else {
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// countTokens is a deterministic stand-in: ~1 token per 4 bytes of text, 258 per inline blob.
func countTokens(body map[string]any) int {
	n := 0
	for _, t := range texts(body) {
		n += tokensOf(t)
	}
	return n
}

func tokensOf(s string) int { return (utf8.RuneCountInString(s) + 3) / 4 }

func partTokens(p Part) int {
	if p.InlineData != nil {
		return 258
	}
	if p.FunctionCall != nil {
		return 8
	}
	return 0
}

func dims(m map[string]any) int {
	if v, ok := field2(m, "outputDimensionality", "output_dimensionality").(float64); ok && v > 0 {
		return int(v)
	}
	return 8
}

// embed is a deterministic unit vector derived from the text.
func embed(ts []string, n int) []float64 {
	h := sha256.Sum256([]byte(strings.Join(ts, "\x00")))
	out := make([]float64, n)
	var norm float64
	for i := range out {
		out[i] = float64(int(h[i%32])-128) / 128
		norm += out[i] * out[i]
	}
	norm = math.Sqrt(norm)
	for i := range out {
		if norm > 0 {
			out[i] = math.Round(out[i]/norm*1e6) / 1e6
		}
	}
	return out
}
