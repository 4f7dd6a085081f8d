// Package auth guards the admin API. The admin password is AUTH_TOKEN; a
// login turns it into a signed, expiring session cookie so the password
// itself is never stored in the browser. Sessions are stateless (HMAC keyed
// by AUTH_TOKEN), so any admind replica accepts them and changing AUTH_TOKEN
// logs every session out.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// CookieName is the session cookie, named as in gemini-balance.
const CookieName = "auth_token"

// Auth checks admin credentials against the live AUTH_TOKEN.
type Auth struct {
	// Password returns the current AUTH_TOKEN.
	Password func() string
	// Lifetime returns the current session lifetime (ADMIN_SESSION_EXPIRE).
	Lifetime func() time.Duration
	Now      func() time.Time
}

func (a *Auth) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Configured reports whether an admin password exists.
func (a *Auth) Configured() bool { return a.Password() != "" }

// CheckPassword compares in constant time.
func (a *Auth) CheckPassword(given string) bool {
	pw := a.Password()
	return pw != "" && subtle.ConstantTimeCompare([]byte(given), []byte(pw)) == 1
}

// NewSession returns a session value and its lifetime.
func (a *Auth) NewSession() (string, time.Duration) {
	life := a.Lifetime()
	exp := strconv.FormatInt(a.now().Add(life).Unix(), 10)
	return exp + "." + a.sign(exp), life
}

// CheckSession accepts an unexpired session signed with the current password.
func (a *Auth) CheckSession(v string) bool {
	exp, sig, ok := strings.Cut(v, ".")
	if !ok || a.Password() == "" {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || a.now().Unix() >= unix {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(a.sign(exp)))
}

func (a *Auth) sign(exp string) string {
	m := hmac.New(sha256.New, []byte(a.Password()))
	m.Write([]byte("gb-admin-session:" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// Credential returns what the request presents: a Bearer header or the cookie.
func Credential(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

// Allowed accepts the password itself (scripts) or a session (browsers).
func (a *Auth) Allowed(r *http.Request) bool {
	c := Credential(r)
	return c != "" && (a.CheckPassword(c) || a.CheckSession(c))
}

// Require rejects requests without a valid admin credential.
func (a *Auth) Require() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !a.Configured() {
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "no admin password yet: POST /api/setup to set one", "setup": true})
			return
		}
		if !a.Allowed(c.Request) {
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "admin login required"})
			return
		}
		c.Next()
	}
}

// SetCookie sets a fresh session cookie on the response.
func (a *Auth) SetCookie(w http.ResponseWriter, secure bool) {
	v, life := a.NewSession()
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: v, Path: "/", MaxAge: int(life.Seconds()),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
}

// ClearCookie ends the browser's session.
func ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}
