package fakegemini

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
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
