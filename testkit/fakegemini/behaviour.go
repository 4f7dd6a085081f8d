package fakegemini

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Status names the answer a key (or a scripted reply) gets.
type Status string

const (
	OK               Status = "ok"
	Invalid          Status = "invalid"           // 400 INVALID_ARGUMENT, ErrorInfo API_KEY_INVALID
	BadRequest       Status = "bad_request"       // 400 INVALID_ARGUMENT
	PermissionDenied Status = "permission_denied" // 403 PERMISSION_DENIED
	// Suspended is Google's CONSUMER_SUSPENDED 403, which names the full key three
	// times: in error.message, in ErrorInfo.metadata.containerInfo and in the
	// LocalizedMessage.
	Suspended        Status = "suspended"
	NotFound         Status = "not_found"    // 404 NOT_FOUND
	RateLimited      Status = "rate_limited" // 429 RESOURCE_EXHAUSTED, QuotaFailure + RetryInfo
	Internal         Status = "internal"     // 500 INTERNAL
	Unavailable      Status = "unavailable"  // 503 UNAVAILABLE
	DeadlineExceeded Status = "deadline"     // 504 DEADLINE_EXCEEDED
)

// Behaviour programs how the fake answers one key.
type Behaviour struct {
	// Status is the answer before the first byte; "" means OK.
	Status Status `json:"status,omitempty"`
	// Times limits an error Status to the next N requests of the key (0 = forever);
	// after that the key answers OK. Lets a test say "429 once, then fine".
	Times int `json:"times,omitempty"`
	// RetryDelay goes into RetryInfo.retryDelay of a 429 (default 17s).
	RetryDelay Duration `json:"retryDelay,omitempty"`
	// Message overrides the error message.
	Message string `json:"message,omitempty"`
	// Delay holds the response (headers included) back: slow first byte.
	Delay Duration `json:"delay,omitempty"`
	// ChunkDelay is slept between stream elements.
	ChunkDelay Duration `json:"chunkDelay,omitempty"`
	// FailAfter > 0 makes a stream send that many elements and then fail: with an
	// in-band error element (StreamError, default unavailable), or by cutting the
	// connection when Cut is set.
	FailAfter   int    `json:"failAfter,omitempty"`
	StreamError Status `json:"streamError,omitempty"`
	Cut         bool   `json:"cut,omitempty"`

	key string // the key answered, for errors that name it
}

// rpcStatus is google.rpc.Status in its JSON form.
type rpcStatus struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Status  string           `json:"status"`
	Details []map[string]any `json:"details,omitempty"`
}

type errorBody struct {
	Error rpcStatus `json:"error"`
}

// apiError builds the google.rpc.Status body Google sends for s.
func apiError(s Status, b Behaviour, model string) (int, rpcStatus) {
	msg := b.Message
	pick := func(def string) string {
		if msg != "" {
			return msg
		}
		return def
	}
	switch s {
	case Invalid:
		m := pick("API key not valid. Please pass a valid API key.")
		return http.StatusBadRequest, rpcStatus{Code: 400, Message: m, Status: "INVALID_ARGUMENT", Details: []map[string]any{
			{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
				"metadata": map[string]string{"service": "generativelanguage.googleapis.com"}},
			{"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": m},
		}}
	case Suspended:
		m := pick("Permission denied: Consumer 'api_key:" + b.key + "' has been suspended.")
		return http.StatusForbidden, rpcStatus{Code: 403, Message: m, Status: "PERMISSION_DENIED", Details: []map[string]any{
			{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONSUMER_SUSPENDED", "domain": "googleapis.com",
				"metadata": map[string]string{"consumer": "projects/" + projectNumber(b.key), "containerInfo": "api_key:" + b.key,
					"service": "generativelanguage.googleapis.com"}},
			{"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": m},
		}}
	case BadRequest:
		return http.StatusBadRequest, rpcStatus{Code: 400, Message: pick("Invalid JSON payload received."), Status: "INVALID_ARGUMENT"}
	case PermissionDenied:
		return http.StatusForbidden, rpcStatus{Code: 403, Message: pick("The caller does not have permission"), Status: "PERMISSION_DENIED"}
	case NotFound:
		return http.StatusNotFound, rpcStatus{Code: 404, Message: pick(fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.", model)), Status: "NOT_FOUND"}
	case RateLimited:
		d := time.Duration(b.RetryDelay)
		if d == 0 {
			d = 17 * time.Second
		}
		if model == "" {
			model = "gemini-2.5-flash"
		}
		m := pick(fmt.Sprintf("You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: %s\nPlease retry in %s.", model, protoDuration(d)))
		return http.StatusTooManyRequests, rpcStatus{Code: 429, Message: m, Status: "RESOURCE_EXHAUSTED", Details: []map[string]any{
			{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []map[string]any{{
				"quotaMetric":     "generativelanguage.googleapis.com/generate_content_free_tier_requests",
				"quotaId":         "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
				"quotaDimensions": map[string]string{"location": "global", "model": model},
				"quotaValue":      "10",
			}}},
			{"@type": "type.googleapis.com/google.rpc.Help", "links": []map[string]string{{
				"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}}},
			{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": protoDuration(d)},
		}}
	case Internal:
		return http.StatusInternalServerError, rpcStatus{Code: 500, Message: pick("An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"), Status: "INTERNAL"}
	case DeadlineExceeded:
		return http.StatusGatewayTimeout, rpcStatus{Code: 504, Message: pick("The request timed out. Please try again."), Status: "DEADLINE_EXCEEDED"}
	default: // Unavailable and anything unknown
		return http.StatusServiceUnavailable, rpcStatus{Code: 503, Message: pick("The model is overloaded. Please try again later."), Status: "UNAVAILABLE"}
	}
}

// writeError writes a google.rpc.Status body, pretty-printed as Google does.
func writeError(w http.ResponseWriter, s Status, b Behaviour, model string) int {
	code, st := apiError(s, b, model)
	writeStatus(w, code, st)
	return code
}

func writeStatus(w http.ResponseWriter, code int, st rpcStatus) {
	body, _ := json.MarshalIndent(errorBody{Error: st}, "", "  ")
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Vary", "Origin, X-Origin, Referer")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// projectNumber is a stable fake Cloud project number for a key.
func projectNumber(key string) string {
	var h uint64 = 1469598103934665603
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * 1099511628211
	}
	return fmt.Sprintf("%012d", h%1000000000000)
}
