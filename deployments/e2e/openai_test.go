package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// The OpenAI surfaces across processes, with the official openai-go client: /v1 converts
// to Gemini's generateContent, /openai/v1 passes through to Google's own compatible
// endpoint; either way upstream sees a configured key and never the client token.
func TestOpenAIClientsWorkThroughConvertedAndPassthroughRoutes(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tap := tapEvents(t, s)

	for _, route := range []struct{ base, upstreamMethod string }{
		{"/v1/", "generateContent"},
		{"/openai/v1/", "openai.chat"},
	} {
		c := openai.NewClient(option.WithBaseURL(s.EdgeURL(0)+route.base), option.WithAPIKey(s.Tokens()[0]), option.WithMaxRetries(0))
		res, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    "gemini-2.5-flash",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("ping " + route.base)},
		})
		if err != nil {
			t.Fatalf("%s: %v", route.base, err)
		}
		if got := res.Choices[0].Message.Content; got != "echo: ping "+route.base {
			t.Errorf("%s answered %q", route.base, got)
		}
		last, ok, err := s.Fake().Last(ctx, fakegemini.Filter{Method: route.upstreamMethod})
		if err != nil || !ok {
			t.Fatalf("%s: upstream saw no %s call (%v)", route.base, route.upstreamMethod, err)
		}
		if !contains(s.Keys(), last.Key) {
			t.Errorf("%s: upstream call did not carry a configured key", route.base)
		}
		for name, vals := range last.Header {
			if strings.Contains(strings.Join(vals, " "), s.Tokens()[0]) {
				t.Errorf("%s: client token forwarded upstream in %s", route.base, name)
			}
		}
	}

	sc := openai.NewClient(option.WithBaseURL(s.EdgeURL(0)+"/v1/"), option.WithAPIKey(s.Tokens()[0]))
	stream := sc.Chat.Completions.NewStreaming(ctx,
		openai.ChatCompletionNewParams{Model: "gemini-2.5-flash", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("a b c d e")}})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if got := acc.Choices[0].Message.Content; got != "echo: a b c d e" {
		t.Errorf("streamed %q", got)
	}
	noSecrets(t, s, tap)
}
