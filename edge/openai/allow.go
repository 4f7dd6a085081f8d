package openai

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/edge/auth"
	"github.com/gemini-balance-go/edge/models"
)

// allowModel applies the client token's model allow-list: a model it does
// not admit gets 403 in OpenAI's error shape, code model_not_allowed. OpenAI
// names that map onto a Gemini model (dall-e-3, tts-1, text-embedding-3-*)
// are checked as the Gemini model they map to.
func allowModel(c *gin.Context, m models.Model) bool {
	if models.Allowed(auth.From(c).Models, m) {
		return true
	}
	WriteError(c, http.StatusForbidden, "this client token may not use the model '"+m.Requested+"'", "invalid_request_error", "model", "model_not_allowed")
	return false
}

// allowed is allowModel without the answer, for filtering lists.
func allowed(c *gin.Context, id string) bool {
	id = strings.TrimPrefix(id, "models/")
	return models.Allowed(auth.From(c).Models, models.Model{Requested: id, Upstream: id})
}

// as names a Gemini model used as it is.
func as(model string) models.Model { return models.Model{Requested: model, Upstream: model} }
