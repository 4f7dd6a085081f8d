package openai_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

func TestChatNonStreamAnswersWithUsage(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{
		Parts: []fakegemini.Part{fakegemini.Thought("Counting primes."), fakegemini.Text("11 is prime.")},
		Usage: &fakegemini.UsageMetadata{PromptTokenCount: 12, CandidatesTokenCount: 4, ThoughtsTokenCount: 20, TotalTokenCount: 36},
	})
	cl := e.client("/v1", token)
	res, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model:    "gemini-2.5-flash",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.SystemMessage("Be brief."), oai.UserMessage("A prime above 10?")},
	})
	if err != nil {
		t.Fatal(err)
	}
	ch := res.Choices[0]
	if ch.Message.Content != "11 is prime." || ch.FinishReason != "stop" {
		t.Errorf("answer %q finish %q", ch.Message.Content, ch.FinishReason)
	}
	if rc := ch.Message.JSON.ExtraFields["reasoning_content"].Raw(); !strings.Contains(rc, "Counting primes.") {
		t.Errorf("reasoning_content = %s", rc)
	}
	if res.Usage.PromptTokens != 12 || res.Usage.CompletionTokens != 24 || res.Usage.TotalTokens != 36 || res.Usage.CompletionTokensDetails.ReasoningTokens != 20 {
		t.Errorf("usage %+v", res.Usage)
	}
	up := e.lastBody("generateContent")
	if dig(up, "systemInstruction", "parts", 0, "text") != "Be brief." {
		t.Errorf("system message did not become systemInstruction: %v", up["systemInstruction"])
	}
}

func TestChatStreamSendsOneFinishAndUsage(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{
		Chunks: [][]fakegemini.Part{{fakegemini.Text("Warsaw ")}, {fakegemini.Text("is the ")}, {fakegemini.Text("capital.")}},
		Usage:  &fakegemini.UsageMetadata{PromptTokenCount: 9, CandidatesTokenCount: 7, TotalTokenCount: 16},
	})
	cl := e.client("/v1", token)
	stream := cl.Chat.Completions.NewStreaming(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model:         "gemini-2.5-flash",
		Messages:      []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Capital of Poland?")},
		StreamOptions: oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)},
	})
	var acc oai.ChatCompletionAccumulator
	ids := map[string]bool{}
	finishes, usageChunks, chunks := 0, 0, 0
	for stream.Next() {
		c := stream.Current()
		chunks++
		acc.AddChunk(c)
		ids[c.ID] = true
		for _, ch := range c.Choices {
			if ch.FinishReason != "" {
				finishes++
			}
		}
		if c.JSON.Usage.Valid() && c.Usage.TotalTokens > 0 {
			usageChunks++
			if len(c.Choices) != 0 {
				t.Errorf("usage chunk carries choices: %+v", c.Choices)
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "Warsaw is the capital." {
		t.Errorf("streamed text %q", got)
	}
	if finishes != 1 || usageChunks != 1 || len(ids) != 1 {
		t.Errorf("finish chunks %d, usage chunks %d, ids %v (chunks %d)", finishes, usageChunks, ids, chunks)
	}
	if acc.Usage.TotalTokens != 16 || acc.Choices[0].FinishReason != "stop" {
		t.Errorf("usage %+v finish %q", acc.Usage, acc.Choices[0].FinishReason)
	}
}

var weatherTool = oai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: oai.String("Weather by city"),
	Strict:      oai.Bool(true),
	Parameters: shared.FunctionParameters{
		"type":                 "object",
		"properties":           map[string]any{"city": map[string]any{"type": "string"}},
		"required":             []string{"city"},
		"additionalProperties": false,
	},
})

