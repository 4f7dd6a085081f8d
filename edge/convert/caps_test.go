package convert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// sizedFetcher returns images of a fixed size and counts the downloads.
type sizedFetcher struct {
	size  int
	calls int
}

func (f *sizedFetcher) Fetch(context.Context, string) (string, []byte, error) {
	f.calls++
	return "image/png", make([]byte, f.size), nil
}

func chatWithParts(parts ...string) *ChatRequest {
	body := `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[` + strings.Join(parts, ",") + `]}]}`
	req, err := ParseChatRequest([]byte(body))
	if err != nil {
		panic(err)
	}
	return req
}

func imageParts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"type":"image_url","image_url":{"url":"https://img.example/%d.png"}}`, i)
	}
	return out
}

func wantFieldErr(t *testing.T, err error, field, msg string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != field || !strings.Contains(fe.Msg, msg) {
		t.Fatalf("want a 400 on %s about %q, got %v", field, msg, err)
	}
}

func TestChatFetchesAtMostMaxImageFetchesImages(t *testing.T) {
	f := &sizedFetcher{size: 10}
	if _, err := ChatToGemini(context.Background(), chatWithParts(imageParts(MaxImageFetches)...), Options{Settings: testSettings(), Fetcher: f}); err != nil {
		t.Fatalf("%d images: %v", MaxImageFetches, err)
	}
	f = &sizedFetcher{size: 10}
	_, err := ChatToGemini(context.Background(), chatWithParts(imageParts(MaxImageFetches+1)...), Options{Settings: testSettings(), Fetcher: f})
	wantFieldErr(t, err, fmt.Sprintf("messages[0].content[%d].image_url.url", MaxImageFetches), "at most")
	if f.calls != MaxImageFetches {
		t.Fatalf("%d downloads, want the cap %d", f.calls, MaxImageFetches)
	}
}

func TestChatImageDownloadsShareOneByteBudget(t *testing.T) {
	f := &sizedFetcher{size: MaxImageFetchBytes/2 + 1}
	_, err := ChatToGemini(context.Background(), chatWithParts(imageParts(2)...), Options{Settings: testSettings(), Fetcher: f})
	wantFieldErr(t, err, "messages[0].content[1].image_url.url", "total at most")
}

func TestChatReferencesAtMostMaxFileRefsFiles(t *testing.T) {
	parts := make([]string, MaxFileRefs+1)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"type":"file","file":{"file_id":"files/f%d"}}`, i)
	}
	if _, err := ChatToGemini(context.Background(), chatWithParts(parts[:MaxFileRefs]...), Options{Settings: testSettings()}); err != nil {
		t.Fatalf("%d file refs: %v", MaxFileRefs, err)
	}
	_, err := ChatToGemini(context.Background(), chatWithParts(parts...), Options{Settings: testSettings()})
	wantFieldErr(t, err, fmt.Sprintf("messages[0].content[%d].file.file_id", MaxFileRefs), "at most")
}
