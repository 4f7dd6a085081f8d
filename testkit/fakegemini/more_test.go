package fakegemini_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

func TestSlowFirstByteLetsTheCallerTimeOutAndIsRecordedAsCancelled(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{})
	fake.SetKey("slow", fakegemini.Behaviour{Delay: fakegemini.Duration(time.Hour)})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := client(t, fake.URL, "slow").Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := fake.WaitFor(wctx, func(s fakegemini.Stats) bool { return s.Cancelled == 1 }); err != nil {
		t.Fatalf("cancellation not observed: %+v", fake.Stats())
	}
}

func TestMultiChunkUploadAndListThroughTheSDK(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k"}})
	c := client(t, fake.URL, "k")
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), (9<<20)/16) // > one 8 MiB SDK chunk
	f, err := c.Files.Upload(ctx, bytes.NewReader(big), &genai.UploadFileConfig{MIMEType: "video/mp4", Name: "bigvideo"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "files/bigvideo" || *f.SizeBytes != int64(len(big)) {
		t.Fatalf("file %+v", f)
	}
	if n := len(fake.Requests(fakegemini.Filter{Method: "files.upload"})); n != 2 {
		t.Errorf("upload chunks = %d, want 2", n)
	}
	if _, err := c.Files.Upload(ctx, bytes.NewReader([]byte("x")), &genai.UploadFileConfig{MIMEType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, err := range c.Files.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		seen++
	}
	if seen != 2 {
		t.Errorf("listed %d files", seen)
	}
	// Another key lists nothing of k's.
	fake.AddKeys("other")
	for range client(t, fake.URL, "other").Files.All(ctx) {
		t.Error("other key sees k's files")
	}
}

func TestHandlerHookSeesTheRequestAndAnswers(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{AcceptUnknownKeys: true})
	fake.Handle(func(r *fakegemini.Request) *fakegemini.Reply {
		if r.Model != "gemini-2.5-pro" {
			return nil
		}
		return &fakegemini.Reply{Parts: []fakegemini.Part{fakegemini.Text("pro via " + r.Key)}, FinishReason: "MAX_TOKENS"}
	})
	c := client(t, fake.URL, "abc")
	res, err := c.Models.GenerateContent(context.Background(), "gemini-2.5-pro", genai.Text("x"), nil)
	if err != nil || res.Text() != "pro via abc" || res.Candidates[0].FinishReason != genai.FinishReasonMaxTokens {
		t.Fatalf("%v %+v", err, res)
	}
	res, _ = c.Models.GenerateContent(context.Background(), "gemini-2.5-flash", genai.Text("x"), nil)
	if res.Text() != "echo: x" {
		t.Fatalf("fallthrough: %q", res.Text())
	}
}

func TestPerModelFailureAndBlockedPrompt(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{AcceptUnknownKeys: true})
	fake.Always("gemini-2.0-flash", fakegemini.Reply{Fail: fakegemini.NotFound})
	fake.Script("gemini-2.5-flash", fakegemini.Reply{PromptFeedback: json.RawMessage(`{"blockReason":"SAFETY"}`)})
	c := client(t, fake.URL, "k")
	if _, err := c.Models.GenerateContent(context.Background(), "gemini-2.0-flash", genai.Text("x"), nil); apiCode(err) != 404 {
		t.Fatalf("err = %v", err)
	}
	res, err := c.Models.GenerateContent(context.Background(), "gemini-2.5-flash", genai.Text("x"), nil)
	if err != nil || len(res.Candidates) != 0 || res.PromptFeedback == nil || res.PromptFeedback.BlockReason != genai.BlockedReasonSafety {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestThinkingRequestGetsSignedThoughts(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{AcceptUnknownKeys: true})
	res, err := client(t, fake.URL, "k").Models.GenerateContent(context.Background(), "gemini-2.5-flash", genai.Text("why"),
		&genai.GenerateContentConfig{ThinkingConfig: &genai.ThinkingConfig{IncludeThoughts: true}})
	if err != nil {
		t.Fatal(err)
	}
	parts := res.Candidates[0].Content.Parts
	if !parts[0].Thought || len(parts[len(parts)-1].ThoughtSignature) == 0 || res.UsageMetadata.ThoughtsTokenCount == 0 {
		t.Fatalf("parts %+v usage %+v", parts, res.UsageMetadata)
	}
}

func TestOpenAIChatRendersScriptedToolCalls(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k"}})
	fake.Script("gemini-2.5-flash", fakegemini.Reply{Parts: []fakegemini.Part{
		fakegemini.Call("get_weather", map[string]any{"city": "Oslo"}), fakegemini.Call("get_weather", map[string]any{"city": "Bergen"})}})
	r := post(t, fake.URL+"/v1beta/openai/chat/completions", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"w?"}]}`, map[string]string{"Authorization": "Bearer k"})
	var out struct {
		Choices []struct {
			Message struct {
				Content   *string `json:"content"`
				ToolCalls []struct {
					Function struct{ Name, Arguments string } `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	ch := out.Choices[0]
	if ch.FinishReason != "tool_calls" || ch.Message.Content != nil || len(ch.Message.ToolCalls) != 2 || ch.Message.ToolCalls[1].Function.Arguments != `{"city":"Bergen"}` {
		t.Fatalf("%+v", out)
	}
	if fake.ModelHits("gemini-2.5-flash") != 1 {
		t.Errorf("model hits %+v", fake.Stats().ModelHits)
	}
}

func TestModelListCanBeReplacedRemotely(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{AcceptUnknownKeys: true})
	if err := (fakegemini.Remote{URL: fake.URL}).SetModels(context.Background(), []fakegemini.Model{{Name: "models/only-one", Version: "1", DisplayName: "Only"}}); err != nil {
		t.Fatal(err)
	}
	page, err := client(t, fake.URL, "k").Models.List(context.Background(), nil)
	if err != nil || len(page.Items) != 1 || page.Items[0].Name != "models/only-one" {
		t.Fatalf("%v %+v", err, page.Items)
	}
	resp, err := http.Get(fake.URL + "/v1beta/models?key=k&pageSize=1")
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestVertexExpressPathAnswersLikeGemini(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"vk"}})
	r := post(t, fake.URL+"/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent?key=vk", hello, nil)
	var res fakegemini.GenerateContentResponse
	if err := json.NewDecoder(r.Body).Decode(&res); err != nil || r.StatusCode != 200 || res.Candidates[0].Content.Parts[0].Text != "echo: hi you" {
		t.Fatalf("%d %v %+v", r.StatusCode, err, res)
	}
}

func TestOpenAICompatibleEmbeddings(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k"}})
	r := post(t, fake.URL+"/v1beta/openai/embeddings", `{"model":"gemini-embedding-001","input":["a","b"],"dimensions":4}`, map[string]string{"Authorization": "Bearer k"})
	var out struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil || len(out.Data) != 2 || len(out.Data[1].Embedding) != 4 || out.Data[1].Index != 1 {
		t.Fatalf("%v %+v", err, out)
	}
}