// Two parallel calls, the second turn answering both: ids stay consistent,
// the names come back on the functionResponse parts, the first call's
// thoughtSignature reaches upstream again, and the final answer arrives.
func TestToolsRoundTripWithParallelCallsAndSignature(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-3-pro-preview",
		fakegemini.Reply{Parts: []fakegemini.Part{
			fakegemini.Call("get_weather", map[string]any{"city": "Oslo"}).Signed("sig-for-oslo"),
			fakegemini.Call("get_weather", map[string]any{"city": "Bergen"}),
		}},
		fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text("Bergen is warmer.")}},
	)
	cl := e.client("/v1", token)
	ctx := ctxTimeout(t)
	params := oai.ChatCompletionNewParams{
		Model:    "gemini-3-pro-preview",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Weather in Oslo and Bergen?")},
		Tools:    []oai.ChatCompletionToolUnionParam{weatherTool},
	}
	first, err := cl.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	msg := first.Choices[0].Message
	if first.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 2 {
		t.Fatalf("finish %q, tool calls %+v", first.Choices[0].FinishReason, msg.ToolCalls)
	}
	if msg.ToolCalls[0].ID == msg.ToolCalls[1].ID || msg.ToolCalls[0].Function.Arguments != `{"city":"Oslo"}` {
		t.Errorf("tool calls %+v", msg.ToolCalls)
	}
	params.Messages = append(params.Messages, msg.ToParam(),
		oai.ToolMessage(`{"tempC":4}`, msg.ToolCalls[0].ID),
		oai.ToolMessage("6 degrees", msg.ToolCalls[1].ID))
	final, err := cl.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if final.Choices[0].Message.Content != "Bergen is warmer." {
		t.Errorf("final answer %q", final.Choices[0].Message.Content)
	}
	up := e.lastBody("generateContent")
	model := dig(up, "contents", 1)
	if dig(model, "role") != "model" || dig(model, "parts", 0, "functionCall", "name") != "get_weather" {
		t.Fatalf("model turn %v", model)
	}
	sig, _ := base64.StdEncoding.DecodeString(dig(model, "parts", 0, "thoughtSignature").(string))
	if string(sig) != "sig-for-oslo" || dig(model, "parts", 1, "thoughtSignature") != nil {
		t.Errorf("signatures after the round trip: %v", model)
	}
	replies := dig(up, "contents", 2)
	if dig(replies, "parts", 0, "functionResponse", "name") != "get_weather" || dig(replies, "parts", 1, "functionResponse", "response", "result") != "6 degrees" ||
		dig(replies, "parts", 0, "functionResponse", "response", "tempC") != float64(4) {
		t.Errorf("function responses %v", replies)
	}
	if dig(up, "tools", 0, "functionDeclarations", 0, "parametersJsonSchema", "additionalProperties") != false {
		t.Errorf("tool schema %v", up["tools"])
	}
}

func TestToolChoiceRequiredAndNamed(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Always("gemini-2.5-flash", fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Call("get_weather", map[string]any{"city": "Oslo"})}})
	cl := e.client("/v1", token)
	for _, tc := range []struct {
		choice oai.ChatCompletionToolChoiceOptionUnionParam
		names  []any
	}{
		{oai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: oai.String("required")}, nil},
		{oai.ToolChoiceOptionFunctionToolChoice(oai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"}), []any{"get_weather"}},
	} {
		res, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
			Model: "gemini-2.5-flash", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Oslo?")},
			Tools: []oai.ChatCompletionToolUnionParam{weatherTool}, ToolChoice: tc.choice,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Choices[0].FinishReason != "tool_calls" {
			t.Errorf("finish %q", res.Choices[0].FinishReason)
		}
		fcc := dig(e.lastBody("generateContent"), "toolConfig", "functionCallingConfig")
		if dig(fcc, "mode") != "ANY" {
			t.Errorf("mode %v", fcc)
		}
		names, _ := dig(fcc, "allowedFunctionNames").([]any)
		if len(names) != len(tc.names) || (len(names) == 1 && names[0] != tc.names[0]) {
			t.Errorf("allowedFunctionNames %v, want %v", names, tc.names)
		}
	}
}

func TestJSONSchemaOutput(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Script("gemini-2.5-flash", fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text(`{"city":"Oslo","tempC":4}`)}})
	cl := e.client("/v1", token)
	res, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model:    "gemini-2.5-flash",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Weather as JSON")},
		ResponseFormat: oai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "weather", Strict: oai.Bool(true), Schema: map[string]any{
				"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}, "tempC": map[string]any{"type": "number"}},
				"required": []string{"city", "tempC"}, "additionalProperties": false,
			}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		City  string  `json:"city"`
		TempC float64 `json:"tempC"`
	}
	if err := json.Unmarshal([]byte(res.Choices[0].Message.Content), &out); err != nil || out.City != "Oslo" {
		t.Errorf("content %q: %v", res.Choices[0].Message.Content, err)
	}
	gc := dig(e.lastBody("generateContent"), "generationConfig")
	if dig(gc, "responseMimeType") != "application/json" || dig(gc, "responseJsonSchema", "properties", "tempC", "type") != "number" {
		t.Errorf("generationConfig %v", gc)
	}
}

