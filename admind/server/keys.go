package server

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/busclient"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
)

// Key routes: keyd answers them; every key leaves admind masked except in
// GET /api/keys/{id}/reveal.
func (b *backends) keyRoutes(g *gin.RouterGroup) {
	g.GET("/keys", b.listKeys)
	g.GET("/keys/all", b.allKeys)
	g.GET("/keys/stats", b.keyStats)
	g.GET("/keys/export", b.exportKeys)
	g.POST("/keys/export", b.exportKeys)
	g.GET("/models", b.listModels)
	g.GET("/keys/:id", b.getKey)
	g.GET("/keys/:id/reveal", b.revealKey)
	g.POST("/keys", b.addKeys)
	g.DELETE("/keys", b.deleteKeys)
	g.DELETE("/keys/:id", b.deleteKey)
	g.PATCH("/keys/:id", b.updateKey)
	g.POST("/keys/reset", b.changeKeys(bus.SubjectKeyReset))
	g.POST("/keys/enable", b.changeKeys(bus.SubjectKeyEnable))
	g.POST("/keys/disable", b.changeKeys(bus.SubjectKeyDisable))
	g.POST("/keys/verify", b.verifyKeys)
}

var keyKinds = []string{"", bus.KindGemini, bus.KindVertex, bus.KindPaid}

// keydError turns the error text of a keyd reply into an error with a status.
func keydError(msg string) error {
	code := http.StatusInternalServerError
	switch {
	case msg == "not found":
		code = http.StatusNotFound
	case strings.HasPrefix(msg, "bad request"), strings.HasPrefix(msg, "unknown kind"), strings.HasPrefix(msg, "weight must"):
		code = http.StatusBadRequest
	}
	return &busclient.ServiceError{Service: bus.ServiceKeyd, Code: code, Msg: msg}
}

// keysPage is GET /api/keys's answer; names follow gemini-balance's.
type keysPage struct {
	Keys        []keyapi.Key `json:"keys"`
	TotalItems  int          `json:"total_items"`
	TotalPages  int          `json:"total_pages"`
	CurrentPage int          `json:"current_page"`
	Limit       int          `json:"limit"`
}

func (b *backends) listKeys(c *gin.Context) {
	page, err := intParam(c, "page", 1, 1, 1<<30)
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	limit, err := intParam(c, "limit", 10, 1, 1000)
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	threshold, err := intParam(c, "fail_count_threshold", 0, 0, 1<<30)
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	status, kind := c.Query("status"), c.Query("kind")
	if status == "all" {
		status = ""
	}
	if err := oneOf("status", status, "", "all", bus.KeyActive, bus.KeyCooling, bus.KeyDisabled, keyapi.StatusValid, keyapi.StatusInvalid); err != nil {
		badRequest(c, "%v", err)
		return
	}
	if err := oneOf("kind", kind, keyKinds...); err != nil {
		badRequest(c, "%v", err)
		return
	}
	req := keyapi.ListRequest{Kind: kind, Status: status, Search: strings.TrimSpace(c.Query("search")), MinFailures: threshold, Page: page, PageSize: limit}
	if status == keyapi.StatusInvalid {
		req.Status = bus.KeyDisabled
	}
	out := keysPage{CurrentPage: page, Limit: limit}
	// keyd filters (valid, invalid, failure threshold included) and pages by itself.
	var rep keyapi.ListReply
	if err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyList, req, &rep); err != nil {
		b.fail(c, err)
		return
	}
	if rep.Error != "" {
		b.fail(c, keydError(rep.Error))
		return
	}
	out.Keys, out.TotalItems = rep.Keys, rep.Total
	if out.Keys == nil {
		out.Keys = []keyapi.Key{}
	}
	out.TotalPages = (out.TotalItems + limit - 1) / limit
	c.JSON(http.StatusOK, out)
}

// allMatching reads every page of a keyd list.
func (b *backends) allMatching(ctx context.Context, req keyapi.ListRequest) ([]keyapi.Key, error) {
	const size = 1000
	var all []keyapi.Key
	for page := 1; ; page++ {
		req.Page, req.PageSize = page, size
		var rep keyapi.ListReply
		if err := b.keyd.Call(ctx, bus.SubjectKeyList, req, &rep); err != nil {
			return nil, err
		}
		if rep.Error != "" {
			return nil, keydError(rep.Error)
		}
		all = append(all, rep.Keys...)
		if len(rep.Keys) < size || len(all) >= rep.Total {
			return all, nil
		}
	}
}

