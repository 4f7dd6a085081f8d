package fakegemini

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"
)

// The model methods (generate, stream, countTokens, embeddings, batch and video starts) and the chunks a reply becomes.

func (s *Server) serveModelMethod(w http.ResponseWriter, r *http.Request, model, method string) {
	switch method {
	case "generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents",
		"batchGenerateContent", "asyncBatchEmbedContent", "predictLongRunning":
	case "predict":
		s.servePredict(w, r, model)
		return
	default:
		s.notFound(w, r)
		return
	}
	// Errors on the JSON-array stream come array-wrapped, as Google sends them there.
	ew := w
	if method == "streamGenerateContent" && r.URL.Query().Get("alt") != "sse" {
		ew = arrayWriter{w}
	}
	req, b, ok := s.begin(ew, r, method, model)
	if !ok {
		return
	}
	if s.opts.StrictModels {
		if _, found := s.findModel(model); !found {
			s.finish(req, writeError(ew, NotFound, Behaviour{}, model), false)
			return
		}
	}
	var body map[string]any
	if len(bytes.TrimSpace(req.Body)) > 0 {
		if err := json.Unmarshal(req.Body, &body); err != nil {
			s.finish(req, writeError(ew, BadRequest, Behaviour{Message: "Invalid JSON payload received. " + err.Error()}, model), false)
			return
		}
	}
	if id, denied := s.foreignFile(req.Key, body); denied {
		s.finish(req, writeError(ew, PermissionDenied, fileDenied(id), model), false)
		return
	}
	cached := 0
	switch method {
	case "batchGenerateContent", "asyncBatchEmbedContent":
		s.createBatch(w, r, req, model, body, method == "asyncBatchEmbedContent")
		return
	case "predictLongRunning":
		s.predictLongRunning(w, r, req, model, body)
		return
	case "generateContent", "streamGenerateContent", "countTokens":
		if cached, ok = s.cachedContentCheck(ew, req, body, model); !ok {
			return
		}
	}
	switch method {
	case "countTokens":
		n := countTokens(body) + cached
		writeJSON(w, map[string]any{"totalTokens": n, "promptTokensDetails": []ModalityTokenCount{{Modality: "TEXT", TokenCount: n}}})
		s.finish(req, 200, false)
	case "embedContent":
		writeJSON(w, map[string]any{"embedding": map[string]any{"values": embed(texts(body["content"]), dims(body))}})
		s.finish(req, 200, false)
	case "batchEmbedContents":
		reqs, _ := body["requests"].([]any)
		embs := make([]any, 0, len(reqs))
		for _, e := range reqs {
			m, _ := e.(map[string]any)
			embs = append(embs, map[string]any{"values": embed(texts(m["content"]), dims(m))})
		}
		writeJSON(w, map[string]any{"embeddings": embs})
		s.finish(req, 200, false)
	default:
		reply := s.nextReply(req)
		if reply.Behaviour != nil {
			rb := *reply.Behaviour
			if !sleep(r.Context(), time.Duration(rb.Delay)) {
				s.finish(req, 0, true)
				return
			}
			if rb.ChunkDelay > 0 {
				b.ChunkDelay = rb.ChunkDelay
			}
			if rb.FailAfter > 0 {
				b.FailAfter, b.StreamError, b.Cut = rb.FailAfter, rb.StreamError, rb.Cut
			}
		}
		if reply.Fail != "" && reply.Fail != OK {
			s.finish(req, writeError(ew, reply.Fail, Behaviour{key: req.Key}, model), false)
			return
		}
		chunks := s.buildChunks(model, body, reply)
		if cached > 0 {
			// A cache hit: the cached tokens count in the prompt and are reported.
			for i := range chunks {
				if u := chunks[i].UsageMetadata; u != nil {
					cp := *u // a scripted Usage is shared between calls
					cp.PromptTokenCount += cached
					cp.TotalTokenCount += cached
					cp.CachedContentTokenCount = cached
					chunks[i].UsageMetadata = &cp
				}
			}
		}
		if method == "generateContent" {
			if len(reply.Raw) > 0 {
				w.Header().Set("Content-Type", "application/json; charset=UTF-8")
				_, _ = w.Write(reply.Raw)
			} else {
				out := merge(chunks)
				if reply.Parts == nil && reply.Chunks == nil && len(out.Candidates) > 0 {
					// The default echo is split only to make streams; unary answers carry one text part.
					out.Candidates[0].Content.Parts = joinText(out.Candidates[0].Content.Parts)
				}
				writeJSON(w, out)
			}
			s.finish(req, 200, false)
			return
		}
		s.stream(w, r, req, b, chunks, reply.Raw)
	}
}

