package fakegemini

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultModels is the model list the fake serves unless Options.Models is set.
func DefaultModels() []Model {
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	gen := []string{"generateContent", "countTokens", "createCachedContent", "batchGenerateContent"}
	return []Model{
		{Name: "models/gemini-2.5-flash", BaseModelID: "gemini-2.5-flash", Version: "001", DisplayName: "Gemini 2.5 Flash", Description: "Stable version of Gemini 2.5 Flash.", InputTokenLimit: 1048576, OutputTokenLimit: 65536, SupportedGenerationMethods: gen, Temperature: f(1), MaxTemperature: f(2), TopP: f(0.95), TopK: i(64), Thinking: true},
		{Name: "models/gemini-2.5-pro", BaseModelID: "gemini-2.5-pro", Version: "2.5", DisplayName: "Gemini 2.5 Pro", Description: "Stable release of Gemini 2.5 Pro.", InputTokenLimit: 1048576, OutputTokenLimit: 65536, SupportedGenerationMethods: gen, Temperature: f(1), MaxTemperature: f(2), TopP: f(0.95), TopK: i(64), Thinking: true},
		{Name: "models/gemini-2.0-flash", BaseModelID: "gemini-2.0-flash", Version: "2.0", DisplayName: "Gemini 2.0 Flash", InputTokenLimit: 1048576, OutputTokenLimit: 8192, SupportedGenerationMethods: gen, Temperature: f(1), MaxTemperature: f(2), TopP: f(0.95), TopK: i(40)},
		{Name: "models/gemini-2.5-flash-image", BaseModelID: "gemini-2.5-flash-image", Version: "2.0", DisplayName: "Nano Banana", InputTokenLimit: 32768, OutputTokenLimit: 32768, SupportedGenerationMethods: []string{"generateContent", "countTokens", "batchGenerateContent"}, Temperature: f(1), MaxTemperature: f(2), TopP: f(0.95), TopK: i(64)},
		{Name: "models/gemini-2.5-flash-preview-tts", BaseModelID: "gemini-2.5-flash-preview-tts", Version: "gemini-2.5-flash-exp-tts-2025-05-19", DisplayName: "Gemini 2.5 Flash Preview TTS", InputTokenLimit: 8192, OutputTokenLimit: 16384, SupportedGenerationMethods: []string{"countTokens", "generateContent"}, Temperature: f(1), MaxTemperature: f(2), TopP: f(0.95), TopK: i(64)},
		{Name: "models/gemini-embedding-001", Version: "001", DisplayName: "Gemini Embedding 001", Description: "Obtain a distributed representation of a text.", InputTokenLimit: 2048, OutputTokenLimit: 1, SupportedGenerationMethods: []string{"embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"}},
		{Name: "models/text-embedding-004", Version: "004", DisplayName: "Text Embedding 004", Description: "Obtain a distributed representation of a text.", InputTokenLimit: 2048, OutputTokenLimit: 1, SupportedGenerationMethods: []string{"embedContent"}},
	}
}

