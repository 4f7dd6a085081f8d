package server

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/auth"
	"github.com/gemini-balance-go/admind/discovery"
	"github.com/gemini-balance-go/admind/settings"
	"github.com/gemini-balance-go/shared/bus"
)

func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	if h := s.d.Health; h != nil {
		r.GET("/healthz", gin.WrapF(h.Healthz))
		r.GET("/readyz", gin.WrapF(h.Readyz))
	}
	if s.d.Metrics != nil {
		r.GET("/metrics", gin.WrapH(s.d.Metrics))
	}

	r.POST("/auth", s.login)
	r.POST("/auth/logout", func(c *gin.Context) { logout(c) })
	api := r.Group("/api")
	// Public: service names, replica counts and status only, no secrets.
	api.GET("/health", s.health)
	// Reachable only while no admin password exists.
	api.POST("/setup", s.setup)
	api.GET("/openapi.json", openAPI) // public: routes and shapes only

	admin := api.Group("", s.auth.Require())
	admin.GET("/config", s.getConfig)
	admin.PUT("/config", s.putConfig)
	admin.POST("/config/reset", s.resetConfig)
	admin.GET("/tokens", s.listTokens)
	admin.POST("/tokens", s.createToken)
	admin.PATCH("/tokens/:id", s.updateToken)
	admin.DELETE("/tokens/:id", s.deleteToken)
	s.registerDataRoutes(admin) // keys (keyd), logs and stats (logd)
	s.schedulerRoutes(admin)
	admin.GET("/live", s.live) // SSE of request events, from NATS
	s.registerUI(r)
	return r
}

func (s *Server) health(c *gin.Context) {
	rep, err := discovery.Ping(c.Request.Context(), s.d.NC, bus.AllServices, s.d.PingWindow)
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "error", "error": "nats: " + err.Error()})
		return
	}
	c.JSON(http.StatusOK, rep)
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
		return body.AuthToken
	}
	return body.Password
}

func (s *Server) login(c *gin.Context) {
	if !s.auth.Configured() {
		c.JSON(http.StatusUnauthorized, gin.H{"error": "no admin password yet: POST /api/setup to set one", "setup": true})
		return
	}
	if !s.auth.CheckPassword(credentialFrom(c)) {
		c.JSON(http.StatusUnauthorized, gin.H{"error": "wrong admin password"})
		return
	}
	s.auth.SetCookie(c.Writer, c.Request.TLS != nil)
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

func logout(c *gin.Context) {
	auth.ClearCookie(c.Writer)
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

// setup sets the first admin password. It refuses once one exists, reading
// the stored document (not just the live copy) so a second replica agrees.
func (s *Server) setup(c *gin.Context) {
	ctx := c.Request.Context()
	cur, ok, err := s.store.Load(ctx)
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
		return
	}
	if !ok {
		cur = *s.d.Settings.Get()
	}
	if cur.AuthToken != "" || s.auth.Configured() {
		c.JSON(http.StatusConflict, gin.H{"error": "an admin password is already set"})
		return
	}
	pw := credentialFrom(c)
	if len(pw) < 8 {
		c.JSON(http.StatusBadRequest, gin.H{"error": "the admin password needs at least 8 characters"})
		return
	}
	if slices.Contains(cur.AllowedTokens, pw) {
		c.JSON(http.StatusBadRequest, gin.H{"error": "the admin password must not be a client token"})
		return
	}
	if s.refuseManagedPassword(c, pw) {
		return
	}
	cur.AuthToken = pw
	if err := s.store.Save(ctx, cur); err != nil {
		writeSaveError(c, err)
		return
	}
	s.auth.SetCookie(c.Writer, c.Request.TLS != nil)
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

func (s *Server) getConfig(c *gin.Context) {
	c.JSON(http.StatusOK, settings.Masked(*s.d.Settings.Get()))
}

func (s *Server) putConfig(c *gin.Context) {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, 1<<20))
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	next, err := settings.Merge(*s.d.Settings.Get(), body)
	if err != nil {
		writeSaveError(c, err)
		return
	}
	if next.AuthToken == "" {
		c.JSON(http.StatusBadRequest, gin.H{"error": "AUTH_TOKEN: the admin password cannot be removed"})
		return
	}
	if next.AuthToken != s.d.Settings.Get().AuthToken && s.refuseManagedPassword(c, next.AuthToken) {
		return
	}
	if err := s.store.Save(c.Request.Context(), next); err != nil {
		writeSaveError(c, err)
		return
	}
	c.JSON(http.StatusOK, settings.Masked(next))
}

func writeSaveError(c *gin.Context, err error) {
	if errors.Is(err, settings.ErrInvalid) {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
}
