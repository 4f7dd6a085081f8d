package convert

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gemini-balance-go/edge/models"
)

// goldenInputs lists a corpus directory's inputs (not its .golden files).
func goldenInputs(t *testing.T, pattern string) []string {
	t.Helper()
	files, _ := filepath.Glob(pattern)
	var out []string
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), ".golden.") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no corpus at %s", pattern)
	}
	return out
}

func responsesMeta() ResponsesMeta {
	return ResponsesMeta{ID: "resp_test", CreatedAt: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true,
		Echo: responsesEcho(&ResponsesRequest{}), NewStem: stems()}
}

// TestResponsesRequestGolden pins Responses → Gemini for the request corpus.
func TestResponsesRequestGolden(t *testing.T) {
	for _, f := range goldenInputs(t, "testdata/responses/request/*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			req, err := ParseResponsesRequest(body)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := ResponsesToGemini(context.Background(), req, Options{Settings: testSettings(), Fetcher: &fakeFetcher{}})
			if err != nil {
				t.Fatal(err)
			}
			out := struct {
				Model        models.Model            `json:"model"`
				Stream       bool                    `json:"stream"`
				ShowThinking bool                    `json:"show_thinking"`
				Drops        []Drop                  `json:"drops"`
				Body         *GenerateContentRequest `json:"body"`
				Echo         ResponsesEcho           `json:"echo"`
			}{plan.Model, plan.Stream, plan.ShowThinking, plan.Drops, plan.Body, plan.Echo}
			golden(t, strings.TrimSuffix(f, ".json")+".golden.json", indent(t, out))
		})
	}
}

// TestResponsesResponseGolden pins Gemini → response object (non-stream).
func TestResponsesResponseGolden(t *testing.T) {
	for _, f := range goldenInputs(t, "testdata/responses/response/*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, _ := os.ReadFile(f)
			var resp GenerateContentResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(f, ".json")+".golden.json", indent(t, ResponseFromGemini(&resp, responsesMeta())))
		})
	}
}

// TestResponsesStreamGolden pins the Responses stream converter: each .jsonl
// line is one Gemini SSE chunk; the golden file is the SSE the client gets.
func TestResponsesStreamGolden(t *testing.T) {
	for _, f := range goldenInputs(t, "testdata/responses/stream/*.jsonl") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			s := NewResponsesStream(responsesMeta())
			var out []byte
			sc := bufio.NewScanner(fh)
			for sc.Scan() {
				if len(bytes.TrimSpace(sc.Bytes())) == 0 {
					continue
				}
				if out, err = s.Feed(out, sc.Bytes()); err != nil {
					t.Fatal(err)
				}
			}
			out = s.Finish(out)
			golden(t, strings.TrimSuffix(f, ".jsonl")+".golden.sse", out)
		})
	}
}

// The non-stream body and the stream's response.completed carry the same
// response for the same answer.
func TestResponsesStreamAndNonStreamAgree(t *testing.T) {
	for _, f := range goldenInputs(t, "testdata/responses/response/*.json") {
		body, _ := os.ReadFile(f)
		var resp GenerateContentResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(ResponseFromGemini(&resp, responsesMeta()))
		s := NewResponsesStream(responsesMeta())
		out := s.Finish(s.FeedResponse(nil, &resp))
		events := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
		_, data, _ := strings.Cut(events[len(events)-1], "\ndata: ")
		var last struct {
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal([]byte(data), &last); err != nil {
			t.Fatalf("%s: last event %q: %v", f, data, err)
		}
		if !bytes.Equal(last.Response, want) {
			t.Errorf("%s: stream ends with\n%s\nnon-stream gives\n%s", f, last.Response, want)
		}
	}
}

// A stream that breaks ends with response.failed holding what was sent.
func TestResponsesStreamFailKeepsPartialOutput(t *testing.T) {
	s := NewResponsesStream(responsesMeta())
	out, err := s.Feed(nil, []byte(`{"candidates":[{"content":{"parts":[{"text":"half"}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Feed(nil, []byte(`{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}`)); err == nil {
		t.Fatal("an in-band error chunk must be an error")
	}
	out = s.Fail(out, "Resource exhausted", "requests", "rate_limit_exceeded")
	events := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
	last := events[len(events)-1]
	if !strings.HasPrefix(last, "event: response.failed\n") || !strings.Contains(last, `"code":"rate_limit_exceeded"`) ||
		!strings.Contains(last, `"text":"half"`) || !strings.Contains(last, `"status":"incomplete"`) {
		t.Errorf("last event %s", last)
	}
	if more := s.Finish(nil); len(more) != 0 {
		t.Errorf("Finish after Fail appended %s", more)
	}
}
