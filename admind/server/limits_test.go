package server_test

import (
	"strings"
	"testing"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/shared/guard"
)

func TestUnauthenticatedRoutesReadAFewKiBAndNoDeepJSON(t *testing.T) {
	nc, db := infra(t)
	sd := seed()
	sd.AuthToken = ""
	e := start(t, nc, db, sd)
	pad := func(n int) string { // a JSON body of exactly n bytes
		head := `{"password":"new-admin-pass","x":"`
		return head + strings.Repeat("a", n-len(head)-2) + `"}`
	}
	for _, path := range []string{"/auth", "/api/setup"} {
		if code, body, _ := e.do(t, "POST", path, "", pad(server.MaxUnauthenticatedBody+1)); code != 413 || !strings.Contains(body, `"error"`) {
			t.Errorf("%s one byte over the cap: %d %s", path, code, body)
		}
		deep := strings.Repeat(`{"a":`, guard.MaxDepth+1) + "1" + strings.Repeat("}", guard.MaxDepth+1)
		if code, body, _ := e.do(t, "POST", path, "", deep); code != 400 || !strings.Contains(body, "nested") {
			t.Errorf("%s deep JSON: %d %s", path, code, body)
		}
	}
	// At the cap the body is read as before: setup works.
	if code, body, _ := e.do(t, "POST", "/api/setup", "", pad(server.MaxUnauthenticatedBody)); code != 200 {
		t.Fatalf("setup with a body at the cap: %d %s", code, body)
	}
	if code, body, _ := e.do(t, "POST", "/auth", "", `{"password":"new-admin-pass"}`); code != 200 {
		t.Fatalf("login after setup: %d %s", code, body)
	}
}
