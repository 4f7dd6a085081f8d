package openai

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/relay"
)

const routeResponses = "openai.responses"

// responses serves POST responses (the OpenAI Responses API, as Codex and
// the OpenAI SDKs speak it): convert to Gemini, relay with failover before
// the first byte, convert back to a response object or to Responses SSE
// events. It shares chat's relay, stream pump and error shape.
//
// Nothing is stored (edge is stateless and keeps no conversations):
// store:true and previous_response_id get a 400 naming the field, and
// GET/DELETE responses/{id} a 404 saying so.
func (h *handlers) responses(c *gin.Context) {
	rec := record(c, routeResponses, "")
	body, ok := readBody(c)
	if !ok {
		return
	}
	req, err := convert.ParseResponsesRequest(body)
	if err != nil {
		writeBadRequest(c, err)
		return
	}
	rec.Model = req.Model
	st := h.Settings.Get()
	plan, err := convert.ResponsesToGemini(c.Request.Context(), req, convert.Options{Settings: st, Fetcher: h.Fetcher})
	if err != nil {
		writeBadRequest(c, err)
		return
	}
	rec.Model = plan.Model.Requested
	gbody, ok := h.geminiBody(c, routeResponses, plan.Model, plan.Drops, plan.Body)
	if !ok {
		return
	}
	// The file check reads the Gemini body: every file the Responses
	// request names (file_id, image_url, file_url) is a fileUri there.
	pin, ok := h.checkFiles(c, gbody, rec.TokenID)
	if !ok {
		return
	}
	meta := plan.Meta("resp_"+convert.RandomID(32), h.Now().Unix())
	h.relayConverted(c, st, relayPlan{
		Request:   &relay.Request{Route: routeResponses, Model: plan.Model.Upstream, Body: gbody, CheckEmpty: true, PinKeyID: pin},
		errorType: "openai-responses", stream: plan.Stream, model: meta.Model,
		once: func(g *convert.GenerateContentResponse) any { return convert.ResponseFromGemini(g, meta) },
		conv: func() streamConverter { return convert.NewResponsesStream(meta) },
	})
}

// storedResponse answers GET, DELETE and cancel of responses/{id}: no
// response is ever stored here.
func (h *handlers) storedResponse(c *gin.Context) {
	record(c, routeResponses, "")
	WriteError(c, http.StatusNotFound, "No response with id '"+c.Param("id")+"': this gateway stores no responses (store: false)", "invalid_request_error", "response_id", "not_found")
}
