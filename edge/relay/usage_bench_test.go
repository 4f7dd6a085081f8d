package relay

import "testing"

// BenchmarkUsageOf is what reading the usage of a non-stream answer costs
// each successful request:
//
//	go test ./edge/relay -run '^$' -bench UsageOf -benchmem
func BenchmarkUsageOf(b *testing.B) {
	body := []byte(`{"candidates":[{"content":{"parts":[{"text":"Hello from the benchmark."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":7,"thoughtsTokenCount":24,"cachedContentTokenCount":2,"totalTokenCount":40},"modelVersion":"gemini-2.5-flash","responseId":"abc"}`)
	b.ReportAllocs()
	for b.Loop() {
		if usageOf(body).Total != 40 {
			b.Fatal("usage")
		}
	}
}