func TestImageInputAsDataURL(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/v1", token)
	png := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
	_, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model: "gemini-2.5-flash",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage([]oai.ChatCompletionContentPartUnionParam{
			oai.TextContentPart("What is this?"),
			oai.ImageContentPart(oai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64," + png}),
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	part := dig(e.lastBody("generateContent"), "contents", 0, "parts", 1, "inlineData")
	if dig(part, "mimeType") != "image/png" || dig(part, "data") != png {
		t.Errorf("inlineData %v", part)
	}
}

func TestImageURLToPrivateAddressIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/v1", token)
	_, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model: "gemini-2.5-flash",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage([]oai.ChatCompletionContentPartUnionParam{
			oai.ImageContentPart(oai.ChatCompletionContentPartImageImageURLParam{URL: e.url + "/health"}),
		})},
	})
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "messages[0].content[0].image_url.url" || !strings.Contains(apiErr.Message, "not allowed") {
		t.Fatalf("want 400 naming the image url, got %v", err)
	}
}

func TestEmbeddingsFloatAndBase64(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/v1", token)
	ctx := ctxTimeout(t)
	in := oai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"alpha", "beta"}}
	f, err := cl.Embeddings.New(ctx, oai.EmbeddingNewParams{Model: "text-embedding-3-small", Input: in, Dimensions: oai.Int(16), EncodingFormat: oai.EmbeddingNewParamsEncodingFormatFloat})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Data) != 2 || len(f.Data[0].Embedding) != 16 || f.Data[1].Index != 1 {
		t.Fatalf("float embeddings %+v", f.Data)
	}
	b, err := cl.Embeddings.New(ctx, oai.EmbeddingNewParams{Model: "text-embedding-3-small", Input: in, Dimensions: oai.Int(16), EncodingFormat: oai.EmbeddingNewParamsEncodingFormatBase64})
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal([]byte(b.Data[0].JSON.Embedding.Raw()), &s); err != nil {
		t.Fatalf("base64 embedding is not a string: %s", b.Data[0].JSON.Embedding.Raw())
	}
	raw, _ := base64.StdEncoding.DecodeString(s)
	if len(raw) != 16*4 {
		t.Fatalf("base64 embedding has %d bytes", len(raw))
	}
	for i, want := range f.Data[0].Embedding {
		got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if math.Abs(float64(got)-want) > 1e-6 {
			t.Fatalf("component %d: base64 %v, float %v", i, got, want)
		}
	}
	up := e.lastBody("batchEmbedContents")
	if dig(up, "requests", 0, "model") != "models/gemini-embedding-001" || dig(up, "requests", 1, "outputDimensionality") != float64(16) {
		t.Errorf("upstream batch %v", up)
	}
}

