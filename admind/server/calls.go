package server

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/busclient"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/redact"
)

// Admin routes for keys (answered by keyd) and logs and statistics (answered
// by logd). admind holds no key or log state: every handler checks its
// parameters, makes one NATS call and translates the answer.

// Bounds of the NATS calls; tests shorten them.
var (
	backendTimeout = 10 * time.Second
	// verifyTimeout covers a live test call per key, which keyd runs with
	// limited concurrency and bounds itself at 2 minutes.
	verifyTimeout = 130 * time.Second
)

// backends are the services the admin data routes call.
type backends struct {
	keyd *busclient.Client
	logd *busclient.Client
	s    *Server
}

// registerDataRoutes adds the keys, logs and stats routes to the admin group.
func (s *Server) registerDataRoutes(g *gin.RouterGroup) {
	b := &backends{
		keyd: busclient.New(s.d.NC, bus.ServiceKeyd, backendTimeout),
		logd: busclient.New(s.d.NC, bus.ServiceLogd, backendTimeout),
		s:    s,
	}
	b.keyRoutes(g)
	b.logRoutes(g)
	b.statsRoutes(g)
}

// fail answers an error in admind's shape {"error": "..."}: 503 when the
// service did not answer, its own code when it answered with one (a 500 of
// the service becomes 502: admind is a gateway to it), 500 otherwise.
func (b *backends) fail(c *gin.Context, err error) {
	var un *busclient.UnavailableError
	var se *busclient.ServiceError
	switch {
	case errors.As(err, &un):
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": un.Error()})
	case errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusNotFound):
		c.JSON(se.Code, gin.H{"error": se.Error()})
	case errors.As(err, &se):
		b.s.d.Log.Warn("admin call failed", "path", c.FullPath(), "err", err)
		c.JSON(http.StatusBadGateway, gin.H{"error": se.Error()})
	default:
		b.s.d.Log.Warn("admin call failed", "path", c.FullPath(), "err", err)
		c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
	}
}

func badRequest(c *gin.Context, format string, a ...any) {
	c.JSON(http.StatusBadRequest, gin.H{"error": fmt.Sprintf(format, a...)})
}

// intParam reads an integer query parameter in [lo, hi]; absent means def.
func intParam(c *gin.Context, name string, def, lo, hi int) (int, error) {
	v := strings.TrimSpace(c.Query(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer between %d and %d", name, lo, hi)
	}
	return n, nil
}

// Time layouts accepted in query parameters: RFC 3339, and the naive
// datetimes gemini-balance's log page sends (read as UTC).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// parseTime reads a time parameter; empty means zero.
func parseTime(name, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	for _, cand := range []string{v, strings.Replace(v, " ", "+", 1)} { // an unescaped "+01:00" arrives as " 01:00"
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, cand); err == nil {
				return t.UTC(), nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time or a date (2006-01-02)", name, v)
}

func timeParam(c *gin.Context, names ...string) (time.Time, error) {
	for _, n := range names {
		if v := c.Query(n); v != "" {
			return parseTime(n, v)
		}
	}
	return time.Time{}, nil
}

func oneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s must be one of %s", name, strings.Join(allowed, ", "))
}

var (
	hexID     = regexp.MustCompile(`^[0-9a-f]{16}$`)
	fullKeyRE = regexp.MustCompile(`^(AIza[0-9A-Za-z_\-]{35}|AQ\.[0-9A-Za-z_\-]{20,})$`)
)

// secretID names a key or client token by its id. gemini-balance filters
// by the full key, so a full key or token given where an id is expected is
// turned into its id (redact.ID, as keyd and admind derive them); it is never
// echoed back. Ids are 16 hex digits: anything longer is taken as the secret.
func secretID(v string) string {
	v = strings.TrimSpace(v)
	if len(v) <= 16 || hexID.MatchString(v) {
		return v
	}
	return redact.ID(v)
}
