package native

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/edge/files"
	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
)

// errorTypes name failed attempts the way gemini-balance's error log does.
var errorTypes = map[string]string{
	"generateContent":        "gemini-chat-non-stream",
	"streamGenerateContent":  "gemini-chat-stream",
	"countTokens":            "gemini-count-tokens",
	"embedContent":           "gemini-embed-content",
	"batchEmbedContents":     "gemini-batch-embed-contents",
	"batchGenerateContent":   "gemini-batch-generate-content",
	"asyncBatchEmbedContent": "gemini-async-batch-embed-content",
	"predictLongRunning":     "gemini-predict-long-running",
}

// modelAction serves POST models/{model}:{method}.
func (h *handlers) modelAction(version, kind string) gin.HandlerFunc {
	routePrefix, basePath := "gemini.", "/"+version+"/models/"
	if kind == bus.KindVertex {
		routePrefix, basePath = "vertex.", "/models/"
	}
	return func(c *gin.Context) {
		param := c.Param("model")
		i := strings.LastIndexByte(param, ':')
		if i <= 0 || i == len(param)-1 {
			relay.WriteError(c.Writer, http.StatusNotFound, "unknown method: POST "+c.Request.URL.Path)
			return
		}
		name, method := param[:i], param[i+1:]
		st := h.Settings.Get()
		m := models.Resolve(name, st)
		rec := record(c, routePrefix+method, m.Requested)
		if m.Filtered(st) {
			relay.WriteError(c.Writer, http.StatusNotFound, "models/"+m.Requested+" is not found or is not available on this gateway")
			return
		}
		if err := m.Offered(); err != nil {
			relay.WriteError(c.Writer, http.StatusBadRequest, err.Error())
			return
		}
		if !allowModel(c, m) {
			return
		}
		body, ok := readBody(c)
		if !ok {
			return
		}
		req := &relay.Request{
			Route:     rec.Route,
			ErrorType: errorTypes[method],
			Kind:      kind,
			Model:     m.Upstream,
			Path:      basePath + m.Upstream + ":" + method,
			Query:     relay.QueryWithoutKey(c.Request.URL.RawQuery),
		}
		if kind == bus.KindGemini {
			req.Kind = models.KeyKind(m.Upstream) // Imagen: PAID_KEY
		}
		if kind == bus.KindVertex && req.ErrorType != "" {
			req.ErrorType = "vertex-" + req.ErrorType
		}
		switch method {
		case "generateContent", "streamGenerateContent":
			injected, _, _ := Inject(body, m, st) // Offered was checked above
			if kind == bus.KindGemini && cacheRefs(body) != nil {
				injected = cacheCompatible(body, injected)
			}
			body = injected
			req.CheckEmpty = true
		case "countTokens", "embedContent", "batchEmbedContents":
			body = RewriteModelField(body, m)
		}
		// Any method may name a file; the body checked is the one sent.
		var pin string
		var deny *files.Denial
		if kind == bus.KindGemini {
			// Files and caches are readable only by the key that made them.
			pin, deny = h.affinity(c.Request.Context(), body, method, rec.TokenID, st)
		} else {
			_, deny = files.Check(c.Request.Context(), h.Keyd, body, files.Options{TokenID: rec.TokenID, Isolation: st.FilesUserIsolation, BaseURL: st.BaseURL})
		}
		if deny != nil {
			relay.WriteError(c.Writer, deny.Status, deny.Message)
			return
		}
		req.PinKeyID = pin
		req.Body = body
		if method == "streamGenerateContent" {
			h.stream(c, req)
			return
		}
		resp := h.Relay.Do(c.Request.Context(), req)
		if pin != "" {
			resp = pinnedAnswer(resp, "the files or cache this request names")
		}
		if creates[method] && kind == bus.KindGemini {
			h.bindCreated(c, resp, version)
			return
		}
		writeResponse(c, resp)
	}
}

// stream relays a streamGenerateContent answer event by event, in the
// framing the client asked for (alt=sse or the JSON array), flushing after
// each event. After the first byte there is no failover: a failure ends the
// stream with an error event and nothing already sent is repeated.
func (h *handlers) stream(c *gin.Context, req *relay.Request) {
	rec := events.From(c.Request.Context()) // route and model named by the caller
	resp := h.Relay.Stream(c.Request.Context(), req)
	if resp.Stream == nil {
		if req.PinKeyID != "" {
			resp = pinnedAnswer(resp, "the files or cache this request names")
		}
		writeResponse(c, resp)
		return
	}
	s := resp.Stream
	hd := c.Writer.Header()
	ct := s.Header().Get("Content-Type")
	if ct == "" {
		ct = "application/json; charset=UTF-8"
		if s.SSE() {
			ct = "text/event-stream"
		}
	}
	hd.Set("Content-Type", ct)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // tell nginx-style front proxies not to buffer
	if cd := s.Header().Get("Content-Disposition"); cd != "" {
		hd.Set("Content-Disposition", cd)
	}
	if err := relay.Pump(c.Writer, s, relay.Passthrough{S: s}); err != nil {
		rec.Failed, rec.ClientError = true, err.Error()
	}
}
