package openai

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/tidwall/gjson"

	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/outcome"
)

const routePassthrough = "openai.passthrough"

// passthrough forwards /openai/v1/* to the upstream's own OpenAI-compatible
// endpoint ({BASE_URL}/v1beta/openai/*) with a pool key. The body goes whole,
// unknown fields included; the answer comes back as upstream gave it, and a
// stream is relayed event by event.
func (h *handlers) passthrough(c *gin.Context) {
	rec := record(c, routePassthrough, "")
	body, ok := readBody(c)
	if !ok {
		return
	}
	if len(body) == 0 {
		body = nil
	}
	model := ""
	stream := false
	if len(body) > 0 && gjson.ValidBytes(body) {
		r := gjson.ParseBytes(body)
		model = trimModel(r.Get("model").String())
		stream = r.Get("stream").Bool()
	}
	rec.Model = model
	path := c.Param("path")
	hdr := http.Header{}
	if ct := c.GetHeader("Content-Type"); ct != "" && body != nil {
		hdr.Set("Content-Type", ct)
	}
	rreq := &relay.Request{Route: routePassthrough, ErrorType: "openai-compatiable-non-stream", Model: model, Method: c.Request.Method,
		Path: "/v1beta/openai" + path, Query: withoutKey(c.Request.URL.RawQuery), Header: hdr, Body: body}
	if stream {
		// Relayed whole for now: the relay's committed-stream path judges
		// content by Gemini's framing and would count every OpenAI-framed
		// stream as empty against the key. Clients still get valid SSE.
		rreq.ErrorType = "openai-compatiable-stream"
	}
	resp := h.Relay.Do(c.Request.Context(), rreq)
	if resp.Local || resp.Class == outcome.KeyInvalid {
		writeUpstreamError(c, resp)
		return
	}
	if stream {
		rec.Stream = true
	}
	if resp.OK() {
		rec.Usage = openAIUsage(resp.Body)
	}
	copyAnswer(c, resp)
}

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

// withoutKey drops a client credential from the query.
func withoutKey(raw string) string {
	if raw == "" || !strings.Contains(raw, "key=") {
		return raw
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return ""
	}
	q.Del("key")
	return q.Encode()
}