// serveAPI routes Gemini REST paths: /{v1beta|v1|v1alpha}/models..., /files...,
// /v1beta1/publishers/google/models... (Vertex Express),
// /upload/{ver}/files, /{ver}/openai/...
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	// curl's download form: /download/v1beta/files/{id}:download?alt=media
	if rest, ok := strings.CutPrefix(path, "/download/"); ok {
		_, sub, _ := strings.Cut(rest, "/")
		if id, ok := strings.CutPrefix(sub, "files/"); ok && strings.HasSuffix(id, ":download") {
			s.serveDownload(w, r, strings.TrimSuffix(id, ":download"))
			return
		}
	}
	if rest, ok := strings.CutPrefix(path, "/upload/"); ok {
		_, sub, _ := strings.Cut(rest, "/")
		if sub == "files" {
			s.serveUpload(w, r)
			return
		}
	}
	ver, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if ver != "v1beta" && ver != "v1" && ver != "v1alpha" && ver != "v1beta1" {
		s.notFound(w, r)
		return
	}
	// Vertex AI Express mode: {VERTEX_EXPRESS_BASE_URL}=<fake>/v1beta1/publishers/google,
	// same bodies and answers as the Gemini API.
	rest = strings.TrimPrefix(rest, "publishers/google/")
	switch {
	case rest == "models" && r.Method == http.MethodGet:
		s.serveModelList(w, r)
	case (strings.HasPrefix(rest, "models/") && strings.Contains(rest, "/operations/")) || strings.HasPrefix(rest, "operations/"):
		s.serveOperation(w, r, rest)
	case rest == "cachedContents" || strings.HasPrefix(rest, "cachedContents/"):
		s.serveCaches(w, r, strings.TrimPrefix(strings.TrimPrefix(rest, "cachedContents"), "/"))
	case rest == "batches" || strings.HasPrefix(rest, "batches/"):
		s.serveBatches(w, r, strings.TrimPrefix(strings.TrimPrefix(rest, "batches"), "/"))
	case strings.HasPrefix(rest, "files/") && strings.HasSuffix(rest, ":download"):
		s.serveDownload(w, r, strings.TrimSuffix(strings.TrimPrefix(rest, "files/"), ":download"))
	case strings.HasPrefix(rest, "models/"):
		name := strings.TrimPrefix(rest, "models/")
		if i := strings.LastIndexByte(name, ':'); i >= 0 && r.Method == http.MethodPost {
			s.serveModelMethod(w, r, name[:i], name[i+1:])
			return
		}
		if r.Method == http.MethodGet {
			s.serveModelGet(w, r, name)
			return
		}
		s.notFound(w, r)
	case rest == "files" || strings.HasPrefix(rest, "files/"):
		s.serveFiles(w, r, strings.TrimPrefix(strings.TrimPrefix(rest, "files"), "/"))
	case strings.HasPrefix(rest, "openai/"):
		s.serveOpenAI(w, r, strings.TrimPrefix(rest, "openai/"))
	default:
		s.notFound(w, r)
	}
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	// Google answers unknown paths with an HTML 404; a JSON Status is friendlier for tests.
	writeStatus(w, http.StatusNotFound, rpcStatus{Code: 404, Message: "Method not found: " + r.URL.Path, Status: "NOT_FOUND"})
}

