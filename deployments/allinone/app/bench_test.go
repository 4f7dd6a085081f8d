package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

// BenchmarkAllInOneGenerateContent measures a non-streamed generateContent
// through the all-in-one's one port: client-token auth, key acquire over
// in-process NATS, the upstream call to the fake, and the request event.
//
//	go test -run '^$' -bench AllInOne -benchtime 2000x ./deployments/allinone/app
func BenchmarkAllInOneGenerateContent(b *testing.B) {
	fake := fakegemini.Start(b, fakegemini.Options{Keys: []string{key1, key2}})
	began := time.Now()
	a := start(b, b.TempDir(), fake.URL, io.Discard)
	startup := time.Since(began)
	defer stop(b, a)
	url := a.URL + "/v1beta/models/gemini-2.5-flash:generateContent"
	body := `{"contents":[{"parts":[{"text":"bench"}]}]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(body))
			req.Header.Set("x-goog-api-key", token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(startup.Seconds(), "start-s") // after the loop: ResetTimer drops reported metrics
}