// stream writes chunks as SSE (alt=sse) or as Google's incrementally written JSON array.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req *Request, b Behaviour, chunks []GenerateContentResponse, raw json.RawMessage) {
	sse := r.URL.Query().Get("alt") == "sse"
	h := w.Header()
	if sse {
		h.Set("Content-Type", "text/event-stream")
		h.Set("Content-Disposition", "attachment")
	} else {
		h.Set("Content-Type", "application/json; charset=UTF-8")
	}
	h.Set("Vary", "Origin, X-Origin, Referer")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	flush := func() {
		if fl != nil {
			fl.Flush()
		}
	}
	var elems [][]byte
	if len(raw) > 0 {
		elems = [][]byte{raw}
	}
	for _, c := range chunks {
		if len(raw) > 0 {
			break
		}
		var e []byte
		if sse {
			e, _ = json.Marshal(c)
		} else {
			e, _ = json.MarshalIndent(c, "", "  ")
		}
		elems = append(elems, e)
	}
	write := func(i int, e []byte) bool {
		var buf bytes.Buffer
		if sse {
			buf.WriteString("data: ")
			buf.Write(e)
			buf.WriteString(s.opts.SSESeparator)
		} else {
			if i == 0 {
				buf.WriteByte('[')
			} else {
				buf.WriteString("\n,\r\n")
			}
			buf.Write(e)
		}
		_, err := w.Write(buf.Bytes())
		flush()
		return err == nil && r.Context().Err() == nil
	}
	for i, e := range elems {
		if b.FailAfter > 0 && i >= b.FailAfter {
			if b.Cut {
				s.finish(req, 200, false)
				panic(http.ErrAbortHandler) // drops the connection mid-body
			}
			st := b.StreamError
			if st == "" {
				st = Unavailable
			}
			_, status := apiError(st, Behaviour{key: req.Key}, req.Model)
			eb, _ := json.Marshal(errorBody{Error: status})
			write(i, eb)
			if !sse {
				_, _ = w.Write([]byte("\n]"))
			}
			s.finish(req, 200, r.Context().Err() != nil)
			return
		}
		if i > 0 && !sleep(r.Context(), time.Duration(b.ChunkDelay)) {
			s.finish(req, 200, true)
			return
		}
		if !write(i, e) {
			s.finish(req, 200, true)
			return
		}
	}
	if !sse {
		if len(elems) == 0 {
			_, _ = w.Write([]byte("["))
		}
		_, _ = w.Write([]byte("\n]"))
		flush()
	}
	s.finish(req, 200, r.Context().Err() != nil)
}

