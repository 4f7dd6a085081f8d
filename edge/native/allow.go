package native

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/tidwall/gjson"

	"github.com/gemini-balance-go/edge/auth"
	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/relay"
)

// allowModel applies the client token's model allow-list: a model it does
// not admit gets 403 PERMISSION_DENIED in Gemini's error shape.
func allowModel(c *gin.Context, m models.Model) bool {
	if models.Allowed(auth.From(c).Models, m) {
		return true
	}
	relay.WriteError(c.Writer, http.StatusForbidden, "this client token may not use models/"+m.Requested)
	return false
}

// KeepAllowedModels drops from a Gemini models list body the entries the
// allow-list does not admit (derived entries count as their base). An empty
// list keeps the body as it is.
func KeepAllowedModels(body []byte, allow []string) []byte {
	if len(allow) == 0 {
		return body
	}
	list := gjson.GetBytes(body, "models")
	if !list.IsArray() {
		return body
	}
	var out bytes.Buffer
	out.WriteString(`{"models":[`)
	n := 0
	list.ForEach(func(_, mdl gjson.Result) bool {
		id := strings.TrimPrefix(mdl.Get("name").Str, "models/")
		if models.Allowed(allow, models.Model{Requested: id, Upstream: id}) {
			if n > 0 {
				out.WriteByte(',')
			}
			out.WriteString(mdl.Raw)
			n++
		}
		return true
	})
	out.WriteByte(']')
	if tok := gjson.GetBytes(body, "nextPageToken"); tok.Exists() {
		out.WriteString(`,"nextPageToken":`)
		out.WriteString(tok.Raw)
	}
	out.WriteByte('}')
	return out.Bytes()
}
