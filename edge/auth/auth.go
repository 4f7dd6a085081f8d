// Package auth checks client tokens on the public API. A token may come as
// ?key=, x-goog-api-key or Authorization: Bearer on every route. Tokens are
// ALLOWED_TOKENS from the live settings plus the client tokens admind
// manages, which arrive through the gb_client_tokens KV bucket (Watch) as
// SHA-256 hashes. The admin password (AUTH_TOKEN) is never a client token.
// Tokens are never forwarded upstream: the relay builds upstream requests
// from scratch and sends only the upstream key.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/redact"
)

// Client is an authenticated caller. It never holds the token itself.
type Client struct {
	TokenID   string // redact.ID of the token, for ALLOWED_TOKENS and managed tokens alike
	TokenHint string // masked token
	Name      string // the admin's name for a managed token; empty for ALLOWED_TOKENS
}

type managedToken struct {
	Client
	disabled bool
	expires  time.Time // zero: never
}

// Both sets are keyed by the SHA-256 of the token: a presented token is
// hashed once and looked up, so no comparison ever runs over the secret
// itself, and admind never has to hand edge a plain token.
type tokenSet struct {
	allowed map[[sha256.Size]byte]Client       // from ALLOWED_TOKENS
	managed map[[sha256.Size]byte]managedToken // from admind
}

// Auth holds the current token set; lookups are one atomic load, one
// SHA-256 and a map read.
type Auth struct {
	cur atomic.Pointer[tokenSet]
	now func() time.Time
}

// New follows ALLOWED_TOKENS in the live settings.
func New(s *natsx.Settings) *Auth {
	a := &Auth{now: time.Now}
	a.cur.Store(&tokenSet{allowed: index(s.Get().AllowedTokens), managed: map[[sha256.Size]byte]managedToken{}})
	s.OnChange(func(next config.Settings) { a.swap(func(t *tokenSet) { t.allowed = index(next.AllowedTokens) }) })
	return a
}

// SetManaged replaces the admind-managed client tokens with the given
// entries of the gb_client_tokens bucket. Entries whose hash is malformed
// are skipped and returned, so the caller can log them.
func (a *Auth) SetManaged(tokens []bus.ClientToken) (skipped []string) {
	m := make(map[[sha256.Size]byte]managedToken, len(tokens))
	for _, t := range tokens {
		var sum [sha256.Size]byte
		if n, err := hex.Decode(sum[:], []byte(t.SHA256)); err != nil || n != sha256.Size || len(t.SHA256) != 2*sha256.Size {
			skipped = append(skipped, t.ID)
			continue
		}
		mt := managedToken{Client: Client{TokenID: t.ID, TokenHint: t.Hint, Name: t.Name}, disabled: t.Disabled}
		if t.ExpiresAt != nil {
			mt.expires = *t.ExpiresAt
		}
		m[sum] = mt
	}
	a.swap(func(t *tokenSet) { t.managed = m })
	return skipped
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

func index(tokens []string) map[[sha256.Size]byte]Client {
	m := make(map[[sha256.Size]byte]Client, len(tokens))
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			m[sha256.Sum256([]byte(t))] = Client{TokenID: redact.ID(t), TokenHint: redact.Hint(t)}
		}
	}
	return m
}

// Check returns the client of a token. A managed token that admind
// disabled, or whose expiry has passed, is refused.
func (a *Auth) Check(token string) (Client, bool) {
	if token == "" {
		return Client{}, false
	}
	ts := a.cur.Load()
	sum := sha256.Sum256([]byte(token))
	if c, ok := ts.allowed[sum]; ok {
		return c, true
	}
	if len(ts.managed) == 0 {
		return Client{}, false
	}
	m, ok := ts.managed[sum]
	if !ok || m.disabled || (!m.expires.IsZero() && !a.now().Before(m.expires)) {
		return Client{}, false
	}
	return m.Client, true
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
