package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/ui"
)

// registerUI serves the admin web UI; its page paths redirect by the
// session before the shell loads.
func (s *Server) registerUI(r *gin.Engine) {
	ui.Register(r, ui.Deps{State: s.uiState})
}

// uiState: is setup still needed, and does the request carry an admin session?
func (s *Server) uiState(r *http.Request) (setupNeeded, authenticated bool, err error) {
	st, err := s.auth.State(r)
	return st.SetupNeeded, st.Authenticated, err
}
