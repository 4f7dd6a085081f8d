package openai

import (
	"encoding/json"
	"net/http"
	"time"

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
	if !allowModel(c, plan.Model) {
		return
	}
	h.logDrops(routeResponses, plan.Drops)
	gbody, err := json.Marshal(plan.Body)
	if err != nil {
		WriteError(c, http.StatusInternalServerError, "encode Gemini request: "+err.Error(), "server_error", "", "")
		return
	}
	// The file check reads the Gemini body: every file the Responses
	// request names (file_id, image_url, file_url) is a fileUri there.
	pin, ok := h.checkFiles(c, gbody, rec.TokenID)
	if !ok {
		return
	}
	meta := plan.Meta("resp_"+convert.RandomID(32), h.Now().Unix())
	up := plan.Model.Upstream
	rreq := &relay.Request{Route: routeResponses, Model: up, Body: gbody, CheckEmpty: true, PinKeyID: pin}
	switch {
	case !plan.Stream:
		rreq.ErrorType = "openai-responses-non-stream"
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
		c.JSON(http.StatusOK, convert.ResponseFromGemini(&g, meta))
	case st.FakeStreamEnabled:
		rreq.ErrorType = "openai-responses-stream"
		rreq.Path = "/v1beta/models/" + up + ":generateContent"
		h.fakeStream(c, rreq, routeResponses, meta.Model, convert.NewResponsesStream(meta), time.Duration(max(st.FakeStreamIntervalSeconds, 1))*time.Second)
	default:
		rreq.ErrorType = "openai-responses-stream"
		rreq.Path = "/v1beta/models/" + up + ":streamGenerateContent"
		rreq.Query = "alt=sse"
		h.pumpStream(c, rreq, routeResponses, meta.Model, convert.NewResponsesStream(meta))
	}
}

// storedResponse answers GET, DELETE and cancel of responses/{id}: no
// response is ever stored here.
func (h *handlers) storedResponse(c *gin.Context) {
	record(c, routeResponses, "")
	WriteError(c, http.StatusNotFound, "No response with id '"+c.Param("id")+"': this gateway stores no responses (store: false)", "invalid_request_error", "response_id", "not_found")
}
