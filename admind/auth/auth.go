// Package auth guards the admin API.
//
// The admin password is stored only as an argon2id hash (Store, MongoDB
// collection "admins"); it is never kept in the settings document. A login
// (POST /auth) turns it into a session cookie signed with a random secret
// stored beside the hash, so every admind replica accepts it. A session
// carries the admin's generation: a password change bumps it and revokes
// every session; a logout revokes its own session by id. Scripts may send the
// password as a Bearer header instead; a verified password is remembered in
// memory by its SHA-256 so the slow hash runs once, not on every call.
// Failed password attempts are throttled per client address across replicas
// (Limiter), and cookie-authenticated state changes must come from the
// admin's own origin.
//
//	a := auth.New(auth.NewStore(db), auth.NewLimiter(db), lifetime, auth.Network{Trusted: prefixes}, log)
//	r.POST("/auth", func(c *gin.Context) { a.Login(c, password) })
//	r.POST("/auth/logout", a.Logout)
//	api.Use(a.Require())
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// CookieName is the session cookie, named as in gemini-balance.
const CookieName = "auth_token"

var (
	// ErrSetupNeeded: no admin exists yet.
	ErrSetupNeeded = errors.New("no admin password yet: POST /api/setup to set one")
	// ErrUnauthorized: no valid credential.
	ErrUnauthorized = errors.New("admin login required")
)

// ThrottledError: the client address used up its failed logins.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins from this address: try again in %d minutes", int(math.Ceil(e.RetryAfter.Minutes())))
}

// Identity is who a request authenticated as.
type Identity struct {
	// Cookie is true when the credential came from the session cookie (a
	// browser), which is what cross-site requests can ride on.
	Cookie bool
	// SessionID and Expires are set for a session (cookie or Bearer session).
	SessionID string
	Expires   time.Time
}

// Auth checks admin credentials against the stored admin.
type Auth struct {
	Store    *Store
	Lifetime func() time.Duration // ADMIN_SESSION_EXPIRE, live
	Net      Network
	Limiter  *Limiter
	Log      *slog.Logger
	Now      func() time.Time

	verifySem chan struct{} // bounds concurrent argon2 runs (19 MiB each)
	mu        sync.Mutex
	verified  map[[sha256.Size]byte]string // SHA-256 of a verified password → the hash it matched
}

// New returns an Auth with the login limiter.
func New(store *Store, limiter *Limiter, lifetime func() time.Duration, net Network, log *slog.Logger) *Auth {
	if log == nil {
		log = slog.Default()
	}
	return &Auth{Store: store, Lifetime: lifetime, Net: net, Limiter: limiter, Log: log, Now: time.Now,
		verifySem: make(chan struct{}, 2), verified: map[[sha256.Size]byte]string{}}
}

func (a *Auth) now() time.Time { return a.Now() }

// verify checks pw against hash, from memory when this exact password was
// verified against this exact hash before (a password change replaces the
// hash, so old entries stop matching at once on every replica).
func (a *Auth) verify(ctx context.Context, hash, pw string) (bool, error) {
	pw = strings.TrimSpace(pw)
	if hash == "" || pw == "" {
		return false, nil
	}
	key := sha256.Sum256([]byte(pw))
	a.mu.Lock()
	hit := a.verified[key] == hash
	a.mu.Unlock()
	if hit {
		return true, nil
	}
	select {
	case a.verifySem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	ok := VerifyPassword(hash, pw)
	<-a.verifySem
	if ok {
		a.mu.Lock()
		if len(a.verified) >= 16 { // only real passwords land here; bound it anyway
			clear(a.verified)
		}
		a.verified[key] = hash
		a.mu.Unlock()
	}
	return ok, nil
}

func (a *Auth) forget() {
	a.mu.Lock()
	clear(a.verified)
	a.mu.Unlock()
}

// Configured reports whether an admin exists.
func (a *Auth) Configured(ctx context.Context) (bool, error) {
	_, ok, err := a.Store.Load(ctx)
	return ok, err
}

// IsPassword reports whether candidate (trimmed) is the admin password. It
// guards every path by which a value becomes a client token.
func (a *Auth) IsPassword(ctx context.Context, candidate string) (bool, error) {
	adm, ok, err := a.Store.Load(ctx)
	if err != nil || !ok {
		return false, err
	}
	return a.verify(ctx, adm.Hash, candidate)
}

// Setup creates the first admin; ErrAdminExists when one exists.
func (a *Auth) Setup(ctx context.Context, pw string) (Admin, error) {
	return a.Store.Create(ctx, HashPassword(pw))
}

// ChangePassword stores a new hash and revokes every session.
func (a *Auth) ChangePassword(ctx context.Context, pw string) (Admin, error) {
	adm, err := a.Store.SetPassword(ctx, HashPassword(pw))
	a.forget()
	return adm, err
}

// Sessions: "<id>.<expiry unix>.<generation>.<HMAC-SHA256 hex>".

func sign(secret []byte, sid string, exp, gen int64) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "gb-admin-session|%s|%d|%d", sid, exp, gen)
	return hex.EncodeToString(m.Sum(nil))
}

