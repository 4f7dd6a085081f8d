package obs

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gemini-balance-go/shared/redact"
)

func TestLogLinesNeverCarryAKeyOrToken(t *testing.T) {
	const key = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
	const tok = "my-allowed-client-token"
	redact.Default.SetKnown([]string{tok})
	t.Cleanup(func() { redact.Default.SetKnown(nil) })
	var buf bytes.Buffer
	log := NewLogger(&buf, "test")
	log.Error("upstream said Consumer 'api_key:"+key+"' suspended", "body", `{"message":"`+key+`"}`,
		"err", errors.New("token "+tok+" rejected"), "raw", []byte(key))
	out := buf.String()
	if strings.Contains(out, key) || strings.Contains(out, tok) {
		t.Fatalf("secret in log line: %s", out)
	}
	if !strings.Contains(out, "AIzaSy…stuv") {
		t.Fatalf("hint missing: %s", out)
	}
}
