package openai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
)

const (
	routeImages = "openai.images"
	maxImages   = 10
)

type imageRequest struct {
	Model          string `json:"model"`
	Prompt         string `json:"prompt"`
	N              *int   `json:"n"`
	Size           string `json:"size"`
	ResponseFormat string `json:"response_format"`
}

type imageData struct {
	B64JSON       string `json:"b64_json,omitempty"`
	URL           string `json:"url,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

type imageUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// aspectRatios Gemini image models accept, as width/height.
var aspectRatios = []struct {
	name string
	r    float64
}{
	{"1:1", 1}, {"2:3", 2.0 / 3}, {"3:2", 1.5}, {"3:4", 0.75}, {"4:3", 4.0 / 3},
	{"4:5", 0.8}, {"5:4", 1.25}, {"9:16", 9.0 / 16}, {"16:9", 16.0 / 9}, {"21:9", 21.0 / 9},
}

// imagenRatios are the aspect ratios Imagen's :predict accepts.
var imagenRatios = []string{"1:1", "3:4", "4:3", "9:16", "16:9"}

// aspectRatio maps an OpenAI size ("1792x1024") to the nearest ratio, among
// only when given.
func aspectRatio(size string, only ...string) (string, error) {
	if size == "" || size == "auto" {
		return "", nil
	}
	w, hgt, ok := strings.Cut(strings.ToLower(size), "x")
	wi, err1 := strconv.Atoi(w)
	hi, err2 := strconv.Atoi(hgt)
	if !ok || err1 != nil || err2 != nil || wi <= 0 || hi <= 0 {
		return "", fmt.Errorf("want WIDTHxHEIGHT such as 1024x1024, or auto")
	}
	r := float64(wi) / float64(hi)
	best, diff := "1:1", 1e9
	for _, a := range aspectRatios {
		if len(only) > 0 && !slices.Contains(only, a.name) {
			continue
		}
		if d := abs(a.r - r); d < diff {
			best, diff = a.name, d
		}
	}
	return best, nil
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// imageModel is the Gemini image-output model for a request: the one named
// when it is a Gemini image model, CREATE_IMAGE_MODEL otherwise (dall-e-3,
// gpt-image-1 …).
func imageModel(requested, configured string) string {
	m := trimModel(requested)
	if strings.HasPrefix(m, "gemini-") && strings.Contains(m, "image") || models.IsImagen(m) {
		return m
	}
	return configured
}

// images serves POST images/generations through a Gemini image-output
// model: one generateContent call per image asked for.
func (h *handlers) images(c *gin.Context) {
	rec := record(c, routeImages, "")
	var req imageRequest
	if !readJSON(c, &req) {
		return
	}
	rec.Model = req.Model
	if strings.TrimSpace(req.Prompt) == "" {
		WriteError(c, http.StatusBadRequest, "prompt: is required", "invalid_request_error", "prompt", "invalid_value")
		return
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	if n < 1 || n > maxImages {
		WriteError(c, http.StatusBadRequest, fmt.Sprintf("n: want 1 to %d", maxImages), "invalid_request_error", "n", "invalid_value")
		return
	}
	switch req.ResponseFormat {
	case "", "b64_json":
	case "url":
		// A URL needs the image hosted somewhere every edge replica can serve
		// it from; this gateway hosts nothing, and a data: URL is not what a
		// client that asked for a URL can fetch.
		WriteError(c, http.StatusBadRequest, "response_format: url is not supported: this gateway does not host images; use b64_json",
			"invalid_request_error", "response_format", "unsupported_value")
		return
	default:
		WriteError(c, http.StatusBadRequest, "response_format: want b64_json or url", "invalid_request_error", "response_format", "invalid_value")
		return
	}
	model := imageModel(req.Model, h.Settings.Get().CreateImageModel)
	var only []string
	if models.IsImagen(model) {
		only = imagenRatios
	}
	ratio, err := aspectRatio(req.Size, only...)
	if err != nil {
		WriteError(c, http.StatusBadRequest, "size: "+err.Error(), "invalid_request_error", "size", "invalid_value")
		return
	}
	if rec.Model == "" {
		rec.Model = model
	}
	if !allowModel(c, as(model)) {
		return
	}
	if models.IsImagen(model) {
		h.imagen(c, model, req.Prompt, n, ratio)
		return
	}
	gen := &convert.GenerateContentRequest{
		Contents:         []convert.Content{{Role: "user", Parts: []convert.Part{{Text: req.Prompt}}}},
		GenerationConfig: &convert.GenerationConfig{ResponseModalities: []string{"TEXT", "IMAGE"}},
	}
	if ratio != "" {
		gen.GenerationConfig.ImageConfig = &convert.ImageConfig{AspectRatio: ratio}
	}
	gbody, _ := json.Marshal(gen)
	var data []imageData
	var usage imageUsage
	for len(data) < n {
		resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: routeImages, ErrorType: "openai-image-non-stream", Model: model,
			Path: "/v1beta/models/" + model + ":generateContent", Body: gbody, CheckEmpty: true})
		if !resp.OK() {
			writeUpstreamError(c, resp)
			return
		}
		var g convert.GenerateContentResponse
		if err := json.Unmarshal(resp.Body, &g); err != nil {
			WriteError(c, http.StatusBadGateway, "upstream answered with invalid JSON", "server_error", "", "")
			return
		}
		if u := g.UsageMetadata; u != nil {
			usage.InputTokens += u.PromptTokenCount
			usage.OutputTokens += u.CandidatesTokenCount + u.ThoughtsTokenCount
		}
		got, text, blocked := imagesOf(&g)
		if len(got) == 0 {
			if blocked {
				WriteError(c, http.StatusBadRequest, "the image request was refused by the upstream safety filter", "invalid_request_error", "prompt", "content_policy_violation")
				return
			}
			WriteError(c, http.StatusBadGateway, "upstream returned no image: "+text, "server_error", "", "no_image")
			return
		}
		for _, b := range got {
			if len(data) == n {
				break
			}
			data = append(data, imageData{RevisedPrompt: text, B64JSON: b.Data})
		}
	}
	usage.TotalTokens = usage.InputTokens + usage.OutputTokens
	rec.Usage.Prompt, rec.Usage.Candidates, rec.Usage.Total = usage.InputTokens, usage.OutputTokens, usage.TotalTokens
	c.JSON(http.StatusOK, gin.H{"created": h.Now().Unix(), "data": data, "usage": usage})
}

// imagesOf collects the inline images of a response, its text, and whether
// it was blocked.
func imagesOf(g *convert.GenerateContentResponse) (imgs []*convert.Blob, text string, blocked bool) {
	blocked = g.PromptFeedback != nil && g.PromptFeedback.BlockReason != ""
	var sb strings.Builder
	for i := range g.Candidates {
		cand := &g.Candidates[i]
		if convert.FinishReason(cand.FinishReason, false, false) == "content_filter" {
			blocked = true
		}
		if cand.Content == nil {
			continue
		}
		for j := range cand.Content.Parts {
			p := &cand.Content.Parts[j]
			switch {
			case p.InlineData != nil && strings.HasPrefix(p.InlineData.MimeType, "image/"):
				imgs = append(imgs, p.InlineData)
			case p.Text != "" && !p.Thought:
				sb.WriteString(p.Text)
			}
		}
	}
	return imgs, strings.TrimSpace(sb.String()), blocked
}

// imagenBatch is the most images one Imagen :predict call returns.
const imagenBatch = 4

// imagen serves images/generations on an Imagen model.
func (h *handlers) imagen(c *gin.Context, model, prompt string, n int, ratio string) {
	imgs, ok := h.predict(c, model, prompt, n, ratio)
	if !ok {
		return
	}
	data := make([]imageData, len(imgs))
	for i, b := range imgs {
		data[i] = imageData{B64JSON: b.Data}
	}
	c.JSON(http.StatusOK, gin.H{"created": h.Now().Unix(), "data": data})
}

// predict runs Imagen's :predict on the paid key (PAID_KEY, never the
// rotating pool, as in gemini-balance), at most four images per call, until
// n images are made. On failure it has answered the client.
func (h *handlers) predict(c *gin.Context, model, prompt string, n int, ratio string) ([]convert.Blob, bool) {
	var imgs []convert.Blob
	for len(imgs) < n {
		params := map[string]any{"sampleCount": min(n-len(imgs), imagenBatch)}
		if ratio != "" {
			params["aspectRatio"] = ratio
		}
		body, _ := json.Marshal(map[string]any{"instances": []any{map[string]string{"prompt": prompt}}, "parameters": params})
		resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: routeImages, ErrorType: "openai-image-non-stream",
			Kind: models.KeyKind(model), Model: model, Path: "/v1beta/models/" + model + ":predict", Body: body})
		if !resp.OK() {
			if resp.NoKey == bus.NoKeyNone {
				WriteError(c, http.StatusServiceUnavailable, "Imagen models run on the paid key: set PAID_KEY", "server_error", "model", "no_paid_key")
				return nil, false
			}
			writeUpstreamError(c, resp)
			return nil, false
		}
		var out struct {
			Predictions []struct {
				Bytes    string `json:"bytesBase64Encoded"`
				MimeType string `json:"mimeType"`
			} `json:"predictions"`
		}
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			WriteError(c, http.StatusBadGateway, "upstream answered with invalid JSON", "server_error", "", "")
			return nil, false
		}
		got := 0
		for _, p := range out.Predictions {
			if p.Bytes == "" || len(imgs) == n {
				continue
			}
			if p.MimeType == "" {
				p.MimeType = "image/png"
			}
			imgs = append(imgs, convert.Blob{MimeType: p.MimeType, Data: p.Bytes})
			got++
		}
		if got == 0 {
			// Imagen leaves out what its safety filter removed.
			WriteError(c, http.StatusBadRequest, "the image request was refused by the upstream safety filter", "invalid_request_error", "prompt", "content_policy_violation")
			return nil, false
		}
	}
	return imgs, true
}

// imagenChat serves chat completions on an Imagen model, gemini-balance's
// {CREATE_IMAGE_MODEL}-chat: the last user turn's text is the prompt, and
// the answer is the image as a markdown data-URL image, streamed as one
// chunk when asked.
func (h *handlers) imagenChat(c *gin.Context, plan *convert.ChatPlan, meta convert.ResponseMeta) {
	prompt := ""
	for i := len(plan.Body.Contents) - 1; i >= 0 && prompt == ""; i-- {
		if cnt := plan.Body.Contents[i]; cnt.Role == "user" {
			for _, p := range cnt.Parts {
				prompt = strings.TrimSpace(prompt + " " + p.Text)
			}
		}
	}
	if prompt == "" {
		WriteError(c, http.StatusBadRequest, "messages: an image model needs a user message with text", "invalid_request_error", "messages", "invalid_value")
		return
	}
	imgs, ok := h.predict(c, plan.Model.Upstream, prompt, 1, "")
	if !ok {
		return
	}
	parts := make([]convert.Part, len(imgs))
	for i := range imgs {
		parts[i] = convert.Part{InlineData: &imgs[i]}
	}
	g := &convert.GenerateContentResponse{Candidates: []convert.Candidate{{Content: &convert.Content{Role: "model", Parts: parts}, FinishReason: "STOP"}}}
	if !plan.Stream {
		c.JSON(http.StatusOK, convert.FromGemini(g, meta))
		return
	}
	relay.SetSSEHeaders(c.Writer.Header())
	c.Writer.WriteHeader(http.StatusOK)
	conv := convert.NewStream(meta, plan.IncludeUsage)
	_, _ = c.Writer.Write(conv.Finish(conv.FeedResponse(nil, g)))
	c.Writer.Flush()
}