func (a *Auth) newSession(adm Admin) (string, Identity) {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	sid := base64.RawURLEncoding.EncodeToString(id)
	exp := a.now().Add(a.Lifetime()).Truncate(time.Second)
	v := fmt.Sprintf("%s.%d.%d.%s", sid, exp.Unix(), adm.Generation, sign(adm.Secret, sid, exp.Unix(), adm.Generation))
	return v, Identity{SessionID: sid, Expires: exp}
}

// parseSession checks signature, expiry and generation; not revocation.
func (a *Auth) parseSession(adm Admin, v string) (Identity, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 4 || len(adm.Secret) == 0 {
		return Identity{}, false
	}
	exp, err1 := strconv.ParseInt(parts[1], 10, 64)
	gen, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || !hmac.Equal([]byte(parts[3]), []byte(sign(adm.Secret, parts[0], exp, gen))) {
		return Identity{}, false
	}
	if gen != adm.Generation || a.now().Unix() >= exp {
		return Identity{}, false
	}
	return Identity{SessionID: parts[0], Expires: time.Unix(exp, 0).UTC()}, true
}

func (a *Auth) checkSession(ctx context.Context, adm Admin, v string) (Identity, error) {
	id, ok := a.parseSession(adm, v)
	if !ok {
		return Identity{}, ErrUnauthorized
	}
	revoked, err := a.Store.Revoked(ctx, id.SessionID)
	if err != nil {
		return Identity{}, err
	}
	if revoked {
		return Identity{}, ErrUnauthorized
	}
	return id, nil
}

// checkPassword verifies a presented password under the address's throttle.
func (a *Auth) checkPassword(r *http.Request, adm Admin, pw string) error {
	ctx, addr := r.Context(), a.Net.ClientIP(r)
	wait, blocked, err := a.Limiter.Blocked(ctx, addr)
	if err != nil {
		return err
	}
	if blocked {
		return &ThrottledError{RetryAfter: wait}
	}
	ok, err := a.verify(ctx, adm.Hash, pw)
	if err != nil {
		return err
	}
	if !ok {
		a.Log.Warn("failed admin login", "client", addr)
		if err := a.Limiter.Fail(ctx, addr); err != nil {
			return err
		}
		return ErrUnauthorized
	}
	return a.Limiter.Reset(ctx, addr)
}

func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Identify checks the request's credential: a Bearer password or session,
// or the session cookie.
func (a *Auth) Identify(r *http.Request) (Identity, error) {
	ctx := r.Context()
	adm, ok, err := a.Store.Load(ctx)
	if err != nil {
		return Identity{}, err
	}
	if !ok {
		return Identity{}, ErrSetupNeeded
	}
	if b := bearer(r); b != "" {
		if id, err := a.checkSession(ctx, adm, b); err == nil || !errors.Is(err, ErrUnauthorized) {
			return id, err
		}
		return Identity{}, a.checkPassword(r, adm, b)
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		id, err := a.checkSession(ctx, adm, c.Value)
		id.Cookie = err == nil
		return id, err
	}
	return Identity{}, ErrUnauthorized
}

// WriteError answers an Identify error in the admin API's shape.
func WriteError(c *gin.Context, err error) {
	var th *ThrottledError
	switch {
	case errors.Is(err, ErrSetupNeeded):
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": err.Error(), "setup": true})
	case errors.Is(err, ErrUnauthorized):
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": err.Error()})
	case errors.As(err, &th):
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(th.RetryAfter.Seconds()))))
		c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"error": th.Error()})
	default:
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
	}
}

