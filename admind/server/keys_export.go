package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
)

// maxExportIDs bounds a POST /api/keys/export selection.
const maxExportIDs = 100_000

// exportKeys answers full keys as text/plain, one per line: GET by status
// (valid, invalid, all) and kind, POST by {"ids": [...]}. Like reveal, it is
// an explicit admin "copy"; the UI confirms first and nothing is cached.
func (b *backends) exportKeys(c *gin.Context) {
	var req keyapi.ExportRequest
	if c.Request.Method == http.MethodPost {
		var body idsBody
		if err := json.NewDecoder(io.LimitReader(c.Request.Body, 8<<20)).Decode(&body); err != nil || len(body.IDs) == 0 {
			badRequest(c, "want JSON {\"ids\": [key ids]}")
			return
		}
		if len(body.IDs) > maxExportIDs {
			badRequest(c, "at most %d ids", maxExportIDs)
			return
		}
		req.IDs = body.IDs
	} else {
		req.Status, req.Kind = c.DefaultQuery("status", "all"), c.Query("kind")
		if err := oneOf("status", req.Status, keyapi.StatusValid, keyapi.StatusInvalid, "all"); err != nil {
			badRequest(c, "%v", err)
			return
		}
		if err := oneOf("kind", req.Kind, keyKinds...); err != nil {
			badRequest(c, "%v", err)
			return
		}
		if req.Status == "all" {
			req.Status = ""
		}
	}
	var rep keyapi.ExportReply
	if err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyExport, req, &rep); err != nil {
		b.fail(c, err)
		return
	}
	if rep.Error != "" {
		b.fail(c, keydError(rep.Error))
		return
	}
	b.s.d.Log.Info("keys exported to admin", "count", len(rep.Keys), "ids", len(req.IDs), "status", req.Status)
	c.Header("Cache-Control", "no-store")
	c.Header("X-Key-Count", strconv.Itoa(len(rep.Keys)))
	var sb strings.Builder
	for _, k := range rep.Keys {
		sb.WriteString(k)
		sb.WriteByte('\n')
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(sb.String()))
}
