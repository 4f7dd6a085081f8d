package gateway_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkGenerateThroughGateway measures the gateway in process (embedded
// NATS, the keyd peer, the fake upstream); deployments/bench measures the real
// processes side by side with a bare proxy.
func BenchmarkGenerateThroughGateway(b *testing.B) {
	e := newEnv(b, envOptions{})
	body := []byte(`{"contents":[{"role":"user","parts":[{"text":"benchmark hello"}]}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1beta/models/gemini-2.5-flash:generateContent", bytes.NewReader(body))
		req.Header.Set("x-goog-api-key", token)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatal(res.StatusCode)
		}
	}
}
