package convert

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/shared/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func testSettings() *config.Settings {
	s := config.Defaults()
	s.ThinkingModels = []string{"gemini-2.5-flash", "gemini-2.5-pro"}
	s.ThinkingBudgetMap = map[string]int{"gemini-2.5-flash": -1}
	s.Normalize()
	return &s
}

// fakeFetcher stands in for the edge's guarded HTTP fetcher.
type fakeFetcher struct{ calls []string }

func (f *fakeFetcher) Fetch(_ context.Context, u string) (string, []byte, error) {
	f.calls = append(f.calls, u)
	if strings.Contains(u, "missing") {
		return "", nil, errors.New("404 Not Found")
	}
	return "image/png", []byte("\x89PNG fake"), nil
}

func stems() func() string {
	n := 0
	return func() string { n++; return "stem" + strconv.Itoa(n) }
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the converter's output (go test -update rewrites it)\n--- got:\n%s", path, got)
	}
}

func indent(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestChatRequestGolden pins OpenAI → Gemini for the request corpus.
func TestChatRequestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/chat/*.json")
	if len(files) == 0 {
		t.Fatal("no corpus")
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			req, err := ParseChatRequest(body)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := ChatToGemini(context.Background(), req, Options{Settings: testSettings(), Fetcher: &fakeFetcher{}})
			if err != nil {
				t.Fatal(err)
			}
			out := struct {
				Model        models.Model            `json:"model"`
				Stream       bool                    `json:"stream"`
				IncludeUsage bool                    `json:"include_usage"`
				Drops        []Drop                  `json:"drops"`
				Body         *GenerateContentRequest `json:"body"`
			}{plan.Model, plan.Stream, plan.IncludeUsage, plan.Drops, plan.Body}
			golden(t, strings.TrimSuffix(f, ".json")+".golden.json", indent(t, out))
		})
	}
}

// TestChatResponseGolden pins Gemini → OpenAI (non-stream) for the response corpus.
func TestChatResponseGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/response/*.json")
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, _ := os.ReadFile(f)
			var resp GenerateContentResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			meta := ResponseMeta{ID: "chatcmpl-test", Created: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true, SearchLinks: true, AudioFormat: "wav", NewStem: stems()}
			golden(t, strings.TrimSuffix(f, ".json")+".golden.json", indent(t, FromGemini(&resp, meta)))
		})
	}
}

// TestChatStreamGolden pins the stream converter: each .jsonl line is one
// Gemini SSE chunk; the golden file is the SSE the client receives.
func TestChatStreamGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/stream/*.jsonl")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			meta := ResponseMeta{ID: "chatcmpl-test", Created: 1764223200, Model: "gemini-2.5-flash", ShowThinking: true, SearchLinks: true, NewStem: stems()}
			s := NewStream(meta, true)
			var out []byte
			sc := bufio.NewScanner(fh)
			for sc.Scan() {
				if len(bytes.TrimSpace(sc.Bytes())) == 0 {
					continue
				}
				if out, err = s.Feed(out, sc.Bytes()); err != nil {
					t.Fatal(err)
				}
			}
			out = s.Finish(out)
			golden(t, strings.TrimSuffix(f, ".jsonl")+".golden.sse", out)
		})
	}
}
