package convert

import (
	"encoding/json"
	"os"
	"testing"
)

// Conversion cost per request (parse + convert + encode the Gemini body) and
// per stream chunk. Run: go test -run '^$' -bench . -benchmem ./convert
func BenchmarkChatRequest(b *testing.B) {
	conv := pipeline(ParseChatRequest, ChatToGemini, Options{Settings: testSettings()})
	for _, name := range []string{"basic_text", "tools_roundtrip", "json_schema"} {
		b.Run(name, func(b *testing.B) {
			benchRequest(b, "testdata/chat/"+name+".json", conv, chatBody)
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
	benchChunk(b, NewStream(ResponseMeta{ID: "chatcmpl-b", Created: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true}, true))
}

// Responses API: a Codex-shaped request (history, tools, reasoning) and one
// Gemini text chunk through the Responses stream converter.
func BenchmarkResponsesRequest(b *testing.B) {
	benchRequest(b, "testdata/responses/request/codex.json", pipeline(ParseResponsesRequest, ResponsesToGemini, Options{Settings: testSettings()}), responsesBody)
}

func BenchmarkResponsesStreamChunk(b *testing.B) {
	benchChunk(b, NewResponsesStream(ResponsesMeta{ID: "resp_b", CreatedAt: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true}))
}
