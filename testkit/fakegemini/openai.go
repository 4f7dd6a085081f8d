package fakegemini

import (
	"bytes"
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
	case rest == "models" && r.Method == http.MethodGet:
		req, ok := s.beginOpenAI(w, r, "openai.models", "")
		if !ok {
			return
		}
		var data []map[string]any
		for _, m := range s.opts.Models {
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
	rec := &captureWriter{header: http.Header{}}
	req, _, ok := s.begin(rec, r, method, model)
	if ok {
		return req, true
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if rec.code == 0 {
		return nil, false // cancelled while delayed
	}
	w.WriteHeader(rec.code)
	body := bytes.TrimSpace(rec.body.Bytes())
	_, _ = w.Write([]byte("[" + string(body) + "]\n"))
	return nil, false
}

type captureWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header         { return c.header }
func (c *captureWriter) WriteHeader(code int)        { c.code = code }
func (c *captureWriter) Write(b []byte) (int, error) { return c.body.Write(b) }

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
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `[{"error":{"code":400,"message":%q,"status":"INVALID_ARGUMENT"}}]`, err.Error())
		s.finish(req, 400, false)
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
	answer := "echo: " + text
	id := "chatcmpl-" + newID(16)
	created := time.Now().Unix()
	prompt, completion := tokensOf(text), tokensOf(answer)
	usage := map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
	if !body.Stream {
		writeJSON(w, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": body.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": answer}, "finish_reason": "stop"}},
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
	send(chunk(map[string]any{"role": "assistant", "content": answer}, nil))
	last := chunk(map[string]any{}, "stop")
	last["usage"] = usage
	send(last)
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
	s.finish(req, 200, r.Context().Err() != nil)
}
