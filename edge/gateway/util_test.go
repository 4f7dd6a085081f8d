package gateway_test

import (
	"io"
	"strings"
	"testing"
	"time"
)

// eventually polls cond until it holds; asynchronous effects (fire-and-forget
// reports, published events) are checked this way, with a generous bound
// that only a broken system reaches.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
