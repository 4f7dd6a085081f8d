package logstore_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The package doc lists every collection logstore owns, so a reader of
// `go doc logstore` knows the whole footprint: each Coll* constant's name
// must appear in it.
func TestPackageDocNamesEveryCollection(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	pkg := pkgs["logstore"]
	if pkg == nil {
		t.Fatal("package logstore not found")
	}
	var doc strings.Builder
	colls := map[string]string{}
	for _, f := range pkg.Files {
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
					lit, ok := v.(*ast.BasicLit)
					if ok && lit.Kind == token.STRING && strings.HasPrefix(vs.Names[i].Name, "Coll") {
						colls[vs.Names[i].Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	if len(colls) < 13 {
		t.Fatalf("found only %d Coll* constants: %v", len(colls), colls)
	}
	for name, coll := range colls {
		if !strings.Contains(doc.String(), coll) {
			t.Errorf("package doc does not name %s (%s)", coll, name)
		}
	}
}
