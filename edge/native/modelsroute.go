package native

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/gemini-balance-go/edge/auth"
	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
)

// modelsPath is where a models call goes: the Gemini API version, or with
// version "" the vertex-express pool and VERTEX_EXPRESS_BASE_URL.
func modelsPath(version string) (kind, route, path string) {
	if version == "" {
		return bus.KindVertex, "vertex.", "/models"
	}
	return bus.KindGemini, "gemini.", "/" + version + "/models"
}

// listModels serves GET models: upstream's list without FILTERED_MODELS,
// plus the derived -search, -image and -non-thinking models of listed bases.
func (h *handlers) listModels(version string) gin.HandlerFunc {
	kind, route, path := modelsPath(version)
	return func(c *gin.Context) {
		rec := record(c, route+"models.list", "")
		q := relay.QueryWithoutKey(c.Request.URL.RawQuery)
		if !strings.Contains(q, "pageSize=") {
			if q != "" {
				q += "&"
			}
			q += "pageSize=1000"
		}
		resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: rec.Route, Kind: kind, Method: http.MethodGet, Path: path, Query: q})
		if !resp.OK() {
			writeResponse(c, resp)
			return
		}
		list := KeepAllowedModels(models.RewriteModelList(publisherModels(resp.Body), h.Settings.Get()), auth.From(c).Models)
		c.Data(http.StatusOK, "application/json; charset=UTF-8", list)
	}
}

// getModel serves GET models/{model}, derived names included.
func (h *handlers) getModel(version string) gin.HandlerFunc {
	kind, route, path := modelsPath(version)
	return func(c *gin.Context) {
		st := h.Settings.Get()
		m := models.Resolve(c.Param("model"), st)
		rec := record(c, route+"models.get", m.Requested)
		if m.Filtered(st) {
			relay.WriteError(c.Writer, http.StatusNotFound, "models/"+m.Requested+" is not found or is not available on this gateway")
			return
		}
		if !allowModel(c, m) {
			return
		}
		resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: rec.Route, Kind: kind, Method: http.MethodGet, Model: m.Upstream,
			Path: path + "/" + m.Upstream, Query: relay.QueryWithoutKey(c.Request.URL.RawQuery)})
		if resp.OK() && version == "" {
			resp.Body = publisherModel(resp.Body)
		}
		if !resp.OK() || !m.Derived() {
			writeResponse(c, resp)
			return
		}
		note := ""
		for _, d := range models.DerivedFor(m.Upstream, st) {
			if d.Name == m.Requested {
				note = d.Note
			}
		}
		c.Data(http.StatusOK, "application/json; charset=UTF-8", []byte(models.DerivedEntry(string(resp.Body), m.Requested, note)))
	}
}

// publisherModels turns a Vertex publisher-model list ({"publisherModels":
// [{"name":"publishers/google/models/x",…}]}) into Gemini's models list, so
// a Gemini SDK pointed at /vertex-express reads it; a Gemini-shaped body
// passes unchanged.
func publisherModels(body []byte) []byte {
	list := gjson.GetBytes(body, "publisherModels")
	if !list.IsArray() || gjson.GetBytes(body, "models").Exists() {
		return body
	}
	var out bytes.Buffer
	out.WriteString(`{"models":[`)
	for i, m := range list.Array() {
		if i > 0 {
			out.WriteByte(',')
		}
		out.Write(publisherModel([]byte(m.Raw)))
	}
	out.WriteByte(']')
	if tok := gjson.GetBytes(body, "nextPageToken"); tok.Exists() {
		out.WriteString(`,"nextPageToken":`)
		out.WriteString(tok.Raw)
	}
	out.WriteByte('}')
	return out.Bytes()
}

// publisherModel renames one Vertex publisher model to "models/{id}".
func publisherModel(raw []byte) []byte {
	name := gjson.GetBytes(raw, "name").Str
	i := strings.LastIndex(name, "/models/")
	if !strings.HasPrefix(name, "publishers/") || i < 0 {
		return raw
	}
	out, err := sjson.SetBytes(raw, "name", "models/"+name[i+len("/models/"):])
	if err != nil {
		return raw
	}
	return out
}