// keyRef is a key in GET /api/keys/all: enough to select, copy (via reveal)
// or verify it, never the key itself.
type keyRef struct {
	ID       string `json:"id"`
	Hint     string `json:"hint"`
	Kind     string `json:"kind"`
	Status   string `json:"status"`
	Failures int    `json:"failures"`
}

// allKeys lists every key grouped valid/invalid, like gemini-balance's
// /api/keys/all (which the UI uses for copy-all and verify-all).
func (b *backends) allKeys(c *gin.Context) {
	kind := c.Query("kind")
	if err := oneOf("kind", kind, keyKinds...); err != nil {
		badRequest(c, "%v", err)
		return
	}
	all, err := b.allMatching(c.Request.Context(), keyapi.ListRequest{Kind: kind})
	if err != nil {
		b.fail(c, err)
		return
	}
	out := struct {
		Valid   []keyRef `json:"valid_keys"`
		Invalid []keyRef `json:"invalid_keys"`
		Total   int      `json:"total_count"`
	}{Valid: []keyRef{}, Invalid: []keyRef{}, Total: len(all)}
	for _, k := range all {
		r := keyRef{ID: k.ID, Hint: k.Hint, Kind: k.Kind, Status: k.Status, Failures: k.Failures}
		if k.Status == bus.KeyDisabled {
			out.Invalid = append(out.Invalid, r)
		} else {
			out.Valid = append(out.Valid, r)
		}
	}
	c.JSON(http.StatusOK, out)
}

func (b *backends) keyStats(c *gin.Context) {
	var rep keyapi.StatsReply
	if err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyStats, struct{}{}, &rep); err != nil {
		b.fail(c, err)
		return
	}
	if rep.Error != "" {
		b.fail(c, keydError(rep.Error))
		return
	}
	c.JSON(http.StatusOK, rep)
}

func (b *backends) getKey(c *gin.Context) {
	var rep keyapi.GetReply
	if err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyGet, keyapi.GetRequest{ID: c.Param("id")}, &rep); err != nil {
		b.fail(c, err)
		return
	}
	if rep.Error != "" || rep.Key == nil {
		b.fail(c, keydError(cmp.Or(rep.Error, "not found")))
		return
	}
	c.JSON(http.StatusOK, rep.Key)
}

// revealKey is the one route that answers a full key, for the copy button.
func (b *backends) revealKey(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	var rep keyapi.RevealReply
	if err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyReveal, keyapi.GetRequest{ID: c.Param("id")}, &rep); err != nil {
		b.fail(c, err)
		return
	}
	if rep.Error != "" || rep.Secret == "" {
		b.fail(c, keydError(cmp.Or(rep.Error, "not found")))
		return
	}
	b.s.d.Log.Info("key revealed to admin", "key_id", rep.ID)
	c.JSON(http.StatusOK, gin.H{"id": rep.ID, "key": rep.Secret})
}

// addKeys takes a JSON keyapi.AddRequest, or pasted text as text/plain.
func (b *backends) addKeys(c *gin.Context) {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, 4<<20))
	if err != nil {
		badRequest(c, "read body: %v", err)
		return
	}
	var req keyapi.AddRequest
	if strings.HasPrefix(c.ContentType(), "text/plain") {
		req.Text, req.Kind = string(body), c.Query("kind")
	} else if err := json.Unmarshal(body, &req); err != nil {
		badRequest(c, "want JSON {\"text\": pasted keys, \"keys\": [...], \"kind\": gemini|vertex|paid} or text/plain: %v", err)
		return
	}
	if err := oneOf("kind", req.Kind, keyKinds...); err != nil {
		badRequest(c, "%v", err)
		return
	}
	if strings.TrimSpace(req.Text) == "" && len(req.Keys) == 0 {
		badRequest(c, "no keys given: set text (pasted keys) or keys")
		return
	}
	var rep keyapi.AddReply
	if err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyAdd, req, &rep); err != nil {
		b.fail(c, err)
		return
	}
	// The reply carries hints only; it keeps its counts when keyd also
	// reports an error (some keys may have been stored).
	c.JSON(replyStatus(rep.Error), rep)
}

// replyStatus is the HTTP status of a keyd reply that carries its own error field.
func replyStatus(msg string) int {
	if msg == "" {
		return http.StatusOK
	}
	if code := keydError(msg).(*busclient.ServiceError).Code; code != http.StatusInternalServerError {
		return code
	}
	return http.StatusBadGateway
}

