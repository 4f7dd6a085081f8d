package server

import (
	"bytes"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/shared/guard"
)

// Request body caps of the admin API. The unauthenticated routes (login,
// first-run setup) take a password and nothing else, so a few KiB is
// plenty; admin routes take at most a key import.
const (
	MaxUnauthenticatedBody = 4 << 10
	MaxAdminBody           = 4 << 20 // a paste of ~100 000 keys fits
)

// unauthenticatedBodies are the routes anyone may post to.
var unauthenticatedBodies = map[string]bool{"/auth": true, "/api/setup": true, "/auth/logout": true}

// limitBodies bounds request bodies before any handler reads them. On the
// unauthenticated routes the body is read here, at most
// MaxUnauthenticatedBody bytes, and JSON nested deeper than guard.MaxDepth
// is refused, so a stranger can make admind buffer no more than that. On the
// other routes nothing is read before the admin check: a declared length
// over MaxAdminBody is refused and the body is bounded as the handler reads
// it.
func limitBodies(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody {
		c.Next()
		return
	}
	if !unauthenticatedBodies[r.URL.Path] {
		if r.ContentLength > MaxAdminBody {
			c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge, gin.H{"error": guard.ReadError(&http.MaxBytesError{Limit: MaxAdminBody}, MaxAdminBody).Msg})
			return
		}
		r.Body = http.MaxBytesReader(c.Writer, r.Body, MaxAdminBody)
		c.Next()
		return
	}
	body, berr := guard.ReadBody(c.Writer, r, MaxUnauthenticatedBody)
	if berr != nil {
		c.AbortWithStatusJSON(berr.Status, gin.H{"error": berr.Msg})
		return
	}
	if err := guard.CheckJSON(body); guard.TooDeep(err) {
		c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": "invalid request body: " + err.Error()})
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	c.Next()
}