// buildChunks turns a reply into stream elements with cumulative usage.
func (s *Server) buildChunks(model string, body map[string]any, reply Reply) []GenerateContentResponse {
	id := newID(22)
	prompt := countTokens(body)
	if reply.PromptFeedback != nil {
		return []GenerateContentResponse{{PromptFeedback: reply.PromptFeedback, UsageMetadata: &UsageMetadata{PromptTokenCount: prompt, TotalTokenCount: prompt}, ModelVersion: model, ResponseID: id}}
	}
	chunks := reply.Chunks
	if chunks == nil {
		parts := reply.Parts
		if parts == nil {
			parts = defaultParts(model, body)
		}
		for _, p := range parts {
			chunks = append(chunks, []Part{p})
		}
	}
	if len(chunks) == 0 {
		chunks = [][]Part{{}}
	}
	finish := reply.FinishReason
	if finish == "" {
		finish = "STOP"
	}
	out := make([]GenerateContentResponse, 0, len(chunks))
	cand, thoughts := 0, 0
	for i, ps := range chunks {
		for _, p := range ps {
			if p.Thought {
				thoughts += tokensOf(p.Text)
			} else {
				cand += tokensOf(p.Text) + partTokens(p)
			}
		}
		u := &UsageMetadata{PromptTokenCount: prompt, CandidatesTokenCount: cand, ThoughtsTokenCount: thoughts,
			TotalTokenCount: prompt + cand + thoughts, PromptTokensDetails: []ModalityTokenCount{{Modality: "TEXT", TokenCount: prompt}}}
		c := Candidate{Content: &Content{Parts: ps, Role: "model"}}
		if i == len(chunks)-1 {
			c.FinishReason = finish
			c.FinishMessage = reply.FinishMessage
			c.GroundingMetadata = reply.GroundingMetadata
			if reply.Usage != nil {
				u = reply.Usage
			}
		}
		out = append(out, GenerateContentResponse{Candidates: []Candidate{c}, UsageMetadata: u, ModelVersion: model, ResponseID: id})
	}
	return out
}

// merge folds stream elements into one generateContent answer.
func merge(chunks []GenerateContentResponse) GenerateContentResponse {
	last := chunks[len(chunks)-1]
	if len(last.Candidates) == 0 {
		return last
	}
	var parts []Part
	for _, c := range chunks {
		parts = append(parts, c.Candidates[0].Content.Parts...)
	}
	out := last
	cand := last.Candidates[0]
	cand.Content = &Content{Parts: parts, Role: "model"}
	out.Candidates = []Candidate{cand}
	return out
}

// joinText folds runs of plain text parts (same thought flag) into one part.
func joinText(parts []Part) []Part {
	var out []Part
	for _, p := range parts {
		plain := p.InlineData == nil && p.FunctionCall == nil && len(p.Raw) == 0 && p.ExecutableCode == nil && p.CodeExecResult == nil
		if n := len(out); n > 0 && plain {
			last := &out[n-1]
			if last.InlineData == nil && last.FunctionCall == nil && len(last.Raw) == 0 && last.ExecutableCode == nil && last.CodeExecResult == nil &&
				last.Thought == p.Thought && len(last.ThoughtSignature) == 0 {
				last.Text += p.Text
				last.ThoughtSignature = p.ThoughtSignature
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// defaultParts echoes the request so a test sees its input round-trip: TTS models return
// PCM audio, image models a PNG, includeThoughts adds a signed thought, otherwise text
// "echo: <last user text>" split in words so a stream has several elements.
func defaultParts(model string, body map[string]any) []Part {
	text := lastUserText(body)
	switch {
	case strings.Contains(model, "tts"):
		return []Part{Inline("audio/L16;codec=pcm;rate=24000", pcmFor(text))}
	case strings.Contains(model, "image"):
		return []Part{Text("Here is your image."), Inline("image/png", tinyPNG)}
	}
	var parts []Part
	if gc := field(body, "generationConfig", "generation_config"); gc != nil {
		if tc := field(gc, "thinkingConfig", "thinking_config"); tc != nil {
			if v, _ := field2(tc, "includeThoughts", "include_thoughts").(bool); v {
				parts = append(parts, Thought("**Thinking** about: "+text))
			}
		}
	}
	words := strings.SplitAfter("echo: "+text, " ")
	n := 3
	per := int(math.Ceil(float64(len(words)) / float64(n)))
	for i := 0; i < len(words); i += per {
		parts = append(parts, Text(strings.Join(words[i:min(i+per, len(words))], "")))
	}
	if len(parts) > 0 && parts[0].Thought {
		parts[len(parts)-1].ThoughtSignature = []byte("fake-signature-" + model)
	}
	return parts
}

// tinyPNG is a valid 1×1 PNG.
var tinyPNG = []byte{0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82}

// pcmFor makes 16-bit mono PCM whose length depends on the text (10 ms per byte of text).
func pcmFor(text string) []byte {
	n := 240 * max(1, len(text))
	out := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/24000))
		out[2*i], out[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	return out
}
