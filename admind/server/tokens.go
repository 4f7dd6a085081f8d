package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/tokens"
)

// Client tokens: created at random, shown in full once (in the creation
// answer), afterwards only by id, name and masked hint.

func (s *Server) listTokens(c *gin.Context) {
	list, err := s.tokens.List(c.Request.Context())
	if err != nil {
		writeTokenError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"tokens": list})
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
		c.JSON(http.StatusBadRequest, gin.H{"error": "want a JSON object {\"name\": ..., \"expires_at\": RFC 3339 time or absent}: " + err.Error()})
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
	var req struct {
		Disabled *bool `json:"disabled"`
	}
	if err := json.NewDecoder(io.LimitReader(c.Request.Body, 64<<10)).Decode(&req); err != nil || req.Disabled == nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "want a JSON object {\"disabled\": true|false}"})
		return
	}
	t, err := s.tokens.SetDisabled(c.Request.Context(), c.Param("id"), *req.Disabled)
	if err != nil {
		writeTokenError(c, err)
		return
	}
	s.d.Log.Info("client token updated", "token_id", t.ID, "disabled", t.Disabled)
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
