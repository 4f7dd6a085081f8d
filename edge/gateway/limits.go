package gateway

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/openai"
	"github.com/gemini-balance-go/edge/relay"
)

// overloadRetryAfter is the Retry-After of an overload answer, seconds: long
// enough for streams to finish, short enough that SDK retries stay prompt.
const overloadRetryAfter = "1"

// limitConcurrency admits at most MAX_CONCURRENT_REQUESTS client requests
// at once (read live) and answers the rest 503 with Retry-After in the
// route's error shape. It never queues: a waiting request would hold a
// connection and memory exactly when the replica has none to spare. Health
// and metrics stay outside the count so probes still see the replica.
func (g *Gateway) limitConcurrency(c *gin.Context) {
	switch p := c.Request.URL.Path; p {
	case "/health", "/healthz", "/readyz", "/metrics":
		c.Next()
		return
	}
	limit := int64(g.deps.Settings.Get().MaxConcurrentRequests)
	if n := g.inflight.Add(1); limit > 0 && n > limit {
		g.inflight.Add(-1)
		g.overloaded.Inc()
		c.Header("Retry-After", overloadRetryAfter)
		msg := "the gateway is at its limit of concurrent requests (MAX_CONCURRENT_REQUESTS); retry shortly"
		if openAIPath(c.Request.URL.Path) {
			openai.WriteError(c, http.StatusServiceUnavailable, msg, "server_error", "", "overloaded")
		} else {
			relay.WriteError(c.Writer, http.StatusServiceUnavailable, msg)
		}
		c.Abort()
		return
	}
	defer g.inflight.Add(-1)
	c.Next()
}

// openAIPath reports the route families that answer in OpenAI's error shape.
func openAIPath(p string) bool {
	return strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/hf/v1/") || strings.HasPrefix(p, "/openai/v1/")
}
