package auth_test

import (
	"testing"
	"time"

	"github.com/gemini-balance-go/admind/auth"
)

func TestSessionExpiresAndDiesWithAPasswordChange(t *testing.T) {
	pw := "first-password"
	now := time.Unix(1_800_000_000, 0)
	a := &auth.Auth{
		Password: func() string { return pw },
		Lifetime: func() time.Duration { return time.Hour },
		Now:      func() time.Time { return now },
	}
	s, _ := a.NewSession()
	if !a.CheckSession(s) {
		t.Fatal("fresh session rejected")
	}
	if a.CheckSession(s[:len(s)-1] + "0") {
		t.Fatal("tampered session accepted")
	}
	now = now.Add(2 * time.Hour)
	if a.CheckSession(s) {
		t.Fatal("expired session accepted")
	}
	now = now.Add(-2 * time.Hour)
	pw = "second-password"
	if a.CheckSession(s) {
		t.Fatal("session survived a password change")
	}
	pw = ""
	if a.CheckPassword("") {
		t.Fatal("empty password accepted while none is set")
	}
}