// idsBody is the body of bulk key and error-log deletes.
type idsBody struct {
	IDs []string `json:"ids"`
}

func (b *backends) deleteKeys(c *gin.Context) {
	var req idsBody
	if err := json.NewDecoder(io.LimitReader(c.Request.Body, 4<<20)).Decode(&req); err != nil || len(req.IDs) == 0 {
		badRequest(c, "want JSON {\"ids\": [key ids]}")
		return
	}
	b.change(c, bus.SubjectKeyDelete, keyapi.Selection{IDs: req.IDs})
}

func (b *backends) deleteKey(c *gin.Context) {
	var rep keyapi.ChangeReply
	if err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyDelete, keyapi.Selection{IDs: []string{c.Param("id")}}, &rep); err != nil {
		b.fail(c, err)
		return
	}
	if rep.Error == "" && rep.Changed == 0 {
		b.fail(c, keydError("not found"))
		return
	}
	c.JSON(replyStatus(rep.Error), rep)
}

// selection reads a keyapi.Selection body and checks it chooses something.
func selection(c *gin.Context) (keyapi.Selection, bool) {
	var sel keyapi.Selection
	if err := json.NewDecoder(io.LimitReader(c.Request.Body, 4<<20)).Decode(&sel); err != nil {
		badRequest(c, "want JSON {\"ids\": [...]} or {\"all\": true} or {\"status\": ...}, optionally \"kind\": %v", err)
		return sel, false
	}
	if len(sel.IDs) == 0 && !sel.All && sel.Status == "" {
		badRequest(c, "choose keys: ids, all: true, or status")
		return sel, false
	}
	if err := oneOf("status", sel.Status, "", bus.KeyActive, bus.KeyCooling, bus.KeyDisabled); err != nil {
		badRequest(c, "%v", err)
		return sel, false
	}
	if err := oneOf("kind", sel.Kind, keyKinds...); err != nil {
		badRequest(c, "%v", err)
		return sel, false
	}
	return sel, true
}

// changeKeys serves reset, enable and disable.
func (b *backends) changeKeys(subject string) gin.HandlerFunc {
	return func(c *gin.Context) {
		sel, ok := selection(c)
		if !ok {
			return
		}
		b.change(c, subject, sel)
	}
}

func (b *backends) change(c *gin.Context, subject string, sel keyapi.Selection) {
	var rep keyapi.ChangeReply
	if err := b.keyd.Call(c.Request.Context(), subject, sel, &rep); err != nil {
		b.fail(c, err)
		return
	}
	if rep.IDs == nil {
		rep.IDs = []string{}
	}
	c.JSON(replyStatus(rep.Error), rep)
}

// verifyKeys makes keyd test each selected key live; it may take a while.
func (b *backends) verifyKeys(c *gin.Context) {
	sel, ok := selection(c)
	if !ok {
		return
	}
	var rep keyapi.VerifyReply
	if err := b.keyd.CallTimeout(c.Request.Context(), bus.SubjectKeyVerify, sel, &rep, verifyTimeout); err != nil {
		b.fail(c, err)
		return
	}
	if rep.Results == nil {
		rep.Results = []keyapi.VerifyResult{}
	}
	c.JSON(replyStatus(rep.Error), rep)
}

// updateKey sets a key's weight (0..100; 0 and 1 are a normal share) and/or note.
func (b *backends) updateKey(c *gin.Context) {
	var req keyapi.UpdateRequest
	if err := json.NewDecoder(io.LimitReader(c.Request.Body, 64<<10)).Decode(&req); err != nil || (req.Weight == nil && req.Note == nil) {
		badRequest(c, "want JSON {\"weight\": 0..100, \"note\": \"...\"} with at least one of them")
		return
	}
	if req.Weight != nil && (*req.Weight < 0 || *req.Weight > 100) {
		badRequest(c, "weight must be between 0 and 100")
		return
	}
	req.ID = c.Param("id")
	var rep keyapi.GetReply
	if err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyUpdate, req, &rep); err != nil {
		b.fail(c, err)
		return
	}
	if rep.Error != "" || rep.Key == nil {
		b.fail(c, keydError(cmp.Or(rep.Error, "not found")))
		return
	}
	c.JSON(http.StatusOK, rep.Key)
}
