package openai

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/gemini-balance-go/edge/auth"
	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/guard"
	"github.com/gemini-balance-go/shared/outcome"
)

const routePassthrough = "openai.passthrough"

// passthrough forwards /openai/v1/* to the upstream's own OpenAI-compatible
// endpoint ({BASE_URL}/v1beta/openai/*) with a pool key. The body goes whole,
// unknown fields included; the answer comes back as upstream gave it, and a
// stream is relayed event by event.
func (h *handlers) passthrough(c *gin.Context) {
	rec := record(c, routePassthrough, "")
	path, status, msg := passthroughPath(c.Request.Method, c.Request.URL.EscapedPath())
	if status != 0 {
		code := "invalid_value"
		if status == http.StatusNotFound {
			code = "unknown_url"
		}
		WriteError(c, status, msg, "invalid_request_error", "", code)
		return
	}
	body, ok := readBody(c)
	if !ok {
		return
	}
	if len(body) == 0 {
		body = nil
	}
	model := ""
	stream := false
	if len(body) > 0 && guard.Valid(body) {
		r := gjson.ParseBytes(body)
		model = trimModel(r.Get("model").String())
		stream = r.Get("stream").Bool()
	}
	rec.Model = model
	// The allow-list holds here too: the model in the body, or the one a
	// models/{id} path names. A restricted token's models list is filtered.
	if id, ok := strings.CutPrefix(path, "/models/"); ok && model == "" {
		model = trimModel(id)
	}
	if model != "" && !allowModel(c, as(model)) {
		return
	}
	restricted := len(auth.From(c).Models) > 0 && path == "/models" && c.Request.Method == http.MethodGet
	pin, ok := h.checkFiles(c, body, rec.TokenID)
	if !ok {
		return
	}
	hdr := http.Header{}
	if ct := c.GetHeader("Content-Type"); ct != "" && body != nil {
		hdr.Set("Content-Type", ct)
	}
	rreq := &relay.Request{Route: routePassthrough, ErrorType: "openai-compatiable-non-stream", Model: model, Method: c.Request.Method,
		Path: "/v1beta/openai" + path, Query: relay.QueryWithoutKey(c.Request.URL.RawQuery), Header: hdr, Body: body, BearerKey: true, PinKeyID: pin}
	if stream {
		rreq.ErrorType = "openai-compatiable-stream"
		h.passthroughStream(c, rreq, rec)
		return
	}
	resp := h.Relay.Do(c.Request.Context(), rreq)
	if resp.Local || resp.Class == outcome.KeyInvalid {
		writeUpstreamError(c, resp)
		return
	}
	if resp.OK() {
		rec.Usage = openAIUsage(resp.Body)
		if restricted {
			resp.Body = keepAllowedData(c, resp.Body)
		}
	}
	copyAnswer(c, resp)
}

// passthroughRoutes is the allow-list of the upstream's OpenAI-compatible
// surface ({BASE_URL}/v1beta/openai/, documented: chat/completions,
// embeddings, images/generations, models). Nothing else of the upstream
// (its files, batches or native API) is reachable through the passthrough.
var passthroughRoutes = map[string]string{
	"/chat/completions":   http.MethodPost,
	"/embeddings":         http.MethodPost,
	"/images/generations": http.MethodPost,
	"/models":             http.MethodGet,
	"/models/*":           http.MethodGet, // one model id
}

// passthroughPath checks the path after /openai/v1 against the allow-list.
// The path is taken as the client sent it (escaped): encoded characters,
// dot segments, empty segments and backslashes are refused with 400, so the
// path sent upstream is exactly the one checked; an unlisted endpoint is a
// 404 and a listed one with another method a 405.
func passthroughPath(method, escaped string) (string, int, string) {
	p, ok := strings.CutPrefix(escaped, "/openai/v1")
	switch {
	case !ok || p == "" || p[0] != '/':
		return "", http.StatusNotFound, "unknown OpenAI-compatible endpoint"
	case strings.ContainsAny(p, "%\\"):
		return "", http.StatusBadRequest, "encoded characters and backslashes are not allowed in the path"
	case strings.Contains(p, "//") || path.Clean(p) != p || strings.Contains(p, "/./") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.HasSuffix(p, "/."):
		return "", http.StatusBadRequest, "the path must be normalized (no empty, . or .. segments)"
	}
	key := p
	if id, isModel := strings.CutPrefix(p, "/models/"); isModel {
		if !validModelID(id) {
			return "", http.StatusNotFound, "unknown OpenAI-compatible endpoint: " + p
		}
		key = "/models/*"
	}
	want, listed := passthroughRoutes[key]
	switch {
	case !listed:
		return "", http.StatusNotFound, "unknown OpenAI-compatible endpoint: " + p
	case method != want:
		return "", http.StatusMethodNotAllowed, method + " is not allowed on " + p + "; use " + want
	}
	return p, 0, ""
}

