// Package auth checks client tokens on the public API. A token may come as
// ?key=, x-goog-api-key or Authorization: Bearer on every route. Tokens are
// ALLOWED_TOKENS from the live settings plus the client tokens admind
// manages (SetManaged). The admin password (AUTH_TOKEN) is never a client
// token. Tokens are never forwarded upstream: the relay builds upstream
// requests from scratch and sends only the upstream key.
package auth

import (
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/redact"
)

// Client is an authenticated caller. It never holds the token itself.
type Client struct {
	TokenID   string // redact.ID of the token
	TokenHint string // masked token
}

type tokenSet struct {
	allowed map[string]Client // from ALLOWED_TOKENS
	managed map[string]Client // from admind
}

// Auth holds the current token set; lookups are one atomic load and a map
// read.
type Auth struct {
	cur      atomic.Pointer[tokenSet]
	settings *natsx.Settings
}

// New follows ALLOWED_TOKENS in the live settings.
func New(s *natsx.Settings) *Auth {
	a := &Auth{settings: s}
	a.cur.Store(&tokenSet{allowed: index(s.Get().AllowedTokens), managed: map[string]Client{}})
	s.OnChange(func(next config.Settings) { a.swap(func(t *tokenSet) { t.allowed = index(next.AllowedTokens) }) })
	return a
}

// SetManaged replaces the admind-managed client tokens (plain tokens as
// admind hands them to edge over NATS).
func (a *Auth) SetManaged(tokens []string) {
	a.swap(func(t *tokenSet) { t.managed = index(tokens) })
}

func (a *Auth) swap(f func(*tokenSet)) {
	for {
		old := a.cur.Load()
		next := *old
		f(&next)
		if a.cur.CompareAndSwap(old, &next) {
			return
		}
	}
}

func index(tokens []string) map[string]Client {
	m := make(map[string]Client, len(tokens))
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			m[t] = Client{TokenID: redact.ID(t), TokenHint: redact.Hint(t)}
		}
	}
	return m
}

// Check returns the client of a token.
func (a *Auth) Check(token string) (Client, bool) {
	if token == "" {
		return Client{}, false
	}
	ts := a.cur.Load()
	if c, ok := ts.allowed[token]; ok {
		return c, true
	}
	c, ok := ts.managed[token]
	return c, ok
}

// Tokens lists the candidate credentials of a request in the order they are
// tried: ?key=, x-goog-api-key, Authorization: Bearer.
func Tokens(r *http.Request) []string {
	var out []string
	if r.URL.RawQuery != "" {
		if k := r.URL.Query().Get("key"); k != "" {
			out = append(out, k)
		}
	}
	if k := r.Header.Get("x-goog-api-key"); k != "" {
		out = append(out, k)
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		out = append(out, strings.TrimSpace(h[7:]))
	}
	return out
}

// Authenticate finds the first valid credential of a request.
func (a *Auth) Authenticate(r *http.Request) (Client, bool, bool) {
	toks := Tokens(r)
	for _, t := range toks {
		if c, ok := a.Check(t); ok {
			return c, true, true
		}
	}
	return Client{}, false, len(toks) > 0
}

const clientKey = "gb.client"

// Set stores the authenticated client for handlers.
func Set(c *gin.Context, cl Client) { c.Set(clientKey, cl) }

// From returns the client the auth check stored.
func From(c *gin.Context) Client {
	v, _ := c.Get(clientKey)
	cl, _ := v.(Client)
	return cl
}
