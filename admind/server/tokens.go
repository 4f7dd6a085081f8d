package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/tokens"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/logapi"
)

// Client tokens: created at random, shown in full once (in the creation
// answer), afterwards only by id, name and masked hint.

// listedToken is a token in GET /api/tokens, with its usage from logd.
type listedToken struct {
	tokens.Token
	Usage *logapi.TokenUsage `json:"usage,omitempty"`
}

func (s *Server) listTokens(c *gin.Context) {
	list, err := s.tokens.List(c.Request.Context())
	if err != nil {
		writeTokenError(c, err)
		return
	}
	out := make([]listedToken, len(list))
	for i, t := range list {
		out[i].Token = t
	}
	// Usage is a courtesy: without logd the tokens are still listed.
	ans := gin.H{"tokens": out}
	if len(list) > 0 {
		var rep logapi.TokenUsageReply
		q := logapi.TokenUsageQuery{}
		if len(list) == 1 {
			q.TokenIDs = []string{list[0].ID}
		}
		if err := s.logd.Call(c.Request.Context(), bus.SubjectLogTokenUsage, q, &rep); err != nil {
			ans["usage_error"] = err.Error()
		} else {
			for i := range out {
				u := rep.Tokens[out[i].ID] // zero usage when the token has no traffic
				out[i].Usage = &u
			}
		}
	}
	c.JSON(http.StatusOK, ans)
}

// createdToken is the one answer that carries a token in full.
type createdToken struct {
	tokens.Token
	Secret string `json:"token"`
}

func (s *Server) createToken(c *gin.Context) {
	var req tokens.CreateRequest
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, 64<<10))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "want a JSON object {\"name\": ..., \"expires_at\": RFC 3339 time or absent, \"models\": [model names]}: " + err.Error()})
		return
	}
	t, secret, err := s.tokens.Create(c.Request.Context(), req, s.d.Settings.Get().AllowedTokens)
	if err != nil {
		writeTokenError(c, err)
		return
	}
	// A random 238-bit token cannot practically equal the admin password;
	// checking the hash makes it a guarantee, at one hash per creation.
	if is, err := s.auth.IsPassword(c.Request.Context(), secret); err != nil || is {
		_ = s.tokens.Delete(context.WithoutCancel(c.Request.Context()), t.ID)
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "client token not created: could not check it against the admin password; try again"})
		return
	}
	s.d.Log.Info("client token created", "token_id", t.ID, "hint", t.Hint, "name", t.Name)
	c.Header("Cache-Control", "no-store") // the only answer that carries the token
	c.JSON(http.StatusCreated, createdToken{Token: t, Secret: secret})
}

func (s *Server) updateToken(c *gin.Context) {
	var req tokens.Update
	if err := json.NewDecoder(io.LimitReader(c.Request.Body, 64<<10)).Decode(&req); err != nil || (req.Disabled == nil && req.Models == nil) {
		c.JSON(http.StatusBadRequest, gin.H{"error": "want a JSON object {\"disabled\": true|false, \"models\": [model names]} with at least one of them"})
		return
	}
	t, err := s.tokens.Update(c.Request.Context(), c.Param("id"), req)
	if err != nil {
		writeTokenError(c, err)
		return
	}
	s.d.Log.Info("client token updated", "token_id", t.ID, "disabled", t.Disabled, "models", len(t.Models))
	c.JSON(http.StatusOK, t)
}

func (s *Server) deleteToken(c *gin.Context) {
	id := c.Param("id")
	if err := s.tokens.Delete(c.Request.Context(), id); err != nil {
		writeTokenError(c, err)
		return
	}
	s.d.Log.Info("client token revoked", "token_id", id)
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

// refuseManagedPassword answers and returns true when pw, a prospective admin
// password, is one of the managed client tokens (or cannot be checked).
func (s *Server) refuseManagedPassword(c *gin.Context, pw string) bool {
	is, err := s.tokens.Secret(c.Request.Context(), pw)
	switch {
	case err != nil:
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
	case is:
		c.JSON(http.StatusBadRequest, gin.H{"error": "AUTH_TOKEN: the admin password must not be a client token"})
	default:
		return false
	}
	return true
}

func writeTokenError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, tokens.ErrInvalid):
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
	case errors.Is(err, tokens.ErrNotFound):
		c.JSON(http.StatusNotFound, gin.H{"error": err.Error()})
	default:
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
	}
}
