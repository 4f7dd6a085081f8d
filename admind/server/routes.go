package server

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/discovery"
	"github.com/gemini-balance-go/admind/settings"
	"github.com/gemini-balance-go/shared/bus"
)

func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery(), limitBodies)
	if h := s.d.Health; h != nil {
		r.GET("/healthz", gin.WrapF(h.Healthz))
		r.GET("/readyz", gin.WrapF(h.Readyz))
	}

	// Unauthenticated routes read at most MaxUnauthenticatedBody bytes (limitBodies).
	r.POST("/auth", s.login)
	r.POST("/auth/logout", s.auth.Logout)
	api := r.Group("/api")
	// Public: service names, replica counts and status only, no secrets.
	api.GET("/health", s.health)
	// Public: whether to show setup, login or the app.
	api.GET("/session", s.session)
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
	c.JSON(http.StatusOK, healthReport{Report: rep, Encryption: s.box.Enabled(), Warnings: s.warnings()})
}

func (s *Server) getConfig(c *gin.Context) {
	c.JSON(http.StatusOK, settings.Masked(*s.d.Settings.Get()))
}

func (s *Server) putConfig(c *gin.Context) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	cur := *s.d.Settings.Get()
	next, err := settings.Merge(cur, body)
	if err != nil {
		writeSaveError(c, err)
		return
	}
	newPassword, err := passwordChange(body)
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if s.refuseAdminPasswordAsClientToken(c, cur.AllowedTokens, next.AllowedTokens) {
		return
	}
	if newPassword != "" && !s.acceptablePassword(c, newPassword, next.AllowedTokens) {
		return
	}
	if _, err := s.store.StoredForm(next); err != nil { // before anything is written
		writeSaveError(c, err)
		return
	}
	if !s.importKeys(c, next) {
		return
	}
	if err := s.store.Save(c.Request.Context(), next); err != nil {
		writeSaveError(c, err)
		return
	}
	if newPassword != "" && !s.changePassword(c, newPassword) {
		return
	}
	c.JSON(http.StatusOK, settings.Masked(*s.d.Settings.Get()))
}

func writeSaveError(c *gin.Context, err error) {
	if errors.Is(err, settings.ErrInvalid) {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
}
