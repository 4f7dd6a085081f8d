package files

import (
	"strings"
	"testing"
)

// The check runs on every request that can name a file; a request without
// any trace of one costs only the prefilter.
func BenchmarkRefsNoFile(b *testing.B) {
	body := []byte(`{"contents":[{"role":"user","parts":[{"text":"` + strings.Repeat("Tell me a story about a lighthouse keeper. ", 50) + `"}]}],"generationConfig":{"temperature":0.7}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if refs, err := Refs(body, base); err != nil || refs != nil {
			b.Fatal(refs, err)
		}
	}
}

func BenchmarkRefsWithFile(b *testing.B) {
	body := []byte(`{"contents":[{"role":"user","parts":[{"fileData":{"fileUri":"https://generativelanguage.googleapis.com/v1beta/files/abc123","mimeType":"application/pdf"}},{"text":"` + strings.Repeat("Summarise the attached files. ", 50) + `"}]}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if refs, err := Refs(body, base); err != nil || len(refs) != 1 {
			b.Fatal(refs, err)
		}
	}
}
