package openai

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/relay"
)

const routeChat = "openai.chat"

// chat serves POST chat/completions: convert, relay (with failover before
// the first byte), convert back.
func (h *handlers) chat(c *gin.Context) {
	rec := record(c, routeChat, "")
	body, ok := readBody(c)
	if !ok {
		return
	}
	req, err := convert.ParseChatRequest(body)
	if err != nil {
		writeBadRequest(c, err)
		return
	}
	pin, ok := h.checkFiles(c, body, rec.TokenID)
	if !ok {
		return
	}
	rec.Model = req.Model
	st := h.Settings.Get()
	plan, err := convert.ChatToGemini(c.Request.Context(), req, convert.Options{Settings: st, Fetcher: h.Fetcher})
	if err != nil {
		writeBadRequest(c, err)
		return
	}
	rec.Model = plan.Model.Requested
	if !allowModel(c, plan.Model) {
		return
	}
	h.logDrops(routeChat, plan.Drops)
	gbody, err := json.Marshal(plan.Body)
	if err != nil {
		WriteError(c, http.StatusInternalServerError, "encode Gemini request: "+err.Error(), "server_error", "", "")
		return
	}
	meta := plan.Meta("chatcmpl-"+convert.RandomID(29), h.Now().Unix())
	up := plan.Model.Upstream
	if models.IsImagen(up) { // {CREATE_IMAGE_MODEL}-chat on Imagen
		h.imagenChat(c, plan, meta)
		return
	}
	rreq := &relay.Request{Route: routeChat, Model: up, Body: gbody, CheckEmpty: true, PinKeyID: pin}
	switch {
	case !plan.Stream:
		rreq.ErrorType = "openai-chat-non-stream"
		rreq.Path = "/v1beta/models/" + up + ":generateContent"
		h.chatOnce(c, rreq, meta)
	case st.FakeStreamEnabled:
		rreq.ErrorType = "openai-chat-stream"
		rreq.Path = "/v1beta/models/" + up + ":generateContent"
		h.chatFakeStream(c, rreq, meta, plan.IncludeUsage, time.Duration(max(st.FakeStreamIntervalSeconds, 1))*time.Second)
	default:
		rreq.ErrorType = "openai-chat-stream"
		rreq.Path = "/v1beta/models/" + up + ":streamGenerateContent"
		rreq.Query = "alt=sse"
		h.chatStream(c, rreq, meta, plan.IncludeUsage)
	}
}

func (h *handlers) chatOnce(c *gin.Context, rreq *relay.Request, meta convert.ResponseMeta) {
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
	c.JSON(http.StatusOK, convert.FromGemini(&g, meta))
}

func setSSEHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx-style front proxies must not buffer
}

// chatStream relays a real upstream stream. Before the first event the relay
// may fail over and the client gets a truthful error status; after it, a
// failure ends the stream with an error event and nothing is repeated.
func (h *handlers) chatStream(c *gin.Context, rreq *relay.Request, meta convert.ResponseMeta, includeUsage bool) {
	rec := record(c, routeChat, meta.Model)
	resp := h.Relay.Stream(c.Request.Context(), rreq)
	if resp.Stream == nil {
		writeUpstreamError(c, resp)
		return
	}
	s := resp.Stream
	defer s.Close()
	w := c.Writer
	setSSEHeaders(w)
	w.WriteHeader(http.StatusOK)
	conv := convert.NewStream(meta, includeUsage)
	buf := make([]byte, 0, 4096)
	for {
		ev, err := s.Next()
		if err == io.EOF {
			buf = conv.Finish(buf[:0])
			_, _ = w.Write(buf)
			w.Flush()
			return
		}
		if err != nil {
			rec.Failed, rec.ClientError = true, err.Error()
			_, _ = w.Write(streamErrorEvent(err))
			w.Flush()
			return
		}
		if ev.Data == nil {
			continue
		}
		buf, err = conv.Feed(buf[:0], ev.Data)
		if err != nil {
			rec.Failed, rec.ClientError = true, err.Error()
			_, _ = w.Write(streamErrorEvent(err))
			w.Flush()
			return
		}
		if len(buf) == 0 {
			continue
		}
		if _, err := w.Write(buf); err != nil {
			return // client gone; Close cancels upstream
		}
		w.Flush()
	}
}

// streamErrorEvent is the OpenAI error event that ends a broken stream.
func streamErrorEvent(err error) []byte {
	status, msg := http.StatusBadGateway, err.Error()
	var se *relay.StreamError
	var ue *convert.UpstreamError
	switch {
	case errors.As(err, &se):
		status, msg = se.Status, se.Message
	case errors.As(err, &ue):
		status, msg = ue.Code, ue.Message
	}
	typ, code := "server_error", ""
	if status == http.StatusTooManyRequests {
		typ, code = "requests", "rate_limit_exceeded"
	} else if status >= 400 && status < 500 {
		typ = "invalid_request_error"
	}
	return convert.AppendStreamError(nil, msg, typ, code)
}

// chatFakeStream (FAKE_STREAM_ENABLED) makes one non-stream upstream call and
// sends ": keep-alive" comments while it runs, for clients behind proxies
// that buffer real streams. Headers wait for the first keep-alive, so an
// upstream failure before then still gets its true status.
func (h *handlers) chatFakeStream(c *gin.Context, rreq *relay.Request, meta convert.ResponseMeta, includeUsage bool, every time.Duration) {
	rec := record(c, routeChat, meta.Model)
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
				setSSEHeaders(w)
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
		_, _ = w.Write(convert.AppendStreamError(nil, e.msg, e.typ, e.code))
		w.Flush()
		return
	}
	var g convert.GenerateContentResponse
	if err := json.Unmarshal(resp.Body, &g); err != nil {
		if !started {
			WriteError(c, http.StatusBadGateway, "upstream answered with invalid JSON: "+err.Error(), "server_error", "", "")
			return
		}
		_, _ = w.Write(convert.AppendStreamError(nil, "upstream answered with invalid JSON", "server_error", ""))
		return
	}
	if !started {
		setSSEHeaders(w)
		w.WriteHeader(http.StatusOK)
	}
	conv := convert.NewStream(meta, includeUsage)
	out := conv.FeedResponse(nil, &g)
	out = conv.Finish(out)
	_, _ = w.Write(out)
	w.Flush()
}
