package boot

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The healthcheck subcommand exits 0 only while the process on PORT answers
// /readyz with 200: a not-ready or absent process is unhealthy.
func TestHealthcheckProbesReadyzOnPort(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready {
			http.Error(w, `{"ready":false,"checks":{"nats":"not connected"}}`, http.StatusServiceUnavailable)
		}
	}))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	t.Setenv("PORT", port)
	var out strings.Builder
	if code := Healthcheck(&out); code != 0 {
		t.Fatalf("ready process: exit %d (%s)", code, out.String())
	}
	ready = false
	out.Reset()
	if code := Healthcheck(&out); code != 1 || !strings.Contains(out.String(), "503") || !strings.Contains(out.String(), "not connected") {
		t.Errorf("not-ready process: exit %d, %q; want 1 and the reason", code, out.String())
	}
	srv.Close()
	out.Reset()
	if code := Healthcheck(&out); code != 1 || out.Len() == 0 {
		t.Errorf("no process: exit %d, %q", code, out.String())
	}
	t.Setenv("PORT", "none")
	out.Reset()
	if code := Healthcheck(&out); code != 1 || !strings.Contains(out.String(), "PORT") {
		t.Errorf("bad PORT: exit %d, %q; want the variable named", code, out.String())
	}
}
