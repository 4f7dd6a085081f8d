package server

import (
	_ "embed"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/goccy/go-yaml"
)

// openAPIYAML is a copy of docs/openapi.yaml (the canonical file, which
// people read and the route test checks); TestEmbeddedOpenAPIIsTheDocsCopy
// fails when they differ.
//
//go:generate cp ../../docs/openapi.yaml openapi.yaml
//go:embed openapi.yaml
var openAPIYAML []byte

var openAPIJSON = sync.OnceValues(func() ([]byte, error) { return yaml.YAMLToJSON(openAPIYAML) })

// openAPI serves the document as JSON. It is public: it describes routes and
// shapes and carries no secret, and tools fetch it without credentials.
func openAPI(c *gin.Context) {
	doc, err := openAPIJSON()
	if err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": "openapi document: " + err.Error()})
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", doc)
}
