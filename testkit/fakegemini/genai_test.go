package fakegemini_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

func client(t *testing.T, url, key string) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: key, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: url + "/", APIVersion: "v1beta"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenaiSDKParsesEveryResponseType(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k-ok"}})
	c := client(t, fake.URL, "k-ok")
	ctx := context.Background()

	res, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hello there"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Text(); got != "echo: hello there" {
		t.Errorf("text = %q", got)
	}
	if res.ResponseID == "" || res.ModelVersion != "gemini-2.5-flash" || res.UsageMetadata == nil || res.UsageMetadata.TotalTokenCount == 0 {
		t.Errorf("metadata missing: %+v", res)
	}
	if res.Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Errorf("finish = %q", res.Candidates[0].FinishReason)
	}

	var streamed strings.Builder
	n := 0
	for chunk, err := range c.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("one two three four"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		streamed.WriteString(chunk.Text())
	}
	if n < 2 || streamed.String() != "echo: one two three four" {
		t.Errorf("stream: %d chunks, %q", n, streamed.String())
	}

	ct, err := c.Models.CountTokens(ctx, "gemini-2.5-flash", genai.Text("count these tokens"), nil)
	if err != nil || ct.TotalTokens == 0 {
		t.Fatalf("countTokens: %v %+v", err, ct)
	}

	emb, err := c.Models.EmbedContent(ctx, "gemini-embedding-001", []*genai.Content{
		genai.NewContentFromText("alpha", genai.RoleUser), genai.NewContentFromText("beta", genai.RoleUser)}, nil)
	if err != nil || len(emb.Embeddings) != 2 || len(emb.Embeddings[0].Values) == 0 {
		t.Fatalf("embed: %v %+v", err, emb)
	}
	if fake.Stats().MethodHits["batchEmbedContents"] != 1 {
		t.Errorf("the SDK embeds through batchEmbedContents: %+v", fake.Stats().MethodHits)
	}

	page, err := c.Models.List(ctx, &genai.ListModelsConfig{PageSize: 3})
	if err != nil || len(page.Items) != 3 || page.NextPageToken == "" {
		t.Fatalf("list: %v %d %q", err, len(page.Items), page.NextPageToken)
	}
	all := 0
	for m, err := range c.Models.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		_ = m
		all++
	}
	if all != len(fakegemini.DefaultModels()) {
		t.Errorf("All() = %d models", all)
	}
	m, err := c.Models.Get(ctx, "gemini-2.5-pro", nil)
	if err != nil || m.Name != "models/gemini-2.5-pro" || m.InputTokenLimit == 0 {
		t.Fatalf("get: %v %+v", err, m)
	}

	f, err := c.Files.Upload(ctx, bytes.NewReader([]byte("%PDF-1.4 fake")), &genai.UploadFileConfig{MIMEType: "application/pdf", DisplayName: "report"})
	if err != nil {
		t.Fatal(err)
	}
	if f.SizeBytes == nil || *f.SizeBytes != 13 || f.State != genai.FileStateActive || !strings.HasPrefix(f.URI, fake.URL) {
		t.Errorf("uploaded file: %+v", f)
	}
	if owner, _ := fake.FileOwner(f.Name); owner != "k-ok" {
		t.Errorf("owner = %q", owner)
	}
	got, err := c.Files.Get(ctx, f.Name, nil)
	if err != nil || got.DisplayName != "report" {
		t.Fatalf("get file: %v %+v", err, got)
	}
	if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{{Role: "user", Parts: []*genai.Part{
		genai.NewPartFromURI(f.URI, f.MIMEType), genai.NewPartFromText("summarise")}}}, nil); err != nil {
		t.Fatalf("generate with own file: %v", err)
	}
	if _, err := c.Files.Delete(ctx, f.Name, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Files.Get(ctx, f.Name, nil); apiCode(err) != 403 {
		t.Errorf("deleted file: %v", err)
	}
}

func apiCode(err error) int {
	var ae genai.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

func TestFileOfAnotherKeyIsPermissionDenied(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"owner", "other"}})
	ctx := context.Background()
	f, err := client(t, fake.URL, "owner").Files.Upload(ctx, strings.NewReader("data"), &genai.UploadFileConfig{MIMEType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	other := client(t, fake.URL, "other")
	_, err = other.Files.Get(ctx, f.Name, nil)
	var ae genai.APIError
	if !errors.As(err, &ae) || ae.Code != 403 || ae.Status != "PERMISSION_DENIED" {
		t.Fatalf("get by other key: %v", err)
	}
	_, err = other.Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{{Role: "user", Parts: []*genai.Part{genai.NewPartFromURI(f.URI, "text/plain")}}}, nil)
	if apiCode(err) != 403 {
		t.Fatalf("generate with another key's file: %v", err)
	}
}

func TestErrorShapesParseAsAPIError(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{})
	fake.SetKey("limited", fakegemini.Behaviour{Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(3500 * time.Millisecond)})
	fake.SetKey("down", fakegemini.Behaviour{Status: fakegemini.Unavailable})
	fake.SetKey("broken", fakegemini.Behaviour{Status: fakegemini.Internal})
	ctx := context.Background()
	cases := []struct {
		key, status, detail string
		code                int
	}{
		{"never-registered", "INVALID_ARGUMENT", "API_KEY_INVALID", 400},
		{"limited", "RESOURCE_EXHAUSTED", "3.5s", 429},
		{"down", "UNAVAILABLE", "", 503},
		{"broken", "INTERNAL", "", 500},
	}
	for _, tc := range cases {
		t.Run(tc.status, func(t *testing.T) {
			_, err := client(t, fake.URL, tc.key).Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
			var ae genai.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("not an APIError: %v", err)
			}
			if ae.Code != tc.code || ae.Status != tc.status {
				t.Errorf("got %d %s", ae.Code, ae.Status)
			}
			if tc.detail != "" && !detailHas(ae.Details, tc.detail) {
				t.Errorf("details lack %q: %v", tc.detail, ae.Details)
			}
		})
	}
	// Stream errors before the first byte are ordinary HTTP errors for the SDK too.
	for _, err := range client(t, fake.URL, "limited").Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hi"), nil) {
		if apiCode(err) != 429 {
			t.Errorf("stream error = %v", err)
		}
		break
	}
}

