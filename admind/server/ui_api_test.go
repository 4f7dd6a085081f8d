package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/natsx"
)

// The embedded copy served at /api/openapi.json is docs/openapi.yaml;
// `go generate ./admind/server` refreshes it.
func TestEmbeddedOpenAPIIsTheDocsCopy(t *testing.T) {
	docs, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, emb) {
		t.Fatal("admind/server/openapi.yaml differs from docs/openapi.yaml: run `go generate ./admind/server`")
	}
}

func TestOpenAPIJSONIsServedWithoutLoginAndMatchesTheDocument(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	code, body, resp := e.do(t, "GET", "/api/openapi.json", "", "")
	if code != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/openapi.json: %d %s", code, resp.Header.Get("Content-Type"))
	}
	var served struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &served); err != nil {
		t.Fatal(err)
	}
	doc, _ := loadOpenAPI(t)
	if served.OpenAPI != doc.OpenAPI || len(served.Paths) != len(doc.Paths) || served.Paths["/api/live"]["get"] == nil {
		t.Fatalf("served %s with %d paths, document %s with %d", served.OpenAPI, len(served.Paths), doc.OpenAPI, len(doc.Paths))
	}
	var y map[string]any
	if err := yaml.Unmarshal([]byte(body), &y); err != nil { // JSON is YAML: the served body parses as the same tree
		t.Fatal(err)
	}
}

func TestConfigResetRestoresDefaultsButKeepsTheAdminPassword(t *testing.T) {
	nc, db := infra(t)
	sd := seed()
	sd.MaxRetries, sd.TestModel, sd.SearchModels = 9, "custom-model", []string{"a-model"}
	e := start(t, nc, db, sd)
	code, body, _ := e.call(t, "POST", "/api/config/reset", "", "")
	if code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	def := config.Defaults()
	var got map[string]any
	_ = json.Unmarshal([]byte(body), &got)
	if got["MAX_RETRIES"] != float64(def.MaxRetries) || got["TEST_MODEL"] != def.TestModel || strings.Contains(body, adminPW) {
		t.Fatalf("reset answer: %s", body)
	}
	// Saved and published: the bucket holds the defaults and still no password.
	pub, _, _ := natsx.FetchSettings(t.Context(), e.js)
	if pub.MaxRetries != def.MaxRetries || pub.TestModel != def.TestModel || len(pub.AllowedTokens) != 0 || pub.AuthToken != "" {
		t.Fatalf("published after reset: retries %d model %q tokens %v auth %q", pub.MaxRetries, pub.TestModel, pub.AllowedTokens, pub.AuthToken)
	}
	// The admin password still works, the old client token does not log in.
	if code, _, _ := e.call(t, "GET", "/api/config", "", ""); code != 200 {
		t.Fatalf("admin password refused after reset: %d", code)
	}
	if code, _, _ := e.do(t, "POST", "/api/config/reset", clientToken, ""); code != http.StatusUnauthorized {
		t.Fatalf("reset with a client token: %d, want 401", code)
	}
}

func TestKeyExportAnswersFullKeysAsTextNeverCached(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	exp := respondOn(t, nc, bus.SubjectKeyExport, func(b []byte) answer {
		var req keyapi.ExportRequest
		_ = json.Unmarshal(b, &req)
		if req.Status == keyapi.StatusInvalid {
			return answer{body: keyapi.ExportReply{Keys: []string{}}}
		}
		return answer{body: keyapi.ExportReply{Keys: []string{apiKey1, apiKey2}}}
	})
	code, body, h := e.call(t, "GET", "/api/keys/export?status=valid&kind=gemini", "", "")
	if code != 200 || body != apiKey1+"\n"+apiKey2+"\n" || h.Get("Cache-Control") != "no-store" ||
		!strings.HasPrefix(h.Get("Content-Type"), "text/plain") || h.Get("X-Key-Count") != "2" {
		t.Fatalf("export valid: %d %q %v", code, body, h)
	}
	var req keyapi.ExportRequest
	exp.last(t, &req)
	if req.Status != keyapi.StatusValid || req.Kind != "gemini" || len(req.IDs) != 0 {
		t.Fatalf("keyd got %+v", req)
	}
	e.call(t, "GET", "/api/keys/export", "", "")
	exp.last(t, &req)
	if req.Status != "" {
		t.Fatalf("default export asked keyd for status %q, want every key", req.Status)
	}
	if code, body, h := e.call(t, "GET", "/api/keys/export?status=invalid", "", ""); code != 200 || body != "" || h.Get("X-Key-Count") != "0" {
		t.Fatalf("export of no keys: %d %q", code, body)
	}
	code, _, _ = e.call(t, "POST", "/api/keys/export", "application/json", `{"ids":["k2","k1"]}`)
	exp.last(t, &req)
	if code != 200 || len(req.IDs) != 2 || req.IDs[0] != "k2" {
		t.Fatalf("export by ids: %d, keyd got %+v", code, req)
	}
	for _, bad := range []struct{ method, path, body string }{
		{"GET", "/api/keys/export?status=cooling", ""},
		{"GET", "/api/keys/export?kind=openai", ""},
		{"POST", "/api/keys/export", `{"ids":[]}`},
		{"POST", "/api/keys/export", `not json`},
	} {
		if code, body, _ := e.call(t, bad.method, bad.path, "application/json", bad.body); code != 400 || !strings.Contains(body, `"error"`) {
			t.Errorf("%s %s %s: %d %s, want 400", bad.method, bad.path, bad.body, code, body)
		}
	}
}

