package openai

import (
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
	gbody, ok := h.geminiBody(c, routeChat, plan.Model, plan.Drops, plan.Body)
	if !ok {
		return
	}
	meta := plan.Meta("chatcmpl-"+convert.RandomID(29), h.Now().Unix())
	up := plan.Model.Upstream
	if models.IsImagen(up) { // {CREATE_IMAGE_MODEL}-chat on Imagen
		h.imagenChat(c, plan, meta)
		return
	}
	h.relayConverted(c, st, relayPlan{
		Request:   &relay.Request{Route: routeChat, Model: up, Body: gbody, CheckEmpty: true, PinKeyID: pin},
		errorType: "openai-chat", stream: plan.Stream, model: meta.Model,
		once: func(g *convert.GenerateContentResponse) any { return convert.FromGemini(g, meta) },
		conv: func() streamConverter { return convert.NewStream(meta, plan.IncludeUsage) },
	})
}
