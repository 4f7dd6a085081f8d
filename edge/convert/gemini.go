package convert

import "encoding/json"

// Gemini wire types: only what the OpenAI conversion produces or reads. The
// native path forwards raw bytes and never goes through these.

// GenerateContentRequest is the body of :generateContent and :streamGenerateContent.
type GenerateContentRequest struct {
	Contents          []Content         `json:"contents"`
	SystemInstruction *Content          `json:"systemInstruction,omitempty"`
	Tools             []Tool            `json:"tools,omitempty"`
	ToolConfig        *ToolConfig       `json:"toolConfig,omitempty"`
	SafetySettings    []SafetySetting   `json:"safetySettings,omitempty"`
	GenerationConfig  *GenerationConfig `json:"generationConfig,omitempty"`
}

// Content is one turn.
type Content struct {
	Role  string `json:"role,omitempty"`
	Parts []Part `json:"parts"`
}

// Part holds exactly one data field plus optional metadata.
type Part struct {
	Text                string               `json:"text,omitempty"`
	InlineData          *Blob                `json:"inlineData,omitempty"`
	FileData            *FileData            `json:"fileData,omitempty"`
	FunctionCall        *FunctionCall        `json:"functionCall,omitempty"`
	FunctionResponse    *FunctionResponse    `json:"functionResponse,omitempty"`
	ExecutableCode      *ExecutableCode      `json:"executableCode,omitempty"`
	CodeExecutionResult *CodeExecutionResult `json:"codeExecutionResult,omitempty"`
	Thought             bool                 `json:"thought,omitempty"`
	ThoughtSignature    string               `json:"thoughtSignature,omitempty"`
}

// Blob is inline base64 data.
type Blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

// FileData points at a File API object or URL.
type FileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

