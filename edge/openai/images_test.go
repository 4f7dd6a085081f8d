package openai_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

const (
	poolKey = "AIzaSyGOOD-key-0000000000000000000001"
	paidKey = "AIzaSyPAID-key-0000000000000000000009"
)

func TestImagenRunsOnThePaidKeyOnly(t *testing.T) {
	e := newEnv(t, envOptions{keys: []string{poolKey}, paid: []string{paidKey}})
	cl := e.client("/v1", token)
	res, err := cl.Images.Generate(ctxTimeout(t), oai.ImageGenerateParams{
		Prompt: "a lighthouse at dusk", Model: "imagen-4.0-generate-001", N: oai.Int(6),
		Size: oai.ImageGenerateParamsSize1792x1024, ResponseFormat: oai.ImageGenerateParamsResponseFormatB64JSON,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 6 {
		t.Fatalf("%d images, want 6", len(res.Data))
	}
	if img, err := base64.StdEncoding.DecodeString(res.Data[5].B64JSON); err != nil || !bytes.HasPrefix(img, []byte("\x89PNG")) {
		t.Errorf("b64_json is not a PNG: %v", err)
	}
	calls := e.fake.Requests(fakegemini.Filter{Method: "predict"})
	if len(calls) != 2 { // Imagen returns at most 4 per call
		t.Fatalf("%d predict calls, want 2", len(calls))
	}
	for _, c := range calls {
		if c.Key != paidKey || c.Model != "imagen-4.0-generate-001" {
			t.Errorf("predict on %s with key %q, want the paid key", c.Model, c.Key)
		}
	}
	if dig(e.lastBody("predict"), "parameters", "aspectRatio") != "16:9" {
		t.Errorf("predict body %v", e.lastBody("predict"))
	}
	if e.fake.Hits(poolKey) != 0 {
		t.Error("an Imagen call used the rotating pool")
	}

	// A Gemini image-output model stays on the pool.
	if _, err := cl.Images.Generate(ctxTimeout(t), oai.ImageGenerateParams{Prompt: "a fox", Model: "dall-e-3"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"}); r.Key != poolKey {
		t.Errorf("Gemini image model on key %q, want the pool key", r.Key)
	}

	// Native :predict on an Imagen model goes through the paid key too.
	nres := e.postNative("/v1beta/models/imagen-4.0-generate-001:predict", `{"instances":[{"prompt":"a boat"}],"parameters":{"sampleCount":1}}`)
	body, _ := io.ReadAll(nres.Body)
	nres.Body.Close()
	if nres.StatusCode != http.StatusOK || !strings.Contains(string(body), "bytesBase64Encoded") {
		t.Fatalf("native predict: %d %s", nres.StatusCode, body)
	}
	if r, _ := e.fake.Last(fakegemini.Filter{Method: "predict"}); r.Key != paidKey {
		t.Errorf("native predict on key %q", r.Key)
	}
}

func TestAFailingPaidKeyIsNeverShown(t *testing.T) {
	e := newEnv(t, envOptions{keys: []string{poolKey}, paid: []string{paidKey}})
	// Google's CONSUMER_SUSPENDED 403 names the key three times.
	e.fake.SetKey(paidKey, fakegemini.Behaviour{Status: fakegemini.Suspended})
	res := e.postRaw("/v1/images/generations", `{"model":"imagen-4.0-generate-001","prompt":"a lighthouse"}`)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode < 400 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if r, _ := e.fake.Last(fakegemini.Filter{Method: "predict"}); r.Key != paidKey {
		t.Fatalf("predict on key %q, want the paid key", r.Key)
	}
	all := string(body) + headerText(res.Header)
	if strings.Contains(all, paidKey) || strings.Contains(all, paidKey[10:]) {
		t.Fatalf("the paid key leaked: %s", all)
	}
	if !strings.Contains(string(body), `"error"`) {
		t.Errorf("not an OpenAI error: %s", body)
	}
}

func TestImagenWithoutAPaidKeySaysSo(t *testing.T) {
	e := newEnv(t, envOptions{keys: []string{poolKey}})
	cl := e.client("/v1", token)
	_, err := cl.Images.Generate(ctxTimeout(t), oai.ImageGenerateParams{Prompt: "a lighthouse", Model: "imagen-4.0-generate-001"})
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || !strings.Contains(apiErr.Message, "PAID_KEY") {
		t.Fatalf("want 503 naming PAID_KEY, got %v", err)
	}
	if len(e.fake.Requests(fakegemini.Filter{Method: "predict"})) != 0 || e.fake.Hits(poolKey) != 0 {
		t.Error("an Imagen call went upstream without the paid key")
	}
}

func headerText(h http.Header) string {
	var sb strings.Builder
	for k, vs := range h {
		sb.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	return sb.String()
}

// postNative sends a raw Gemini-native request with the client token.
func (e *env) postNative(path, body string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func TestImagesAsURLAreRefusedClearly(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/v1", token)
	_, err := cl.Images.Generate(ctxTimeout(t), oai.ImageGenerateParams{
		Prompt: "a lighthouse", Model: "dall-e-3", ResponseFormat: oai.ImageGenerateParamsResponseFormatURL,
	})
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Param != "response_format" ||
		!strings.Contains(apiErr.Message, "b64_json") {
		t.Fatalf("want 400 on response_format pointing to b64_json, got %v", err)
	}
	if n := len(e.fake.Requests(fakegemini.Filter{Method: "generateContent"})); n != 0 {
		t.Errorf("%d upstream calls for a refused request", n)
	}
}

func TestImagenChatModelRunsOnThePaidKey(t *testing.T) {
	e := newEnv(t, envOptions{keys: []string{poolKey}, paid: []string{paidKey},
		settings: func(s *config.Settings) { s.CreateImageModel = "imagen-4.0-generate-001" }})
	cl := e.client("/v1", token)
	params := oai.ChatCompletionNewParams{Model: "imagen-4.0-generate-001-chat",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("a lighthouse at dusk")}}
	res, err := cl.Chat.Completions.New(ctxTimeout(t), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 || !strings.Contains(res.Choices[0].Message.Content, "](data:image/png;base64,") || res.Choices[0].FinishReason != "stop" {
		t.Fatalf("answer %+v", res.Choices)
	}
	last, _ := e.fake.Last(fakegemini.Filter{Method: "predict"})
	if last.Key != paidKey || dig(e.lastBody("predict"), "instances", 0, "prompt") != "a lighthouse at dusk" {
		t.Fatalf("predict with key %q body %s", last.Key, last.Body)
	}

	stream := cl.Chat.Completions.NewStreaming(ctxTimeout(t), params)
	var text strings.Builder
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			text.WriteString(ch.Delta.Content)
		}
	}
	if err := stream.Err(); err != nil || !strings.Contains(text.String(), "](data:image/png;base64,") {
		t.Fatalf("stream: %v %q", err, text.String())
	}
	if e.fake.Hits(poolKey) != 0 {
		t.Error("the Imagen chat model used the rotating pool")
	}
}
