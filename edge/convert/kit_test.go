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

	"github.com/gemini-balance-go/shared/config"
)

// The test kit of the three surfaces (chat completions, Responses,
// Messages): settings and a fetcher, the golden corpus runners, the fuzz
// properties and the benchmark loops. Each surface's tests say only what
// differs: how it converts and what its golden files pin.

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

// pipeline parses and converts a request body as its route does.
func pipeline[R, P any](parse func([]byte) (*R, error), conv func(context.Context, *R, Options) (*P, error), opt Options) func([]byte) (*P, error) {
	return func(body []byte) (*P, error) {
		req, err := parse(body)
		if err != nil {
			return nil, err
		}
		return conv(context.Background(), req, opt)
	}
}

// messagesToGemini is MessagesToGemini for a messages call (not count_tokens).
func messagesToGemini(ctx context.Context, req *MessagesRequest, opt Options) (*MessagesPlan, error) {
	return MessagesToGemini(ctx, req, opt, false)
}

// feeder is a stream converter: Gemini chunks in, a route's SSE out.
type feeder interface {
	Feed(dst, data []byte) ([]byte, error)
	Finish(dst []byte) []byte
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

// goldenInputs lists a corpus directory's inputs (not its .golden files).
func goldenInputs(t *testing.T, pattern string) []string {
	t.Helper()
	files, _ := filepath.Glob(pattern)
	var out []string
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), ".golden.") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no corpus at %s", pattern)
	}
	return out
}

// requestGolden pins a request converter over a corpus of .json bodies:
// pin returns what the file's .golden.json holds.
func requestGolden(t *testing.T, pattern string, pin func(t *testing.T, path string, body []byte) any) {
	for _, f := range goldenInputs(t, pattern) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(f, ".json")+".golden.json", indent(t, pin(t, f, body)))
		})
	}
}

// responseGolden pins a non-stream response converter over a corpus of
// Gemini responses.
func responseGolden(t *testing.T, pattern string, conv func(*GenerateContentResponse) any) {
	for _, f := range goldenInputs(t, pattern) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, _ := os.ReadFile(f)
			var resp GenerateContentResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(f, ".json")+".golden.json", indent(t, conv(&resp)))
		})
	}
}

// streamGolden pins a stream converter: each .jsonl line is one Gemini SSE
// chunk; the .golden.sse file is the SSE the client receives. check, when
// set, asserts the route's event grammar on it first.
func streamGolden(t *testing.T, pattern string, newStream func() feeder, check func(*testing.T, []byte)) {
	for _, f := range goldenInputs(t, pattern) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			s := newStream()
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
			if check != nil {
				check(t, out)
			}
			golden(t, strings.TrimSuffix(f, ".jsonl")+".golden.sse", out)
		})
	}
}

// requestSeeds seeds a fuzz target with a request corpus and extra bodies.
func requestSeeds(f *testing.F, pattern string, extra ...string) {
	files, _ := filepath.Glob(pattern)
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.json") {
			continue
		}
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// chunkSeeds lists every chunk of a stream corpus, for fuzz seeds.
func chunkSeeds(pattern string) [][]byte {
	var out [][]byte
	files, _ := filepath.Glob(pattern)
	for _, file := range files {
		b, _ := os.ReadFile(file)
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" {
				out = append(out, []byte(line))
			}
		}
	}
	return out
}

// fuzzRequest checks the property of every request converter on arbitrary
// bodies: it never panics, a rejected body names the field at fault, and
// an accepted one yields valid JSON for Gemini (and passes accept, if set).
func fuzzRequest[P any](f *testing.F, conv func([]byte) (*P, error), body func(*P) *GenerateContentRequest, accept func(*testing.T, *P)) {
	f.Fuzz(func(t *testing.T, b []byte) {
		plan, err := conv(b)
		if err == nil {
			if _, merr := json.Marshal(body(plan)); merr != nil {
				t.Fatalf("accepted body gives invalid Gemini JSON: %v", merr)
			}
			if accept != nil {
				accept(t, plan)
			}
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("error is not a *FieldError: %v", err)
		}
		if fe.Field == "" || fe.Msg == "" {
			t.Fatalf("error names no field: %#v", fe)
		}
	})
}

// benchRequest measures parse + convert + encode of one request body.
func benchRequest[P any](b *testing.B, path string, conv func([]byte) (*P, error), body func(*P) *GenerateContentRequest) {
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		plan, err := conv(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(body(plan)); err != nil {
			b.Fatal(err)
		}
	}
}

// benchChunk is one Gemini text chunk in, the route's events out, into a
// reused buffer (what the stream pump does per event).
func benchChunk(b *testing.B, s feeder) {
	chunk := []byte(`{"candidates": [{"content": {"parts": [{"text": "Warsaw is the capital of Poland, a country in Central Europe."}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 12,"totalTokenCount": 21},"modelVersion": "gemini-2.5-flash","responseId": "aB1c"}`)
	buf, _ := s.Feed(nil, chunk) // the opening events out of the way
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		var err error
		if buf, err = s.Feed(buf[:0], chunk); err != nil {
			b.Fatal(err)
		}
	}
}

func chatBody(p *ChatPlan) *GenerateContentRequest           { return p.Body }
func responsesBody(p *ResponsesPlan) *GenerateContentRequest { return p.Body }
func messagesBody(p *MessagesPlan) *GenerateContentRequest   { return p.Body }
