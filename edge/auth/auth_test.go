package auth

import (
	"net/http"
	"testing"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/redact"
)

func TestTokensFollowLiveSettingsAndTheAdminPasswordIsNeverAClientToken(t *testing.T) {
	st := config.Defaults()
	st.AllowedTokens = []string{"sk-one"}
	st.AuthToken = "admin-password"
	live := natsx.NewSettings(st)
	a := New(live)
	if c, ok := a.Check("sk-one"); !ok || c.TokenID != redact.ID("sk-one") || c.TokenHint == "sk-one" {
		t.Fatalf("sk-one: %v %+v", ok, c)
	}
	if _, ok := a.Check("admin-password"); ok {
		t.Fatal("AUTH_TOKEN accepted as a client token")
	}
	next := st
	next.AllowedTokens = []string{"sk-two"}
	live.Set(next)
	if _, ok := a.Check("sk-one"); ok {
		t.Error("removed token still accepted")
	}
	if _, ok := a.Check("sk-two"); !ok {
		t.Error("added token not accepted")
	}
	a.SetManaged([]string{"sk-managed"})
	if _, ok := a.Check("sk-managed"); !ok {
		t.Error("admind-managed token not accepted")
	}
}

func TestCredentialsAreReadFromKeyParamHeaderAndBearer(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "http://x/v1beta/models?key=q", nil)
	r.Header.Set("x-goog-api-key", "h")
	r.Header.Set("Authorization", "Bearer b")
	got := Tokens(r)
	if len(got) != 3 || got[0] != "q" || got[1] != "h" || got[2] != "b" {
		t.Fatalf("%v", got)
	}
}
