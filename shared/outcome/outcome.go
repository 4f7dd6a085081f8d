// Package outcome classifies an upstream answer once, in one table, so that
// edge (retry or not) and keyd (what happens to the key) agree on it.
package outcome

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Class is the kind of answer an attempt got.
type Class string

const (
	Success     Class = "success"
	ClientError Class = "client_error" // the request's own fault: never penalise the key, never retry
	KeyInvalid  Class = "key_invalid"  // API_KEY_INVALID, 401, 403 on the key: disable now
	RateLimited Class = "rate_limited" // 429: cool the key down for this model
	ServerError Class = "server_error" // 5xx: soft failure
	Timeout     Class = "timeout"      // no answer in time: soft failure
	ConnError   Class = "conn_error"   // transport failure: soft failure
	Empty       Class = "empty"        // 200 without content: soft failure, retryable
	Canceled    Class = "canceled"     // the client went away: no effect on the key
)

// Effect is what keyd does to a key after an attempt.
type Effect int

const (
	EffectNone     Effect = iota // leave the key as it is
	EffectReset                  // failure count back to zero
	EffectDisable                // disable at once
	EffectCooldown               // cool down for the model
	EffectSoftFail               // failure count +1, disable at MAX_FAILURES
)

// Rule is one row of the policy table.
type Rule struct {
	Class     Class
	Effect    Effect
	Retryable bool // may edge retry on another key (before the first byte only)
}

// Policy is the table both edge and keyd read. One row per class.
var Policy = map[Class]Rule{
	Success:     {Success, EffectReset, false},
	ClientError: {ClientError, EffectNone, false},
	KeyInvalid:  {KeyInvalid, EffectDisable, true},
	RateLimited: {RateLimited, EffectCooldown, true},
	ServerError: {ServerError, EffectSoftFail, true},
	Timeout:     {Timeout, EffectSoftFail, true},
	ConnError:   {ConnError, EffectSoftFail, true},
	Empty:       {Empty, EffectSoftFail, true},
	Canceled:    {Canceled, EffectNone, false},
}

// Retryable reports whether edge may try another key after this class.
func (c Class) Retryable() bool { return Policy[c].Retryable }

// Effect returns what keyd does to the key after this class.
func (c Class) Effect() Effect { return Policy[c].Effect }

// Verdict is a classified upstream answer.
type Verdict struct {
	Class      Class
	Status     int
	Reason     string        // google.rpc ErrorInfo reason or status, e.g. API_KEY_INVALID
	RetryDelay time.Duration // from RetryInfo, zero when absent
}

// apiError is the google.rpc.Status envelope Gemini answers errors with.
type apiError struct {
	Error struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Status  string          `json:"status"`
		Details []errorDetail   `json:"details"`
		Raw     json.RawMessage `json:"-"`
	} `json:"error"`
}

type errorDetail struct {
	Type       string `json:"@type"`
	Reason     string `json:"reason"`
	RetryDelay string `json:"retryDelay"`
}

// Classify reads an upstream HTTP status and error body. body may be nil for
// successes; a success's emptiness is judged by the caller (see Empty).
func Classify(status int, body []byte) Verdict {
	v := Verdict{Status: status}
	if status >= 200 && status < 300 {
		v.Class = Success
		return v
	}
	var e apiError
	if len(body) > 0 && bytes.Contains(body, []byte(`"error"`)) {
		if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
			// The upstream's OpenAI-compatible surface (and a JSON-array
			// stream) wraps the error in an array.
			var arr []apiError
			if json.Unmarshal(t, &arr) == nil && len(arr) > 0 {
				e = arr[0]
			}
		} else {
			_ = json.Unmarshal(body, &e)
		}
	}
	v.Reason = e.Error.Status
	for _, d := range e.Error.Details {
		switch {
		case strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") && d.Reason != "":
			v.Reason = d.Reason
		case strings.HasSuffix(d.Type, "google.rpc.RetryInfo"):
			v.RetryDelay = ParseDuration(d.RetryDelay)
		}
	}
	msg := strings.ToLower(strings.TrimSpace(e.Error.Message))
	switch {
	case status == 401:
		v.Class = KeyInvalid
	case (status == 400 || status == 403) && keyBad(v.Reason, msg):
		v.Class = KeyInvalid
	case status == 429:
		v.Class = RateLimited
	case status == 408 || status == 504:
		v.Class = Timeout
	case status >= 500:
		v.Class = ServerError
	default:
		v.Class = ClientError
	}
	return v
}

// KeyBadReasons are the google.rpc.ErrorInfo reasons that mean the key itself
// cannot serve (google/api/error_reason.proto): the key is disabled at once
// and the request may go to another key. Every other 400 or 403 reason, such
// as PERMISSION_DENIED on a file of another project, is the request's own
// fault: the key is left alone and the request is not retried.
var KeyBadReasons = map[string]bool{
	"API_KEY_INVALID":               true,
	"API_KEY_EXPIRED":               true,
	"API_KEY_SERVICE_BLOCKED":       true,
	"API_KEY_HTTP_REFERRER_BLOCKED": true,
	"API_KEY_IP_ADDRESS_BLOCKED":    true,
	"API_KEY_ANDROID_APP_BLOCKED":   true,
	"API_KEY_IOS_APP_BLOCKED":       true,
	"CONSUMER_SUSPENDED":            true,
	"CONSUMER_INVALID":              true,
	"SERVICE_DISABLED":              true,
	"BILLING_DISABLED":              true,
	"USER_PROJECT_DENIED":           true,
	"ACCOUNT_STATE_INVALID":         true,
}

// keyBadPhrases are how Google words a bad key when an answer carries no
// ErrorInfo. They are matched at the start of the message only: messages
// echo client input further on ("…access the File <id>…", "Unknown name
// <field>"), and a client must not be able to disable a key by naming a file
// "suspended".
var keyBadPhrases = []string{
	"api key not valid",
	"api key expired",
	"your api key was reported as leaked",
	"permission denied: consumer 'api_key:", // CONSUMER_SUSPENDED without details
}

// keyBad tells a 400 or 403 about the key from one about the request.
func keyBad(reason, msg string) bool {
	if reason != "" && KeyBadReasons[reason] {
		return true
	}
	for _, p := range keyBadPhrases {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// ParseDuration reads a protobuf Duration string such as "17s" or "0.5s".
func ParseDuration(s string) time.Duration {
	s = strings.TrimSpace(s)
	if !strings.HasSuffix(s, "s") {
		return 0
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
	if err != nil || !(f >= 0) {
		return 0
	}
	if f > 86400 { // a day at most; a huge value would overflow Duration
		f = 86400
	}
	return time.Duration(f * float64(time.Second))
}
