package ui_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gemini-balance-go/admind/ui"
)

// The whole UI, gzipped file by file as served, must stay within 300 KB.
func TestAssetsFitTheGzipBudget(t *testing.T) {
	const budget = 300 * 1024
	var raw, gz int
	err := fs.WalkDir(ui.Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(ui.Static(), p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = w.Write(b)
		_ = w.Close()
		raw += len(b)
		gz += min(buf.Len(), len(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("UI assets: %.1f KB raw, %.1f KB gzipped (budget %d KB)", float64(raw)/1024, float64(gz)/1024, budget/1024)
	if gz > budget {
		t.Fatalf("UI assets are %d bytes gzipped, over the %d budget", gz, budget)
	}
}

// The vendored uPlot is exactly what `make ui-vendor` fetched from npm.
func TestVendoredUPlotMatchesItsVersionFile(t *testing.T) {
	dir := "vendor/uplot"
	v, err := fs.ReadFile(ui.Static(), dir+"/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(v))
	sc.Scan()
	if got := sc.Text(); got != "uplot@1.6.32" {
		t.Fatalf("VERSION names %q, want uplot@1.6.32", got)
	}
	checked := map[string]bool{}
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("bad VERSION line %q", sc.Text())
		}
		b, err := fs.ReadFile(ui.Static(), dir+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: sha256 %x, VERSION says %s", name, got, sum)
		}
		checked[name] = true
	}
	for _, f := range []string{"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"} {
		if !checked[f] {
			t.Errorf("VERSION has no sha256 for %s", f)
		}
	}
}

var (
	stringKey = regexp.MustCompile(`(?m)^\s*"([^"]+)"\s*:`)
	// t('ns.key') and t("ns.key") with a literal key.
	tCall = regexp.MustCompile(`\bt\(\s*['"]([a-z0-9_]+\.[A-Za-z0-9_.\-]+)['"]`)
)

func langKeys(t *testing.T, lang string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	ents, err := fs.ReadDir(ui.Static(), "i18n/"+lang)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := fs.ReadFile(ui.Static(), "i18n/"+lang+"/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		ns := strings.TrimSuffix(e.Name(), ".js")
		keys := map[string]bool{}
		for _, m := range stringKey.FindAllSubmatch(b, -1) {
			k := string(m[1])
			if keys[k] {
				t.Errorf("%s/%s: %s defined twice", lang, e.Name(), k)
			}
			if !strings.HasPrefix(k, ns+".") {
				t.Errorf("%s/%s: %s is not prefixed %q", lang, e.Name(), k, ns+".")
			}
			keys[k] = true
		}
		out[ns] = keys
	}
	return out
}

// Every page is complete in both languages: the same files, the same keys.
func TestEnglishAndChineseHaveTheSameStrings(t *testing.T) {
	en, zh := langKeys(t, "en"), langKeys(t, "zh")
	nsEN, nsZH := mapKeys(en), mapKeys(zh)
	if !slices.Equal(nsEN, nsZH) {
		t.Fatalf("string files differ: en %v, zh %v", nsEN, nsZH)
	}
	for _, ns := range nsEN {
		for k := range en[ns] {
			if !zh[ns][k] {
				t.Errorf("zh/%s.js lacks %s", ns, k)
			}
		}
		for k := range zh[ns] {
			if !en[ns][k] {
				t.Errorf("en/%s.js lacks %s", ns, k)
			}
		}
	}
}

// Every literal t('key') in the code has a string, so no raw key reaches the screen.
func TestEveryLiteralStringKeyExists(t *testing.T) {
	all := map[string]bool{}
	for _, keys := range langKeys(t, "en") {
		for k := range keys {
			all[k] = true
		}
	}
	err := fs.WalkDir(ui.Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".js" || strings.HasPrefix(p, "i18n/") || strings.HasPrefix(p, "vendor/") {
			return err
		}
		b, err := fs.ReadFile(ui.Static(), p)
		if err != nil {
			return err
		}
		for _, m := range tCall.FindAllSubmatch(b, -1) {
			if !all[string(m[1])] {
				t.Errorf("%s uses t(%q), which has no string", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Every page path has its module and its strings in both languages, and
// every asset the shell links exists: the router loads them by name.
func TestEveryPageHasItsModuleAndStrings(t *testing.T) {
	for _, p := range ui.Pages {
		name := strings.TrimPrefix(p, "/")
		for _, f := range []string{"pages/" + name + ".js", "i18n/en/" + name + ".js", "i18n/zh/" + name + ".js"} {
			if _, err := fs.Stat(ui.Static(), f); err != nil {
				t.Errorf("page %s: %v", p, err)
			}
		}
	}
	shell, err := fs.ReadFile(ui.Static(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?:href|src)="/assets/([^"]+)"`).FindAllSubmatch(shell, -1) {
		if _, err := fs.Stat(ui.Static(), string(m[1])); err != nil {
			t.Errorf("index.html links /assets/%s: %v", m[1], err)
		}
	}
}
