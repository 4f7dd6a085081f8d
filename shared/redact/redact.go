// Package redact masks upstream API keys and client tokens so that no full
// secret ever reaches a log line, an event, an error body or an API answer.
package redact

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Hint returns a masked form of a secret that is safe to show: the first six
// and last four characters of a long secret (AIzaSy…abcd), less for short ones.
func Hint(secret string) string {
	n := len(secret)
	switch {
	case n == 0:
		return ""
	case n <= 8:
		return "…" + secret[n-min(2, n):]
	case n <= 16:
		return secret[:3] + "…" + secret[n-3:]
	default:
		return secret[:6] + "…" + secret[n-4:]
	}
}

// ID derives a stable identifier from a secret. It is a truncated SHA-256, so
// it names the secret across services and restarts without revealing it.
func ID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:8])
}

// Gemini API keys (AIza + 35), Vertex express keys (AQ. + 50), OpenAI-style
// tokens (sk- + 20 or more) and the key= query parameter.
var secretPattern = regexp.MustCompile(`AIza[0-9A-Za-z_\-]{35}|AQ\.[0-9A-Za-z_\-]{20,}|sk-[0-9A-Za-z_\-]{20,}`)
var keyParamPattern = regexp.MustCompile(`([?&](?:key|api_key)=)[^&\s"']+`)

// Text masks every secret-looking substring of s: key patterns and key= query
// parameters. It is meant for upstream error messages and free text before
// they are logged or published.
func Text(s string) string {
	s = secretPattern.ReplaceAllStringFunc(s, Hint)
	return keyParamPattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := keyParamPattern.FindStringSubmatch(m)
		return sub[1] + Hint(m[len(sub[1]):])
	})
}

// Secrets masks every occurrence of the given known secrets in s, in addition
// to the patterns that Text recognises. Use it where the exact secrets are at
// hand (the key of this attempt, the client token of this request).
func Secrets(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue
		}
		s = strings.ReplaceAll(s, sec, Hint(sec))
	}
	return Text(s)
}
