package server

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/busclient"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/logapi"
)

// Statistics routes: logd answers them from its rollups.
func (b *backends) statsRoutes(g *gin.RouterGroup) {
	g.GET("/stats/overview", b.overview)
	g.GET("/stats/series", b.series)
	g.GET("/stats/attention-keys", b.attentionKeys)
	g.GET("/key-usage-details/:key_id", b.keyUsage)
}

// overview: last minute, hour, 24 hours and the current month.
func (b *backends) overview(c *gin.Context) {
	var o logapi.Overview
	if err := b.logd.Call(c.Request.Context(), bus.SubjectLogOverview, logapi.OverviewQuery{}, &o); err != nil {
		b.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

// series: hourly points, overall or for a key, a model, a client token or
// any combination of them; from/to default to the last 24 hours.
func (b *backends) series(c *gin.Context) {
	var q logapi.SeriesQuery
	var err error
	if q.From, err = timeParam(c, "from"); err == nil {
		q.To, err = timeParam(c, "to")
	}
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	q.KeyID, q.Model, q.TokenID = secretID(cmpOrQuery(c, "key", "key_id")), c.Query("model"), secretID(cmpOrQuery(c, "token", "token_id"))
	var s logapi.Series
	if err := b.logd.Call(c.Request.Context(), bus.SubjectLogSeries, q, &s); err != nil {
		b.fail(c, err)
		return
	}
	if s.Points == nil {
		s.Points = []logapi.SeriesPoint{}
	}
	c.JSON(http.StatusOK, s)
}

// attentionKey is a key with many answers of one status code, named by hint.
type attentionKey struct {
	KeyID  string `json:"key_id"`
	Hint   string `json:"hint,omitempty"`
	Status string `json:"status,omitempty"`
	Count  int64  `json:"count"`
}

// attentionKeys lists the keys with the most answers of status_code
// (default 429) in the last 24 hours. Like gemini-balance it shows only keys
// still in the pool; if keyd does not answer, the keys come without hints.
func (b *backends) attentionKeys(c *gin.Context) {
	code, err := intParam(c, "status_code", 429, 100, 599)
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	limit, err := intParam(c, "limit", logapi.DefaultLimit, 1, logapi.MaxLimit)
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	var a logapi.Attention
	if err := b.logd.Call(c.Request.Context(), bus.SubjectLogAttention, logapi.AttentionQuery{Code: code, Limit: limit}, &a); err != nil {
		b.fail(c, err)
		return
	}
	out := struct {
		Code int            `json:"status_code"`
		Keys []attentionKey `json:"keys"`
	}{Code: a.Code, Keys: []attentionKey{}}
	keydUp := true
	for _, k := range a.Keys {
		ak := attentionKey{KeyID: k.KeyID, Count: k.Count}
		if keydUp {
			var rep keyapi.GetReply
			err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyGet, keyapi.GetRequest{ID: k.KeyID}, &rep)
			var un *busclient.UnavailableError
			switch {
			case errors.As(err, &un):
				keydUp = false
			case err == nil && rep.Key != nil:
				ak.Hint, ak.Status = rep.Key.Hint, rep.Key.Status
			case err == nil && rep.Error == "not found":
				continue // deleted since
			}
		}
		out.Keys = append(out.Keys, ak)
	}
	c.JSON(http.StatusOK, out)
}

// keyUsage: one key's totals by model over the last hours (default 24).
func (b *backends) keyUsage(c *gin.Context) {
	hours, err := intParam(c, "hours", 24, 1, 24*400)
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	var u logapi.KeyUsage
	// gemini-balance names the key in full here; an id works too.
	q := logapi.KeyUsageQuery{KeyID: secretID(c.Param("key_id")), Hours: hours}
	if err := b.logd.Call(c.Request.Context(), bus.SubjectLogKeyUsage, q, &u); err != nil {
		b.fail(c, err)
		return
	}
	if u.Models == nil {
		u.Models = map[string]logapi.Totals{}
	}
	c.JSON(http.StatusOK, u)
}
