package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/logapi"
)

// A token's model allow-list is normalised, stored, listed and mirrored to
// the bucket edge reads; PATCH changes or lifts it.
func TestTokenModelAllowListReachesTheBucketAndCanBeChanged(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	code, out, _ := e.do(t, "POST", "/api/tokens", adminPW, `{"name":"ci","models":["models/Gemini-2.5-Flash"," gemini-2.5-pro ","gemini-2.5-flash"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, out)
	}
	var v struct {
		ID     string
		Models []string
	}
	_ = json.Unmarshal([]byte(out), &v)
	if strings.Join(v.Models, ",") != "gemini-2.5-flash,gemini-2.5-pro" {
		t.Fatalf("models = %v, want normalised and de-duplicated", v.Models)
	}
	waitFor(t, func() bool {
		ct, _, ok := e.bucketEntry(t, v.ID)
		return ok && strings.Join(ct.Models, ",") == "gemini-2.5-flash,gemini-2.5-pro"
	})
	code, out, _ = e.do(t, "PATCH", "/api/tokens/"+v.ID, adminPW, `{"models":[]}`)
	if code != 200 || !strings.Contains(out, `"models":[]`) || !strings.Contains(out, `"disabled":false`) {
		t.Fatalf("lift the restriction: %d %s", code, out)
	}
	waitFor(t, func() bool {
		ct, _, ok := e.bucketEntry(t, v.ID)
		return ok && len(ct.Models) == 0
	})
	for _, bad := range []string{`{"name":"x","models":["bad model!"]}`, `{"name":"x","models":[""]}`} {
		if code, out, _ := e.do(t, "POST", "/api/tokens", adminPW, bad); code != http.StatusBadRequest || !strings.Contains(out, "models") {
			t.Errorf("create %s: %d %s, want 400 naming models", bad, code, out)
		}
	}
	if code, out, _ := e.do(t, "PATCH", "/api/tokens/"+v.ID, adminPW, `{}`); code != http.StatusBadRequest {
		t.Errorf("empty patch: %d %s, want 400", code, out)
	}
	if code, _, _ := e.do(t, "PATCH", "/api/tokens/ffffffffffffffff", adminPW, `{"models":["a"]}`); code != http.StatusNotFound {
		t.Errorf("patch of an unknown token: %d, want 404", code)
	}
}

// The token list carries each token's usage from logd, and still lists the
// tokens (saying why usage is missing) when logd does not answer.
func TestTokenListCarriesUsageFromLogd(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	a := e.createToken(t, `{"name":"a"}`)
	b := e.createToken(t, `{"name":"b"}`)
	_, body, _ := e.do(t, "GET", "/api/tokens", adminPW, "")
	if !strings.Contains(body, `"usage_error"`) || !strings.Contains(body, a.ID) {
		t.Fatalf("list without logd: %s", body)
	}
	respondOn(t, nc, bus.SubjectLogTokenUsage, canned(logapi.TokenUsageReply{Tokens: map[string]logapi.TokenUsage{
		a.ID: {Requests24h: 3, Tokens24h: 30, Requests30d: 7, Tokens30d: 70},
	}}))
	var list struct {
		Tokens []struct {
			ID    string
			Usage *logapi.TokenUsage
		}
		UsageError string `json:"usage_error"`
	}
	e.getJSON(t, "/api/tokens", &list)
	if list.UsageError != "" || len(list.Tokens) != 2 {
		t.Fatalf("list = %+v", list)
	}
	for _, tk := range list.Tokens {
		switch {
		case tk.Usage == nil:
			t.Errorf("token %s has no usage", tk.ID)
		case tk.ID == a.ID && (tk.Usage.Requests24h != 3 || tk.Usage.Tokens30d != 70):
			t.Errorf("usage of a = %+v", tk.Usage)
		case tk.ID == b.ID && tk.Usage.Requests30d != 0:
			t.Errorf("usage of b (no traffic) = %+v", tk.Usage)
		}
	}
}
