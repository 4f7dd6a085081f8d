package gateway_test

import (
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/gateway"
)

// Every client route edge registers is Public, so the all-in-one sends it to
// edge rather than to admind; only the process's /healthz and /readyz stay
// with admind there.
func TestEveryClientRouteIsPublic(t *testing.T) {
	e := newEnv(t, envOptions{})
	engine, ok := e.gw.Handler().(*gin.Engine)
	if !ok {
		t.Fatalf("edge's handler is %T, not a gin engine", e.gw.Handler())
	}
	n := 0
	for _, r := range engine.Routes() {
		if r.Path == "/healthz" || r.Path == "/readyz" {
			if gateway.Public(r.Path) {
				t.Errorf("%s is Public; in the all-in-one it is admind's", r.Path)
			}
			continue
		}
		n++
		if !gateway.Public(r.Path) {
			t.Errorf("%s %s is not Public: the all-in-one would send it to admind", r.Method, r.Path)
		}
	}
	if n < 30 {
		t.Fatalf("only %d routes found; the walk is broken", n)
	}
	for _, p := range []string{"/", "/api/health", "/auth", "/v1betax", "/metrics"} {
		if gateway.Public(p) {
			t.Errorf("%s is Public; it is admind's", p)
		}
	}
}
