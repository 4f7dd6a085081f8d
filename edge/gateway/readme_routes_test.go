package gateway_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// The README's "Client routes" table must name every route edge registers,
// so a new surface cannot ship undocumented. Aliases (/gemini/v1beta,
// /gemini/v1, /hf/v1, the second upload path) are documented once, in
// the prose above the table.
func TestReadmeListsEveryClientRoute(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "## Client routes")
	if start < 0 {
		t.Fatal(`README has no "## Client routes" section`)
	}
	section := readme[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:GET|POST|PUT|PATCH|DELETE|ANY) /[^`]*)`").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}

	e := newEnv(t, envOptions{})
	engine, ok := e.gw.Handler().(*gin.Engine)
	if !ok {
		t.Fatalf("edge's handler is %T, not a gin engine", e.gw.Handler())
	}
	alias := strings.NewReplacer("/gemini/upload/v1beta/", "/upload/v1beta/", "/gemini/v1beta/", "/v1beta/", "/gemini/v1/", "/v1beta/", "/hf/v1/", "/v1/")
	param := regexp.MustCompile(`[:*]([A-Za-z_]+)`)
	seen := map[string]bool{}
	for _, r := range engine.Routes() {
		path := param.ReplaceAllStringFunc(alias.Replace(r.Path), func(p string) string {
			if p[0] == '*' {
				return "{" + p[1:] + "...}"
			}
			return "{" + p[1:] + "}"
		})
		method := r.Method
		if strings.HasSuffix(path, "...}") {
			method = "ANY" // gin's Any registers every method
		}
		want := method + " " + path
		if seen[want] {
			continue
		}
		seen[want] = true
		if !documented[want] {
			t.Errorf("README's Client routes table does not list `%s`", want)
		}
	}
	if len(seen) < 30 {
		t.Fatalf("only %d routes found; the walk is broken", len(seen))
	}
}
