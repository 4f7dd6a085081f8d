package gateway_test

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

const (
	keyGood1   = "AIzaSyGOOD-key-0000000000000000000001"
	keyGood2   = "AIzaSyGOOD-key-0000000000000000000002"
	keyInvalid = "AIzaSyBAD--key-invalid-000000000000003"
	keyLimited = "AIzaSyBAD--key-ratelimited-0000000004"
	keyDown    = "AIzaSyBAD--key-unavailable-0000000005"
)

type geminiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

func readError(t *testing.T, body io.Reader) geminiError {
	t.Helper()
	b, _ := io.ReadAll(body)
	var ge geminiError
	if err := json.Unmarshal(b, &ge); err != nil {
		t.Fatalf("error body is not Gemini-shaped: %s", b)
	}
	return ge
}

func TestFailoverOverInvalidRateLimitedAndUnavailableKeysServesEveryRequest(t *testing.T) {
	e := newEnv(t, envOptions{
		gemini:   []string{keyInvalid, keyLimited, keyDown, keyGood1, keyGood2},
		settings: func(s *config.Settings) { s.MaxRetries = 4 },
	})
	e.fake.SetKey(keyInvalid, fakegemini.Behaviour{Status: fakegemini.Invalid})
	e.fake.SetKey(keyLimited, fakegemini.Behaviour{Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(time.Hour)})
	e.fake.SetKey(keyDown, fakegemini.Behaviour{Status: fakegemini.Unavailable})
	c := e.client(token)
	ctx := ctxTimeout(t)
	for i := range 12 {
		res, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("ping "+strconv.Itoa(i)), nil)
		if err != nil {
			t.Fatalf("request %d failed: %v", i, err)
		}
		if res.Text() != "echo: ping "+strconv.Itoa(i) {
			t.Fatalf("request %d: %q", i, res.Text())
		}
	}
	for i := range 4 {
		var text strings.Builder
		for chunk, err := range c.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("stream "+strconv.Itoa(i)), nil) {
			if err != nil {
				t.Fatalf("stream %d failed: %v", i, err)
			}
			text.WriteString(chunk.Text())
		}
		if text.String() != "echo: stream "+strconv.Itoa(i) {
			t.Fatalf("stream %d: %q", i, text.String())
		}
	}
	// The policy: an invalid key is disabled at its first answer; a 429
	// cools the key for the model (RetryInfo says an hour); a 503 is a soft
	// failure that disables the key after MAX_FAILURES in a row.
	if h := e.fake.Hits(keyInvalid); h != 1 {
		t.Errorf("invalid key hit %d times, want 1", h)
	}
	if h := e.fake.Hits(keyLimited); h != 1 {
		t.Errorf("rate-limited key hit %d times, want 1", h)
	}
	if h := e.fake.Hits(keyDown); h < 1 || h > config.Defaults().MaxFailures {
		t.Errorf("unavailable key hit %d times, want 1..%d", h, config.Defaults().MaxFailures)
	}
	if !e.keyd.Disabled(keyInvalid) {
		t.Error("invalid key was not disabled")
	}
	// Reports are fire-and-forget; wait until keyd has seen all of them.
	classes := map[string]int{}
	eventually(t, func() bool {
		classes = map[string]int{}
		for _, r := range e.keyd.Reports() {
			classes[r.Class]++
			if r.Class == string(outcome.RateLimited) && r.RetryDelay != time.Hour.Milliseconds() {
				t.Fatalf("429 report carries retry delay %dms, want RetryInfo's hour", r.RetryDelay)
			}
		}
		return classes[string(outcome.Success)] == 16
	})
	if classes[string(outcome.Success)] != 16 || classes[string(outcome.KeyInvalid)] != 1 || classes[string(outcome.RateLimited)] != 1 {
		t.Errorf("reports by class: %v", classes)
	}
}

func TestClientErrorIsReturnedAsIsWithoutRetryOrPenalty(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Fail: fakegemini.BadRequest})
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	defer res.Body.Close()
	ge := readError(t, res.Body)
	if res.StatusCode != 400 || ge.Error.Status != "INVALID_ARGUMENT" || ge.Error.Message != "Invalid JSON payload received." {
		t.Fatalf("got %d %+v", res.StatusCode, ge)
	}
	if n := e.fake.Stats().Total; n != 1 {
		t.Errorf("upstream called %d times, want 1 (no retry on a client error)", n)
	}
	for _, r := range e.keyd.Reports() {
		if r.Class != string(outcome.ClientError) {
			t.Errorf("report class %q, want client_error", r.Class)
		}
	}
}

