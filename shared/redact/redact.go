// Package redact masks upstream API keys and client tokens so that no full
// secret ever reaches a log line, an event, an error body or an API answer.
//
// One scrubber serves every path: Text for free text (messages, log
// attributes), Body for whole upstream bodies relayed to a client or stored
// in an event. Both mask every key shape (Gemini AIza…, Vertex AQ.…,
// sk-… tokens, key= parameters) and every literal secret registered with
// SetKnown (ALLOWED_TOKENS, AUTH_TOKEN) or passed per call (the attempt's
// key, the caller's token). Truncate only what these return.
package redact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"sync/atomic"
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
// tokens (sk- + 20 or more, sk-gb- managed tokens included) and the key=
// query parameter. Each pattern takes the whole run of key characters, so
// two keys written back to back are masked as one and no tail survives.
var secretPattern = regexp.MustCompile(`AIza[0-9A-Za-z_\-]{35,}|AQ\.[0-9A-Za-z_\-]{20,}|sk-[0-9A-Za-z_\-]{20,}`)
var keyParamPattern = regexp.MustCompile(`([?&](?:key|api_key)=)[^&\s"']+`)

// patternHints are substrings every pattern match contains: a string without
// any of them needs no regexp at all.
var patternHints = []string{"AIza", "AQ.", "sk-", "key="}

// MinSecret is the shortest literal secret that is masked: shorter ones
// (an AUTH_TOKEN of "admin") would mask ordinary words in every message.
const MinSecret = 8

// maxPasses bounds the replace-until-stable loop; a string still changing
// after that many passes is replaced whole.
const maxPasses = 8

// Scrubber masks secrets. The zero value masks key shapes only; SetKnown adds
// literal secrets. It is safe for concurrent use.
type Scrubber struct {
	known atomic.Pointer[[]string]
}

// Default is the process-wide scrubber: edge registers the client tokens it
// accepts, and Text, Secrets, Body and the slog handler use it.
var Default = &Scrubber{}

// SetKnown replaces the literal secrets masked in addition to key shapes.
func (s *Scrubber) SetKnown(secrets []string) {
	list := make([]string, 0, len(secrets))
	for _, sec := range secrets {
		if sec = strings.TrimSpace(sec); len(sec) >= MinSecret {
			list = append(list, sec)
		}
	}
	s.known.Store(&list)
}

// secrets is the known list plus the usable extra ones.
func (s *Scrubber) secrets(extra []string) []string {
	var known []string
	if p := s.known.Load(); p != nil {
		known = *p
	}
	if len(extra) == 0 {
		return known
	}
	out := make([]string, 0, len(known)+len(extra))
	out = append(out, known...)
	for _, sec := range extra {
		if len(sec) >= MinSecret {
			out = append(out, sec)
		}
	}
	return out
}

// Text masks every secret in s: key shapes, key= parameters, the known
// secrets and extra.
func (s *Scrubber) Text(str string, extra ...string) string {
	return scrubString(str, s.secrets(extra))
}

// Text masks every secret-looking substring of s with the Default scrubber.
// It is meant for upstream error messages and free text before they are
// logged or published.
func Text(s string) string { return Default.Text(s) }

// Secrets masks the given secrets in s besides everything Text masks. Use it
// where the exact secrets are at hand (the key of this attempt, the client
// token of this request).
func Secrets(s string, secrets ...string) string { return Default.Text(s, secrets...) }

// Body masks an upstream body with the Default scrubber (see Scrubber.Body).
func Body(b []byte, secrets ...string) []byte { return Default.Body(b, secrets...) }

// Truncate cuts s to at most n bytes after masking it, so half a secret can
// never survive a cut; a cut inside a UTF-8 sequence backs off to its start.
func Truncate(s string, n int, secrets ...string) string {
	s = Secrets(s, secrets...)
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-4 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}

func scrubString(s string, secrets []string) string {
	if !mayHold(s, secrets) {
		return s
	}
	for pass := 0; pass < maxPasses; pass++ {
		next := replaceOnce(s, secrets)
		if next == s {
			return s
		}
		s = next
	}
	if next := replaceOnce(s, secrets); next != s {
		return "[REDACTED]"
	}
	return s
}

func mayHold(s string, secrets []string) bool {
	for _, h := range patternHints {
		if strings.Contains(s, h) {
			return true
		}
	}
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			return true
		}
	}
	return false
}

func replaceOnce(s string, secrets []string) string {
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, safeHint(sec))
		}
	}
	if strings.Contains(s, "AIza") || strings.Contains(s, "AQ.") || strings.Contains(s, "sk-") {
		s = secretPattern.ReplaceAllStringFunc(s, Hint)
	}
	if strings.Contains(s, "key=") {
		s = keyParamPattern.ReplaceAllStringFunc(s, func(m string) string {
			sub := keyParamPattern.FindStringSubmatch(m)
			return sub[1] + Hint(m[len(sub[1]):])
		})
	}
	return s
}

// safeHint is Hint for a literal secret, or a fixed mark when the hint would
// carry characters that need escaping in JSON or could rebuild the secret.
func safeHint(sec string) string {
	h := Hint(sec)
	for _, r := range h {
		if r != '…' && !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' || r == '.') {
			return "[REDACTED]"
		}
	}
	if strings.Contains(sec, h) {
		return "[REDACTED]"
	}
	return h
}

// bodyHints are substrings that make a body worth a full scrub besides the
// key-shape hints: metadata naming a consumer or container, and JSON escapes
// that could hide a secret's characters.
var bodyHints = [][]byte{[]byte("AIza"), []byte("AQ."), []byte("sk-"), []byte("key="),
	[]byte("onsumer"), []byte("ontainer"), []byte(`\u`), []byte(`\/`)}

// Body masks an upstream body before it is relayed or stored. A JSON body is
// re-encoded with every string masked and the ErrorInfo metadata fields that
// name a consumer or container dropped, so it stays valid JSON and no escape
// (\/, \u0041) can hide a secret; any other body is masked as text. A body
// without any trace of a secret is returned as it is, without copying.
func (s *Scrubber) Body(b []byte, extra ...string) []byte {
	secrets := s.secrets(extra)
	if !bodyMayHold(b, secrets) {
		return b
	}
	if out, ok := scrubJSON(b, secrets); ok {
		return out
	}
	str := string(b)
	for _, sec := range secrets {
		for _, form := range escapedForms(sec) {
			str = strings.ReplaceAll(str, form, "[REDACTED]")
		}
	}
	return []byte(scrubString(str, secrets))
}

func bodyMayHold(b []byte, secrets []string) bool {
	for _, h := range bodyHints {
		if bytes.Contains(b, h) {
			return true
		}
	}
	for _, sec := range secrets {
		if bytes.Contains(b, []byte(sec)) {
			return true
		}
		for _, form := range escapedForms(sec) {
			if bytes.Contains(b, []byte(form)) {
				return true
			}
		}
	}
	return false
}

// escapedForms are the ways a secret may be written inside a JSON string
// other than literally.
func escapedForms(sec string) []string {
	var out []string
	if strings.ContainsAny(sec, `"\/<>&`) || strings.ContainsFunc(sec, func(r rune) bool { return r < 0x20 }) {
		var b strings.Builder
		writeJSONString(&b, sec)
		e := b.String()
		e = e[1 : len(e)-1]
		out = append(out, e)
		if strings.Contains(e, "/") {
			out = append(out, strings.ReplaceAll(e, "/", `\/`))
		}
		if strings.ContainsAny(e, "<>&") {
			out = append(out, strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`).Replace(e))
		}
	}
	return out
}
