package convert

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/gemini-balance-go/edge/models"
)

func responsesMeta() ResponsesMeta {
	return ResponsesMeta{ID: "resp_test", CreatedAt: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true,
		Echo: responsesEcho(&ResponsesRequest{}), NewStem: stems()}
}

// TestResponsesRequestGolden pins Responses → Gemini for the request corpus.
func TestResponsesRequestGolden(t *testing.T) {
	requestGolden(t, "testdata/responses/request/*.json", func(t *testing.T, _ string, body []byte) any {
		plan, err := pipeline(ParseResponsesRequest, ResponsesToGemini, Options{Settings: testSettings(), Fetcher: &fakeFetcher{}})(body)
		if err != nil {
			t.Fatal(err)
		}
		return struct {
			Model        models.Model            `json:"model"`
			Stream       bool                    `json:"stream"`
			ShowThinking bool                    `json:"show_thinking"`
			Drops        []Drop                  `json:"drops"`
			Body         *GenerateContentRequest `json:"body"`
			Echo         ResponsesEcho           `json:"echo"`
		}{plan.Model, plan.Stream, plan.ShowThinking, plan.Drops, plan.Body, plan.Echo}
	})
}

// TestResponsesResponseGolden pins Gemini → response object (non-stream).
func TestResponsesResponseGolden(t *testing.T) {
	responseGolden(t, "testdata/responses/response/*.json", func(resp *GenerateContentResponse) any {
		return ResponseFromGemini(resp, responsesMeta())
	})
}

// TestResponsesStreamGolden pins the Responses stream converter: each .jsonl
// line is one Gemini SSE chunk; the golden file is the SSE the client gets.
func TestResponsesStreamGolden(t *testing.T) {
	streamGolden(t, "testdata/responses/stream/*.jsonl", func() feeder { return NewResponsesStream(responsesMeta()) }, nil)
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
