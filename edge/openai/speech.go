package openai

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/relay"
)

const (
	routeSpeech  = "openai.speech"
	maxSpeechLen = 32 << 10
	// speechFormats are the response_format values /audio/speech serves.
	speechFormats = "wav, pcm"
)

type speechRequest struct {
	Model          string   `json:"model"`
	Input          string   `json:"input"`
	Voice          any      `json:"voice"` // a name, or {"id": "..."}
	ResponseFormat string   `json:"response_format"`
	Speed          *float64 `json:"speed"`
	Instructions   string   `json:"instructions"`
	StreamFormat   string   `json:"stream_format"`
}

// speechModel is the Gemini TTS model for a request: the one named when it
// is a Gemini TTS model, TTS_MODEL otherwise (tts-1, gpt-4o-mini-tts …).
func speechModel(requested, configured string) string {
	m := trimModel(requested)
	if strings.HasPrefix(m, "gemini-") && strings.Contains(m, "tts") {
		return m
	}
	return configured
}

// pace turns OpenAI's speed (0.25–4) or TTS_SPEED into words the TTS model
// follows; Gemini has no numeric rate.
func pace(speed *float64, setting string) string {
	if speed == nil {
		switch setting {
		case "slow":
			return "slowly"
		case "fast":
			return "quickly"
		}
		return ""
	}
	switch s := *speed; {
	case s <= 0.6:
		return "very slowly"
	case s < 0.9:
		return "slowly"
	case s <= 1.1:
		return ""
	case s <= 1.6:
		return "quickly"
	default:
		return "very quickly"
	}
}

// speech serves POST audio/speech through Gemini TTS: raw PCM from Gemini,
// served as wav (RIFF header added) or pcm (24 kHz 16-bit mono, as is).
func (h *handlers) speech(c *gin.Context) {
	rec := record(c, routeSpeech, "")
	var req speechRequest
	if !readJSON(c, &req) {
		return
	}
	rec.Model = req.Model
	if strings.TrimSpace(req.Input) == "" {
		WriteError(c, http.StatusBadRequest, "input: is required", "invalid_request_error", "input", "invalid_value")
		return
	}
	if len(req.Input) > maxSpeechLen {
		WriteError(c, http.StatusBadRequest, "input: too long", "invalid_request_error", "input", "invalid_value")
		return
	}
	if req.Speed != nil && (*req.Speed < 0.25 || *req.Speed > 4) {
		WriteError(c, http.StatusBadRequest, "speed: want 0.25 to 4.0", "invalid_request_error", "speed", "invalid_value")
		return
	}
	if req.StreamFormat != "" && req.StreamFormat != "audio" {
		WriteError(c, http.StatusBadRequest, "stream_format: only audio is supported", "invalid_request_error", "stream_format", "invalid_value")
		return
	}
	format := req.ResponseFormat
	switch format {
	case "", "wav", "pcm":
	case "mp3", "opus", "aac", "flac":
		// Encoding these needs cgo or ffmpeg; never send WAV labelled as one.
		WriteError(c, http.StatusBadRequest, "response_format: "+format+" is not supported; supported formats: "+speechFormats,
			"invalid_request_error", "response_format", "unsupported_value")
		return
	default:
		WriteError(c, http.StatusBadRequest, "response_format: want one of "+speechFormats, "invalid_request_error", "response_format", "invalid_value")
		return
	}
	st := h.Settings.Get()
	voiceName := ""
	switch v := req.Voice.(type) {
	case string:
		voiceName = v
	case map[string]any:
		voiceName, _ = v["id"].(string)
	}
	text := req.Input
	how := pace(req.Speed, st.TTSSpeed)
	switch {
	case req.Instructions != "" && how != "":
		text = req.Instructions + "\nSpeak " + how + ". Say: " + req.Input
	case req.Instructions != "":
		text = req.Instructions + "\nSay: " + req.Input
	case how != "":
		text = "Say " + how + ": " + req.Input
	}
	model := speechModel(req.Model, st.TTSModel)
	if rec.Model == "" {
		rec.Model = model
	}
	if !allowModel(c, as(model)) {
		return
	}
	gen := &convert.GenerateContentRequest{
		Contents: []convert.Content{{Role: "user", Parts: []convert.Part{{Text: text}}}},
		GenerationConfig: &convert.GenerationConfig{
			ResponseModalities: []string{"AUDIO"},
			SpeechConfig: &convert.SpeechConfig{VoiceConfig: &convert.VoiceConfig{
				PrebuiltVoiceConfig: &convert.PrebuiltVoiceConfig{VoiceName: convert.Voice(voiceName, st.TTSVoiceName)}}},
		},
	}
	gbody, _ := json.Marshal(gen)
	resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: routeSpeech, ErrorType: "tts-api-error", Model: model,
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
	var blob *convert.Blob
	for i := range g.Candidates {
		if cnt := g.Candidates[i].Content; cnt != nil {
			for j := range cnt.Parts {
				if b := cnt.Parts[j].InlineData; b != nil && strings.HasPrefix(b.MimeType, "audio/") && blob == nil {
					blob = b
				}
			}
		}
	}
	if blob == nil {
		WriteError(c, http.StatusBadGateway, "upstream returned no audio", "server_error", "", "no_audio")
		return
	}
	pcm, err := base64.StdEncoding.DecodeString(blob.Data)
	if err != nil {
		WriteError(c, http.StatusBadGateway, "upstream audio is not base64", "server_error", "", "")
		return
	}
	if format == "pcm" {
		c.Data(http.StatusOK, "audio/pcm", pcm)
		return
	}
	c.Data(http.StatusOK, "audio/wav", convert.WAV(pcm, convert.PCMRate(blob.MimeType)))
}
