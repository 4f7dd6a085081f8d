package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/auth"
	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/edge/files"
	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/openai"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/guard"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/shared/redact"
)

// The Anthropic Messages API (POST /v1/messages and /v1/messages/count_tokens,
// what Claude Code and the Anthropic SDKs call), converted to Gemini by
// edge/convert and sent through the same relay as the OpenAI chat route:
// same failover before the first byte, events, key policy. Errors come in
// Anthropic's shape, {"type":"error","error":{"type","message"}}.
const (
	routeMessages    = "anthropic.messages"
	routeCountTokens = "anthropic.count_tokens"
)

type messagesRoutes struct {
	g       *Gateway
	fetcher convert.Fetcher
}

// mountMessages mounts the Anthropic routes with the client-token check in
// Anthropic's error shape (x-api-key or Authorization: Bearer).
func (g *Gateway) mountMessages(e *gin.Engine) {
	m := &messagesRoutes{g: g, fetcher: openai.NewFetcher(openai.FetcherOptions{})}
	reject := func(c *gin.Context, status int, msg string) {
		if strings.HasPrefix(msg, "missing") {
			msg = "missing client token: pass it as x-api-key or Authorization: Bearer"
		}
		writeAnthropicError(c, status, "authentication_error", msg)
	}
	grp := e.Group("/v1", g.AuthWith(reject))
	grp.POST("/messages", m.create)
	grp.POST("/messages/count_tokens", m.countTokens)
}

// anthropicErrorType is Anthropic's error type for a status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusConflict:
		return "conflict_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 400 && status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

func anthropicErrorJSON(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}{Type: "error", Error: struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}{typ, msg}})
	return b
}

func writeAnthropicError(c *gin.Context, status int, typ, msg string) {
	c.Data(status, "application/json", anthropicErrorJSON(typ, msg))
}

// anthropicUpstream maps a failed relay answer to Anthropic's vocabulary.
// The status stays truthful: upstream's own, except that a rejected upstream
// key is not the client's fault (503), upstream's 503 is Anthropic's 529
// overloaded (which Claude Code retries), and a gone client is 408.
func anthropicUpstream(resp *relay.Response) (status int, typ, msg string, retryAfter time.Duration) {
	status, msg = resp.Status, redact.Text(resp.Message())
	switch {
	case resp.NoKey != "":
	case resp.Class == outcome.KeyInvalid:
		status, msg = http.StatusServiceUnavailable, "every upstream key tried was rejected: "+msg
	case status == http.StatusServiceUnavailable:
		status = 529
	case status == 499:
		status = http.StatusRequestTimeout
	}
	if status == http.StatusTooManyRequests {
		retryAfter = resp.RetryAfter
		if retryAfter <= 0 {
			retryAfter = outcome.Classify(resp.Status, resp.Body).RetryDelay
		}
		if retryAfter <= 0 {
			retryAfter = 5 * time.Second
		}
	}
	return status, anthropicErrorType(status), msg, retryAfter
}

func writeAnthropicUpstream(c *gin.Context, resp *relay.Response) {
	status, typ, msg, retry := anthropicUpstream(resp)
	if retry > 0 {
		h := c.Writer.Header()
		h.Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(retry.Milliseconds(), 10))
	}
	writeAnthropicError(c, status, typ, msg)
}

// admitted is a converted request that may go upstream.
type admitted struct {
	plan *convert.MessagesPlan
	body []byte // the Gemini request body
	pin  string // the key that owns a referenced file, if any
}

// admit reads and converts a request, answering every refusal itself: body
// limits, bad JSON, a claude-* model (404), a field the client must fix
// (400), a model the token may not use or a file it may not reference (403).
func (m *messagesRoutes) admit(c *gin.Context, rec *events.Record, count bool) (admitted, bool) {
	body, berr := guard.ReadBody(c.Writer, c.Request, openai.MaxBody)
	if berr != nil {
		writeAnthropicError(c, berr.Status, anthropicErrorType(berr.Status), berr.Msg)
		return admitted{}, false
	}
	if err := guard.CheckJSON(body); guard.TooDeep(err) {
		writeAnthropicError(c, http.StatusBadRequest, "invalid_request_error", "invalid request body: "+err.Error())
		return admitted{}, false
	}
	st := m.g.deps.Settings.Get()
	req, err := convert.ParseMessagesRequest(body)
	var plan *convert.MessagesPlan
	if err == nil {
		rec.Model = req.Model
		if convert.IsClaudeModel(req.Model) {
			writeAnthropicError(c, http.StatusNotFound, "not_found_error", convert.ClaudeModelError(req.Model).Error())
			return admitted{}, false
		}
		plan, err = convert.MessagesToGemini(c.Request.Context(), req, convert.Options{Settings: st, Fetcher: m.fetcher}, count)
	}
	var fe *convert.FieldError
	switch {
	case errors.As(err, &fe):
		writeAnthropicError(c, http.StatusBadRequest, "invalid_request_error", fe.Error())
		return admitted{}, false
	case err != nil:
		writeAnthropicError(c, http.StatusInternalServerError, "api_error", "convert request: "+err.Error())
		return admitted{}, false
	}
	rec.Model = plan.Model.Requested
	if !models.Allowed(auth.From(c).Models, plan.Model) {
		writeAnthropicError(c, http.StatusForbidden, "permission_error", "this client token may not use the model '"+plan.Model.Requested+"'")
		return admitted{}, false
	}
	for _, d := range plan.Drops {
		m.g.log.Info("anthropic conversion dropped a field", "route", rec.Route, "field", d.Field, "reason", d.Reason)
	}
	gbody, err := json.Marshal(plan.Body)
	if err != nil {
		writeAnthropicError(c, http.StatusInternalServerError, "api_error", "encode Gemini request: "+err.Error())
		return admitted{}, false
	}
	pin, deny := files.Check(c.Request.Context(), m.g.Keys, gbody, files.Options{TokenID: rec.TokenID, Isolation: st.FilesUserIsolation, BaseURL: st.BaseURL})
	if deny != nil {
		writeAnthropicError(c, deny.Status, anthropicErrorType(deny.Status), deny.Message)
		return admitted{}, false
	}
	return admitted{plan: plan, body: gbody, pin: pin}, true
}

