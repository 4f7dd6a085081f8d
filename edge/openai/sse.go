package openai

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/relay"
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

// streamError maps an error that broke a started stream to OpenAI's error
// vocabulary: message, type and code.
func streamError(err error) (msg, typ, code string) {
	status, msg := http.StatusBadGateway, err.Error()
	var se *relay.StreamError
	var ue *convert.UpstreamError
	switch {
	case errors.As(err, &se):
		status, msg = se.Status, se.Message
	case errors.As(err, &ue):
		status, msg = ue.Code, ue.Message
	}
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
