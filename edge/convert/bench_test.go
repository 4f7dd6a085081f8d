package convert

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

// Conversion cost per request (parse + convert + encode the Gemini body) and
// per stream chunk. Run: go test -run '^$' -bench . -benchmem ./convert
func BenchmarkChatRequest(b *testing.B) {
	for _, name := range []string{"basic_text", "tools_roundtrip", "json_schema"} {
		body, err := os.ReadFile("testdata/chat/" + name + ".json")
		if err != nil {
			b.Fatal(err)
		}
		settings := testSettings()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, err := ParseChatRequest(body)
				if err != nil {
					b.Fatal(err)
				}
				plan, err := ChatToGemini(context.Background(), req, Options{Settings: settings})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(plan.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkChatResponse(b *testing.B) {
	body, _ := os.ReadFile("testdata/response/text_with_thoughts.json")
	b.ReportAllocs()
	for b.Loop() {
		var r GenerateContentResponse
		if err := json.Unmarshal(body, &r); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(FromGemini(&r, ResponseMeta{ID: "chatcmpl-b", Model: "m", ShowThinking: true})); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamChunk is one Gemini text chunk in, one OpenAI chunk out,
// into a reused buffer (what the relay loop does per event).
func BenchmarkStreamChunk(b *testing.B) {
	chunk := []byte(`{"candidates": [{"content": {"parts": [{"text": "Warsaw is the capital of Poland, a country in Central Europe."}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 12,"totalTokenCount": 21},"modelVersion": "gemini-2.5-flash","responseId": "aB1c"}`)
	s := NewStream(ResponseMeta{ID: "chatcmpl-b", Created: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true}, true)
	buf, _ := s.Feed(nil, chunk) // role delta out of the way
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		var err error
		if buf, err = s.Feed(buf[:0], chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// Responses API: a Codex-shaped request (history, tools, reasoning) and one
// Gemini text chunk through the Responses stream converter.
func BenchmarkResponsesRequest(b *testing.B) {
	body, err := os.ReadFile("testdata/responses/request/codex.json")
	if err != nil {
		b.Fatal(err)
	}
	settings := testSettings()
	b.ReportAllocs()
	for b.Loop() {
		req, err := ParseResponsesRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		plan, err := ResponsesToGemini(context.Background(), req, Options{Settings: settings})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(plan.Body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResponsesStreamChunk(b *testing.B) {
	chunk := []byte(`{"candidates": [{"content": {"parts": [{"text": "Warsaw is the capital of Poland, a country in Central Europe."}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 12,"totalTokenCount": 21},"modelVersion": "gemini-2.5-flash","responseId": "aB1c"}`)
	s := NewResponsesStream(ResponsesMeta{ID: "resp_b", CreatedAt: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true})
	buf, _ := s.Feed(nil, chunk) // created, in_progress and the item's opening out of the way
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		var err error
		if buf, err = s.Feed(buf[:0], chunk); err != nil {
			b.Fatal(err)
		}
	}
}