func TestImagesGenerationB64JSON(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/v1", token)
	res, err := cl.Images.Generate(ctxTimeout(t), oai.ImageGenerateParams{
		Prompt: "a lighthouse at dusk", Model: "dall-e-3", N: oai.Int(2),
		Size: oai.ImageGenerateParamsSize1792x1024, ResponseFormat: oai.ImageGenerateParamsResponseFormatB64JSON,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 {
		t.Fatalf("%d images", len(res.Data))
	}
	img, err := base64.StdEncoding.DecodeString(res.Data[0].B64JSON)
	if err != nil || !bytes.HasPrefix(img, []byte("\x89PNG")) {
		t.Errorf("b64_json is not a PNG: %v", err)
	}
	gc := dig(e.lastBody("generateContent"), "generationConfig")
	if dig(gc, "imageConfig", "aspectRatio") != "16:9" || dig(gc, "responseModalities", 1) != "IMAGE" {
		t.Errorf("generationConfig %v", gc)
	}
	if r, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"}); r.Model != config.Defaults().CreateImageModel {
		t.Errorf("image model %q", r.Model)
	}
}

func TestSpeechWAV(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/v1", token)
	res, err := cl.Audio.Speech.New(ctxTimeout(t), oai.AudioSpeechNewParams{
		Model: oai.SpeechModelGPT4oMiniTTS, Input: "Welcome back!",
		Voice:          oai.AudioSpeechNewParamsVoiceUnion{OfString: oai.String("alloy")},
		ResponseFormat: oai.AudioSpeechNewParamsResponseFormatWAV, Speed: oai.Float(1.5),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	wav, _ := io.ReadAll(res.Body)
	if res.Header.Get("Content-Type") != "audio/wav" || string(wav[:4]) != "RIFF" || string(wav[8:12]) != "WAVE" ||
		binary.LittleEndian.Uint32(wav[24:]) != 24000 || int(binary.LittleEndian.Uint32(wav[40:])) != len(wav)-44 {
		t.Fatalf("not a 24 kHz WAV: %s % x", res.Header.Get("Content-Type"), wav[:min(44, len(wav))])
	}
	up := e.lastBody("generateContent")
	if dig(up, "generationConfig", "speechConfig", "voiceConfig", "prebuiltVoiceConfig", "voiceName") != "Zephyr" ||
		!strings.HasPrefix(dig(up, "contents", 0, "parts", 0, "text").(string), "Say quickly:") {
		t.Errorf("upstream TTS request %v", up)
	}
}

func TestModelsListAndGet(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/v1", token)
	page, err := cl.Models.List(ctxTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range page.Data {
		ids[m.ID] = true
		if m.Object != "model" || m.OwnedBy != "google" {
			t.Errorf("model entry %+v", m)
		}
	}
	for _, want := range []string{"gemini-2.5-flash", "gemini-2.5-flash-search", "gemini-2.5-pro-non-thinking", config.Defaults().CreateImageModel + "-chat"} {
		if !ids[want] {
			t.Errorf("%s missing from %v", want, ids)
		}
	}
	hf := e.client("/hf/v1", token) // same routes under /hf/v1
	m, err := hf.Models.Get(ctxTimeout(t), "gemini-2.5-flash-search")
	if err != nil || m.ID != "gemini-2.5-flash-search" {
		t.Errorf("get derived model: %+v %v", m, err)
	}
	_, err = cl.Models.Get(ctxTimeout(t), "gemini-0-nonexistent")
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("unknown model: %v", err)
	}
}

func TestErrorShapes(t *testing.T) {
	t.Run("bad token", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		cl := e.client("/v1", "sk-wrong")
		_, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
			Model: "gemini-2.5-flash", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}})
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
			t.Fatalf("want 401 invalid_api_key, got %v", err)
		}
	})
	t.Run("bad request", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		cl := e.client("/v1", token)
		_, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
			Model: "gemini-2.5-flash", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")},
			N: oai.Int(0)})
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "n" || apiErr.Type != "invalid_request_error" {
			t.Fatalf("want 400 naming n, got %v", err)
		}
		if e.fake.Stats().Total != 0 {
			t.Error("a bad request must not reach upstream")
		}
	})
	t.Run("no usable key", func(t *testing.T) {
		e := newEnv(t, envOptions{keys: []string{}})
		cl := e.client("/v1", token)
		_, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
			Model: "gemini-2.5-flash", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}})
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.Code != "no_usable_key" {
			t.Fatalf("want 503 no_usable_key, got %v", err)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		key := "AIzaSyLIMITED-key-00000000000000000001"
		e := newEnv(t, envOptions{keys: []string{key}})
		e.fake.SetKey(key, fakegemini.Behaviour{Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(7e9)})
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/chat/completions", strings.NewReader(`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Error struct {
				Type, Code, Message string
			}
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || res.Header.Get("Retry-After-Ms") == "" || body.Error.Code != "rate_limit_exceeded" {
			t.Fatalf("status %d, retry-after %q / %q, body %+v", res.StatusCode, res.Header.Get("Retry-After"), res.Header.Get("Retry-After-Ms"), body)
		}
	})
}

func TestPassthroughKeepsBodyWhole(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/openai/v1", token)
	res, err := cl.Chat.Completions.New(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model: "gemini-2.5-flash", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi there")},
		Seed: oai.Int(7), MaxCompletionTokens: oai.Int(50),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) == 0 {
		t.Fatalf("no choices: %+v", res)
	}
	r, ok := e.fake.Last(fakegemini.Filter{Method: "openai.chat"})
	if !ok {
		t.Fatal("passthrough did not reach upstream's OpenAI endpoint")
	}
	if !bytes.Contains(r.Body, []byte(`"seed":7`)) || !bytes.Contains(r.Body, []byte(`"max_completion_tokens":50`)) {
		t.Errorf("body not kept whole: %s", r.Body)
	}
	if r.Key == token || r.Key == "" {
		t.Errorf("upstream saw key %q, want the pool key", r.Key)
	}
}

func TestFakeStreamSendsOneAnswer(t *testing.T) {
	e := newEnv(t, envOptions{settings: func(s *config.Settings) { s.FakeStreamEnabled = true }})
	cl := e.client("/v1", token)
	stream := cl.Chat.Completions.NewStreaming(ctxTimeout(t), oai.ChatCompletionNewParams{
		Model: "gemini-2.5-flash", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hello")},
	})
	var acc oai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(acc.Choices[0].Message.Content, "hello") || acc.Choices[0].FinishReason != "stop" {
		t.Errorf("fake stream gave %+v", acc.Choices[0])
	}
	if e.fake.Stats().MethodHits["streamGenerateContent"] != 0 {
		t.Error("fake stream must call the non-stream method upstream")
	}
}