func detailHas(details []map[string]any, want string) bool {
	for _, d := range details {
		for _, v := range d {
			if s, ok := v.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

func TestMidStreamFailureReachesTheSDKAsError(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{})
	fake.SetKey("flaky", fakegemini.Behaviour{FailAfter: 1})
	var texts []string
	var streamErr error
	for chunk, err := range client(t, fake.URL, "flaky").Models.GenerateContentStream(context.Background(), "gemini-2.5-flash", genai.Text("a b c d e f"), nil) {
		if err != nil {
			streamErr = err
			break
		}
		texts = append(texts, chunk.Text())
	}
	if len(texts) != 1 || apiCode(streamErr) != 503 {
		t.Fatalf("texts=%q err=%v", texts, streamErr)
	}
}

func TestScriptedRepliesRoundTripThroughTheSDK(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{AcceptUnknownKeys: true})
	fake.Script("gemini-2.5-pro", fakegemini.Reply{
		Parts: []fakegemini.Part{
			fakegemini.Thought("plan"),
			fakegemini.Call("get_weather", map[string]any{"city": "Oslo"}).Signed("sig-1"),
			fakegemini.Call("get_weather", map[string]any{"city": "Bergen"}),
		},
		GroundingMetadata: []byte(`{"webSearchQueries":["oslo weather"]}`),
	})
	res, err := client(t, fake.URL, "any").Models.GenerateContent(context.Background(), "gemini-2.5-pro", genai.Text("weather?"), nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := res.FunctionCalls()
	if len(calls) != 2 || calls[1].Args["city"] != "Bergen" {
		t.Fatalf("calls = %+v", calls)
	}
	parts := res.Candidates[0].Content.Parts
	if !parts[0].Thought || string(parts[1].ThoughtSignature) != "sig-1" {
		t.Errorf("thought/signature lost: %+v %+v", parts[0], parts[1])
	}
	if g := res.Candidates[0].GroundingMetadata; g == nil || g.WebSearchQueries[0] != "oslo weather" {
		t.Errorf("grounding = %+v", g)
	}
	// The queue is drained: the next call echoes again.
	res, _ = client(t, fake.URL, "any").Models.GenerateContent(context.Background(), "gemini-2.5-pro", genai.Text("x"), nil)
	if res.Text() != "echo: x" {
		t.Errorf("after script: %q", res.Text())
	}
}

func TestTTSAndImageModelsAnswerInlineData(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{AcceptUnknownKeys: true})
	c := client(t, fake.URL, "any")
	res, err := c.Models.GenerateContent(context.Background(), "gemini-2.5-flash-preview-tts", genai.Text("welcome"), nil)
	if err != nil {
		t.Fatal(err)
	}
	blob := res.Candidates[0].Content.Parts[0].InlineData
	if blob == nil || blob.MIMEType != "audio/L16;codec=pcm;rate=24000" || len(blob.Data) == 0 {
		t.Fatalf("tts part: %+v", res.Candidates[0].Content.Parts[0])
	}
	res, err = c.Models.GenerateContent(context.Background(), "gemini-2.5-flash-image", genai.Text("a cat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Candidates[0].Content.Parts[1].InlineData; b == nil || b.MIMEType != "image/png" || !bytes.HasPrefix(b.Data, []byte("\x89PNG")) {
		t.Fatalf("image part: %+v", res.Candidates[0].Content.Parts)
	}
}

// The CONSUMER_SUSPENDED scenario answers as Google does, the key named in
// the message, the ErrorInfo metadata and the LocalizedMessage, on generate,
// stream and files calls alike.
func TestSuspendedKeyAnswersConsumerSuspended(t *testing.T) {
	const key = "AIzaSyFAKE0suspended0key0000000000000000"
	fake := fakegemini.Start(t, fakegemini.Options{})
	fake.SetKey(key, fakegemini.Behaviour{Status: fakegemini.Suspended})
	c := client(t, fake.URL, key)
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		var ae genai.APIError
		if !errors.As(err, &ae) || ae.Code != 403 || ae.Status != "PERMISSION_DENIED" {
			t.Fatalf("%s: %v", what, err)
		}
		if ae.Message != "Permission denied: Consumer 'api_key:"+key+"' has been suspended." {
			t.Errorf("%s: message %q", what, ae.Message)
		}
		d := fmt.Sprint(ae.Details)
		if !detailHas(ae.Details, "CONSUMER_SUSPENDED") || !strings.Contains(d, "containerInfo:api_key:"+key) || !strings.Contains(d, "LocalizedMessage locale:en-US message:Permission denied: Consumer 'api_key:"+key) {
			t.Errorf("%s: details %v", what, ae.Details)
		}
	}
	_, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
	check("generate", err)
	for _, err := range c.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hi"), nil) {
		check("stream", err)
		break
	}
	_, err = c.Files.Upload(ctx, strings.NewReader("data"), &genai.UploadFileConfig{MIMEType: "text/plain"})
	if err == nil || !strings.Contains(err.Error(), "CONSUMER_SUSPENDED") || !strings.Contains(err.Error(), "containerInfo:api_key:"+key) {
		t.Errorf("upload: %v", err)
	}
	_, err = c.Files.Get(ctx, "files/abc", nil)
	check("files.get", err)
}
