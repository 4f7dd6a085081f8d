package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/settings"
	"github.com/gemini-balance-go/shared/config"
)

// resetConfig puts every setting back to its built-in default (shared/config).
// The admin password is not a setting (its hash lives in admind's admins
// collection), so the admin stays in. It saves through the same validation and
// publish path as PUT /api/config.
func (s *Server) resetConfig(c *gin.Context) {
	next := config.Defaults()
	if err := s.store.Save(c.Request.Context(), next); err != nil {
		writeSaveError(c, err)
		return
	}
	s.d.Log.Info("settings reset to defaults by admin")
	c.JSON(http.StatusOK, settings.Masked(next))
}