// create serves POST /v1/messages.
func (m *messagesRoutes) create(c *gin.Context) {
	rec := events.From(c.Request.Context())
	rec.Route = routeMessages
	a, ok := m.admit(c, rec, false)
	if !ok {
		return
	}
	up := a.plan.Model.Upstream
	meta := convert.MessagesMeta{ID: "msg_" + convert.RandomID(24), Model: a.plan.Model.Requested}
	rreq := &relay.Request{Route: routeMessages, Model: up, Body: a.body, CheckEmpty: true, PinKeyID: a.pin}
	if !a.plan.Stream {
		rreq.ErrorType = "anthropic-messages-non-stream"
		rreq.Path = "/v1beta/models/" + up + ":generateContent"
		resp := m.g.Relay.Do(c.Request.Context(), rreq)
		if !resp.OK() {
			writeAnthropicUpstream(c, resp)
			return
		}
		var g convert.GenerateContentResponse
		if err := json.Unmarshal(resp.Body, &g); err != nil {
			writeAnthropicError(c, http.StatusBadGateway, "api_error", "upstream answered with invalid JSON: "+err.Error())
			return
		}
		c.JSON(http.StatusOK, convert.MessagesFromGemini(&g, meta))
		return
	}
	rreq.ErrorType = "anthropic-messages-stream"
	rreq.Path = "/v1beta/models/" + up + ":streamGenerateContent"
	rreq.Query = "alt=sse"
	m.stream(c, rec, rreq, meta)
}

// stream relays an upstream stream as Anthropic events. Before the first
// event the relay may fail over and the client gets a truthful error
// status; after it, a failure ends the stream with an error event.
func (m *messagesRoutes) stream(c *gin.Context, rec *events.Record, rreq *relay.Request, meta convert.MessagesMeta) {
	resp := m.g.Relay.Stream(c.Request.Context(), rreq)
	if resp.Stream == nil {
		writeAnthropicUpstream(c, resp)
		return
	}
	relay.SetSSEHeaders(c.Writer.Header())
	fail := func(dst []byte, err error) []byte {
		status, msg := anthropicStreamFailure(err)
		return convert.AppendMessagesError(dst, anthropicErrorType(status), msg)
	}
	if err := relay.Pump(c.Writer, resp.Stream, relay.Convert(convert.NewMessagesStream(meta), fail)); err != nil {
		_, msg := anthropicStreamFailure(err)
		rec.Failed, rec.ClientError = true, msg
	}
}

// anthropicStreamFailure is the status and message of an error that broke
// a started stream; 503 is Anthropic's 529 overloaded_error.
func anthropicStreamFailure(err error) (int, string) {
	status, msg := openai.StreamFailure(err)
	if status == http.StatusServiceUnavailable {
		status = 529
	}
	return status, redact.Text(msg)
}

// countTokens serves POST /v1/messages/count_tokens with Gemini's
// :countTokens on the converted request (system and tools included).
func (m *messagesRoutes) countTokens(c *gin.Context) {
	rec := events.From(c.Request.Context())
	rec.Route = routeCountTokens
	a, ok := m.admit(c, rec, true)
	if !ok {
		return
	}
	body, err := a.plan.CountTokensBody()
	if err != nil {
		writeAnthropicError(c, http.StatusInternalServerError, "api_error", "encode Gemini request: "+err.Error())
		return
	}
	up := a.plan.Model.Upstream
	resp := m.g.Relay.Do(c.Request.Context(), &relay.Request{Route: routeCountTokens, Model: up, Body: body, PinKeyID: a.pin,
		Path: "/v1beta/models/" + up + ":countTokens"})
	if !resp.OK() {
		writeAnthropicUpstream(c, resp)
		return
	}
	var out struct {
		TotalTokens int `json:"totalTokens"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		writeAnthropicError(c, http.StatusBadGateway, "api_error", "upstream answered with invalid JSON: "+err.Error())
		return
	}
	c.JSON(http.StatusOK, gin.H{"input_tokens": out.TotalTokens})
}