func TestSchedulerRoutesAskSchedulerdAndAnswer503WhenItIsDown(t *testing.T) {
	defer server.SetBackendTimeoutsForTest(time.Second)()
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	for _, r := range []struct{ method, path string }{{"GET", "/api/scheduler"}, {"POST", "/api/scheduler/recover/run"}} {
		if code, body, _ := e.call(t, r.method, r.path, "", ""); code != 503 || !strings.Contains(body, "schedulerd") {
			t.Errorf("%s %s without schedulerd: %d %s, want 503 naming schedulerd", r.method, r.path, code, body)
		}
	}
	respondOn(t, nc, bus.SubjectSchedulerStatus, canned(bus.SchedulerStatus{Ticks: []bus.TickStatus{{Name: "recover", Enabled: true, Last: "2026-12-05T00:00", Subject: bus.SubjectTickRecover}}}))
	run := respondOn(t, nc, bus.SubjectSchedulerRun, func(b []byte) answer {
		var req bus.TickRunRequest
		_ = json.Unmarshal(b, &req)
		return answer{body: bus.TickRunReply{Name: req.Name, Slot: "manual-x", MsgID: req.Name + ":manual-x"}}
	})
	var st bus.SchedulerStatus
	e.getJSON(t, "/api/scheduler", &st)
	if len(st.Ticks) != 1 || st.Ticks[0].Last != "2026-12-05T00:00" {
		t.Fatalf("status = %+v", st)
	}
	code, body, _ := e.call(t, "POST", "/api/scheduler/retention/run", "", "")
	var req bus.TickRunRequest
	run.last(t, &req)
	if code != http.StatusAccepted || req.Name != "retention" || !strings.Contains(body, "retention:manual-x") {
		t.Fatalf("run: %d %s, schedulerd got %+v", code, body, req)
	}
	if code, _, _ := e.call(t, "POST", "/api/scheduler/bogus/run", "", ""); code != 404 {
		t.Fatalf("unknown tick: %d, want 404", code)
	}
}

// The model pickers get keyd's upstream list, or the settings' models,
// marked as such, when keyd cannot give one.
func TestModelListFallsBackToTheSettingsWhenKeydCannotAsk(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	var got struct {
		Source, Error string
		Models        []keyapi.ModelInfo
	}
	e.getJSON(t, "/api/models", &got)
	def := config.Defaults()
	if got.Source != "settings" || !strings.Contains(got.Error, "keyd") || len(got.Models) == 0 ||
		!slices.ContainsFunc(got.Models, func(m keyapi.ModelInfo) bool { return m.Name == def.TestModel }) {
		t.Fatalf("without keyd: %+v", got)
	}
	respondOn(t, nc, bus.SubjectKeyModels, canned(keyapi.ModelsReply{Models: []keyapi.ModelInfo{{Name: "gemini-live-1"}}, FetchedAt: time.Now()}))
	e.getJSON(t, "/api/models", &got)
	if got.Source != "upstream" || len(got.Models) != 1 || got.Models[0].Name != "gemini-live-1" {
		t.Fatalf("with keyd: %+v", got)
	}
}
