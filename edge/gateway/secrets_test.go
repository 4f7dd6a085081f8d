package gateway_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// Real-shaped keys (AIza + 35): the scrubber masks every key of this shape,
// not only the one used.
const (
	keySuspended = "AIzaSyS_suspended_key_0000000000000001"
	keyFine      = "AIzaSyF_fine_key_000000000000000000002"
)

var keyShape = regexp.MustCompile(`AIza[0-9A-Za-z_\-]{35}`)

// noSecret fails when b carries a full key or a client token, raw or in
// any JSON escaping.
func noSecret(t *testing.T, what string, b []byte) {
	t.Helper()
	s := strings.ReplaceAll(string(b), `\/`, "/")
	if keyShape.MatchString(s) || strings.Contains(s, token) || strings.Contains(s, "containerInfo") || strings.Contains(s, "projects/") {
		t.Fatalf("%s leaks a secret: %s", what, b)
	}
}

func call(t *testing.T, method, url, tok, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func TestConsumerSuspendedNeverShowsTheKeyOnAnyRouteOrEvent(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keySuspended}, settings: func(s *config.Settings) { s.ErrorLogRecordRequestBody = true }})
	e.fake.SetKey(keySuspended, fakegemini.Behaviour{Status: fakegemini.Suspended})
	body := `{"contents":[{"parts":[{"text":"hi"}]}]}`
	for _, c := range []struct{ name, method, path, body string }{
		{"native generate", "POST", "/v1beta/models/gemini-2.5-flash:generateContent", body},
		{"native stream", "POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", body},
		{"files get", "GET", "/v1beta/files", ""},
		{"upload start", "POST", "/upload/v1beta/files", `{"file":{"displayName":"x"}}`},
		{"openai chat", "POST", "/v1/chat/completions", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`},
		{"passthrough", "POST", "/openai/v1/chat/completions", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`},
		{"openai responses", "POST", "/v1/responses", `{"model":"gemini-2.5-flash","input":"hi"}`},
		{"openai responses stream", "POST", "/v1/responses", `{"model":"gemini-2.5-flash","input":"hi","stream":true}`},
	} {
		e.keyd.Reset(keySuspended)
		status, b := call(t, c.method, e.url+c.path, token, c.body)
		if c.name != "files get" && status < 400 {
			t.Errorf("%s: status %d", c.name, status)
		}
		noSecret(t, c.name, b)
	}
	// The report that disables the key reaches keyd after the answer.
	eventually(t, func() bool { return e.keyd.Disabled(keySuspended) })
	reqs, errs := e.collectEvents(t, 5, 5)
	for _, ev := range errs {
		raw, _ := json.Marshal(ev)
		noSecret(t, "error event", raw)
		if ev.Class != string(outcome.KeyInvalid) {
			t.Errorf("error event class %q: %+v", ev.Class, ev)
		}
	}
	for _, ev := range reqs {
		raw, _ := json.Marshal(ev)
		noSecret(t, "request event", raw)
	}
}

func TestAStreamCutByConsumerSuspendedEndsWithAScrubbedTail(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keySuspended}})
	for _, path := range []string{
		"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
		"/v1beta/models/gemini-2.5-flash:streamGenerateContent",
	} {
		e.keyd.Reset(keySuspended)
		e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Chunks: threeChunks, Behaviour: &fakegemini.Behaviour{FailAfter: 1, StreamError: fakegemini.Suspended}})
		status, b := call(t, "POST", e.url+path, token, `{"contents":[{"parts":[{"text":"hi"}]}]}`)
		if status != 200 || !strings.Contains(string(b), "has been suspended") {
			t.Fatalf("%s: %d %s", path, status, b)
		}
		noSecret(t, path, b)
		eventually(t, func() bool { return e.keyd.Disabled(keySuspended) }) // reported when the stream ends
	}
	e.keyd.Reset(keySuspended)
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Chunks: threeChunks, Behaviour: &fakegemini.Behaviour{FailAfter: 1, StreamError: fakegemini.Suspended}})
	_, b := call(t, "POST", e.url+"/v1/chat/completions", token, `{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	noSecret(t, "openai stream", b)
}

// A 403 that is not about the key (here Google's "The caller does not have
// permission") is the client's: returned as is, no second key, no penalty.
func TestA403ForAnotherReasonIsNotRetriedAndKeepsTheKey(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyFine, keySuspended}})
	e.fake.SetKey(keySuspended, fakegemini.Behaviour{Status: fakegemini.OK})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Fail: fakegemini.PermissionDenied})
	_, err := e.client(token).Models.GenerateContent(ctxTimeout(t), "gemini-2.5-flash", genai.Text("hi"), nil)
	var ae genai.APIError
	if !errors.As(err, &ae) || ae.Code != 403 || ae.Message != "The caller does not have permission" {
		t.Fatalf("got %v", err)
	}
	if n := e.fake.Stats().Total; n != 1 {
		t.Errorf("upstream called %d times, want 1", n)
	}
	if e.keyd.Disabled(keyFine) || e.keyd.Disabled(keySuspended) {
		t.Error("a client's 403 disabled a key")
	}
}

// The passthrough reaches only the allow-listed OpenAI-compatible endpoints:
// dot segments, encoded dots and unlisted paths never reach the upstream.
func TestPassthroughRefusesPathsOutsideTheAllowList(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/openai/v1/../../v1beta/files", 400},
		{"GET", "/openai/v1/%2e%2e/%2e%2e/v1beta/files", 400},
		{"GET", "/openai/v1/models/..%2f..%2ffiles", 400},
		{"POST", "/openai/v1//chat/completions", 400},
		{"GET", "/openai/v1/files", 404},
		{"POST", "/openai/v1/batches", 404},
		{"GET", "/openai/v1/chat/completions", 405},
	} {
		status, b := call(t, c.method, e.url+c.path, token, "")
		if status != c.status || !strings.Contains(string(b), `"type":"invalid_request_error"`) {
			t.Errorf("%s %s: %d %s", c.method, c.path, status, b)
		}
	}
	if n := e.fake.Stats().Total; n != 0 {
		t.Errorf("upstream saw %d calls: %v", n, e.fake.Stats().MethodHits)
	}
	if status, b := call(t, "GET", e.url+"/openai/v1/models", token, ""); status != 200 {
		t.Errorf("models: %d %s", status, b)
	}
}
