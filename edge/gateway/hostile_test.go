package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// TestTwentyMegabytesOfOpenBracketsAnswer400 is the crash from issue 9: a
// 20 MB body of "[" sent to generateContent overflowed the goroutine stack
// in a recursive JSON validator and took the whole process down.
func TestTwentyMegabytesOfOpenBracketsAnswer400(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", strings.Repeat("[", 20<<20))
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	var ge struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &ge); err != nil || ge.Error.Code != 400 || ge.Error.Status != "INVALID_ARGUMENT" || !strings.Contains(ge.Error.Message, "nest") {
		t.Fatalf("not a Gemini 400 about nesting: %s", b)
	}
}

func TestBeyondMaxConcurrentRequestsAnswers503InTheRoutesShape(t *testing.T) {
	e := newEnv(t, envOptions{settings: func(s *config.Settings) { s.MaxConcurrentRequests = 1 }})
	release := make(chan struct{})
	var held atomic.Bool
	e.fake.Handle(func(*fakegemini.Request) *fakegemini.Reply {
		if held.CompareAndSwap(false, true) {
			<-release // the first upstream call holds its slot
		}
		return nil
	})
	first := make(chan int, 1)
	go func() {
		res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hold"}]}]}`)
		res.Body.Close()
		first <- res.StatusCode
	}()
	if err := e.fake.WaitFor(ctxTimeout(t), func(s fakegemini.Stats) bool { return s.Total >= 1 }); err != nil {
		t.Fatal(err)
	}

	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var ge struct {
		Error struct {
			Code   int    `json:"code"`
			Status string `json:"status"`
		} `json:"error"`
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		json.Unmarshal(b, &ge) != nil || ge.Error.Code != 503 || ge.Error.Status != "UNAVAILABLE" {
		t.Fatalf("native over the cap: %d Retry-After %q %s", res.StatusCode, res.Header.Get("Retry-After"), b)
	}

	req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/chat/completions", strings.NewReader(`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	var oe struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		json.Unmarshal(b, &oe) != nil || oe.Error.Type != "server_error" || oe.Error.Code != "overloaded" {
		t.Fatalf("openai over the cap: %d %s", res.StatusCode, b)
	}

	if res, err := http.Get(e.url + "/health"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("health must stay outside the cap: %v", err)
	}

	// The cap applies live.
	st := *e.settings.Get()
	st.MaxConcurrentRequests = 2
	e.settings.Set(st)
	res = e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("after raising the cap: %d", res.StatusCode)
	}
	close(release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("held request: %d", code)
	}
}
