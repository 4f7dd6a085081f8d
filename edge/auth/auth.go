// Package auth checks client tokens on the public API. A token may come as
// ?key=, x-goog-api-key, x-api-key (Anthropic clients) or Authorization:
// Bearer on every route. Tokens are
// ALLOWED_TOKENS from the live settings plus the client tokens admind
// manages, which arrive through the gb_client_tokens KV bucket (Watch) as
// SHA-256 hashes. The admin password (AUTH_TOKEN) is never a client token:
// edge only ever sees its hash, and it cannot be in either set, because
// config.LoadSettings drops it from the environment's ALLOWED_TOKENS and
// admind refuses it on every path that sets a client token or the password.
// Tokens are never forwarded upstream: the relay builds upstream requests
// from scratch and sends only the upstream key.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
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
	// Models is a managed token's model allow-list (empty: every model);
	// models.Allowed applies it wherever a route names a model.
	Models []string
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

	// watching is set by Watch; loaded closes once the bucket's contents
	// were first applied. Until then an unknown token may be a managed one.
	watching atomic.Bool
	loaded   chan struct{}
	loadOnce sync.Once
}

// LoadWait bounds how long a request with an unknown token waits for a new
// replica's first load of the managed tokens before it is refused.
const LoadWait = 3 * time.Second

// New follows ALLOWED_TOKENS in the live settings.
func New(s *natsx.Settings) *Auth {
	a := &Auth{now: time.Now, loaded: make(chan struct{})}
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
		mt := managedToken{Client: Client{TokenID: t.ID, TokenHint: t.Hint, Name: t.Name, Models: lower(t.Models)}, disabled: t.Disabled}
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

// lower normalises an allow-list as models.Allowed compares it.
func lower(models []string) []string {
	var out []string
	for _, m := range models {
		if m = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(m), "models/")); m != "" {
			out = append(out, m)
		}
	}
	return out
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
// tried: ?key=, x-goog-api-key, x-api-key (Anthropic SDKs), Authorization: Bearer.
func Tokens(r *http.Request) []string {
	var out []string
	eachToken(r, func(t string) bool { out = append(out, t); return false })
	return out
}

// eachToken calls f with each candidate credential, in Tokens' order, until
// f returns true. Header names are given canonical, so no lookup allocates.
func eachToken(r *http.Request, f func(string) bool) {
	if r.URL.RawQuery != "" {
		if k := r.URL.Query().Get("key"); k != "" && f(k) {
			return
		}
	}
	if k := r.Header.Get("X-Goog-Api-Key"); k != "" && f(k) {
		return
	}
	if k := r.Header.Get("X-Api-Key"); k != "" && f(k) {
		return
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		f(strings.TrimSpace(h[7:]))
	}
}

// Authenticate finds the first valid credential of a request. On a replica
// that has not yet loaded admind's tokens, a request whose credentials all
// fail waits (at most LoadWait) for that load and is checked again, so a
// freshly started edge does not refuse a valid managed token.
func (a *Auth) Authenticate(r *http.Request) (Client, bool, bool) {
	present := false
	for attempt := 0; attempt < 2; attempt++ {
		var c Client
		ok := false
		eachToken(r, func(t string) bool {
			present = true
			c, ok = a.Check(t)
			return ok
		})
		if ok {
			return c, true, true
		}
		if !present || !a.awaitLoad(r.Context()) {
			break
		}
	}
	return Client{}, false, present
}

// awaitLoad waits for the first load of managed tokens when one is pending;
// it reports whether it waited (so a second check is worth it).
func (a *Auth) awaitLoad(ctx context.Context) bool {
	if !a.watching.Load() {
		return false
	}
	select {
	case <-a.loaded:
		return false
	default:
	}
	t := time.NewTimer(LoadWait)
	defer t.Stop()
	select {
	case <-a.loaded:
	case <-t.C:
	case <-ctx.Done():
	}
	return true
}

func (a *Auth) markLoaded() { a.loadOnce.Do(func() { close(a.loaded) }) }

const clientKey = "gb.client"

// Set stores the authenticated client for handlers.
func Set(c *gin.Context, cl Client) { c.Set(clientKey, cl) }

// From returns the client the auth check stored.
func From(c *gin.Context) Client {
	v, _ := c.Get(clientKey)
	cl, _ := v.(Client)
	return cl
}
