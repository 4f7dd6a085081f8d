package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gemini-balance-go/shared/config"
)

// The README's configuration tables must list every variable shared/config
// reads, with its real default, so the docs cannot drift from the code.
func TestReadmeListsEveryConfigVariableWithItsDefault(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	if !strings.HasPrefix(readme, "# Gemini Balance (Go)\n\n```sh\nmake run\nmake test\n```") {
		t.Error("README must open with exactly `make run` and `make test`")
	}
	for _, f := range config.Fields() {
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(f.Name) + "` \\| ([^|]*) \\|").FindStringSubmatch(readme)
		if row == nil {
			t.Errorf("README does not list %s", f.Name)
			continue
		}
		got := strings.Trim(strings.TrimSpace(row[1]), "`")
		if got != f.Default {
			t.Errorf("README default of %s = %q, config says %q", f.Name, got, f.Default)
		}
	}
}
