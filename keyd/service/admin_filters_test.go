package service

import (
	"testing"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/shared/redact"
)

// The key table filters by valid/invalid and failure count in keyd itself,
// and "copy keys" exports full keys by status or by the ids picked.
func TestListFiltersValidAndFailureCountAndExportGivesFullKeys(t *testing.T) {
	st := newStack(t)
	st.start(replicaOpts{name: "a", settings: settingsWith(geminiKey(1), geminiKey(2), geminiKey(3), geminiKey(4))})
	ids := []string{redact.ID(geminiKey(1)), redact.ID(geminiKey(2)), redact.ID(geminiKey(3)), redact.ID(geminiKey(4))}
	dis := call[keyapi.ChangeReply](t, st.nc, bus.SubjectKeyDisable, keyapi.Selection{IDs: ids[:1], Reason: "test"})
	if dis.Changed != 1 {
		t.Fatalf("disable = %+v", dis)
	}
	// Two soft failures on key 2 (5xx counts toward MAX_FAILURES).
	for range 2 {
		report(t, st.nc, bus.Report{ID: ids[1], Model: testModel, Class: string(outcome.ServerError), Status: 503})
	}
	eventually(t, "two failures counted", func() bool {
		return call[keyapi.ListReply](t, st.nc, bus.SubjectKeyList, keyapi.ListRequest{MinFailures: 2}).Total == 1
	})

	valid := call[keyapi.ListReply](t, st.nc, bus.SubjectKeyList, keyapi.ListRequest{Status: keyapi.StatusValid, PageSize: 2})
	if valid.Total != 3 || len(valid.Keys) != 2 {
		t.Fatalf("valid = total %d, %d on the page; want 3 and 2", valid.Total, len(valid.Keys))
	}
	invalid := call[keyapi.ListReply](t, st.nc, bus.SubjectKeyList, keyapi.ListRequest{Status: keyapi.StatusInvalid})
	if invalid.Total != 1 || invalid.Keys[0].ID != ids[0] {
		t.Fatalf("invalid = %+v", invalid)
	}
	failing := call[keyapi.ListReply](t, st.nc, bus.SubjectKeyList, keyapi.ListRequest{Status: keyapi.StatusValid, MinFailures: 2})
	if failing.Total != 1 || failing.Keys[0].ID != ids[1] {
		t.Fatalf("valid with ≥2 failures = %+v", failing)
	}
	if bad := call[keyapi.ListReply](t, st.nc, bus.SubjectKeyList, keyapi.ListRequest{Status: "broken"}); bad.Error == "" {
		t.Fatal("an unknown status was accepted")
	}

	exp := call[keyapi.ExportReply](t, st.nc, bus.SubjectKeyExport, keyapi.ExportRequest{Status: keyapi.StatusValid})
	if len(exp.Keys) != 3 || exp.Keys[0] != geminiKey(2) {
		t.Fatalf("export valid = %v", exp.Keys)
	}
	exp = call[keyapi.ExportReply](t, st.nc, bus.SubjectKeyExport, keyapi.ExportRequest{Status: keyapi.StatusInvalid})
	if len(exp.Keys) != 1 || exp.Keys[0] != geminiKey(1) {
		t.Fatalf("export invalid = %v", exp.Keys)
	}
	exp = call[keyapi.ExportReply](t, st.nc, bus.SubjectKeyExport, keyapi.ExportRequest{IDs: []string{ids[3], "nope", ids[0]}})
	if len(exp.Keys) != 2 || exp.Keys[0] != geminiKey(4) || exp.Keys[1] != geminiKey(1) {
		t.Fatalf("export by ids = %v, want keys 4 and 1 in that order", exp.Keys)
	}
}
