package convert

import "encoding/json"

// OpenAI Chat Completions wire types. Union fields (content, stop,
// tool_choice) stay raw and are read where they are converted, so that an
// error can name the exact field. Unknown fields are ignored, as OpenAI
// clients send many we have no use for.

// ChatRequest is the body of POST /v1/chat/completions.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Stream              bool            `json:"stream"`
	StreamOptions       *StreamOptions  `json:"stream_options"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"` // not OpenAI, but gemini-balance clients send it
	N                   *int            `json:"n"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	Seed                *int64          `json:"seed"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	Logprobs            *bool           `json:"logprobs"`
	ReasoningEffort     string          `json:"reasoning_effort"`
	Tools               []ToolParam     `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
	ResponseFormat      *ResponseFormat `json:"response_format"`
	Modalities          []string        `json:"modalities"`
	Audio               *AudioParam     `json:"audio"`
	// Legacy function calling, still sent by older clients.
	Functions    []FunctionDef   `json:"functions"`
	FunctionCall json.RawMessage `json:"function_call"`
	// WebSearchOptions turns on Google Search grounding, as a -search model.
	WebSearchOptions json.RawMessage `json:"web_search_options"`
	// Google carries Gemini extras the way Google's own OpenAI-compatible
	// endpoint takes them: SDKs flatten extra_body into the top level, some
	// clients send extra_body literally.
	Google    *GoogleExtras `json:"google"`
	ExtraBody *struct {
		Google *GoogleExtras `json:"google"`
	} `json:"extra_body"`
}

// GoogleExtras is extra_body.google.
type GoogleExtras struct {
	ThinkingConfig *struct {
		ThinkingBudget  *int   `json:"thinking_budget"`
		ThinkingLevel   string `json:"thinking_level"`
		IncludeThoughts *bool  `json:"include_thoughts"`
	} `json:"thinking_config"`
}

// StreamOptions of a streamed request.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Message is one chat message of any role.
type Message struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  []ToolCall      `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
	// Legacy assistant function_call.
	FunctionCall *FunctionCallParam `json:"function_call"`
}

// ContentPart is one element of an array content.
type ContentPart struct {
	Type       string      `json:"type"`
	Text       string      `json:"text"`
	Refusal    string      `json:"refusal"`
	ImageURL   *ImageURL   `json:"image_url"`
	InputAudio *InputAudio `json:"input_audio"`
	File       *FileParam  `json:"file"`
	InputVideo *InputAudio `json:"input_video"` // gemini-balance extension: {data, format}
}

// ImageURL is an image part: a data URL or an http(s) URL.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail"`
}

// InputAudio is base64 audio with its format.
type InputAudio struct {
	Data   string `json:"data"`
	Format string `json:"format"`
}

// FileParam is a file part: inline data URL or an uploaded file id.
type FileParam struct {
	FileData string `json:"file_data"`
	FileID   string `json:"file_id"`
	Filename string `json:"filename"`
}

// ToolCall is an assistant's call, in a request or a response.
type ToolCall struct {
	Index    *int              `json:"index,omitempty"`
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Function FunctionCallParam `json:"function"`
}

// FunctionCallParam names a function and its JSON-encoded arguments.
type FunctionCallParam struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolParam is one entry of tools.
type ToolParam struct {
	Type     string       `json:"type"`
	Function *FunctionDef `json:"function"`
}

// FunctionDef declares a function.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// ResponseFormat asks for text, JSON or schema-bound JSON.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema"`
}

// JSONSchema is response_format.json_schema.
type JSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict"`
}

// AudioParam selects the voice of audio output.
type AudioParam struct {
	Voice  string `json:"voice"`
	Format string `json:"format"`
}

// ChatCompletion is the non-stream response.
type ChatCompletion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
	SystemFingerprint *string  `json:"system_fingerprint"`
}

// Choice is one answer.
type Choice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

// ResponseMessage is the assistant's message. Content is null on a pure
// tool-call turn.
type ResponseMessage struct {
	Role             string       `json:"role"`
	Content          *string      `json:"content"`
	ReasoningContent string       `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall   `json:"tool_calls,omitempty"`
	Refusal          *string      `json:"refusal"`
	Audio            *AudioOutput `json:"audio,omitempty"`
	Annotations      []struct{}   `json:"annotations"`
}

// Usage is OpenAI's token accounting.
type Usage struct {
	PromptTokens            int                     `json:"prompt_tokens"`
	CompletionTokens        int                     `json:"completion_tokens"`
	TotalTokens             int                     `json:"total_tokens"`
	PromptTokensDetails     PromptTokensDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails CompletionTokensDetails `json:"completion_tokens_details"`
}

// PromptTokensDetails carries cached tokens.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// CompletionTokensDetails carries reasoning tokens.
type CompletionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}
