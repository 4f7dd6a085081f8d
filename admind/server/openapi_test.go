package server_test

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/goccy/go-yaml"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/admind/ui"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
	"github.com/gemini-balance-go/testkit/natstest"
)

const openAPIPath = "../../docs/openapi.yaml"

type openAPIDoc struct {
	OpenAPI    string                    `yaml:"openapi"`
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas struct {
			Settings struct {
				Properties map[string]any `yaml:"properties"`
			} `yaml:"Settings"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, []byte) {
	t.Helper()
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", doc.OpenAPI)
	}
	return doc, raw
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// Every route admind registers is described in docs/openapi.yaml, and every
// operation described there is registered: the document cannot drift.
func TestOpenAPIDescribesExactlyTheRegisteredRoutes(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	nc, _ := natstest.Connect(t, natstest.Start(t).URL)
	// The client connects lazily; building the routes needs no database.
	cl, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	srv, err := server.New(server.Deps{
		NC: nc, DB: cl.Database("unused"), Settings: natsx.NewSettings(config.Defaults()),
		Health: &obs.Health{}, // so that every optional route is registered
	})
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, r := range srv.Handler().(*gin.Engine).Routes() {
		if ui.Owns(r.Path) {
			continue // web pages and assets, not the REST API
		}
		registered[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for r := range registered {
		if !documented[r] {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for d := range documented {
		if !registered[d] {
			t.Errorf("docs/openapi.yaml describes %s, which admind does not serve", d)
		}
	}
}

// The Settings schema names exactly the settings variables, and every
// $ref points at a component that exists.
func TestOpenAPISchemasMatchTheSettingsAndResolve(t *testing.T) {
	doc, raw := loadOpenAPI(t)
	var want []string
	ty := reflect.TypeOf(config.Settings{})
	for i := range ty.NumField() {
		want = append(want, strings.Split(ty.Field(i).Tag.Get("json"), ",")[0])
	}
	var got []string
	for name := range doc.Components.Schemas.Settings.Properties {
		got = append(got, name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Settings schema properties\n got %v\nwant %v", got, want)
	}

	var tree map[string]any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	for _, ref := range regexp.MustCompile(`\$ref: "#/([^"]+)"`).FindAllStringSubmatch(string(raw), -1) {
		var node any = tree
		for _, part := range strings.Split(ref[1], "/") {
			m, ok := node.(map[string]any)
			if !ok {
				node = nil
				break
			}
			node = m[part]
		}
		if node == nil {
			t.Errorf("$ref #/%s does not resolve", ref[1])
		}
	}
}
