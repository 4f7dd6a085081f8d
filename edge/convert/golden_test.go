package convert

import (
	"testing"

	"github.com/gemini-balance-go/edge/models"
)

// TestChatRequestGolden pins OpenAI → Gemini for the request corpus.
func TestChatRequestGolden(t *testing.T) {
	requestGolden(t, "testdata/chat/*.json", func(t *testing.T, _ string, body []byte) any {
		plan, err := pipeline(ParseChatRequest, ChatToGemini, Options{Settings: testSettings(), Fetcher: &fakeFetcher{}})(body)
		if err != nil {
			t.Fatal(err)
		}
		return struct {
			Model        models.Model            `json:"model"`
			Stream       bool                    `json:"stream"`
			IncludeUsage bool                    `json:"include_usage"`
			Drops        []Drop                  `json:"drops"`
			Body         *GenerateContentRequest `json:"body"`
		}{plan.Model, plan.Stream, plan.IncludeUsage, plan.Drops, plan.Body}
	})
}

// TestChatResponseGolden pins Gemini → OpenAI (non-stream) for the response corpus.
func TestChatResponseGolden(t *testing.T) {
	responseGolden(t, "testdata/response/*.json", func(resp *GenerateContentResponse) any {
		meta := ResponseMeta{ID: "chatcmpl-test", Created: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true, SearchLinks: true, AudioFormat: "wav", NewStem: stems()}
		return FromGemini(resp, meta)
	})
}

// TestChatStreamGolden pins the stream converter: each .jsonl line is one
// Gemini SSE chunk; the golden file is the SSE the client receives.
func TestChatStreamGolden(t *testing.T) {
	streamGolden(t, "testdata/stream/*.jsonl", func() feeder {
		meta := ResponseMeta{ID: "chatcmpl-test", Created: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true, SearchLinks: true, NewStem: stems()}
		return NewStream(meta, true)
	}, nil)
}
