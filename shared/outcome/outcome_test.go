package outcome

import (
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
		{"403 suspended", 403, `{"error":{"code":403,"message":"Permission denied: Consumer has been suspended.","status":"PERMISSION_DENIED"}}`, KeyInvalid, EffectDisable, true},
		{"403 file", 403, `{"error":{"code":403,"message":"You do not have permission to access the File abc or it may not exist.","status":"PERMISSION_DENIED"}}`, ClientError, EffectNone, false},
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
