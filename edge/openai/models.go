package openai

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/auth"
	"github.com/gemini-balance-go/edge/convert"
	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/relay"
)

const routeModels = "openai.models"

// modelCreated is the "created" stamp of every listed model: Gemini gives
// none, and a fixed value keeps the list stable for clients that cache it.
const modelCreated = 1735689600 // 2025-01-01

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// listModels serves GET models: upstream's list without FILTERED_MODELS,
// with the derived models, in OpenAI's list shape.
func (h *handlers) listModels(c *gin.Context) {
	record(c, routeModels, "")
	resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: routeModels, Method: http.MethodGet, Path: "/v1beta/models", Query: "pageSize=1000"})
	if !resp.OK() {
		writeUpstreamError(c, resp)
		return
	}
	var list struct {
		Models []struct {
			Name string `json:"name"`
		} `json:"models"`
	}
	if err := json.Unmarshal(models.RewriteModelList(resp.Body, h.Settings.Get()), &list); err != nil {
		WriteError(c, http.StatusBadGateway, "upstream answered with an unexpected models body", "server_error", "", "")
		return
	}
	data := make([]model, 0, len(list.Models))
	for _, m := range list.Models {
		if allowed(c, m.Name) {
			data = append(data, model{ID: strings.TrimPrefix(m.Name, "models/"), Object: "model", Created: modelCreated, OwnedBy: "google"})
		}
	}
	if im := h.Settings.Get().CreateImageModel; im != "" && models.Allowed(auth.From(c).Models, models.Model{Requested: im + models.SuffixChat, Upstream: im}) {
		data = append(data, model{ID: im + models.SuffixChat, Object: "model", Created: modelCreated, OwnedBy: "google"})
	}
	c.JSON(http.StatusOK, gin.H{"object": "list", "data": data})
}

// getModel serves GET models/{id}, derived names included.
func (h *handlers) getModel(c *gin.Context) {
	id := trimModel(c.Param("id"))
	record(c, routeModels, id)
	m, err := convert.ResolveModel(id, h.Settings.Get())
	if err != nil {
		WriteError(c, http.StatusNotFound, "The model '"+id+"' does not exist", "invalid_request_error", "model", "model_not_found")
		return
	}
	if !allowModel(c, m) {
		return
	}
	if m.Requested == h.Settings.Get().CreateImageModel+models.SuffixChat {
		c.JSON(http.StatusOK, model{ID: m.Requested, Object: "model", Created: modelCreated, OwnedBy: "google"})
		return
	}
	resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: routeModels, Method: http.MethodGet, Model: m.Upstream, Path: "/v1beta/models/" + m.Upstream})
	if !resp.OK() {
		if resp.Status == http.StatusNotFound {
			WriteError(c, http.StatusNotFound, "The model '"+id+"' does not exist", "invalid_request_error", "model", "model_not_found")
			return
		}
		writeUpstreamError(c, resp)
		return
	}
	c.JSON(http.StatusOK, model{ID: m.Requested, Object: "model", Created: modelCreated, OwnedBy: "google"})
}