// begin records the call, authenticates it, and applies the key's pre-reply behaviour.
// It returns ok=false when the reply has been written.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, method, model string) (*Request, Behaviour, bool) {
	body, _ := io.ReadAll(r.Body)
	req := &Request{Key: apiKey(r), Model: model, Method: method, HTTP: r.Method, Path: r.URL.Path,
		RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	s.record(req)
	if req.Key == "" {
		code := 403
		writeStatus(w, code, rpcStatus{Code: 403, Message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", Status: "PERMISSION_DENIED"})
		s.finish(req, code, false)
		return nil, Behaviour{}, false
	}
	b := s.behaviourFor(req.Key)
	if !sleep(r.Context(), time.Duration(b.Delay)) {
		s.finish(req, 0, true)
		return nil, b, false
	}
	if b.Status != OK {
		code := writeError(w, b.Status, b, model)
		s.finish(req, code, false)
		return nil, b, false
	}
	return req, b, true
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *Server) findModel(name string) (Model, bool) {
	for _, m := range s.models() {
		if m.Name == "models/"+name {
			return m, true
		}
	}
	return Model{}, false
}

func (s *Server) serveModelList(w http.ResponseWriter, r *http.Request) {
	req, _, ok := s.begin(w, r, "models.list", "")
	if !ok {
		return
	}
	size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
	if size <= 0 {
		size = 50
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("pageToken"))
	models := s.models()
	if start > len(models) {
		start = len(models)
	}
	end := min(start+size, len(models))
	out := struct {
		Models        []Model `json:"models"`
		NextPageToken string  `json:"nextPageToken,omitempty"`
	}{Models: models[start:end]}
	if end < len(models) {
		out.NextPageToken = strconv.Itoa(end)
	}
	writeJSON(w, out)
	s.finish(req, 200, false)
}

func (s *Server) serveModelGet(w http.ResponseWriter, r *http.Request, name string) {
	req, _, ok := s.begin(w, r, "models.get", name)
	if !ok {
		return
	}
	m, found := s.findModel(name)
	if !found {
		code := writeError(w, NotFound, Behaviour{Message: fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for GetModel. Call ListModels to see the list of available models and their supported methods.", name)}, name)
		s.finish(req, code, false)
		return
	}
	writeJSON(w, m)
	s.finish(req, 200, false)
}

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

func field(m map[string]any, names ...string) map[string]any {
	v, _ := field2(m, names...).(map[string]any)
	return v
}

func field2(m map[string]any, names ...string) any {
	for _, n := range names {
		if v, ok := m[n]; ok {
			return v
		}
	}
	return nil
}

// lastUserText is the text of the last content turn in a generate request.
func lastUserText(body map[string]any) string {
	cs, _ := body["contents"].([]any)
	for i := len(cs) - 1; i >= 0; i-- {
		if t := strings.Join(texts(cs[i]), " "); t != "" {
			return t
		}
	}
	return ""
}

// texts collects every "text" string below v.
func texts(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "text" {
					out = append(out, s)
				} else {
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// countTokens is a deterministic stand-in: ~1 token per 4 bytes of text, 258 per inline blob.
func countTokens(body map[string]any) int {
	n := 0
	for _, t := range texts(body) {
		n += tokensOf(t)
	}
	return n
}

func tokensOf(s string) int { return (utf8.RuneCountInString(s) + 3) / 4 }

func partTokens(p Part) int {
	if p.InlineData != nil {
		return 258
	}
	if p.FunctionCall != nil {
		return 8
	}
	return 0
}

func dims(m map[string]any) int {
	if v, ok := field2(m, "outputDimensionality", "output_dimensionality").(float64); ok && v > 0 {
		return int(v)
	}
	return 8
}

// embed is a deterministic unit vector derived from the text.
func embed(ts []string, n int) []float64 {
	h := sha256.Sum256([]byte(strings.Join(ts, "\x00")))
	out := make([]float64, n)
	var norm float64
	for i := range out {
		out[i] = float64(int(h[i%32])-128) / 128
		norm += out[i] * out[i]
	}
	norm = math.Sqrt(norm)
	for i := range out {
		if norm > 0 {
			out[i] = math.Round(out[i]/norm*1e6) / 1e6
		}
	}
	return out
}

// writeJSON writes a 200 pretty-printed JSON body, as Google's REST frontend does.
func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Vary", "Origin, X-Origin, Referer")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
}

// arrayWriter wraps each body write in [ ]: the error framing of the JSON-array stream
// and of Google's OpenAI-compatible surface.
type arrayWriter struct{ http.ResponseWriter }

func (a arrayWriter) Write(b []byte) (int, error) {
	_, err := a.ResponseWriter.Write([]byte("[" + string(bytes.TrimSpace(b)) + "]\n"))
	return len(b), err
}

// servePredict answers Imagen's :predict: one PNG per requested sample
// (parameters.sampleCount, 1 to 4), as {"predictions":[{"bytesBase64Encoded",
// "mimeType"}]}. Only imagen-* models predict; others are 404 as at Google.
func (s *Server) servePredict(w http.ResponseWriter, r *http.Request, model string) {
	req, _, ok := s.begin(w, r, "predict", model)
	if !ok {
		return
	}
	if !strings.HasPrefix(model, "imagen-") {
		s.finish(req, writeError(w, NotFound, Behaviour{}, model), false)
		return
	}
	var body struct {
		Instances []struct {
			Prompt string `json:"prompt"`
		} `json:"instances"`
		Parameters struct {
			SampleCount int `json:"sampleCount"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil || len(body.Instances) == 0 || body.Instances[0].Prompt == "" {
		s.finish(req, writeError(w, BadRequest, Behaviour{Message: "instances[0].prompt is required"}, model), false)
		return
	}
	n := body.Parameters.SampleCount
	if n == 0 {
		n = 4 // Imagen's default
	}
	if n < 1 || n > 4 {
		s.finish(req, writeError(w, BadRequest, Behaviour{Message: "sampleCount must be between 1 and 4"}, model), false)
		return
	}
	preds := make([]map[string]string, n)
	for i := range preds {
		preds[i] = map[string]string{"mimeType": "image/png", "bytesBase64Encoded": base64.StdEncoding.EncodeToString(tinyPNG)}
	}
	writeJSON(w, map[string]any{"predictions": preds})
	s.finish(req, 200, false)
}
