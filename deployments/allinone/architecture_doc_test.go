package main

import (
	"os"
	"path/filepath"
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
		for name, coll := range stringConstants(t, filepath.Join("../..", dir)) {
			if !strings.HasPrefix(name, "Coll") && !strings.HasSuffix(name, "Collection") {
				continue
			}
			n++
			if !strings.Contains(owners, "`"+coll) {
				t.Errorf("%s: collection %q (%s) missing from ARCHITECTURE.md's Who owns what", dir, coll, name)
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d collection constants", n)
	}
}