const identityKey = "gb.admin.identity"

// From returns the identity Require stored.
func From(c *gin.Context) Identity {
	v, _ := c.Get(identityKey)
	id, _ := v.(Identity)
	return id
}

// Require rejects requests without a valid admin credential, and
// cookie-authenticated state changes from another origin.
func (a *Auth) Require() gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := a.Identify(c.Request)
		if err != nil {
			WriteError(c, err)
			return
		}
		if id.Cookie && !a.SameOriginOrSafe(c.Request) {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "cross-origin request refused: a cookie-authenticated change must come from the admin UI's own origin (or use a Bearer header)"})
			return
		}
		c.Set(identityKey, id)
		c.Next()
	}
}

// SameOriginOrSafe accepts safe methods, and state changes whose Origin is
// this host (or, without Origin, whose Sec-Fetch-Site is same-origin). The
// scheme is not compared: behind a TLS-terminating proxy the browser's
// https origin reaches admind as http.
func (a *Auth) SameOriginOrSafe(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	host := r.Host
	if a.Net.FromTrustedProxy(r) && r.Header.Get("X-Forwarded-Host") != "" {
		host = strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Host"), ",")[0])
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// SetSession issues a fresh session cookie; Secure when the client came over
// TLS (directly or via a trusted proxy).
func (a *Auth) SetSession(c *gin.Context, adm Admin) Identity {
	v, id := a.newSession(adm)
	http.SetCookie(c.Writer, &http.Cookie{
		Name: CookieName, Value: v, Path: "/", Expires: id.Expires, MaxAge: int(id.Expires.Sub(a.now()).Seconds()),
		HttpOnly: true, Secure: a.Net.Secure(c.Request), SameSite: http.SameSiteLaxMode,
	})
	return id
}

// Login checks a password from the login form under the throttle and, when
// it is right, sets a session cookie.
func (a *Auth) Login(c *gin.Context, pw string) {
	adm, ok, err := a.Store.Load(c.Request.Context())
	if err == nil && !ok {
		err = ErrSetupNeeded
	}
	if err == nil {
		err = a.checkPassword(c.Request, adm, pw)
	}
	if errors.Is(err, ErrUnauthorized) {
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "wrong admin password"})
		return
	}
	if err != nil {
		WriteError(c, err)
		return
	}
	id := a.SetSession(c, adm)
	c.JSON(http.StatusOK, gin.H{"ok": true, "expires_at": id.Expires})
}

// Logout revokes the request's session (when it has a valid one) and clears
// the cookie. A cookie-authenticated logout from another origin is refused,
// so a foreign page cannot log the admin out.
func (a *Auth) Logout(c *gin.Context) {
	id, err := a.Identify(c.Request)
	if err == nil && id.Cookie && !a.SameOriginOrSafe(c.Request) {
		c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "cross-origin logout refused"})
		return
	}
	if err == nil && id.SessionID != "" {
		if err := a.Store.Revoke(c.Request.Context(), id.SessionID, id.Expires); err != nil {
			c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
			return
		}
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: a.Net.Secure(c.Request), SameSite: http.SameSiteLaxMode})
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

// SessionState is GET /api/session's answer.
type SessionState struct {
	SetupNeeded   bool       `json:"setup_needed"`
	Authenticated bool       `json:"authenticated"`
	ExpiresAt     *time.Time `json:"expires_at"`
}

// State tells the UI whether to show setup, login or the app.
func (a *Auth) State(r *http.Request) (SessionState, error) {
	id, err := a.Identify(r)
	switch {
	case err == nil:
		st := SessionState{Authenticated: true}
		if !id.Expires.IsZero() {
			st.ExpiresAt = &id.Expires
		}
		return st, nil
	case errors.Is(err, ErrSetupNeeded):
		return SessionState{SetupNeeded: true}, nil
	case errors.Is(err, ErrUnauthorized):
		return SessionState{}, nil
	}
	var th *ThrottledError
	if errors.As(err, &th) {
		return SessionState{}, nil
	}
	return SessionState{}, err
}
