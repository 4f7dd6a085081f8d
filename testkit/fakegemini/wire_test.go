package fakegemini_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

func post(t *testing.T, url, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const hello = `{"contents":[{"role":"user","parts":[{"text":"hi you"}]}]}`

func TestSSEStreamUsesGoogleFraming(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k"}})
	resp := post(t, fake.URL+"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", hello, map[string]string{"x-goog-api-key": "k"})
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content-type %q", ct)
	}
	raw, _ := io.ReadAll(resp.Body)
	events := strings.Split(strings.TrimSuffix(string(raw), "\r\n\r\n"), "\r\n\r\n")
	if len(events) < 2 || !strings.HasSuffix(string(raw), "\r\n\r\n") {
		t.Fatalf("want ≥2 CRLF-terminated events: %q", raw)
	}
	for i, e := range events {
		js, ok := strings.CutPrefix(e, "data: ")
		if !ok {
			t.Fatalf("event %d is not a data line: %q", i, e)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		for _, k := range []string{"candidates", "usageMetadata", "modelVersion", "responseId"} {
			if _, ok := m[k]; !ok {
				t.Errorf("event %d lacks %s", i, k)
			}
		}
		fr := m["candidates"].([]any)[0].(map[string]any)["finishReason"]
		if (i == len(events)-1) != (fr == "STOP") {
			t.Errorf("finishReason on event %d = %v", i, fr)
		}
	}
}

func TestJSONArrayStreamParsesIncrementally(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k"}})
	resp := post(t, fake.URL+"/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=k", hello, nil)
	raw, _ := io.ReadAll(resp.Body)
	s := string(raw)
	if !strings.HasPrefix(s, "[{") || !strings.Contains(s, "\n,\r\n{") || !strings.HasSuffix(s, "}\n]") {
		t.Fatalf("array framing: %q", s)
	}
	dec := json.NewDecoder(strings.NewReader(s))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for dec.More() {
		var chunk fakegemini.GenerateContentResponse
		if err := dec.Decode(&chunk); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n < 2 {
		t.Fatalf("%d elements", n)
	}
}

func TestMidStreamErrorInArrayStreamAndCut(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{})
	fake.SetKey("e", fakegemini.Behaviour{FailAfter: 2, StreamError: fakegemini.Internal})
	fake.SetKey("cut", fakegemini.Behaviour{FailAfter: 1, Cut: true})
	resp := post(t, fake.URL+"/v1beta/models/m:streamGenerateContent", `{"contents":[{"parts":[{"text":"a b c d e f g"}]}]}`, map[string]string{"x-goog-api-key": "e"})
	raw, _ := io.ReadAll(resp.Body)
	var elems []map[string]any
	if err := json.Unmarshal(raw, &elems); err != nil {
		t.Fatalf("array with error element must still be valid JSON: %v %q", err, raw)
	}
	if len(elems) != 3 || elems[2]["error"].(map[string]any)["status"] != "INTERNAL" {
		t.Fatalf("elements: %v", elems)
	}
	resp = post(t, fake.URL+"/v1beta/models/m:streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"text":"a b c d e f g"}]}]}`, map[string]string{"x-goog-api-key": "cut"})
	raw, err := io.ReadAll(resp.Body)
	if err == nil || strings.Count(string(raw), "data: ") != 1 {
		t.Fatalf("cut stream: err=%v body=%q", err, raw)
	}
}

func TestKeyIsReadFromHeaderQueryAndBearer(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"h", "q", "b"}})
	u := fake.URL + "/v1beta/models/gemini-2.5-flash:generateContent"
	for _, r := range []*http.Response{
		post(t, u, hello, map[string]string{"x-goog-api-key": "h"}),
		post(t, u+"?key=q", hello, nil),
		post(t, u, hello, map[string]string{"Authorization": "Bearer b"}),
	} {
		if r.StatusCode != 200 {
			t.Errorf("status %d", r.StatusCode)
		}
	}
	if fake.Hits("h") != 1 || fake.Hits("q") != 1 || fake.Hits("b") != 1 || fake.ModelHits("gemini-2.5-flash") != 3 {
		t.Errorf("stats: %+v", fake.Stats())
	}
	if r := post(t, u, hello, nil); r.StatusCode != 403 {
		t.Errorf("no key: %d", r.StatusCode)
	}
}

func TestRecordsBodyAndHeadersPerKey(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k"}})
	body := `{"contents":[{"parts":[{"text":"x"}]}],"futureField":{"a":1}}`
	post(t, fake.URL+"/v1/models/gemini-2.5-flash:generateContent", body, map[string]string{"x-goog-api-key": "k", "X-Custom": "v"})
	r, ok := fake.LastRequest("k")
	if !ok || string(r.Body) != body || r.Header.Get("X-Custom") != "v" || r.Method != "generateContent" || r.Status != 200 {
		t.Fatalf("recorded: %+v", r)
	}
}

