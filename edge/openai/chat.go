package openai

import (
	"encoding/json"
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

// chatStream relays a real upstream stream as chat.completion.chunk events
// (pumpStream).
func (h *handlers) chatStream(c *gin.Context, rreq *relay.Request, meta convert.ResponseMeta, includeUsage bool) {
	h.pumpStream(c, rreq, routeChat, meta.Model, convert.NewStream(meta, includeUsage))
}

// chatFakeStream is FAKE_STREAM_ENABLED for chat (fakeStream).
func (h *handlers) chatFakeStream(c *gin.Context, rreq *relay.Request, meta convert.ResponseMeta, includeUsage bool, every time.Duration) {
	h.fakeStream(c, rreq, routeChat, meta.Model, convert.NewStream(meta, includeUsage), every)
}
