// Package convert translates OpenAI Chat Completions (and the Responses API) to Gemini
// generateContent and back. It is pure: no I/O, no clocks, no randomness
// that a caller cannot replace (ids come from ResponseMeta.NewStem, remote
// images from an injected Fetcher), so every mapping is pinned by the golden
// files in testdata/ (go test -update rewrites them).
//
// Where to look:
//   - request.go: messages → contents/systemInstruction, content parts,
//     tools/tool_choice → functionDeclarations/toolConfig, output controls,
//     reasoning_effort → thinking;
//   - schema.go: JSON Schema reduced to what Gemini takes (Drops report the rest);
//   - models.go: derived models (-search, -image, -non-thinking) and the
//     settings-driven injections;
//   - ids.go: tool-call ids that carry thoughtSignature through the client;
//   - response.go: candidates → choices, finish_reason, usage;
//   - stream.go: the stateful stream converter (one Gemini chunk in, OpenAI
//     SSE chunks appended to a reused buffer);
//   - responses.go: the Responses API (POST /v1/responses) request → Gemini,
//     reusing the chat pieces above; responses_stream.go: Gemini → response
//     object and Responses SSE events (one converter for both).
//
// Errors a client must fix are *FieldError, naming the field for a 400.
package convert