func TestWhenEveryAttemptFailsTheClientGetsUpstreamsStatusAndBody(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2, keyDown}})
	for _, k := range []string{keyGood1, keyGood2, keyDown} {
		e.fake.SetKey(k, fakegemini.Behaviour{Status: fakegemini.Unavailable})
	}
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	defer res.Body.Close()
	ge := readError(t, res.Body)
	if res.StatusCode != 503 || ge.Error.Status != "UNAVAILABLE" || ge.Error.Message != "The model is overloaded. Please try again later." {
		t.Fatalf("got %d %+v", res.StatusCode, ge)
	}
	st := e.fake.Stats()
	if st.Total != 3 || len(st.KeyHits) != 3 {
		t.Errorf("want MAX_RETRIES=3 attempts on 3 different keys, got %d on %v", st.Total, st.KeyHits)
	}
}

func TestAllKeysCoolingAnswers429WithRetryAfter(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyLimited}})
	e.fake.SetKey(keyLimited, fakegemini.Behaviour{Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(40 * time.Second)})
	body := `{"contents":[{"parts":[{"text":"hi"}]}]}`
	first := e.post("/v1beta/models/gemini-2.5-flash:generateContent", body)
	ge := readError(t, first.Body)
	first.Body.Close()
	if first.StatusCode != 429 || !strings.Contains(ge.Error.Message, "You exceeded your current quota") || first.Header.Get("Retry-After") != "40" {
		t.Fatalf("first answer should be upstream's own 429: %d %+v", first.StatusCode, ge)
	}
	// Reports are fire-and-forget: wait until keyd has the cooldown.
	eventually(t, func() bool { return len(e.keyd.Reports()) == 1 })
	second := e.post("/v1beta/models/gemini-2.5-flash:generateContent", body)
	ge = readError(t, second.Body)
	second.Body.Close()
	ra, _ := strconv.Atoi(second.Header.Get("Retry-After"))
	if second.StatusCode != 429 || ge.Error.Status != "RESOURCE_EXHAUSTED" || ra < 1 || ra > 40 {
		t.Fatalf("all cooling: %d Retry-After=%q %+v", second.StatusCode, second.Header.Get("Retry-After"), ge)
	}
	if h := e.fake.Hits(keyLimited); h != 1 {
		t.Errorf("cooling key hit %d times", h)
	}
}

func TestNoUsableKeyAnswers503(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyInvalid}})
	e.fake.SetKey(keyInvalid, fakegemini.Behaviour{Status: fakegemini.Invalid})
	body := `{"contents":[{"parts":[{"text":"hi"}]}]}`
	first := e.post("/v1beta/models/gemini-2.5-flash:generateContent", body)
	first.Body.Close()
	if first.StatusCode != 400 {
		t.Fatalf("first answer should be upstream's API_KEY_INVALID 400, got %d", first.StatusCode)
	}
	eventually(t, func() bool { return e.keyd.Disabled(keyInvalid) })
	second := e.post("/v1beta/models/gemini-2.5-flash:generateContent", body)
	ge := readError(t, second.Body)
	second.Body.Close()
	if second.StatusCode != 503 || ge.Error.Status != "UNAVAILABLE" || !strings.Contains(ge.Error.Message, "disabled") {
		t.Fatalf("all disabled: %d %+v", second.StatusCode, ge)
	}
	// The vertex pool is empty here.
	res := e.post("/vertex-express/v1beta/models/gemini-2.5-flash:generateContent", body)
	ge = readError(t, res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || !strings.Contains(ge.Error.Message, "no vertex keys") {
		t.Fatalf("empty vertex pool: %d %+v", res.StatusCode, ge)
	}
	// keyd gone: still an honest 503, never a bare 500.
	e.keyd.Stop()
	res = e.post("/v1beta/models/gemini-2.5-flash:generateContent", body)
	ge = readError(t, res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || ge.Error.Code != 503 {
		t.Fatalf("keyd down: %d %+v", res.StatusCode, ge)
	}
}

func TestVertexExpressRouteUsesTheVertexPool(t *testing.T) {
	const vkey = "AQ.vertex-express-key-000000000000000000000000000001"
	e := newEnv(t, envOptions{gemini: []string{keyGood1}, vertex: []string{vkey}})
	res := e.post("/vertex-express/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "hi\"") {
		t.Fatalf("vertex generate: %d %s", res.StatusCode, b)
	}
	if e.fake.Hits(vkey) != 1 || e.fake.Hits(keyGood1) != 0 {
		t.Errorf("vertex call used the wrong pool: %v", e.fake.Stats().KeyHits)
	}
}
