package fakegemini_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

// The fake's own cost on loopback, the floor under any proxy benchmark against it.
//
//	go test -run - -bench . ./testkit/fakegemini/
func benchCall(b *testing.B, path string, record int) {
	fake := fakegemini.Start(b, fakegemini.Options{Keys: []string{"k"}, RecordLimit: record})
	url := fake.URL + path
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(hello))
			req.Header.Set("x-goog-api-key", "k")
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func BenchmarkGenerateContent(b *testing.B) {
	benchCall(b, "/v1beta/models/gemini-2.5-flash:generateContent", 0)
}

func BenchmarkGenerateContentCountersOnly(b *testing.B) {
	benchCall(b, "/v1beta/models/gemini-2.5-flash:generateContent", -1)
}

func BenchmarkStreamSSE(b *testing.B) {
	benchCall(b, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", 0)
}
