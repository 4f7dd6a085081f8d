package stack

import (
	"context"
	"testing"

	"google.golang.org/genai"
)

// Gemini is an official Gemini SDK client pointed at edge replica i, authenticated with
// the first client token, as a user of the proxy would configure it.
func (s *Stack) Gemini(t testing.TB, i int) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: s.opts.Tokens[0], Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: s.EdgeURL(i) + "/", APIVersion: "v1beta"},
	})
	if err != nil {
		t.Fatalf("e2e: genai client: %v", err)
	}
	return c
}
