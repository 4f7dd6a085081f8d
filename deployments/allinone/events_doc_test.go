package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/testkit/gosrc"
)

// busConstants returns every string constant of shared/bus (not tests), by
// name: the subjects, streams, consumers, buckets, key states, kinds and
// reasons that make up the bus contract.
func busConstants(t *testing.T) map[string]string {
	t.Helper()
	return stringConstants(t, "../../shared/bus")
}

// stringConstants returns the string constants of the package in dir (its
// non-test files), by name.
func stringConstants(t *testing.T, dir string) map[string]string {
	t.Helper()
	return gosrc.Read(t, dir).Constants
}

// docs/EVENTS.md must name every constant of shared/bus, in backquotes.
func TestEventsDocNamesEveryBusConstant(t *testing.T) {
	doc, err := os.ReadFile("../../docs/EVENTS.md")
	if err != nil {
		t.Fatal(err)
	}
	consts := busConstants(t)
	for name, v := range consts {
		if !strings.Contains(string(doc), "`"+v+"`") {
			t.Errorf("docs/EVENTS.md does not mention `%s` (bus.%s)", v, name)
		}
	}
	// The parse must see the whole contract, durables and key states included.
	for _, name := range []string{"SubjectKeyAcquire", "SubjectLogOverview", "SubjectSchedulerStatus",
		"StreamEvents", "BucketSettings", "ConsumerKeydRecover", "ConsumerLogdRetention", "KeyAdded", "KeyDeleted", "KeyUpdated"} {
		if _, ok := consts[name]; !ok {
			t.Errorf("bus.%s not found among %d constants of shared/bus", name, len(consts))
		}
	}
}

// Services and shared packages name subjects, streams, durables and buckets
// only through shared/bus, so the doc test above sees every one. Test code
// and the e2e harness may spell them out: that pins the wire names.
func TestBusNamesAreSpelledOnlyInSharedBus(t *testing.T) {
	consts := busConstants(t)
	exact := map[string]bool{}
	var prefixes []string
	for name, v := range consts {
		for _, kind := range []string{"Subject", "Stream", "Bucket", "Consumer"} {
			if strings.HasPrefix(name, kind) {
				exact[v] = true
			}
		}
		if strings.HasPrefix(name, "Subject") {
			// "gb.keyd.admin.list" → "gb.keyd": a new subject under a known
			// group is caught too.
			if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 && parts[1] != ">" {
				prefixes = append(prefixes, parts[0]+"."+parts[1])
			}
		}
	}
	if len(exact) < 40 || len(prefixes) == 0 {
		t.Fatalf("found only %d names and %d subject prefixes in shared/bus", len(exact), len(prefixes))
	}
	root := "../.."
	dirs := []string{"edge", "keyd", "logd", "admind", "schedulerd", "shared", "deployments/allinone", "deployments/embedded"}
	files := 0
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || d.Name() == "node_modules" || path == filepath.Join(root, "shared/bus") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			files++
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				bad := exact[v]
				for _, p := range prefixes {
					bad = bad || v == p || strings.HasPrefix(v, p+".")
				}
				if bad {
					t.Errorf("%s: bus name %q spelled as a literal; use its shared/bus constant", fset.Position(lit.Pos()), v)
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 100 {
		t.Fatalf("scanned only %d files", files)
	}
}

// Every JSON example in docs/EVENTS.md decodes strictly into one of the bus
// payload types, so a renamed or removed field shows up here.
func TestEventsDocExamplesMatchThePayloadTypes(t *testing.T) {
	doc, err := os.ReadFile("../../docs/EVENTS.md")
	if err != nil {
		t.Fatal(err)
	}
	types := []func() any{
		func() any { return &bus.RequestBatch{} }, func() any { return &bus.ErrorBatch{} },
		func() any { return &bus.RequestEvent{} }, func() any { return &bus.ErrorEvent{} },
		func() any { return &bus.KeyStateEvent{} }, func() any { return &bus.Tick{} },
		func() any { return &bus.DeadLetter{} }, func() any { return &bus.AcquireRequest{} },
		func() any { return &bus.AcquireReply{} }, func() any { return &bus.Report{} },
		func() any { return &bus.FileBinding{} }, func() any { return &bus.ClientToken{} },
	}
	blocks := strings.Split(string(doc), "```json\n")[1:]
	checked := 0
	for _, b := range blocks {
		body := b[:strings.Index(b, "```")]
		if strings.Contains(body, `"…"`) {
			continue // the abridged settings document
		}
		checked++
		ok := false
		for _, newT := range types {
			dec := json.NewDecoder(strings.NewReader(body))
			dec.DisallowUnknownFields()
			if dec.Decode(newT()) == nil {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("example matches no bus type:\n%s", body)
		}
	}
	if checked < 9 {
		t.Errorf("checked only %d examples", checked)
	}
}

// The examples of the batch subjects are batches (a bare event would also
// pass the test above, as some type matches it).
func TestEventsDocShowsBatchesOnTheBatchSubjects(t *testing.T) {
	doc, err := os.ReadFile("../../docs/EVENTS.md")
	if err != nil {
		t.Fatal(err)
	}
	example := func(heading string) string {
		i := strings.Index(string(doc), heading)
		if i < 0 {
			t.Fatalf("no section %q", heading)
		}
		rest := string(doc)[i:]
		j := strings.Index(rest, "```json\n") + len("```json\n")
		return rest[j : j+strings.Index(rest[j:], "```")]
	}
	strict := func(body string, v any) {
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Errorf("%T example: %v", v, err)
		}
	}
	var reqs bus.RequestBatch
	strict(example("### `"+bus.SubjectEventRequests+"`"), &reqs)
	var errs bus.ErrorBatch
	strict(example("### `"+bus.SubjectEventErrors+"`"), &errs)
	if reqs.V != bus.Version || len(reqs.Events) == 0 || reqs.Events[0].ID == "" ||
		errs.V != bus.Version || len(errs.Events) == 0 || errs.Events[0].RequestID == "" {
		t.Errorf("batch examples: %+v %+v", reqs, errs)
	}
}

// The shipped NATS permissions (deployments/nats/nats.conf; the manifests
// test keeps the Helm values equal to it) let each service create, read and
// ack its durables under their shared/bus names: a renamed durable would
// otherwise fail only in a distributed deployment.
func TestNATSConfigGrantsEveryDurable(t *testing.T) {
	conf, err := os.ReadFile("../nats/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ stream, durable string }{
		{bus.StreamTicks, bus.ConsumerKeydRecover},
		{bus.StreamEvents, bus.ConsumerLogdRequests},
		{bus.StreamEvents, bus.ConsumerLogdErrors},
		{bus.StreamTicks, bus.ConsumerLogdRetention},
	} {
		for _, perm := range []string{
			"$JS.API.CONSUMER.CREATE." + c.stream + "." + c.durable + ".>",
			"$JS.API.CONSUMER.INFO." + c.stream + "." + c.durable,
			"$JS.ACK." + c.stream + "." + c.durable + ".>",
		} {
			if !strings.Contains(string(conf), `"`+perm+`"`) {
				t.Errorf("deployments/nats/nats.conf does not grant %s", perm)
			}
		}
	}
}
