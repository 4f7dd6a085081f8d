package native

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/tidwall/gjson"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
)

// errorTypes name failed attempts the way gemini-balance's error log does.
var errorTypes = map[string]string{
	"generateContent":       "gemini-chat-non-stream",
	"streamGenerateContent": "gemini-chat-stream",
	"countTokens":           "gemini-count-tokens",
	"embedContent":          "gemini-embed-content",
	"batchEmbedContents":    "gemini-batch-embed-contents",
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
		if kind == bus.KindVertex && req.ErrorType != "" {
			req.ErrorType = "vertex-" + req.ErrorType
		}
		switch method {
		case "generateContent", "streamGenerateContent":
			body, _ = Inject(body, m, st)
			req.CheckEmpty = true
			if kind == bus.KindGemini {
				pin, status, msg := h.fileAffinity(c, body, rec.TokenID)
				if status != 0 {
					relay.WriteError(c.Writer, status, msg)
					return
				}
				req.PinKeyID = pin
			}
		case "countTokens", "embedContent", "batchEmbedContents":
			body = RewriteModelField(body, m)
		}
		req.Body = body
		if method == "streamGenerateContent" {
			h.stream(c, req)
			return
		}
		writeResponse(c, h.Relay.Do(c.Request.Context(), req))
	}
}

// stream relays a streamGenerateContent answer event by event, in the
// framing the client asked for (alt=sse or the JSON array), flushing after
// each event. After the first byte there is no failover: a failure ends the
// stream with an error event and nothing already sent is repeated.
func (h *handlers) stream(c *gin.Context, req *relay.Request) {
	rec := record(c, req.Route, "")
	resp := h.Relay.Stream(c.Request.Context(), req)
	if resp.Stream == nil {
		writeResponse(c, resp)
		return
	}
	s := resp.Stream
	defer s.Close()
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
	w := c.Writer
	w.WriteHeader(http.StatusOK)
	for {
		ev, err := s.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			rec.Failed, rec.ClientError = true, err.Error()
			_, _ = w.Write(s.ErrorTail(err))
			w.Flush()
			return
		}
		if _, err := w.Write(ev.Raw); err != nil {
			return // client gone; Close cancels upstream
		}
		w.Flush()
	}
}

// fileAffinity finds the key that uploaded a file the request references:
// Gemini files are readable only by that key. It answers an error status
// when the file belongs to another client token.
func (h *handlers) fileAffinity(c *gin.Context, body []byte, tokenID string) (pin string, status int, msg string) {
	names := fileRefs(body)
	if len(names) == 0 || h.Keyd == nil {
		return "", 0, ""
	}
	st := h.Settings.Get()
	for _, name := range names {
		b, err := h.Keyd.LookupFile(c.Request.Context(), keyapi.FileQuery{Name: name})
		if err != nil {
			continue // not uploaded through this gateway: let upstream judge
		}
		if st.FilesUserIsolation && b.TokenID != "" && b.TokenID != tokenID {
			return "", http.StatusForbidden, "You do not have permission to access the File " + strings.TrimPrefix(name, "files/") + " or it may not exist."
		}
		return b.KeyID, 0, ""
	}
	return "", 0, ""
}

// fileRefs lists the "files/{id}" names of fileData parts.
func fileRefs(body []byte) []string {
	if !bytes.Contains(body, []byte("/files/")) {
		return nil
	}
	var out []string
	for _, path := range []string{"contents.#.parts.#.fileData.fileUri", "contents.#.parts.#.file_data.file_uri"} {
		gjson.GetBytes(body, path).ForEach(func(_, parts gjson.Result) bool {
			parts.ForEach(func(_, uri gjson.Result) bool {
				if i := strings.LastIndex(uri.Str, "/files/"); i >= 0 {
					id := uri.Str[i+len("/files/"):]
					if j := strings.IndexAny(id, "?#/:"); j >= 0 {
						id = id[:j]
					}
					if id != "" {
						out = append(out, "files/"+id)
					}
				}
				return true
			})
			return true
		})
	}
	return out
}
