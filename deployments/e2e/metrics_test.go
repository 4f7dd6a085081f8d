package e2e_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gemini-balance-go/deployments/e2e/stack"
)

// /metrics is not on the public port of any service: a client holding only
// the public address sees nothing, the operator scrapes METRICS_ADDR.
func TestMetricsAreServedOnlyOnMetricsAddr(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1})
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for name, series := range map[string]string{"edge-0": "gb_edge_", "admind": "go_goroutines", "keyd-0": "go_goroutines", "logd": "go_goroutines", "schedulerd": "go_goroutines"} {
		if code, body := get(s.URL(name) + "/metrics"); code == http.StatusOK || strings.Contains(body, "go_goroutines") {
			t.Errorf("%s serves /metrics on its port %s: %d", name, s.URL(name), code)
		}
		code, body := get(s.MetricsURL(name))
		if code != http.StatusOK || !strings.Contains(body, series) {
			t.Errorf("%s on METRICS_ADDR: %d, want 200 with %s…", name, code, series)
		}
	}
}
