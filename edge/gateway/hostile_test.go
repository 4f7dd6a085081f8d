package gateway_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gemini-balance-go/edge/native"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/guard"
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

func TestDeepOrOversizedBodiesAnswerInEachRoutesOwnShape(t *testing.T) {
	e := newEnv(t, envOptions{})
	deep := strings.Repeat(`{"a":`, guard.MaxDepth+1) + "1" + strings.Repeat("}", guard.MaxDepth+1)
	for _, c := range []struct {
		path   string
		openai bool
	}{
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", false},
		{"/gemini/v1/models/gemini-embedding-001:embedContent", false},
		{"/upload/v1beta/files", false},
		{"/v1/chat/completions", true},
		{"/hf/v1/embeddings", true},
		{"/v1/responses", true},
		{"/openai/v1/chat/completions", true},
	} {
		for _, tc := range []struct {
			name, body string
			length     int64
			status     int
		}{
			{"too deep", deep, -1, http.StatusBadRequest},
			{"one byte over the cap", "[]", native.MaxBody + 1, http.StatusRequestEntityTooLarge},
		} {
			res, b := rawPost(t, e.url, c.path, tc.body, tc.length)
			var shape struct {
				Error struct {
					Code   any    `json:"code"`
					Status string `json:"status"`
					Type   string `json:"type"`
				} `json:"error"`
			}
			_ = json.Unmarshal(b, &shape)
			gemini := shape.Error.Status != "" && shape.Error.Type == ""
			if tc.status == http.StatusBadRequest && !strings.Contains(string(b), "nested deeper") {
				t.Errorf("%s %s: refused for another reason: %s", c.path, tc.name, b)
			}
			if res.StatusCode != tc.status || gemini == c.openai || (c.openai && shape.Error.Type != "invalid_request_error") {
				t.Errorf("%s %s: %d %s", c.path, tc.name, res.StatusCode, b)
			}
		}
	}
	if n := e.fake.Stats().Total; n != 0 {
		t.Fatalf("%d refused requests reached upstream", n)
	}
}

// rawPost sends body with a declared Content-Length (len(body) when
// length < 0) on a connection of its own, so a length the body does not
// fill can be declared; the server must answer without waiting for it.
func rawPost(t *testing.T, base, path, body string, length int64) (*http.Response, []byte) {
	t.Helper()
	if length < 0 {
		length = int64(len(body))
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // only a hung server reaches it
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, token, length, body)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("POST %s: no answer: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}
