package openai

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/config"
)

// streamConverter turns Gemini stream chunks into one route's SSE events:
// convert.Stream (chat completions) and convert.ResponsesStream (Responses
// API) implement it, so both routes share one pump and one fake stream.
type streamConverter interface {
	Feed(dst, data []byte) ([]byte, error)
	FeedResponse(dst []byte, r *convert.GenerateContentResponse) []byte
	Finish(dst []byte) []byte
	// Fail ends a stream that broke after its first byte, in the route's way.
	Fail(dst []byte, message, typ, code string) []byte
}

// pumpStream relays a real upstream stream through conv (relay.Pump).
// Before the first event the relay may fail over and the client gets a
// truthful error status; after it, a failure ends the stream with conv's
// error event and nothing is repeated.
func (h *handlers) pumpStream(c *gin.Context, rreq *relay.Request, route, model string, conv streamConverter) {
	rec := record(c, route, model)
	resp := h.Relay.Stream(c.Request.Context(), rreq)
	if resp.Stream == nil {
		writeUpstreamError(c, resp)
		return
	}
	relay.SetSSEHeaders(c.Writer.Header())
	fail := func(dst []byte, err error) []byte {
		msg, typ, code := streamError(err)
		return conv.Fail(dst, msg, typ, code)
	}
	if err := relay.Pump(c.Writer, resp.Stream, relay.Convert(conv, fail)); err != nil {
		rec.Failed, rec.ClientError = true, err.Error()
	}
}

// StreamFailure is the status and message of an error that broke a
// started stream: the relay's *relay.StreamError, an upstream error event
// the converter met (*convert.UpstreamError), else 502 and the error text.
// The Messages route reports it too, in Anthropic's shape.
func StreamFailure(err error) (status int, msg string) {
	status, msg = http.StatusBadGateway, err.Error()
	var se *relay.StreamError
	var ue *convert.UpstreamError
	switch {
	case errors.As(err, &se):
		status, msg = se.Status, se.Message
	case errors.As(err, &ue):
		status, msg = ue.Code, ue.Message
	}
	return status, msg
}

// streamError maps an error that broke a started stream to OpenAI's error
// vocabulary: message, type and code.
func streamError(err error) (msg, typ, code string) {
	status, msg := StreamFailure(err)
	typ = "server_error"
	if status == http.StatusTooManyRequests {
		typ, code = "requests", "rate_limit_exceeded"
	} else if status >= 400 && status < 500 {
		typ = "invalid_request_error"
	}
	return msg, typ, code
}

// streamErrorEvent is the chat error event that ends a broken stream.
func streamErrorEvent(err error) []byte {
	msg, typ, code := streamError(err)
	return convert.AppendStreamError(nil, msg, typ, code)
}

// fakeStream (FAKE_STREAM_ENABLED) makes one non-stream upstream call and
// sends ": keep-alive" comments while it runs, for clients behind proxies
// that buffer real streams. Headers wait for the first keep-alive, so an
// upstream failure before then still gets its true status.
func (h *handlers) fakeStream(c *gin.Context, rreq *relay.Request, route, model string, conv streamConverter, every time.Duration) {
	rec := record(c, route, model)
	done := make(chan *relay.Response, 1)
	go func() { done <- h.Relay.Do(c.Request.Context(), rreq) }()
	w := c.Writer
	started := false
	tick := time.NewTicker(every)
	defer tick.Stop()
	var resp *relay.Response
	for resp == nil {
		select {
		case resp = <-done:
		case <-tick.C:
			if !started {
				relay.SetSSEHeaders(w.Header())
				w.WriteHeader(http.StatusOK)
				started = true
			}
			_, _ = w.Write([]byte(": keep-alive\n\n"))
			w.Flush()
		}
	}
	rec.Stream = true
	if !resp.OK() {
		if !started {
			writeUpstreamError(c, resp)
			return
		}
		e := fromRelay(resp)
		rec.Failed, rec.ClientError = true, e.msg
		_, _ = w.Write(conv.Fail(nil, e.msg, e.typ, e.code))
		w.Flush()
		return
	}
	var g convert.GenerateContentResponse
	if err := json.Unmarshal(resp.Body, &g); err != nil {
		if !started {
			WriteError(c, http.StatusBadGateway, "upstream answered with invalid JSON: "+err.Error(), "server_error", "", "")
			return
		}
		_, _ = w.Write(conv.Fail(nil, "upstream answered with invalid JSON", "server_error", ""))
		return
	}
	if !started {
		relay.SetSSEHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
	}
	out := conv.FeedResponse(nil, &g)
	out = conv.Finish(out)
	_, _ = w.Write(out)
	w.Flush()
}

// geminiBody is the part of a converted route between conversion and relay:
// the token's model allow-list, the drops log and the Gemini JSON body.
func (h *handlers) geminiBody(c *gin.Context, route string, m models.Model, drops []convert.Drop, body *convert.GenerateContentRequest) ([]byte, bool) {
	if !allowModel(c, m) {
		return nil, false
	}
	h.logDrops(route, drops)
	gbody, err := json.Marshal(body)
	if err != nil {
		WriteError(c, http.StatusInternalServerError, "encode Gemini request: "+err.Error(), "server_error", "", "")
		return nil, false
	}
	return gbody, true
}

// relayPlan is a converted chat or Responses request ready to relay, and
// how its answer is converted back.
type relayPlan struct {
	*relay.Request        // Route, Model, Body, CheckEmpty, PinKeyID; the rest is set here
	errorType      string // error event type stem: "-stream" or "-non-stream" is added
	stream         bool
	model          string // the requested model, for the request event
	once           func(*convert.GenerateContentResponse) any
	conv           func() streamConverter
}

// relayConverted relays a converted request one of three ways: one
// generateContent call answered at once, FAKE_STREAM_ENABLED's keep-alive
// stream over one call, or a real stream through the pump.
func (h *handlers) relayConverted(c *gin.Context, st *config.Settings, p relayPlan) {
	rreq, up := p.Request, p.Request.Model
	switch {
	case !p.stream:
		rreq.ErrorType = p.errorType + "-non-stream"
		rreq.Path = "/v1beta/models/" + up + ":generateContent"
		resp := h.Relay.Do(c.Request.Context(), rreq)
		if !resp.OK() {
			writeUpstreamError(c, resp)
			return
		}
		var g convert.GenerateContentResponse
		if err := json.Unmarshal(resp.Body, &g); err != nil {
			WriteError(c, http.StatusBadGateway, "upstream answered with invalid JSON: "+err.Error(), "server_error", "", "")
			return
		}
		c.JSON(http.StatusOK, p.once(&g))
	case st.FakeStreamEnabled:
		rreq.ErrorType = p.errorType + "-stream"
		rreq.Path = "/v1beta/models/" + up + ":generateContent"
		h.fakeStream(c, rreq, rreq.Route, p.model, p.conv(), time.Duration(max(st.FakeStreamIntervalSeconds, 1))*time.Second)
	default:
		rreq.ErrorType = p.errorType + "-stream"
		rreq.Path = "/v1beta/models/" + up + ":streamGenerateContent"
		rreq.Query = "alt=sse"
		h.pumpStream(c, rreq, rreq.Route, p.model, p.conv())
	}
}
