package gateway

import (
	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/openai"
)

// mountOpenAI mounts the OpenAI-compatible routes (edge/openai) with the
// client-token check in OpenAI's error shape.
func (g *Gateway) mountOpenAI(e *gin.Engine) {
	openai.Register(e, openai.Deps{
		Relay:      g.Relay,
		Settings:   g.deps.Settings,
		Logger:     g.log,
		Auth:       g.AuthWith(openai.WriteAuthError),
		Registerer: g.deps.Registry,
		Files:      g.Keys,
	})
}
