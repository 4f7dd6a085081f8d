package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/logapi"
)

// Log routes: logd answers them.
func (b *backends) logRoutes(g *gin.RouterGroup) {
	g.GET("/logs/requests", b.requestLogs)
	g.DELETE("/logs/requests", b.deleteRequestLogs)
	g.DELETE("/logs/requests/all", b.deleteAllRequestLogs)
	g.GET("/logs/errors", b.errorLogs)
	g.GET("/logs/errors/:id/details", b.errorLog)
	g.DELETE("/logs/errors", b.deleteErrorLogs)
	g.DELETE("/logs/errors/all", b.deleteAllErrorLogs)
	g.DELETE("/logs/errors/:id", b.deleteErrorLog)
}

// pageParams reads limit (1..1000, default 10) and offset (≥ 0).
func pageParams(c *gin.Context) (limit, offset int, err error) {
	if limit, err = intParam(c, "limit", logapi.DefaultLimit, 1, logapi.MaxLimit); err != nil {
		return 0, 0, err
	}
	offset, err = intParam(c, "offset", 0, 0, 1<<30)
	return limit, offset, err
}

// order reads the sort direction from the first parameter present.
func order(c *gin.Context, names ...string) (string, error) {
	for _, n := range names {
		if v := strings.ToLower(c.Query(n)); v != "" {
			return v, oneOf(n, v, "asc", "desc")
		}
	}
	return "", nil
}

// requestLogs: GET /api/logs/requests?from&to&key&model&token&status&success&route&sort&order&limit&offset.
func (b *backends) requestLogs(c *gin.Context) {
	q, err := requestLogQuery(c)
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	var page logapi.RequestLogPage
	if err := b.logd.Call(c.Request.Context(), bus.SubjectLogRequestsList, q, &page); err != nil {
		b.fail(c, err)
		return
	}
	if page.Logs == nil {
		page.Logs = []logapi.RequestLog{}
	}
	c.JSON(http.StatusOK, page)
}

func requestLogQuery(c *gin.Context) (logapi.RequestLogQuery, error) {
	var q logapi.RequestLogQuery
	var err error
	if q.Limit, q.Offset, err = pageParams(c); err != nil {
		return q, err
	}
	if c.Query("offset") == "" {
		page, err := intParam(c, "page", 1, 1, 1<<30)
		if err != nil {
			return q, err
		}
		q.Offset = (page - 1) * q.Limit
	}
	q.Count = strings.ToLower(c.Query("count"))
	if err := oneOf("count", q.Count, "", logapi.CountAuto, logapi.CountExact, logapi.CountNone); err != nil {
		return q, err
	}
	if q.From, err = timeParam(c, "from", "start_date"); err != nil {
		return q, err
	}
	if q.To, err = timeParam(c, "to", "end_date"); err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return q, fmt.Errorf("to is before from")
	}
	if q.Status, err = intParam(c, "status", 0, 100, 599); err != nil {
		return q, err
	}
	if v := c.Query("success"); v != "" {
		ok, perr := strconv.ParseBool(v)
		if perr != nil {
			return q, fmt.Errorf("success must be true or false")
		}
		q.Success = &ok
	}
	q.SortBy = strings.ToLower(cmpOrQuery(c, "sort", "sort_by"))
	if err := oneOf("sort", q.SortBy, "", "time", "latency", "status", "model"); err != nil {
		return q, err
	}
	if q.Order, err = order(c, "order", "sort_order"); err != nil {
		return q, err
	}
	q.KeyID = secretID(cmpOrQuery(c, "key", "key_id"))
	q.TokenID = secretID(cmpOrQuery(c, "token", "token_id"))
	q.Model, q.Route = c.Query("model"), c.Query("route")
	return q, nil
}

// cmpOrQuery is the first non-empty of the named query parameters.
func cmpOrQuery(c *gin.Context, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(c.Query(n)); v != "" {
			return v
		}
	}
	return ""
}

// errorSort maps gemini-balance's column names (and logd's own) onto logd's sort keys.
var errorSort = map[string]string{
	"": "", "id": "time", "time": "time", "request_time": "time",
	"error_code": "code", "code": "code",
	"model_name": "model", "model": "model",
	"error_type": "type", "type": "type",
}

