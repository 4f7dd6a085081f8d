// Package guard bounds what a client's bytes can cost a service: a JSON
// check with a nesting limit that runs before any parser sees a client body,
// and the HTTP server limits (header, idle and body-stall timeouts, header
// size) every binary serves with. It is shared because edge and admind both
// parse client bodies and every service serves HTTP.
//
//	if err := guard.CheckJSON(body); errors.Is(err, guard.ErrTooDeep) { // 400 }
//	srv := guard.Server(handler)
package guard

import (
	"errors"
	"fmt"
)

// MaxDepth is the deepest nesting of arrays and objects a client body may
// have. Real requests stay far below it (an OpenAI tool schema nested 30
// levels is about 60 JSON levels); recursive parsers (gjson, encoding/json,
// schema converters) are safe well past it.
const MaxDepth = 128

// ErrTooDeep is returned for a body nested deeper than MaxDepth.
var ErrTooDeep = fmt.Errorf("JSON nested deeper than %d levels", MaxDepth)

// SyntaxError is a body that is not one valid JSON value.
type SyntaxError struct {
	Offset int // byte where the body went wrong
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// Valid reports whether b is one JSON value nested at most MaxDepth deep.
func Valid(b []byte) bool { return CheckJSON(b) == nil }

// TooDeep reports whether err is ErrTooDeep.
func TooDeep(err error) bool { return errors.Is(err, ErrTooDeep) }

// CheckJSON checks that b is one valid JSON value (RFC 8259, as
// encoding/json reads it: strings are not checked for UTF-8) nested at most
// MaxDepth deep. It never recurses and never allocates, so no input can
// exhaust the stack, and it stops at the first fault: a body of a million
// "[" costs MaxDepth+1 bytes of scanning. The error is ErrTooDeep (wrapped,
// with the offset) or a *SyntaxError.
func CheckJSON(b []byte) error {
	// One bit per open container: set for an object, clear for an array.
	var stack [(MaxDepth + 63) / 64]uint64
	depth := 0
	isObject := func() bool { return stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0 }
	push := func(obj bool, at int) error {
		if depth == MaxDepth {
			return fmt.Errorf("%w (at byte %d)", ErrTooDeep, at)
		}
		w, bit := depth/64, uint64(1)<<(depth%64)
		if obj {
			stack[w] |= bit
		} else {
			stack[w] &^= bit
		}
		depth++
		return nil
	}
	i := skipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return syntaxErr(i, "unexpected end of input")
		}
		var err error
		switch c := b[i]; {
		case c == '{':
			if err := push(true, i); err != nil {
				return err
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == '}' {
				depth--
				i++
				break
			}
			if i, err = objectKey(b, i); err != nil {
				return err
			}
			continue
		case c == '[':
			if err := push(false, i); err != nil {
				return err
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == ']' {
				depth--
				i++
				break
			}
			continue
		case c == '"':
			i, err = scanString(b, i)
		case c == 't':
			i, err = literal(b, i, "true")
		case c == 'f':
			i, err = literal(b, i, "false")
		case c == 'n':
			i, err = literal(b, i, "null")
		case c == '-' || (c >= '0' && c <= '9'):
			i, err = scanNumber(b, i)
		default:
			return syntaxErr(i, fmt.Sprintf("unexpected %q looking for a value", c))
		}
		if err != nil {
			return err
		}
		// A value ended at i: close containers until one wants another value.
		for {
			i = skipSpace(b, i)
			if depth == 0 {
				if i != len(b) {
					return syntaxErr(i, "data after the top-level value")
				}
				return nil
			}
			if i >= len(b) {
				return syntaxErr(i, "unexpected end of input")
			}
			obj := isObject()
			switch c := b[i]; {
			case c == ',':
				i = skipSpace(b, i+1)
				if obj {
					if i, err = objectKey(b, i); err != nil {
						return err
					}
				}
			case c == '}' && obj, c == ']' && !obj:
				depth--
				i++
				continue
			default:
				return syntaxErr(i, fmt.Sprintf("unexpected %q after a value", c))
			}
			break
		}
	}
}

// objectKey scans `"key" :` and the space after it.
func objectKey(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return i, syntaxErr(i, "want an object key")
	}
	i, err := scanString(b, i)
	if err != nil {
		return i, err
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, syntaxErr(i, "want ':' after an object key")
	}
	return skipSpace(b, i+1), nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString scans the string starting at the quote b[i].
func scanString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return i, syntaxErr(i, "control character in a string")
		case c == '\\':
			i++
			if i >= len(b) {
				return i, syntaxErr(i, "unexpected end of input in a string")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for k := 1; k <= 4; k++ {
					if i+k >= len(b) || !isHex(b[i+k]) {
						return i, syntaxErr(i, "bad \\u escape")
					}
				}
				i += 4
			default:
				return i, syntaxErr(i, "bad escape")
			}
		}
	}
	return i, syntaxErr(i, "unexpected end of input in a string")
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func literal(b []byte, i int, word string) (int, error) {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return i, syntaxErr(i, "invalid literal")
	}
	return i + len(word), nil
}

// scanNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return i, syntaxErr(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, syntaxErr(j, "want digits after '.'")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, syntaxErr(j, "want digits in the exponent")
		}
		i = j
	}
	return i, nil
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func syntaxErr(at int, msg string) error { return &SyntaxError{Offset: at, Msg: msg} }
