package gateway_test

import (
	"io"
	"strings"
	"testing"

	"github.com/gemini-balance-go/testkit/wait"
)

// eventually waits for an asynchronous effect (fire-and-forget reports,
// published events) with wait.For.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	wait.For(t, "condition", cond)
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