// validModelID is a model id in one path segment.
func validModelID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return id != "." && id != ".."
}

// passthroughStream relays upstream's OpenAI-framed SSE event by event
// (relay.Pump), and ends a stream that fails midway with an OpenAI error
// event. Failover happens only before the first event.
func (h *handlers) passthroughStream(c *gin.Context, rreq *relay.Request, rec *events.Record) {
	rec.Stream = true
	resp := h.Relay.Stream(c.Request.Context(), rreq)
	if resp.Stream == nil {
		if resp.Local || resp.Class == outcome.KeyInvalid {
			writeUpstreamError(c, resp)
			return
		}
		copyAnswer(c, resp)
		return
	}
	relay.SetSSEHeaders(c.Writer.Header())
	enc := &openAIPassthrough{}
	if err := relay.Pump(c.Writer, resp.Stream, enc); err != nil {
		rec.Failed, rec.ClientError = true, err.Error()
	}
	if enc.usage != nil {
		rec.Usage = openAIUsage(enc.usage)
	}
}

// openAIPassthrough forwards upstream's OpenAI events as they came and keeps
// the last one carrying usage, which holds the totals.
type openAIPassthrough struct{ usage []byte }

func (e *openAIPassthrough) Event(ev relay.Event) ([]byte, error) {
	if bytes.Contains(ev.Data, []byte(`"usage":{`)) {
		e.usage = append(e.usage[:0], ev.Data...)
	}
	return ev.Raw, nil
}

func (e *openAIPassthrough) End() []byte { return nil }

func (e *openAIPassthrough) Fail(err error) []byte { return streamErrorEvent(err) }

// openAIUsage reads token usage from an OpenAI-shaped answer (a JSON body,
// or an SSE body whose last usage-bearing event holds the totals), so the
// passthrough is accounted like the converted routes.
func openAIUsage(body []byte) bus.Usage {
	u := gjson.GetBytes(body, "usage")
	if !u.Exists() {
		for _, line := range bytes.Split(body, []byte("\n")) {
			data, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data: "))
			if ok && bytes.Contains(data, []byte(`"usage":{`)) {
				u = gjson.GetBytes(data, "usage")
			}
		}
	}
	if !u.IsObject() {
		return bus.Usage{}
	}
	reasoning := int(u.Get("completion_tokens_details.reasoning_tokens").Int())
	return bus.Usage{
		Prompt:     int(u.Get("prompt_tokens").Int()),
		Candidates: int(u.Get("completion_tokens").Int()) - reasoning,
		Thoughts:   reasoning,
		Cached:     int(u.Get("prompt_tokens_details.cached_tokens").Int()),
		Total:      int(u.Get("total_tokens").Int()),
	}
}

// copyAnswer sends an upstream answer as it came, with retry hints on a 429.
func copyAnswer(c *gin.Context, resp *relay.Response) {
	ct := "application/json"
	if resp.Header != nil && resp.Header.Get("Content-Type") != "" {
		ct = resp.Header.Get("Content-Type")
	}
	if resp.Status == http.StatusTooManyRequests {
		setRetryHeaders(c.Writer.Header(), fromRelay(resp).retryAfter)
	}
	c.Data(resp.Status, ct, resp.Body)
}

// keepAllowedData drops from an OpenAI models list the entries the client
// token's allow-list does not admit.
func keepAllowedData(c *gin.Context, body []byte) []byte {
	data := gjson.GetBytes(body, "data")
	if !data.IsArray() {
		return body
	}
	kept := make([]json.RawMessage, 0, len(data.Array()))
	data.ForEach(func(_, m gjson.Result) bool {
		if allowed(c, m.Get("id").Str) {
			kept = append(kept, json.RawMessage(m.Raw))
		}
		return true
	})
	out, err := sjson.SetBytes(body, "data", kept)
	if err != nil {
		return body
	}
	return out
}
