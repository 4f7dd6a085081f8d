package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gemini-balance-go/shared/bus"
)

// docs/EVENTS.md must name every subject, stream and bucket of shared/bus.
func TestEventsDocNamesEveryBusConstant(t *testing.T) {
	doc, err := os.ReadFile("../../docs/EVENTS.md")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "../../shared/bus/subjects.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		lit, ok := node.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		v, _ := strconv.Unquote(lit.Value)
		n++
		if !strings.Contains(string(doc), "`"+v+"`") && !strings.Contains(string(doc), v) {
			t.Errorf("docs/EVENTS.md does not mention %q", v)
		}
		return true
	})
	if n < 20 {
		t.Fatalf("found only %d constants in shared/bus/subjects.go", n)
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
