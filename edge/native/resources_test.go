package native

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// Every spelling the upstream decodes as a cachedContent reference is found,
// so none can slip past the ownership check unpinned.
func TestCacheRefsFindsEverySpelling(t *testing.T) {
	cases := []struct {
		body string
		want []string
	}{
		{`{"contents":[],"cachedContent":"cachedContents/a1"}`, []string{"cachedContents/a1"}},
		{`{"cached_content":"cachedContents/a1"}`, []string{"cachedContents/a1"}},
		{`{"cached\u0043ontent":"cached\u0043ontents/a1"}`, []string{"cachedContents/a1"}},
		{`{"cachedContent":" /cachedContents/a1"}`, []string{"cachedContents/a1"}},
		{`{"batch":{"inputConfig":{"requests":{"requests":[{"request":{"cachedContent":"cachedContents/a1"}},{"request":{"cachedContent":"cachedContents/b2"}}]}}}}`,
			[]string{"cachedContents/a1", "cachedContents/b2"}},
		{`{"cachedContent":"cachedContents/a1","x":{"cachedContent":"cachedContents/a1"}}`, []string{"cachedContents/a1"}},
		{`{"contents":[{"parts":[{"text":"cachedContent: cachedContents/a1"}]}]}`, nil},
		{`{"cachedContent":""}`, nil},
		{`not json`, nil},
	}
	for _, tc := range cases {
		if got := cacheRefs([]byte(tc.body)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.body, got, tc.want)
		}
	}
}

// FuzzCacheRefs: any body is handled without a panic, and a reference
// written anywhere in a valid JSON object is found.
func FuzzCacheRefs(f *testing.F) {
	f.Add([]byte(`{"cachedContent":"cachedContents/a1"}`), "x1")
	f.Add([]byte(`[{"a":[{"b":{}}]}]`), "y")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		_ = cacheRefs(body)
		var v any
		if json.Unmarshal(body, &v) != nil || id == "" {
			return
		}
		wrapped, _ := json.Marshal(map[string]any{"x": v, "cachedContent": "cachedContents/" + id})
		var back map[string]any
		if json.Unmarshal(wrapped, &back) != nil {
			return
		}
		name, _ := back["cachedContent"].(string)
		name = strings.TrimSpace(name)
		if len(name) > len("cachedContents/") && !slices.Contains(cacheRefs(wrapped), name) {
			t.Errorf("reference %q not found in %s", name, wrapped)
		}
	})
}

// BenchmarkCacheRefs is the affinity cost every native generate pays: a
// plain 64 KiB prompt (one substring scan) and one with \u escapes, which
// forces the walk.
func BenchmarkCacheRefs(b *testing.B) {
	text := strings.Repeat("lorem ipsum dolor sit amet ", 64<<10/27)
	plain := []byte(`{"contents":[{"role":"user","parts":[{"text":"` + text + `"}]}]}`)
	escaped := []byte(`{"contents":[{"role":"user","parts":[{"text":"\u003c` + text + `"}]}],"cachedContent":"cachedContents/a1"}`)
	for _, c := range []struct {
		name string
		body []byte
	}{{"plain", plain}, {"escaped", escaped}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				_ = cacheRefs(c.body)
			}
		})
	}
}

// Vertex's publisher-model list reads as Gemini's models list; a Gemini-shaped
// body passes unchanged.
func TestPublisherModelsReadAsGeminiModels(t *testing.T) {
	in := []byte(`{"publisherModels":[{"name":"publishers/google/models/gemini-2.5-flash","versionId":"001"}],"nextPageToken":"t"}`)
	want := `{"models":[{"name":"models/gemini-2.5-flash","versionId":"001"}],"nextPageToken":"t"}`
	if got := string(publisherModels(in)); got != want {
		t.Errorf("got %s", got)
	}
	gem := []byte(`{"models":[{"name":"models/x"}]}`)
	if got := publisherModels(gem); string(got) != string(gem) {
		t.Errorf("Gemini body changed: %s", got)
	}
}
