package openai

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/shared/redact"
)

// errorBody is OpenAI's error shape.
type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func errorJSON(msg, typ, param, code string) []byte {
	e := apiError{Message: msg, Type: typ}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	b, _ := json.Marshal(errorBody{Error: e})
	return b
}

// WriteError writes an error in OpenAI's shape.
func WriteError(c *gin.Context, status int, msg, typ, param, code string) {
	c.Data(status, "application/json", errorJSON(msg, typ, param, code))
}

// WriteAuthError is the gateway's token-check rejection in OpenAI's shape.
func WriteAuthError(c *gin.Context, status int, msg string) {
	WriteError(c, status, msg, "invalid_request_error", "", "invalid_api_key")
}

// writeBadRequest answers a conversion error: a *convert.FieldError is the
// client's fault (400 naming the field); anything else is ours.
func writeBadRequest(c *gin.Context, err error) {
	var fe *convert.FieldError
	if errors.As(err, &fe) {
		WriteError(c, http.StatusBadRequest, fe.Error(), "invalid_request_error", fe.Field, "invalid_value")
		return
	}
	WriteError(c, http.StatusInternalServerError, "convert request: "+err.Error(), "server_error", "", "")
}

// upstreamError is a failed relay answer in OpenAI terms.
type upstreamError struct {
	status      int
	typ, code   string
	msg         string
	retryAfter  time.Duration
	retryHeader bool
}

// fromRelay maps a failed relay answer to OpenAI's error vocabulary. The
// status stays truthful: upstream's own, except that a rejected upstream key
// is not the client's fault (503) and a gone client is 499.
func fromRelay(resp *relay.Response) upstreamError {
	msg := redact.Text(resp.Message())
	e := upstreamError{status: resp.Status, msg: msg}
	switch {
	case resp.NoKey != "":
		e.typ, e.code = "server_error", "no_usable_key"
		if resp.Status == http.StatusTooManyRequests {
			e.typ, e.code = "requests", "rate_limit_exceeded"
		}
	case resp.Class == outcome.KeyInvalid:
		e.status, e.typ, e.code = http.StatusServiceUnavailable, "server_error", "upstream_key_rejected"
		e.msg = "every upstream key tried was rejected: " + msg
	case resp.Status == http.StatusBadRequest:
		e.typ, e.code = "invalid_request_error", "invalid_value"
	case resp.Status == http.StatusUnauthorized:
		e.typ, e.code = "authentication_error", "invalid_api_key"
	case resp.Status == http.StatusForbidden:
		e.typ, e.code = "permission_error", "permission_denied"
	case resp.Status == http.StatusNotFound:
		e.typ, e.code = "invalid_request_error", "model_not_found"
	case resp.Status == http.StatusTooManyRequests:
		e.typ, e.code = "requests", "rate_limit_exceeded"
	case resp.Status == http.StatusGatewayTimeout:
		e.typ, e.code = "server_error", "timeout"
	case resp.Status >= 500:
		e.typ, e.code = "server_error", ""
	default:
		e.typ = "invalid_request_error"
	}
	if e.status == 499 {
		e.status = http.StatusRequestTimeout // the client is gone; nobody reads this
	}
	if e.status == http.StatusTooManyRequests {
		e.retryHeader = true
		e.retryAfter = resp.RetryAfter
		if e.retryAfter <= 0 {
			e.retryAfter = outcome.Classify(resp.Status, resp.Body).RetryDelay
		}
		if e.retryAfter <= 0 {
			e.retryAfter = 5 * time.Second
		}
	}
	return e
}

// writeUpstreamError answers a failed relay call in OpenAI's shape, with
// retry-after and retry-after-ms on a 429 so SDKs back off as told.
func writeUpstreamError(c *gin.Context, resp *relay.Response) {
	e := fromRelay(resp)
	if e.retryHeader {
		setRetryHeaders(c.Writer.Header(), e.retryAfter)
	}
	WriteError(c, e.status, e.msg, e.typ, "", e.code)
}

func setRetryHeaders(h http.Header, d time.Duration) {
	secs := int64((d + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Retry-After-Ms", strconv.FormatInt(d.Milliseconds(), 10))
}

// trimModel drops a "models/" prefix and spaces.
func trimModel(m string) string { return strings.TrimPrefix(strings.TrimSpace(m), "models/") }