// FunctionCall is the model asking for a tool.
type FunctionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// FunctionResponse is the client's tool result.
type FunctionResponse struct {
	ID       string          `json:"id,omitempty"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

// ExecutableCode is code the model ran with the codeExecution tool.
type ExecutableCode struct {
	Language string `json:"language,omitempty"`
	Code     string `json:"code"`
}

// CodeExecutionResult is the output of ExecutableCode.
type CodeExecutionResult struct {
	Outcome string `json:"outcome,omitempty"`
	Output  string `json:"output,omitempty"`
}

// Tool is one tool entry; Gemini wants function declarations grouped in one.
type Tool struct {
	FunctionDeclarations []FunctionDeclaration `json:"functionDeclarations,omitempty"`
	GoogleSearch         *struct{}             `json:"googleSearch,omitempty"`
	CodeExecution        *struct{}             `json:"codeExecution,omitempty"`
	URLContext           *struct{}             `json:"urlContext,omitempty"`
}

// FunctionDeclaration describes a callable function. Parameters go as plain
// JSON Schema (parametersJsonSchema), which takes what OpenAI clients send
// after the reduction in schema.go.
type FunctionDeclaration struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description,omitempty"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
}

// ToolConfig carries the function calling mode.
type ToolConfig struct {
	FunctionCallingConfig *FunctionCallingConfig `json:"functionCallingConfig,omitempty"`
}

// FunctionCallingConfig: mode AUTO, ANY, NONE or VALIDATED.
type FunctionCallingConfig struct {
	Mode                 string   `json:"mode"`
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

// SafetySetting is one category threshold.
type SafetySetting struct {
	Category  string `json:"category"`
	Threshold string `json:"threshold"`
}

// GenerationConfig holds the output controls.
type GenerationConfig struct {
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"topP,omitempty"`
	TopK               *int            `json:"topK,omitempty"`
	CandidateCount     *int            `json:"candidateCount,omitempty"`
	MaxOutputTokens    *int            `json:"maxOutputTokens,omitempty"`
	StopSequences      []string        `json:"stopSequences,omitempty"`
	PresencePenalty    *float64        `json:"presencePenalty,omitempty"`
	FrequencyPenalty   *float64        `json:"frequencyPenalty,omitempty"`
	Seed               *int64          `json:"seed,omitempty"`
	ResponseMimeType   string          `json:"responseMimeType,omitempty"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
	ResponseModalities []string        `json:"responseModalities,omitempty"`
	SpeechConfig       *SpeechConfig   `json:"speechConfig,omitempty"`
	ThinkingConfig     *ThinkingConfig `json:"thinkingConfig,omitempty"`
	ImageConfig        *ImageConfig    `json:"imageConfig,omitempty"`
}

// ThinkingConfig: budget (2.5) or level (3), never both.
type ThinkingConfig struct {
	ThinkingBudget  *int   `json:"thinkingBudget,omitempty"`
	ThinkingLevel   string `json:"thinkingLevel,omitempty"`
	IncludeThoughts bool   `json:"includeThoughts,omitempty"`
	// thoughtsSaid marks IncludeThoughts false as the client's own choice,
	// which the injection policy keeps (true always counts as chosen).
	thoughtsSaid bool
}

// SpeechConfig selects a prebuilt voice.
type SpeechConfig struct {
	VoiceConfig *VoiceConfig `json:"voiceConfig,omitempty"`
}

// VoiceConfig wraps a prebuilt voice.
type VoiceConfig struct {
	PrebuiltVoiceConfig *PrebuiltVoiceConfig `json:"prebuiltVoiceConfig,omitempty"`
}

// PrebuiltVoiceConfig names a voice such as Kore.
type PrebuiltVoiceConfig struct {
	VoiceName string `json:"voiceName"`
}

// ImageConfig sets the aspect ratio of generated images.
type ImageConfig struct {
	AspectRatio string `json:"aspectRatio,omitempty"`
}

// GenerateContentResponse is one response or one stream chunk.
type GenerateContentResponse struct {
	Candidates     []Candidate     `json:"candidates,omitempty"`
	PromptFeedback *PromptFeedback `json:"promptFeedback,omitempty"`
	UsageMetadata  *UsageMetadata  `json:"usageMetadata,omitempty"`
	ModelVersion   string          `json:"modelVersion,omitempty"`
	ResponseID     string          `json:"responseId,omitempty"`
	Error          *APIError       `json:"error,omitempty"` // mid-stream failure
}

// APIError is the google.rpc.Status envelope's body.
type APIError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// Candidate is one generated answer.
type Candidate struct {
	Content           *Content           `json:"content,omitempty"`
	FinishReason      string             `json:"finishReason,omitempty"`
	Index             int                `json:"index,omitempty"`
	GroundingMetadata *GroundingMetadata `json:"groundingMetadata,omitempty"`
}

// PromptFeedback says why a prompt was blocked.
type PromptFeedback struct {
	BlockReason string `json:"blockReason,omitempty"`
}

// GroundingMetadata is what a googleSearch call returns.
type GroundingMetadata struct {
	GroundingChunks []GroundingChunk `json:"groundingChunks,omitempty"`
}

// GroundingChunk is one cited source.
type GroundingChunk struct {
	Web *struct {
		URI   string `json:"uri"`
		Title string `json:"title"`
	} `json:"web,omitempty"`
}

// UsageMetadata is Gemini's token accounting; on a stream it is cumulative.
type UsageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount,omitempty"`
	CachedContentTokenCount int `json:"cachedContentTokenCount,omitempty"`
	CandidatesTokenCount    int `json:"candidatesTokenCount,omitempty"`
	ToolUsePromptTokenCount int `json:"toolUsePromptTokenCount,omitempty"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount,omitempty"`
	TotalTokenCount         int `json:"totalTokenCount,omitempty"`
}

func (g *GenerationConfig) empty() bool {
	return g.Temperature == nil && g.TopP == nil && g.TopK == nil && g.CandidateCount == nil &&
		g.MaxOutputTokens == nil && g.StopSequences == nil && g.PresencePenalty == nil &&
		g.FrequencyPenalty == nil && g.Seed == nil && g.ResponseMimeType == "" &&
		g.ResponseJSONSchema == nil && g.ResponseModalities == nil && g.SpeechConfig == nil &&
		g.ThinkingConfig == nil && g.ImageConfig == nil
}
