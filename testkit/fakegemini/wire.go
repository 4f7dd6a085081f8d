package fakegemini

import (
	"encoding/json"
	"strconv"
	"time"
)

// Wire types for what the fake sends. Field order follows the order Google emits, and
// every name is the lowerCamelCase the real API uses, so byte-level assertions on a
// proxy's output stay meaningful.

// Part is one piece of model output. Raw, when set, is written verbatim instead of the
// other fields (for shapes the struct cannot express, e.g. {"text":"","thoughtSignature":..}).
type Part struct {
	Text             string          `json:"text,omitempty"`
	InlineData       *Blob           `json:"inlineData,omitempty"`
	FunctionCall     *FunctionCall   `json:"functionCall,omitempty"`
	ExecutableCode   json.RawMessage `json:"executableCode,omitempty"`
	CodeExecResult   json.RawMessage `json:"codeExecutionResult,omitempty"`
	Thought          bool            `json:"thought,omitempty"`
	ThoughtSignature []byte          `json:"thoughtSignature,omitempty"`
	Raw              json.RawMessage `json:"raw,omitempty"`
}

type partAlias Part

// MarshalJSON writes Raw verbatim when it is set.
func (p Part) MarshalJSON() ([]byte, error) {
	if len(p.Raw) > 0 {
		return p.Raw, nil
	}
	return json.Marshal(partAlias(p))
}

// Blob is inline binary data; Data is base64 on the wire.
type Blob struct {
	MIMEType string `json:"mimeType"`
	Data     []byte `json:"data"`
}

// FunctionCall is a whole function call; Gemini never fragments its arguments.
type FunctionCall struct {
	ID   string         `json:"id,omitempty"`
	Name string         `json:"name"`
	Args map[string]any `json:"args"`
}

// Content is a turn.
type Content struct {
	Parts []Part `json:"parts"`
	Role  string `json:"role,omitempty"`
}

// Candidate is one answer.
type Candidate struct {
	Content           *Content        `json:"content,omitempty"`
	FinishReason      string          `json:"finishReason,omitempty"`
	FinishMessage     string          `json:"finishMessage,omitempty"`
	GroundingMetadata json.RawMessage `json:"groundingMetadata,omitempty"`
	Index             int             `json:"index"`
}

// ModalityTokenCount is a per-modality token detail.
type ModalityTokenCount struct {
	Modality   string `json:"modality"`
	TokenCount int    `json:"tokenCount"`
}

// UsageMetadata mirrors Gemini's usage block; zero counts are omitted as Google does.
type UsageMetadata struct {
	PromptTokenCount        int                  `json:"promptTokenCount,omitempty"`
	CandidatesTokenCount    int                  `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount         int                  `json:"totalTokenCount,omitempty"`
	CachedContentTokenCount int                  `json:"cachedContentTokenCount,omitempty"`
	PromptTokensDetails     []ModalityTokenCount `json:"promptTokensDetails,omitempty"`
	ThoughtsTokenCount      int                  `json:"thoughtsTokenCount,omitempty"`
}

// GenerateContentResponse is one generateContent answer or one stream element.
type GenerateContentResponse struct {
	Candidates     []Candidate     `json:"candidates,omitempty"`
	PromptFeedback json.RawMessage `json:"promptFeedback,omitempty"`
	UsageMetadata  *UsageMetadata  `json:"usageMetadata,omitempty"`
	ModelVersion   string          `json:"modelVersion,omitempty"`
	ResponseID     string          `json:"responseId,omitempty"`
}

// Model is an entry of GET /v1beta/models.
type Model struct {
	Name                       string   `json:"name"`
	BaseModelID                string   `json:"baseModelId,omitempty"`
	Version                    string   `json:"version"`
	DisplayName                string   `json:"displayName"`
	Description                string   `json:"description,omitempty"`
	InputTokenLimit            int      `json:"inputTokenLimit"`
	OutputTokenLimit           int      `json:"outputTokenLimit"`
	SupportedGenerationMethods []string `json:"supportedGenerationMethods"`
	Temperature                *float64 `json:"temperature,omitempty"`
	MaxTemperature             *float64 `json:"maxTemperature,omitempty"`
	TopP                       *float64 `json:"topP,omitempty"`
	TopK                       *int     `json:"topK,omitempty"`
	Thinking                   bool     `json:"thinking,omitempty"`
}

// File is a Files API resource.
type File struct {
	Name           string `json:"name"`
	DisplayName    string `json:"displayName,omitempty"`
	MIMEType       string `json:"mimeType"`
	SizeBytes      int64  `json:"sizeBytes,string"`
	CreateTime     string `json:"createTime"`
	UpdateTime     string `json:"updateTime"`
	ExpirationTime string `json:"expirationTime"`
	Sha256Hash     string `json:"sha256Hash"`
	URI            string `json:"uri"`
	State          string `json:"state"`
	Source         string `json:"source"`
}

// Duration is a time.Duration that travels as a Go duration string ("250ms") in the
// admin API; plain numbers are read as nanoseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "1.5s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*d = Duration(n)
	return nil
}

// protoDuration formats d as a protobuf Duration string ("17s", "0.5s").
func protoDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// Helpers for scripting replies.

// Text is a plain answer part.
func Text(s string) Part { return Part{Text: s} }

// Thought is a thought-summary part.
func Thought(s string) Part { return Part{Text: s, Thought: true} }

// Call is a functionCall part.
func Call(name string, args map[string]any) Part {
	return Part{FunctionCall: &FunctionCall{Name: name, Args: args}}
}

// Inline is an inlineData part.
func Inline(mime string, data []byte) Part {
	return Part{InlineData: &Blob{MIMEType: mime, Data: data}}
}

// Signed returns p carrying a thoughtSignature.
func (p Part) Signed(sig string) Part { p.ThoughtSignature = []byte(sig); return p }
