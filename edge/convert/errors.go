package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// FieldError is a request the client must fix: the handler answers it with a
// 400 in OpenAI's error shape, param = Field.
type FieldError struct {
	Field string // e.g. "messages[2].tool_calls[0].function.arguments"
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// decodeError turns an encoding/json error into a FieldError naming where
// the body went wrong.
func decodeError(err error) *FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fieldErr(field, "want %s, got JSON %s", goTypeName(te.Type.String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fieldErr("body", "invalid JSON at byte %d: %v", se.Offset, se)
	}
	return fieldErr("body", "invalid JSON: %v", err)
}

// goTypeName renders a Go type as the JSON kind a client understands.
func goTypeName(t string) string {
	t = strings.TrimPrefix(t, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "float"), strings.HasPrefix(t, "uint"):
		return "a number"
	case strings.HasPrefix(t, "map"), strings.HasPrefix(t, "convert."):
		return "an object"
	}
	return t
}

// decodeBody decodes a request body; a malformed one gives a *FieldError
// naming the field.
func decodeBody[T any](body []byte) (*T, error) {
	var req T
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, decodeError(err)
	}
	return &req, nil
}
