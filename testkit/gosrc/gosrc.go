// Package gosrc reads a Go package's source for the doc tests that hold
// docs and code to each other (every bus name in EVENTS.md, every collection
// in a package doc).
package gosrc

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Package is what the doc tests read of a package: its doc comment and its
// string constants by name (non-test files only).
type Package struct {
	Doc       string
	Constants map[string]string
}

// Read parses the package in dir; it fails the test when dir holds no
// string constant.
func Read(t testing.TB, dir string) Package {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	p := Package{Constants: map[string]string{}}
	var doc strings.Builder
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil {
			doc.WriteString(f.Doc.Text())
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						p.Constants[vs.Names[i].Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	if len(p.Constants) == 0 {
		t.Fatalf("no string constants in %s", dir)
	}
	p.Doc = doc.String()
	return p
}
