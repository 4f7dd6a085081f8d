package relay

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gemini-balance-go/shared/redact"
)

// RPCStatus maps an HTTP status to the google.rpc status name Gemini puts
// in its error bodies.
func RPCStatus(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ALREADY_EXISTS"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case 500:
		return "INTERNAL"
	case 501:
		return "UNIMPLEMENTED"
	case 502, 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	if code >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}

// ErrorBody is a Gemini-shaped error body (google.rpc.Status as JSON).
func ErrorBody(code int, message string) []byte {
	msg, _ := json.Marshal(message)
	var b bytes.Buffer
	b.Grow(64 + len(msg))
	b.WriteString(`{"error":{"code":`)
	b.WriteString(strconv.Itoa(code))
	b.WriteString(`,"message":`)
	b.Write(msg)
	b.WriteString(`,"status":"`)
	b.WriteString(RPCStatus(code))
	b.WriteString(`"}}`)
	return b.Bytes()
}

// WriteError writes a Gemini-shaped error.
func WriteError(w http.ResponseWriter, code int, message string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_, _ = w.Write(ErrorBody(code, message))
}

// ErrorMessage extracts error.message from a Gemini error body, or returns
// the body itself (trimmed) when it is not one; the upload backend, for one,
// answers errors in plain text.
func ErrorMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	// A JSON-array stream wraps errors: [{"error": {...}}].
	var arr []json.RawMessage
	if json.Unmarshal(body, &arr) == nil && len(arr) > 0 {
		if m := ErrorMessage(arr[0]); m != "" {
			return m
		}
	}
	// Mask before the cut, whoever the caller is.
	return redact.Truncate(string(bytes.TrimSpace(body)), 1024)
}