// errorLogs takes gemini-balance's parameters: limit, offset, key_search,
// error_search, error_code_search (a non-integer is ignored, as there),
// start_date, end_date (end exclusive), sort_by, sort_order; and key, model,
// request_id as exact filters.
func (b *backends) errorLogs(c *gin.Context) {
	q, err := errorLogQuery(c)
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	var page logapi.ErrorLogPage
	if err := b.logd.Call(c.Request.Context(), bus.SubjectLogErrorsList, q, &page); err != nil {
		b.fail(c, err)
		return
	}
	if page.Logs == nil {
		page.Logs = []logapi.ErrorLog{}
	}
	c.JSON(http.StatusOK, page)
}

func errorLogQuery(c *gin.Context) (logapi.ErrorLogQuery, error) {
	var q logapi.ErrorLogQuery
	var err error
	if q.Limit, q.Offset, err = pageParams(c); err != nil {
		return q, err
	}
	if q.From, err = timeParam(c, "start_date", "from"); err != nil {
		return q, err
	}
	if q.To, err = timeParam(c, "end_date", "to"); err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return q, fmt.Errorf("end_date is before start_date")
	}
	if n, convErr := strconv.Atoi(strings.TrimSpace(c.Query("error_code_search"))); convErr == nil {
		q.Code = n
	}
	sortBy, known := errorSort[strings.ToLower(c.Query("sort_by"))]
	if !known {
		return q, fmt.Errorf("sort_by must be id, request_time, error_code, model_name or error_type")
	}
	q.SortBy = sortBy
	if q.Order, err = order(c, "sort_order", "order"); err != nil {
		return q, err
	}
	q.Search = strings.TrimSpace(c.Query("error_search"))
	q.KeyID = secretID(cmpOrQuery(c, "key", "key_id"))
	if ks := strings.TrimSpace(c.Query("key_search")); fullKeyRE.MatchString(ks) {
		q.KeyID = secretID(ks) // the stored hint holds too little of a full key to match it
	} else {
		q.KeySearch = ks
	}
	q.Model, q.RequestID = c.Query("model"), c.Query("request_id")
	return q, nil
}

// errorLog: the full row, with the error body and the request body when recorded.
func (b *backends) errorLog(c *gin.Context) {
	var e logapi.ErrorLog
	if err := b.logd.Call(c.Request.Context(), bus.SubjectLogErrorsGet, logapi.ErrorLogGet{ID: c.Param("id")}, &e); err != nil {
		b.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

// deleteErrorLogs deletes by ids (body {"ids": [...]}, 204 like
// gemini-balance) or, with ?before=<time>, everything older (200 with the
// count).
func (b *backends) deleteErrorLogs(c *gin.Context) {
	if v := c.Query("before"); v != "" {
		before, err := parseTime("before", v)
		if err != nil {
			badRequest(c, "%v", err)
			return
		}
		var rep logapi.DeleteReply
		if err := b.logd.Call(c.Request.Context(), bus.SubjectLogErrorsDelete, logapi.ErrorLogDelete{Before: before}, &rep); err != nil {
			b.fail(c, err)
			return
		}
		b.s.d.Log.Info("error logs deleted by admin", "before", before, "deleted", rep.Deleted)
		c.JSON(http.StatusOK, rep)
		return
	}
	var req idsBody
	if err := json.NewDecoder(io.LimitReader(c.Request.Body, 4<<20)).Decode(&req); err != nil || len(req.IDs) == 0 {
		badRequest(c, "want JSON {\"ids\": [error log ids]} or ?before=<RFC 3339 time>")
		return
	}
	b.deleteErrors(c, logapi.ErrorLogDelete{IDs: req.IDs}, false)
}

func (b *backends) deleteAllErrorLogs(c *gin.Context) {
	b.deleteErrors(c, logapi.ErrorLogDelete{All: true}, false)
}

func (b *backends) deleteErrorLog(c *gin.Context) {
	b.deleteErrors(c, logapi.ErrorLogDelete{IDs: []string{c.Param("id")}}, true)
}

// deleteErrors answers 204, or 404 when one named log did not exist.
func (b *backends) deleteErrors(c *gin.Context, d logapi.ErrorLogDelete, one bool) {
	var rep logapi.DeleteReply
	if err := b.logd.Call(c.Request.Context(), bus.SubjectLogErrorsDelete, d, &rep); err != nil {
		b.fail(c, err)
		return
	}
	if one && rep.Deleted == 0 {
		c.JSON(http.StatusNotFound, gin.H{"error": "error log not found"})
		return
	}
	b.s.d.Log.Info("error logs deleted by admin", "all", d.All, "ids", len(d.IDs), "deleted", rep.Deleted)
	c.Status(http.StatusNoContent)
}
