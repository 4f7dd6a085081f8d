package redact

import (
	"testing"
)

// The relay scrubs error bodies only; these show what a clean body (the
// prefilter alone) and a body that names a key cost.
func BenchmarkBodyClean429(b *testing.B) {
	in := []byte(`{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.\nPlease retry in 17s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}`)
	var s Scrubber
	s.SetKnown([]string{"sk-allowed-token-one", "sk-allowed-token-two"})
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Body(in, key, "sk-caller-token-123456")
	}
}

func BenchmarkBodySuccessPrefilter(b *testing.B) {
	in := []byte(`{"candidates":[{"content":{"parts":[{"text":"Hello there, this is a typical answer of a few hundred bytes that the gateway relays as it is."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":20,"totalTokenCount":25},"modelVersion":"gemini-2.5-flash","responseId":"abc"}`)
	var s Scrubber
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Body(in, key)
	}
}

func BenchmarkBodyConsumerSuspended(b *testing.B) {
	in := []byte(suspended)
	var s Scrubber
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Body(in, key)
	}
}
