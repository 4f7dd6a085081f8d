package fakegemini

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// serveOpenAI is a small stand-in for Google's OpenAI-compatible surface
// (/v1beta/openai/chat/completions and /models), enough for passthrough tests.
func (s *Server) serveOpenAI(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "chat/completions" && r.Method == http.MethodPost:
		s.serveOpenAIChat(w, r)
	case rest == "embeddings" && r.Method == http.MethodPost:
		s.serveOpenAIEmbeddings(w, r)
	case rest == "models" && r.Method == http.MethodGet:
		req, ok := s.beginOpenAI(w, r, "openai.models", "")
		if !ok {
			return
		}
		var data []map[string]any
		for _, m := range s.models() {
			data = append(data, map[string]any{"id": m.Name, "object": "model", "owned_by": "google"})
		}
		writeJSON(w, map[string]any{"object": "list", "data": data})
		s.finish(req, 200, false)
	default:
		s.notFound(w, r)
	}
}

// beginOpenAI is begin with Google's OpenAI-surface error framing: the google.rpc.Status
// wrapped in a JSON array.
func (s *Server) beginOpenAI(w http.ResponseWriter, r *http.Request, method, model string) (*Request, bool) {
	req, _, ok := s.begin(arrayWriter{w}, r, method, model)
	return req, ok
}

// openAIBadJSON answers a body that is not JSON, framed as the OpenAI
// surface frames errors.
func (s *Server) openAIBadJSON(w http.ResponseWriter, req *Request, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintf(w, `[{"error":{"code":400,"message":%q,"status":"INVALID_ARGUMENT"}}]`, err.Error())
	s.finish(req, 400, false)
}

func (s *Server) serveOpenAIChat(w http.ResponseWriter, r *http.Request) {
	req, ok := s.beginOpenAI(w, r, "openai.chat", "")
	if !ok {
		return
	}
	var body struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		s.openAIBadJSON(w, req, err)
		return
	}
	model := strings.TrimPrefix(body.Model, "models/")
	s.mu.Lock()
	req.Model = model
	s.modelHits[model]++
	s.mu.Unlock()
	text := ""
	for i := len(body.Messages) - 1; i >= 0; i-- {
		if body.Messages[i].Role != "user" {
			continue
		}
		var str string
		if json.Unmarshal(body.Messages[i].Content, &str) == nil {
			text = str
		} else {
			var parts []map[string]any
			_ = json.Unmarshal(body.Messages[i].Content, &parts)
			for _, p := range parts {
				if t, ok := p["text"].(string); ok {
					text += t
				}
			}
		}
		break
	}
	reply := s.nextReply(req)
	if reply.Fail != "" && reply.Fail != OK {
		code, st := apiError(reply.Fail, Behaviour{key: req.Key}, model)
		b, _ := json.MarshalIndent([]errorBody{{Error: st}}, "", "  ")
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(code)
		_, _ = w.Write(b)
		s.finish(req, code, false)
		return
	}
	parts := reply.Parts
	for _, c := range reply.Chunks {
		parts = append(parts, c...)
	}
	if parts == nil {
		parts = []Part{Text("echo: " + text)}
	}
	var answer strings.Builder
	var calls []any
	for _, p := range parts {
		switch {
		case p.FunctionCall != nil:
			args, _ := json.Marshal(p.FunctionCall.Args)
			calls = append(calls, map[string]any{"index": len(calls), "id": fmt.Sprintf("call_%d", len(calls)), "type": "function",
				"function": map[string]any{"name": p.FunctionCall.Name, "arguments": string(args)}})
		case !p.Thought:
			answer.WriteString(p.Text)
		}
	}
	finish := map[string]string{"": "stop", "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}[reply.FinishReason]
	if finish == "" {
		finish = "stop"
	}
	if calls != nil {
		finish = "tool_calls"
	}
	id := "chatcmpl-" + newID(16)
	created := time.Now().Unix()
	prompt, completion := tokensOf(text), tokensOf(answer.String())
	usage := map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
	msg := map[string]any{"role": "assistant", "content": answer.String()}
	if calls != nil {
		msg["tool_calls"] = calls
		if answer.Len() == 0 {
			msg["content"] = nil
		}
	}
	if !body.Stream {
		writeJSON(w, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": body.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
			"usage":   usage,
		})
		s.finish(req, 200, false)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": body.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(msg, nil))
	last := chunk(map[string]any{}, finish)
	last["usage"] = usage
	send(last)
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
	s.finish(req, 200, r.Context().Err() != nil)
}

func (s *Server) serveOpenAIEmbeddings(w http.ResponseWriter, r *http.Request) {
	req, ok := s.beginOpenAI(w, r, "openai.embeddings", "")
	if !ok {
		return
	}
	var body struct {
		Model      string          `json:"model"`
		Input      json.RawMessage `json:"input"`
		Dimensions int             `json:"dimensions"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		s.openAIBadJSON(w, req, err)
		return
	}
	var inputs []string
	var one string
	if json.Unmarshal(body.Input, &one) == nil {
		inputs = []string{one}
	} else {
		_ = json.Unmarshal(body.Input, &inputs)
	}
	s.mu.Lock()
	req.Model = strings.TrimPrefix(body.Model, "models/")
	s.modelHits[req.Model]++
	s.mu.Unlock()
	dims := body.Dimensions
	if dims <= 0 {
		dims = 8
	}
	data := make([]any, 0, len(inputs))
	tokens := 0
	for i, in := range inputs {
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": embed([]string{in}, dims)})
		tokens += tokensOf(in)
	}
	writeJSON(w, map[string]any{"object": "list", "data": data, "model": body.Model,
		"usage": map[string]any{"prompt_tokens": tokens, "total_tokens": tokens}})
	s.finish(req, 200, false)
}
