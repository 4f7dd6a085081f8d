package server

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/logapi"
)

// Request-log deletes mirror the error-log ones: by ids (204), older than
// ?before= (200 with the count), or all (204). logd keeps the rollups.

func (b *backends) deleteRequestLogs(c *gin.Context) {
	if v := c.Query("before"); v != "" {
		before, err := parseTime("before", v)
		if err != nil {
			badRequest(c, "%v", err)
			return
		}
		rep, ok := b.deleteRequests(c, logapi.RequestLogDelete{Before: before})
		if ok {
			c.JSON(http.StatusOK, rep)
		}
		return
	}
	var req idsBody
	if err := json.NewDecoder(io.LimitReader(c.Request.Body, 4<<20)).Decode(&req); err != nil || len(req.IDs) == 0 {
		badRequest(c, "want JSON {\"ids\": [request log ids]} or ?before=<RFC 3339 time>")
		return
	}
	if _, ok := b.deleteRequests(c, logapi.RequestLogDelete{IDs: req.IDs}); ok {
		c.Status(http.StatusNoContent)
	}
}

func (b *backends) deleteAllRequestLogs(c *gin.Context) {
	if _, ok := b.deleteRequests(c, logapi.RequestLogDelete{All: true}); ok {
		c.Status(http.StatusNoContent)
	}
}

func (b *backends) deleteRequests(c *gin.Context, d logapi.RequestLogDelete) (logapi.DeleteReply, bool) {
	var rep logapi.DeleteReply
	if err := b.logd.Call(c.Request.Context(), bus.SubjectLogRequestsDelete, d, &rep); err != nil {
		b.fail(c, err)
		return rep, false
	}
	b.s.d.Log.Info("request logs deleted by admin", "all", d.All, "ids", len(d.IDs), "before", d.Before, "deleted", rep.Deleted)
	return rep, true
}
