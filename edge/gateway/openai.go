package gateway

import "github.com/gin-gonic/gin"

// mountOpenAI mounts the OpenAI-compatible routes (edge/openai).
func (g *Gateway) mountOpenAI(e *gin.Engine) {
	// LEAD: edge/openai did not exist when this was written. Replace the
	// line below with: openai.Register(e, openai.Deps{Relay: g.Relay, Settings: g.deps.Settings, Logger: g.log, Auth: g.AuthWith(openai.WriteAuthError)})
	_ = e
}
