package openai_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

// BenchmarkStreamedChat compares one streamed answer through the gateway on
// the converted OpenAI route with the same answer on the native Gemini
// route, against the in-process fake upstream (8 chunks). The difference
// per op is the conversion's added cost. Run:
//
//	go test -run '^$' -bench StreamedChat -benchmem ./edge/openai
func BenchmarkStreamedChat(b *testing.B) {
	e := newEnv(b, envOptions{})
	chunks := make([][]fakegemini.Part, 8)
	for i := range chunks {
		chunks[i] = []fakegemini.Part{fakegemini.Text("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ")}
	}
	e.fake.Always("gemini-2.0-flash", fakegemini.Reply{Chunks: chunks, Usage: &fakegemini.UsageMetadata{PromptTokenCount: 9, CandidatesTokenCount: 96, TotalTokenCount: 105}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	run := func(b *testing.B, path, body string, auth func(*http.Request)) {
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			auth(req)
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					n++
				}
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || n < 8 {
				b.Fatalf("status %d, %d events", res.StatusCode, n)
			}
		}
	}
	b.Run("native", func(b *testing.B) {
		run(b, "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
			`{"contents":[{"role":"user","parts":[{"text":"Write a paragraph."}]}]}`,
			func(r *http.Request) { r.Header.Set("x-goog-api-key", token) })
	})
	b.Run("openai", func(b *testing.B) {
		run(b, "/v1/chat/completions",
			`{"model":"gemini-2.0-flash","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Write a paragraph."}]}`,
			func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
	})
}
