package logstore_test

import (
	"strings"
	"testing"

	"github.com/gemini-balance-go/testkit/gosrc"
)

// The package doc lists every collection logstore owns, so a reader of
// `go doc logstore` knows the whole footprint: each Coll* constant's name
// must appear in it.
func TestPackageDocNamesEveryCollection(t *testing.T) {
	pkg := gosrc.Read(t, ".")
	colls := map[string]string{}
	for name, v := range pkg.Constants {
		if strings.HasPrefix(name, "Coll") {
			colls[name] = v
		}
	}
	if len(colls) < 13 {
		t.Fatalf("found only %d Coll* constants: %v", len(colls), colls)
	}
	for name, coll := range colls {
		if !strings.Contains(pkg.Doc, coll) {
			t.Errorf("package doc does not name %s (%s)", coll, name)
		}
	}
}
