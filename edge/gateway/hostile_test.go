package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestTwentyMegabytesOfOpenBracketsAnswer400 is the crash from issue 9: a
// 20 MB body of "[" sent to generateContent overflowed the goroutine stack
// in a recursive JSON validator and took the whole process down.
func TestTwentyMegabytesOfOpenBracketsAnswer400(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", strings.Repeat("[", 20<<20))
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	var ge struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &ge); err != nil || ge.Error.Code != 400 || ge.Error.Status != "INVALID_ARGUMENT" || !strings.Contains(ge.Error.Message, "nest") {
		t.Fatalf("not a Gemini 400 about nesting: %s", b)
	}
}
