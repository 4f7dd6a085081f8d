package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// docs/ARCHITECTURE.md's "Who owns what" names every MongoDB collection a
// service owns: each collection-name constant of the store packages (Coll*,
// *Collection) must appear in it, so a new collection cannot go unlisted.
func TestArchitectureDocNamesEveryCollection(t *testing.T) {
	doc, err := os.ReadFile("../../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(doc), "## Who owns what")
	if i < 0 {
		t.Fatal(`docs/ARCHITECTURE.md has no "## Who owns what"`)
	}
	owners := string(doc)[i:]
	owners = owners[:strings.Index(owners[3:], "\n## ")+3]
	n := 0
	for _, dir := range []string{"keyd/keystore", "logd/logstore", "admind/auth", "admind/settings", "admind/tokens"} {
		files, err := filepath.Glob(filepath.Join("../..", dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for k, v := range vs.Values {
						name := vs.Names[k].Name
						lit, ok := v.(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING || !(strings.HasPrefix(name, "Coll") || strings.HasSuffix(name, "Collection")) {
							continue
						}
						coll, _ := strconv.Unquote(lit.Value)
						n++
						if !strings.Contains(owners, "`"+coll) {
							t.Errorf("%s: collection %q (%s) missing from ARCHITECTURE.md's Who owns what", dir, coll, name)
						}
					}
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d collection constants", n)
	}
}
