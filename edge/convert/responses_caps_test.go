package convert

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func responsesWithParts(parts ...string) *ResponsesRequest {
	body := `{"model":"gemini-2.5-flash","input":[{"role":"user","content":[` + strings.Join(parts, ",") + `]}]}`
	req, err := ParseResponsesRequest([]byte(body))
	if err != nil {
		panic(err)
	}
	return req
}

// The Responses route shares chat's caps on what one request may make the
// gateway fetch or reference.
func TestResponsesFetchesAtMostMaxImageFetchesImages(t *testing.T) {
	parts := make([]string, MaxImageFetches+1)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"type":"input_image","image_url":"https://img.example/%d.png"}`, i)
	}
	f := &sizedFetcher{size: 10}
	if _, err := ResponsesToGemini(context.Background(), responsesWithParts(parts[:MaxImageFetches]...), Options{Settings: testSettings(), Fetcher: f}); err != nil {
		t.Fatalf("%d images: %v", MaxImageFetches, err)
	}
	f = &sizedFetcher{size: 10}
	_, err := ResponsesToGemini(context.Background(), responsesWithParts(parts...), Options{Settings: testSettings(), Fetcher: f})
	wantFieldErr(t, err, fmt.Sprintf("input[0].content[%d].image_url", MaxImageFetches), "at most")
	if f.calls != MaxImageFetches {
		t.Fatalf("%d downloads, want the cap %d", f.calls, MaxImageFetches)
	}
	f = &sizedFetcher{size: MaxImageFetchBytes/2 + 1}
	_, err = ResponsesToGemini(context.Background(), responsesWithParts(parts[0], `{"type":"input_file","file_url":"https://img.example/a.pdf"}`), Options{Settings: testSettings(), Fetcher: f})
	wantFieldErr(t, err, "input[0].content[1].file_url", "total at most")
}

func TestResponsesReferencesAtMostMaxFileRefsFiles(t *testing.T) {
	parts := make([]string, MaxFileRefs+1)
	for i := range parts {
		kind := "input_file"
		if i%2 == 1 {
			kind = "input_image"
		}
		parts[i] = fmt.Sprintf(`{"type":%q,"file_id":"files/f%d"}`, kind, i)
	}
	if _, err := ResponsesToGemini(context.Background(), responsesWithParts(parts[:MaxFileRefs]...), Options{Settings: testSettings()}); err != nil {
		t.Fatalf("%d file refs: %v", MaxFileRefs, err)
	}
	_, err := ResponsesToGemini(context.Background(), responsesWithParts(parts...), Options{Settings: testSettings()})
	wantFieldErr(t, err, fmt.Sprintf("input[0].content[%d].file_id", MaxFileRefs), "at most")
}

// Without a fetcher, http(s) URLs are refused rather than passed upstream.
func TestResponsesImageURLWithoutFetcherIsRefused(t *testing.T) {
	_, err := ResponsesToGemini(context.Background(), responsesWithParts(`{"type":"input_image","image_url":"https://img.example/a.png"}`), Options{Settings: testSettings()})
	wantFieldErr(t, err, "input[0].content[0].image_url", "not fetched")
}
