package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/auth"
	"github.com/gemini-balance-go/admind/discovery"
	"github.com/gemini-balance-go/admind/settings"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/keyapi"
)

// Login, setup, session state and the admin password. The password itself
// lives only as a hash (admind/auth); these handlers make sure it can never
// also be a client token, on every path that sets either.

// healthReport is GET /api/health: the services, plus whether secrets are
// encrypted at rest.
type healthReport struct {
	discovery.Report
	Encryption bool     `json:"encryption"`
	Warnings   []string `json:"warnings,omitempty"`
}

// NoEncryptionWarning is logged at start and shown by GET /api/health
// when ENCRYPTION_KEY is not set.
const NoEncryptionWarning = "ENCRYPTION_KEY is not set: API keys are stored in MongoDB in clear and proxies with credentials are refused; set ENCRYPTION_KEY (a long random passphrase, the same for every service) to encrypt them"

func (s *Server) warnings() []string {
	if s.box.Enabled() {
		return nil
	}
	return []string{NoEncryptionWarning}
}

// credentialFrom reads the password from a JSON body or a form, using
// gemini-balance's field name auth_token (password is accepted too).
func credentialFrom(c *gin.Context) string {
	var body struct {
		AuthToken string `json:"auth_token" form:"auth_token"`
		Password  string `json:"password" form:"password"`
	}
	if strings.HasPrefix(c.ContentType(), "application/json") {
		_ = c.ShouldBindJSON(&body)
	} else {
		_ = c.ShouldBind(&body)
	}
	if body.AuthToken != "" {
		return strings.TrimSpace(body.AuthToken)
	}
	return strings.TrimSpace(body.Password)
}

func (s *Server) login(c *gin.Context) { s.auth.Login(c, credentialFrom(c)) }

func (s *Server) session(c *gin.Context) {
	st, err := s.auth.State(c.Request)
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, st)
}

// setup sets the first admin password. The admin document is created by a
// conditional insert, so of two racing setups, on any replicas, one wins and
// the other gets 409.
func (s *Server) setup(c *gin.Context) {
	ctx := c.Request.Context()
	configured, err := s.auth.Configured(ctx)
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
		return
	}
	if configured {
		c.JSON(http.StatusConflict, gin.H{"error": auth.ErrAdminExists.Error()})
		return
	}
	pw := credentialFrom(c)
	if !s.acceptablePassword(c, pw, s.d.Settings.Get().AllowedTokens) {
		return
	}
	adm, err := s.auth.Setup(ctx, pw)
	if errors.Is(err, auth.ErrAdminExists) {
		c.JSON(http.StatusConflict, gin.H{"error": err.Error()})
		return
	}
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
		return
	}
	s.d.Log.Info("admin password set by first-run setup", "client", s.auth.Net.ClientIP(c.Request))
	id := s.auth.SetSession(c, adm)
	c.JSON(http.StatusOK, gin.H{"ok": true, "expires_at": id.Expires})
}

// acceptablePassword answers 400 (and returns false) unless pw may be the
// admin password: long enough and, trimmed, none of the client tokens.
func (s *Server) acceptablePassword(c *gin.Context, pw string, allowed []string) bool {
	pw = strings.TrimSpace(pw)
	if len(pw) < auth.MinPasswordLen {
		c.JSON(http.StatusBadRequest, gin.H{"error": fmt.Sprintf("AUTH_TOKEN: the admin password needs at least %d characters", auth.MinPasswordLen)})
		return false
	}
	if slices.ContainsFunc(allowed, func(t string) bool { return strings.TrimSpace(t) == pw }) {
		c.JSON(http.StatusBadRequest, gin.H{"error": "AUTH_TOKEN: the admin password must not be a client token in ALLOWED_TOKENS"})
		return false
	}
	return !s.refuseManagedPassword(c, pw)
}

// refuseAdminPasswordAsClientToken answers 400 (and returns true) when an
// ALLOWED_TOKENS entry new in next is, trimmed, the admin password. Only new
// entries are hashed: the old ones passed this check when they were added.
func (s *Server) refuseAdminPasswordAsClientToken(c *gin.Context, cur, next []string) bool {
	for _, t := range next {
		if slices.Contains(cur, t) || len(strings.TrimSpace(t)) < auth.MinPasswordLen {
			continue // checked when added, or too short to be the password
		}
		is, err := s.auth.IsPassword(c.Request.Context(), t)
		if err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
			return true
		}
		if is {
			c.JSON(http.StatusBadRequest, gin.H{"error": "ALLOWED_TOKENS: the admin password must not be a client token"})
			return true
		}
	}
	return false
}

// passwordChange returns the new admin password a PUT /api/config body
// sets: "" when AUTH_TOKEN is absent or the unchanged placeholder.
func passwordChange(body []byte) (string, error) {
	var fields struct {
		AuthToken *string `json:"AUTH_TOKEN"`
	}
	_ = json.Unmarshal(body, &fields) // Merge already refused a body that is not an object
	switch {
	case fields.AuthToken == nil || *fields.AuthToken == settings.PasswordPlaceholder:
		return "", nil
	case strings.TrimSpace(*fields.AuthToken) == "":
		return "", errors.New("AUTH_TOKEN: the admin password cannot be removed")
	}
	return strings.TrimSpace(*fields.AuthToken), nil
}

// changePassword stores the new hash, which revokes every session, and gives
// the admin who changed it a fresh session when they came with a cookie.
func (s *Server) changePassword(c *gin.Context, pw string) bool {
	adm, err := s.auth.ChangePassword(c.Request.Context(), pw)
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
		return false
	}
	s.d.Log.Warn("admin password changed; every session revoked", "client", s.auth.Net.ClientIP(c.Request))
	if auth.From(c).Cookie {
		s.auth.SetSession(c, adm)
	}
	return true
}

// importKeys hands keys set through API_KEYS, VERTEX_API_KEYS or PAID_KEY to
// keyd, which stores them (encrypted with ENCRYPTION_KEY); the settings
// document never keeps them. Masked entries (from GET /api/config) are
// skipped. It answers and returns false when keyd did not take them.
func (s *Server) importKeys(c *gin.Context, next config.Settings) bool {
	fresh := func(list []string) []string {
		var out []string
		for _, k := range list {
			if k = strings.TrimSpace(k); k != "" && !strings.Contains(k, "…") {
				out = append(out, k)
			}
		}
		return out
	}
	for _, batch := range []keyapi.AddRequest{
		{Keys: fresh(next.APIKeys), Kind: bus.KindGemini},
		{Keys: fresh(next.VertexAPIKeys), Kind: bus.KindVertex},
		{Keys: fresh([]string{next.PaidKey}), Kind: bus.KindPaid},
	} {
		if len(batch.Keys) == 0 {
			continue
		}
		var rep keyapi.AddReply
		if err := s.keyd.Call(c.Request.Context(), bus.SubjectKeyAdd, batch, &rep); err != nil {
			(&backends{s: s}).fail(c, err)
			return false
		}
		if rep.Error != "" {
			c.JSON(replyStatus(rep.Error), gin.H{"error": "keyd: " + rep.Error})
			return false
		}
		s.d.Log.Info("keys from settings handed to keyd", "kind", batch.Kind, "added", len(rep.Added), "duplicates", len(rep.Duplicates))
	}
	return true
}
