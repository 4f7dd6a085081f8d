package redact

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxBodyDepth bounds the nesting scrubJSON follows; a deeper body is masked
// as text.
const MaxBodyDepth = 64

// dropMetadataKey reports an ErrorInfo metadata field that names who owns
// the key: the consumer project, the container (api_key:…), and the like.
func dropMetadataKey(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "consumer") || strings.Contains(k, "container") || strings.Contains(k, "project")
}

type frame struct {
	object   bool
	n        int  // members written
	key      bool // next token is a key (objects)
	metadata bool // this object is a "metadata" value
}

// scrubJSON re-encodes a JSON document (or several, back to back, as in a
// JSON-array stream's pieces) with masked strings and without the metadata
// fields that name a consumer or container. It reports false when b is not
// whole valid JSON or nests deeper than MaxBodyDepth.
func scrubJSON(b []byte, secrets []string) ([]byte, bool) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') || !json.Valid(trimmed) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(b))
	var stack []frame
	var pendingKey string // last key read, for "metadata" detection
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false
		}
		top := len(stack) - 1
		// An object key: written with its colon, or dropped with its value.
		if k, isKey := tok.(string); isKey && top >= 0 && stack[top].object && stack[top].key {
			if stack[top].metadata && dropMetadataKey(k) {
				if err := skipValue(dec); err != nil {
					return nil, false
				}
				continue
			}
			if stack[top].n > 0 {
				out.WriteByte(',')
			}
			stack[top].n++
			writeJSONString(&out, scrubString(k, secrets))
			out.WriteByte(':')
			stack[top].key = false
			pendingKey = k
			continue
		}
		// A value: separate it from the previous array element.
		if d, ok := tok.(json.Delim); top >= 0 && !stack[top].object && !(ok && (d == ']' || d == '}')) {
			if stack[top].n > 0 {
				out.WriteByte(',')
			}
			stack[top].n++
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= MaxBodyDepth {
					return nil, false
				}
				meta := t == '{' && top >= 0 && stack[top].object && pendingKey == "metadata"
				stack = append(stack, frame{object: t == '{', key: t == '{', metadata: meta})
				out.WriteByte(byte(t))
			case '}', ']':
				stack = stack[:len(stack)-1]
				out.WriteByte(byte(t))
			}
		case string:
			writeJSONString(&out, scrubString(t, secrets))
		case json.Number:
			out.WriteString(t.String())
		case bool:
			if t {
				out.WriteString("true")
			} else {
				out.WriteString("false")
			}
		case nil:
			out.WriteString("null")
		}
		pendingKey = ""
		if n := len(stack) - 1; n >= 0 && stack[n].object {
			stack[n].key = true
		}
	}
	return out.Bytes(), true
}

// skipValue reads past one whole value.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// writeJSONString writes s as a JSON string. Unlike encoding/json it leaves
// <, > and & alone (these are error bodies, not HTML); invalid UTF-8 becomes
// U+FFFD as encoding/json would.
func writeJSONString(w interface {
	WriteByte(byte) error
	WriteString(string) (int, error)
}, s string) {
	const hex = "0123456789abcdef"
	_ = w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			_, _ = w.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				_ = w.WriteByte('\\')
				_ = w.WriteByte(c)
			case '\n':
				_, _ = w.WriteString(`\n`)
			case '\r':
				_, _ = w.WriteString(`\r`)
			case '\t':
				_, _ = w.WriteString(`\t`)
			default:
				_, _ = w.WriteString(`\u00`)
				_ = w.WriteByte(hex[c>>4])
				_ = w.WriteByte(hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			_, _ = w.WriteString(s[start:i])
			_, _ = w.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			_, _ = w.WriteString(s[start:i])
			_, _ = w.WriteString(`\u202`)
			_ = w.WriteByte(hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	_, _ = w.WriteString(s[start:])
	_ = w.WriteByte('"')
}
