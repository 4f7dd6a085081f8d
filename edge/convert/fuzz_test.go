package convert

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzChatToGemini feeds arbitrary bodies to the request converter: it never
// panics, a rejected body names the field at fault, and an accepted one
// yields valid JSON for Gemini. Plain `go test` runs the seeds; explore with
// go test -run '^$' -fuzz FuzzChatToGemini ./convert
func FuzzChatToGemini(f *testing.F) {
	requestSeeds(f, "testdata/chat/*.json",
		`{}`, `[]`, `null`, `"x"`, `{"model":1}`, `{"model":"gemini-2.5-flash","messages":[null]}`,
		`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[null]}]}`,
		`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"a":{"items":{"anyOf":[1]}}}}}}]}`,
		`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"allowed_tools","allowed_tools":{"tools":[{}]}}}`,
		`{"model":"gemini-2.5-flash","messages":[{"role":"tool","tool_call_id":"x"}]}`,
		`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,%zz"}}]}]}`,
		`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"$defs":{"a":{"$ref":7}}}}}}`,
		`{"model":"gemini-2.5-flash","messages":[{"role":"assistant","content":"![a](data:image/png;base64,AAAA) ![b](data:image/png,x ![c](data:image/)"},{"role":"user","content":"![](data:image/gif;base64,R0)"}]}`,
	)
	fuzzRequest(f, pipeline(ParseChatRequest, ChatToGemini, Options{Settings: testSettings(), Fetcher: &fakeFetcher{}}), chatBody, nil)
}

// FuzzStreamFeed feeds arbitrary chunks to the stream converter: it never
// panics and everything it emits is valid SSE JSON.
func FuzzStreamFeed(f *testing.F) {
	for _, line := range chunkSeeds("testdata/stream/*.jsonl") {
		f.Add(line)
	}
	f.Add([]byte(`{"error":{"code":500}}`))
	f.Add([]byte(`{"candidates":[{"index":-3,"content":{"parts":[{"functionCall":{"name":"\u0000"}}]}}]}`))
	f.Fuzz(func(t *testing.T, chunk []byte) {
		s := NewStream(ResponseMeta{ID: "chatcmpl-f", Model: "m", ShowThinking: true, SearchLinks: true}, true)
		out, _ := s.Feed(nil, chunk)
		out = s.Finish(out)
		for _, ev := range strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n") {
			data, ok := strings.CutPrefix(ev, "data: ")
			if !ok {
				t.Fatalf("not an SSE data event: %q", ev)
			}
			if data != "[DONE]" && !json.Valid([]byte(data)) {
				t.Fatalf("invalid JSON event: %s", data)
			}
		}
	})
}

// FuzzResponsesToGemini feeds arbitrary bodies to the Responses request
// converter: it never panics, a rejected body names the field at fault, and
// an accepted one yields valid JSON for Gemini.
// Explore with go test -run '^$' -fuzz FuzzResponsesToGemini ./convert
func FuzzResponsesToGemini(f *testing.F) {
	requestSeeds(f, "testdata/responses/request/*.json",
		`{}`, `[]`, `null`, `{"model":"gemini-2.5-flash"}`, `{"model":"gemini-2.5-flash","input":7}`,
		`{"model":"gemini-2.5-flash","input":[null]}`, `{"model":"gemini-2.5-flash","input":[{}]}`,
		`{"model":"gemini-2.5-flash","input":[{"role":"user","content":[null]}]}`,
		`{"model":"gemini-2.5-flash","input":[{"type":"function_call_output","call_id":"x","output":[{}]}]}`,
		`{"model":"gemini-2.5-flash","input":[{"type":"function_call","call_id":"c.","name":"f","arguments":"[]"}]}`,
		`{"model":"gemini-2.5-flash","input":"x","tool_choice":{"type":"allowed_tools","tools":[{}]}}`,
		`{"model":"gemini-2.5-flash","input":"x","text":{"format":{"type":"json_schema","schema":{"$ref":"#/x"}}}}`,
		`{"model":"gemini-2.5-flash","input":"x","reasoning":{"effort":"huge","summary":"auto"}}`,
		`{"model":"gemini-3-flash-preview","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:,"}]}]}`,
	)
	conv := pipeline(ParseResponsesRequest, ResponsesToGemini, Options{Settings: testSettings(), Fetcher: &fakeFetcher{}})
	fuzzRequest(f, conv, responsesBody, func(t *testing.T, plan *ResponsesPlan) {
		if _, merr := json.Marshal(ResponseFromGemini(&GenerateContentResponse{}, plan.Meta("resp_f", 0))); merr != nil {
			t.Fatalf("echo gives invalid response JSON: %v", merr)
		}
	})
}

// FuzzResponsesStream feeds arbitrary chunks to the Responses stream
// converter: it never panics, every event is "event: <type>" plus JSON data
// whose type matches, and the sequence numbers count up from 0.
func FuzzResponsesStream(f *testing.F) {
	for _, line := range chunkSeeds("testdata/responses/stream/*.jsonl") {
		f.Add(line, false)
	}
	f.Add([]byte(`{"error":{"code":500}}`), true)
	f.Add([]byte(`{"candidates":[{"content":{"parts":[{"functionCall":{"name":"\u0000","args":null}},{"text":"\ud800","thought":true}]}}]}`), false)
	f.Fuzz(func(t *testing.T, chunk []byte, fail bool) {
		s := NewResponsesStream(ResponsesMeta{ID: "resp_f", Model: "m", ShowThinking: true})
		out, err := s.Feed(nil, chunk)
		if err != nil || fail {
			out = s.Fail(out, "broken", "server_error", "")
		} else {
			out = s.Finish(out)
		}
		for i, ev := range strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n") {
			head, data, ok := strings.Cut(ev, "\ndata: ")
			typ, ok2 := strings.CutPrefix(head, "event: ")
			if !ok || !ok2 {
				t.Fatalf("not an SSE event with a name: %q", ev)
			}
			var v struct {
				Type string `json:"type"`
				Seq  int    `json:"sequence_number"`
			}
			if err := json.Unmarshal([]byte(data), &v); err != nil || v.Type != typ || v.Seq != i {
				t.Fatalf("event %d %q: type %q seq %d (%v)", i, data, v.Type, v.Seq, err)
			}
		}
	})
}
