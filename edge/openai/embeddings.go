package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/relay"
)

const (
	routeEmbeddings = "openai.embeddings"
	// DefaultEmbeddingModel serves requests that name no model or an OpenAI one.
	DefaultEmbeddingModel = "gemini-embedding-001"
	embedBatch            = 100 // Gemini's per-call cap on batchEmbedContents
	maxEmbedInputs        = 2048
)

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	TaskType       string          `json:"task_type"` // extension: Gemini taskType
}

type embedContentRequest struct {
	Model                string       `json:"model"`
	Content              embedContent `json:"content"`
	TaskType             string       `json:"taskType,omitempty"`
	OutputDimensionality *int         `json:"outputDimensionality,omitempty"`
}

type embedContent struct {
	Parts []embedPart `json:"parts"`
}

type embedPart struct {
	Text string `json:"text"`
}

type batchEmbedResponse struct {
	Embeddings []struct {
		Values []float32 `json:"values"`
	} `json:"embeddings"`
	UsageMetadata *struct {
		PromptTokenCount int `json:"promptTokenCount"`
	} `json:"usageMetadata"`
}

// embeddingModel maps OpenAI embedding model names to Gemini's.
func embeddingModel(m string) string {
	m = trimModel(m)
	if m == "" || strings.HasPrefix(m, "text-embedding-3") || m == "text-embedding-ada-002" {
		return DefaultEmbeddingModel
	}
	return m
}

// parseInput reads input: a string or an array of strings. Token arrays are
// OpenAI tokenizer ids that mean nothing to Gemini.
func parseInput(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("is required")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("invalid string")
		}
		return []string{s}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("want a string or an array of strings")
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("must not be empty")
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		var s string
		if err := json.Unmarshal(item, &s); err != nil {
			return nil, fmt.Errorf("want strings; token arrays are not supported, send the text")
		}
		out = append(out, s)
	}
	return out, nil
}

// embeddings serves POST embeddings through batchEmbedContents, in
// float or base64 (little-endian float32, the SDKs' default) encoding.
func (h *handlers) embeddings(c *gin.Context) {
	rec := record(c, routeEmbeddings, "")
	var req embeddingRequest
	if !readJSON(c, &req) {
		return
	}
	rec.Model = req.Model
	inputs, err := parseInput(req.Input)
	if err != nil {
		WriteError(c, http.StatusBadRequest, "input: "+err.Error(), "invalid_request_error", "input", "invalid_value")
		return
	}
	if len(inputs) > maxEmbedInputs {
		WriteError(c, http.StatusBadRequest, fmt.Sprintf("input: at most %d items", maxEmbedInputs), "invalid_request_error", "input", "invalid_value")
		return
	}
	for i, s := range inputs {
		if s == "" {
			WriteError(c, http.StatusBadRequest, fmt.Sprintf("input[%d]: must not be empty", i), "invalid_request_error", "input", "invalid_value")
			return
		}
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		WriteError(c, http.StatusBadRequest, "encoding_format: want float or base64", "invalid_request_error", "encoding_format", "invalid_value")
		return
	}
	if req.Dimensions != nil && *req.Dimensions < 1 {
		WriteError(c, http.StatusBadRequest, "dimensions: must be at least 1", "invalid_request_error", "dimensions", "invalid_value")
		return
	}
	model := embeddingModel(req.Model)
	if !allowModel(c, as(model)) {
		return
	}
	vectors := make([][]float32, 0, len(inputs))
	promptTokens := 0
	for start := 0; start < len(inputs); start += embedBatch {
		batch := inputs[start:min(start+embedBatch, len(inputs))]
		reqs := make([]embedContentRequest, len(batch))
		for i, s := range batch {
			reqs[i] = embedContentRequest{Model: "models/" + model, Content: embedContent{Parts: []embedPart{{Text: s}}}, TaskType: req.TaskType, OutputDimensionality: req.Dimensions}
		}
		gbody, _ := json.Marshal(map[string]any{"requests": reqs})
		resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: routeEmbeddings, ErrorType: "openai-embedding", Model: model,
			Path: "/v1beta/models/" + model + ":batchEmbedContents", Body: gbody})
		if !resp.OK() {
			writeUpstreamError(c, resp)
			return
		}
		var out batchEmbedResponse
		if err := json.Unmarshal(resp.Body, &out); err != nil || len(out.Embeddings) != len(batch) {
			WriteError(c, http.StatusBadGateway, "upstream answered with an unexpected embeddings body", "server_error", "", "")
			return
		}
		for _, e := range out.Embeddings {
			vectors = append(vectors, e.Values)
		}
		if out.UsageMetadata != nil && out.UsageMetadata.PromptTokenCount > 0 {
			promptTokens += out.UsageMetadata.PromptTokenCount
		} else {
			for _, s := range batch {
				promptTokens += (utf8.RuneCountInString(s) + 3) / 4 // Gemini reports no count here: estimate
			}
		}
	}
	rec.Usage.Prompt, rec.Usage.Total = promptTokens, promptTokens
	c.Data(http.StatusOK, "application/json", embeddingJSON(vectors, req.EncodingFormat == "base64", req.Model, model, promptTokens))
}

// embeddingJSON writes the list by hand: vectors are the bulk of the body
// and encoding them as float32 keeps them as short as the client needs.
func embeddingJSON(vectors [][]float32, b64 bool, requested, model string, tokens int) []byte {
	if requested == "" {
		requested = model
	}
	var b bytes.Buffer
	b.WriteString(`{"object":"list","data":[`)
	var raw []byte
	for i, v := range vectors {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"object":"embedding","index":%d,"embedding":`, i)
		if b64 {
			raw = raw[:0]
			for _, f := range v {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
			}
			b.WriteByte('"')
			b.WriteString(base64.StdEncoding.EncodeToString(raw))
			b.WriteByte('"')
		} else {
			enc, _ := json.Marshal(v)
			b.Write(enc)
		}
		b.WriteByte('}')
	}
	name, _ := json.Marshal(requested)
	fmt.Fprintf(&b, `],"model":%s,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`, name, tokens, tokens)
	return b.Bytes()
}
