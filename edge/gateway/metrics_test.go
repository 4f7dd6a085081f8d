package gateway

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The cached metric children count exactly what WithLabelValues per request
// counted: every request under its route and status, from any goroutine.
func TestRequestMetricsCountByRouteAndStatus(t *testing.T) {
	m := requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gb_edge_requests_total"}, []string{"route", "code"}),
		latency:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gb_edge_request_seconds"}, []string{"route"}),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.requests, m.latency)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				route := []string{"gemini.generateContent", "openai.chat"}[(i+w)%2]
				m.observe(route, []int{200, 429, 502}[i%3], 0.01)
			}
		}()
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts, observed := map[string]float64{}, map[string]uint64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range mt.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			switch mf.GetName() {
			case "gb_edge_requests_total":
				counts[l["route"]+" "+l["code"]] = mt.GetCounter().GetValue()
			case "gb_edge_request_seconds":
				observed[l["route"]] = mt.GetHistogram().GetSampleCount()
			}
		}
	}
	if len(counts) != 6 {
		t.Fatalf("series %v", counts)
	}
	for k, v := range counts {
		if v != 200 {
			t.Errorf("%s: %v requests, want 200", k, v)
		}
	}
	if observed["gemini.generateContent"] != 600 || observed["openai.chat"] != 600 {
		t.Errorf("latency samples %v", observed)
	}
}