func TestRateLimitOnceThenOK(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{})
	fake.SetKey("k", fakegemini.Behaviour{Status: fakegemini.RateLimited, Times: 1, RetryDelay: fakegemini.Duration(2 * time.Second)})
	u := fake.URL + "/v1beta/models/gemini-2.5-flash:generateContent"
	r := post(t, u, hello, map[string]string{"x-goog-api-key": "k"})
	raw, _ := io.ReadAll(r.Body)
	if r.StatusCode != 429 || !strings.Contains(string(raw), `"retryDelay": "2s"`) || !strings.Contains(string(raw), "google.rpc.QuotaFailure") {
		t.Fatalf("%d %s", r.StatusCode, raw)
	}
	if r := post(t, u, hello, map[string]string{"x-goog-api-key": "k"}); r.StatusCode != 200 {
		t.Fatalf("second call %d", r.StatusCode)
	}
}

func TestCallerGoingAwayIsObservedAsCancellation(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{})
	fake.SetKey("slow", fakegemini.Behaviour{ChunkDelay: fakegemini.Duration(time.Hour)})
	seen := make(chan fakegemini.Request, 1)
	fake.OnCancel(func(r fakegemini.Request) { seen <- r })
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fake.URL+"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", strings.NewReader(hello))
	req.Header.Set("x-goog-api-key", "slow")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n') // first event arrived
	if !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q", line)
	}
	cancel()
	resp.Body.Close()
	r := <-seen
	if r.Key != "slow" || !r.Cancelled || fake.Cancelled() != 1 {
		t.Fatalf("cancel record: %+v", r)
	}
}

func TestRemoteProgramsAFakeInAnotherProcess(t *testing.T) {
	fake := fakegemini.New(fakegemini.Options{})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	ctx := context.Background()
	rm := fakegemini.Remote{URL: srv.URL}
	if err := rm.SetKeys(ctx, map[string]fakegemini.Behaviour{"a": {}, "b": {Status: fakegemini.Unavailable}}); err != nil {
		t.Fatal(err)
	}
	if err := rm.Script(ctx, "gemini-2.5-flash", fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text("scripted")}}); err != nil {
		t.Fatal(err)
	}
	r := post(t, srv.URL+"/v1beta/models/gemini-2.5-flash:generateContent", hello, map[string]string{"x-goog-api-key": "a"})
	raw, _ := io.ReadAll(r.Body)
	if !strings.Contains(string(raw), `"text": "scripted"`) {
		t.Fatalf("%s", raw)
	}
	if r := post(t, srv.URL+"/v1beta/models/gemini-2.5-flash:generateContent", hello, map[string]string{"x-goog-api-key": "b"}); r.StatusCode != 503 {
		t.Fatalf("b: %d", r.StatusCode)
	}
	st, err := rm.Stats(ctx)
	if err != nil || st.KeyHits["a"] != 1 || st.KeyHits["b"] != 1 {
		t.Fatalf("stats %v %+v", err, st)
	}
	reqs, err := rm.Requests(ctx, fakegemini.Filter{Key: "a"})
	if err != nil || len(reqs) != 1 || string(reqs[0].Body) != hello {
		t.Fatalf("requests %v %+v", err, reqs)
	}
}

func TestOpenAICompatibleChat(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k"}})
	r := post(t, fake.URL+"/v1beta/openai/chat/completions", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"ping"}]}`, map[string]string{"Authorization": "Bearer k"})
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil || out.Choices[0].Message.Content != "echo: ping" {
		t.Fatalf("%v %+v", err, out)
	}
	r = post(t, fake.URL+"/v1beta/openai/chat/completions", `{"model":"gemini-2.5-flash","messages":[]}`, map[string]string{"Authorization": "Bearer wrong"})
	raw, _ := io.ReadAll(r.Body)
	if r.StatusCode != 400 || !strings.HasPrefix(string(raw), "[{") || !strings.Contains(string(raw), "API_KEY_INVALID") {
		t.Fatalf("%d %s", r.StatusCode, raw)
	}
}

func TestJSONArrayStreamErrorsAreArrayWrapped(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{})
	r := post(t, fake.URL+"/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=unknown", hello, nil)
	raw, _ := io.ReadAll(r.Body)
	var arr []map[string]map[string]any
	if r.StatusCode != 400 || json.Unmarshal(raw, &arr) != nil || arr[0]["error"]["status"] != "INVALID_ARGUMENT" {
		t.Fatalf("%d %s", r.StatusCode, raw)
	}
	r = post(t, fake.URL+"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=unknown", hello, nil)
	raw, _ = io.ReadAll(r.Body)
	if !strings.HasPrefix(string(raw), "{") {
		t.Fatalf("SSE-path errors are plain Status objects: %s", raw)
	}
}
