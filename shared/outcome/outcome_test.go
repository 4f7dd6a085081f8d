package outcome

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestClassifyPolicyTable(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		class  Class
		effect Effect
		retry  bool
	}{
		{"success", 200, "", Success, EffectReset, false},
		{"invalid key 400", 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`, KeyInvalid, EffectDisable, true},
		{"401", 401, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`, KeyInvalid, EffectDisable, true},
		{"403 consumer suspended", 403, suspendedBody, KeyInvalid, EffectDisable, true},
		{"403 suspended without details", 403, `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIzaSyA1234567890abcdefghijklmnopqrstuv' has been suspended.","status":"PERMISSION_DENIED"}}`, KeyInvalid, EffectDisable, true},
		{"403 leaked", 403, `{"error":{"code":403,"message":"Your API key was reported as leaked. Please use another API key.","status":"PERMISSION_DENIED"}}`, KeyInvalid, EffectDisable, true},
		{"403 service disabled", 403, errInfo(403, "PERMISSION_DENIED", "SERVICE_DISABLED", "Generative Language API has not been used in project 1 before or it is disabled."), KeyInvalid, EffectDisable, true},
		{"403 service blocked", 403, errInfo(403, "PERMISSION_DENIED", "API_KEY_SERVICE_BLOCKED", "Requests to this API are blocked."), KeyInvalid, EffectDisable, true},
		{"403 referrer blocked", 403, errInfo(403, "PERMISSION_DENIED", "API_KEY_HTTP_REFERRER_BLOCKED", "Requests from referer <empty> are blocked."), KeyInvalid, EffectDisable, true},
		{"403 ip blocked", 403, errInfo(403, "PERMISSION_DENIED", "API_KEY_IP_ADDRESS_BLOCKED", "The client IP address is blocked."), KeyInvalid, EffectDisable, true},
		{"403 billing disabled", 403, errInfo(403, "PERMISSION_DENIED", "BILLING_DISABLED", "Billing is disabled."), KeyInvalid, EffectDisable, true},
		{"403 suspended in an array (OpenAI surface)", 403, "[" + suspendedBody + "]", KeyInvalid, EffectDisable, true},
		{"403 file", 403, `{"error":{"code":403,"message":"You do not have permission to access the File abc or it may not exist.","status":"PERMISSION_DENIED"}}`, ClientError, EffectNone, false},
		{"403 file named like a bad key", 403, `{"error":{"code":403,"message":"You do not have permission to access the File suspended-leaked or it may not exist.","status":"PERMISSION_DENIED"}}`, ClientError, EffectNone, false},
		{"403 caller lacks permission", 403, `{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`, ClientError, EffectNone, false},
		{"403 other reason", 403, errInfo(403, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED", "Permission 'x' denied on resource."), ClientError, EffectNone, false},
		{"403 no body", 403, ``, ClientError, EffectNone, false},
		{"400 echoes a field named like a bad key", 400, `{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"API key not valid\" at 'contents[0]': Cannot find field.","status":"INVALID_ARGUMENT"}}`, ClientError, EffectNone, false},
		{"400 api key expired", 400, `{"error":{"code":400,"message":"API key expired. Please renew the API key.","status":"INVALID_ARGUMENT"}}`, KeyInvalid, EffectDisable, true},
		{"429", 429, `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}`, RateLimited, EffectCooldown, true},
		{"client 400", 400, `{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}`, ClientError, EffectNone, false},
		{"404 model", 404, `{"error":{"code":404,"message":"models/foo is not found","status":"NOT_FOUND"}}`, ClientError, EffectNone, false},
		{"413", 413, ``, ClientError, EffectNone, false},
		{"500", 500, `{"error":{"code":500,"message":"internal","status":"INTERNAL"}}`, ServerError, EffectSoftFail, true},
		{"503", 503, `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, ServerError, EffectSoftFail, true},
		{"504", 504, ``, Timeout, EffectSoftFail, true},
		{"non-json 502", 502, `<html>bad gateway</html>`, ServerError, EffectSoftFail, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Classify(c.status, []byte(c.body))
			if v.Class != c.class || v.Class.Effect() != c.effect || v.Class.Retryable() != c.retry {
				t.Fatalf("got %s/%v/%v, want %s/%v/%v", v.Class, v.Class.Effect(), v.Class.Retryable(), c.class, c.effect, c.retry)
			}
		})
	}
}

func TestRetryDelayIsRead(t *testing.T) {
	v := Classify(429, []byte(`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.5s"}]}}`))
	if v.RetryDelay != 500*time.Millisecond {
		t.Fatalf("retry delay %v", v.RetryDelay)
	}
	if v.Reason != "RESOURCE_EXHAUSTED" {
		t.Fatalf("reason %q", v.Reason)
	}
}

func TestEveryClassHasAPolicyRow(t *testing.T) {
	for _, c := range []Class{Success, ClientError, KeyInvalid, RateLimited, ServerError, Timeout, ConnError, Empty, Canceled} {
		if _, ok := Policy[c]; !ok {
			t.Errorf("no policy row for %s", c)
		}
	}
}

const suspendedBody = `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIzaSyA1234567890abcdefghijklmnopqrstuv' has been suspended.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED","domain":"googleapis.com","metadata":{"consumer":"projects/123456789012","containerInfo":"api_key:AIzaSyA1234567890abcdefghijklmnopqrstuv","service":"generativelanguage.googleapis.com"}},{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"Permission denied: Consumer 'api_key:AIzaSyA1234567890abcdefghijklmnopqrstuv' has been suspended."}]}}`

func errInfo(code int, status, reason, msg string) string {
	return `{"error":{"code":` + strconv.Itoa(code) + `,"message":"` + msg + `","status":"` + status + `","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"` + reason + `","domain":"googleapis.com"}]}}`
}

// Every key-bad reason disables the key on a 400 and a 403, whatever the message.
func TestEveryKeyBadReasonDisables(t *testing.T) {
	for reason := range KeyBadReasons {
		for _, code := range []int{400, 403} {
			v := Classify(code, []byte(errInfo(code, "PERMISSION_DENIED", reason, "anything")))
			if v.Class != KeyInvalid || v.Class.Effect() != EffectDisable || v.Reason != reason {
				t.Errorf("%d %s: got %s (%q)", code, reason, v.Class, v.Reason)
			}
		}
	}
}

// FuzzClassify: never panics; a key-bad reason always disables; a 403 that
// is not about the key never disables and is never retried.
func FuzzClassify(f *testing.F) {
	f.Add(403, []byte(suspendedBody))
	f.Add(403, []byte(errInfo(403, "PERMISSION_DENIED", "SERVICE_DISABLED", "x")))
	f.Add(403, []byte(`{"error":{"code":403,"message":"You do not have permission to access the File leaked or it may not exist.","status":"PERMISSION_DENIED"}}`))
	f.Add(400, []byte(`{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}`))
	f.Add(429, []byte(`{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1e308s"}]}}`))
	f.Add(403, []byte(`[{"error":{}}]`))
	f.Add(500, []byte(`{"error":{"details":[null,1,"x",{"@type":5}]}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		v := Classify(status, body)
		if _, ok := Policy[v.Class]; !ok {
			t.Fatalf("class %q has no policy row", v.Class)
		}
		if v.RetryDelay < 0 {
			t.Fatalf("negative retry delay %v", v.RetryDelay)
		}
		if (status == 400 || status == 403) && KeyBadReasons[v.Reason] && v.Class.Effect() != EffectDisable {
			t.Fatalf("key-bad reason %s did not disable: %s", v.Reason, v.Class)
		}
		if status == 403 && v.Class == KeyInvalid && !KeyBadReasons[v.Reason] {
			msg := strings.ToLower(string(body))
			found := false
			for _, p := range keyBadPhrases {
				found = found || strings.Contains(msg, p)
			}
			if !found {
				t.Fatalf("403 disabled a key without a key-bad reason or phrase: %s", body)
			}
		}
		if status == 403 && v.Class != KeyInvalid && (v.Class.Retryable() || v.Class.Effect() != EffectNone) {
			t.Fatalf("a client's 403 penalises or retries: %s", v.Class)
		}
	})
}
