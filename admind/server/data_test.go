package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/redact"
)

// These tests stand in for keyd and logd with small responders on their
// subjects: each records what admind sent and answers a canned reply, so the
// tests check admind's translation of HTTP parameters and of answers.

// responder answers one subject and keeps every request it received.
type responder struct {
	mu  sync.Mutex
	got [][]byte
}

// answer is a canned reply: a JSON body, or a micro error (code and message).
type answer struct {
	body    any
	errCode string
	errMsg  string
	silent  bool // never answer
}

func respondOn(t *testing.T, nc *nats.Conn, subject string, f func(req []byte) answer) *responder {
	t.Helper()
	r := &responder{}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		r.mu.Lock()
		r.got = append(r.got, append([]byte(nil), m.Data...))
		r.mu.Unlock()
		a := f(m.Data)
		if a.silent {
			return
		}
		out := nats.NewMsg(m.Reply)
		if a.errCode != "" {
			out.Header.Set("Nats-Service-Error-Code", a.errCode)
			out.Header.Set("Nats-Service-Error", a.errMsg)
			out.Data, _ = json.Marshal(map[string]string{"error": a.errMsg})
		} else {
			out.Data, _ = json.Marshal(a.body)
		}
		_ = m.RespondMsg(out)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return r
}

func canned(v any) func([]byte) answer { return func([]byte) answer { return answer{body: v} } }

// last decodes the latest request into v (zeroed first); it fails if none arrived.
func (r *responder) last(t *testing.T, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		t.Fatal("admind sent no request")
	}
	if err := json.Unmarshal(r.got[len(r.got)-1], v); err != nil {
		t.Fatal(err)
	}
}

func (r *responder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (e *env) call(t *testing.T, method, path, contentType, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminPW)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (e *env) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, body, _ := e.call(t, "GET", path, "", "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// dataRoutes lists every route of keys, logs and stats, with a valid body.
var dataRoutes = []struct{ method, path, body string }{
	{"GET", "/api/keys", ""},
	{"GET", "/api/keys/all", ""},
	{"GET", "/api/keys/stats", ""},
	{"GET", "/api/keys/k1", ""},
	{"GET", "/api/keys/k1/reveal", ""},
	{"GET", "/api/keys/export?status=valid", ""},
	{"POST", "/api/keys/export", `{"ids":["k1"]}`},
	{"POST", "/api/keys", `{"text":"AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`},
	{"DELETE", "/api/keys", `{"ids":["k1"]}`},
	{"DELETE", "/api/keys/k1", ""},
	{"PATCH", "/api/keys/k1", `{"weight":2}`},
	{"POST", "/api/keys/reset", `{"all":true}`},
	{"POST", "/api/keys/enable", `{"ids":["k1"]}`},
	{"POST", "/api/keys/disable", `{"ids":["k1"]}`},
	{"POST", "/api/keys/verify", `{"ids":["k1"]}`},
	{"GET", "/api/logs/requests", ""},
	{"GET", "/api/logs/errors", ""},
	{"GET", "/api/logs/errors/e1/details", ""},
	{"DELETE", "/api/logs/errors", `{"ids":["e1"]}`},
	{"DELETE", "/api/logs/errors?before=2026-01-01T00:00:00Z", ""},
	{"DELETE", "/api/logs/errors/all", ""},
	{"DELETE", "/api/logs/errors/e1", ""},
	{"GET", "/api/stats/overview", ""},
	{"GET", "/api/stats/series", ""},
	{"GET", "/api/stats/attention-keys", ""},
	{"GET", "/api/key-usage-details/k1", ""},
}

func TestKeyLogAndStatsRoutesNeedTheAdminPasswordAndAnswer503WhileTheirServiceIsDown(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	for _, r := range dataRoutes {
		for _, cred := range []string{"", "wrong", clientToken} {
			if code, body, _ := e.do(t, r.method, r.path, cred, r.body); code != http.StatusUnauthorized {
				t.Errorf("%s %s with credential %q: %d %s, want 401", r.method, r.path, cred, code, body)
			}
		}
		// No keyd or logd runs: the answer says so at once.
		code, body, _ := e.do(t, r.method, r.path, adminPW, r.body)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "is not running") {
			t.Errorf("%s %s with keyd and logd down: %d %s, want 503 naming the service", r.method, r.path, code, body)
		}
	}
}

func TestAServiceThatDoesNotAnswerInTimeGives503(t *testing.T) {
	defer server.SetBackendTimeoutsForTest(300 * time.Millisecond)()
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	respondOn(t, nc, bus.SubjectKeyList, func([]byte) answer { return answer{silent: true} })
	respondOn(t, nc, bus.SubjectLogOverview, func([]byte) answer { return answer{silent: true} })
	for path, svc := range map[string]string{"/api/keys": "keyd", "/api/stats/overview": "logd"} {
		code, body, _ := e.call(t, "GET", path, "", "")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, svc+" did not answer") {
			t.Errorf("GET %s: %d %s, want 503 saying %s did not answer", path, code, body, svc)
		}
	}
}

func TestKeyListMapsItsParametersOntoKeydAndStaysMasked(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	keys := make([]keyapi.Key, 0, 1500)
	for i := range 1500 {
		st := bus.KeyActive
		if i%3 == 0 {
			st = bus.KeyDisabled
		}
		keys = append(keys, keyapi.Key{ID: "id" + string(rune('a'+i%26)), Hint: "AIza...xx", Kind: "gemini", Status: st, Failures: i % 5})
	}
	list := respondOn(t, nc, bus.SubjectKeyList, func(b []byte) answer {
		var req keyapi.ListRequest
		_ = json.Unmarshal(b, &req)
		size := max(req.PageSize, 1)
		from := min((max(req.Page, 1)-1)*size, len(keys))
		return answer{body: keyapi.ListReply{Keys: keys[from:min(from+size, len(keys))], Total: len(keys), Page: req.Page, PageSize: size}}
	})

	var page struct {
		Keys        []keyapi.Key `json:"keys"`
		TotalItems  int          `json:"total_items"`
		TotalPages  int          `json:"total_pages"`
		CurrentPage int          `json:"current_page"`
	}
	e.getJSON(t, "/api/keys?page=3&limit=20&search=abc&status=cooling&kind=vertex", &page)
	var req keyapi.ListRequest
	list.last(t, &req)
	if req != (keyapi.ListRequest{Kind: "vertex", Status: "cooling", Search: "abc", Page: 3, PageSize: 20}) {
		t.Errorf("keyd got %+v", req)
	}
	if page.TotalItems != 1500 || page.TotalPages != 75 || page.CurrentPage != 3 || len(page.Keys) != 20 {
		t.Errorf("page: total %d pages %d current %d keys %d", page.TotalItems, page.TotalPages, page.CurrentPage, len(page.Keys))
	}

	e.getJSON(t, "/api/keys?status=invalid", &page)
	list.last(t, &req)
	if req.Status != bus.KeyDisabled || req.PageSize != 10 || req.Page != 1 {
		t.Errorf("status=invalid asked keyd for %+v, want disabled keys, 10 on page 1", req)
	}

	// "valid" and fail_count_threshold are keyd's filters too: one call, one page.
	before := list.count()
	e.getJSON(t, "/api/keys?status=valid&fail_count_threshold=3&limit=100&page=2", &page)
	if n := list.count() - before; n != 1 {
		t.Errorf("admind made %d keyd calls for one page, want 1", n)
	}
	list.last(t, &req)
	if req != (keyapi.ListRequest{Status: keyapi.StatusValid, MinFailures: 3, Page: 2, PageSize: 100}) {
		t.Errorf("keyd got %+v", req)
	}

	for _, bad := range []string{"limit=0", "limit=1001", "page=0", "status=broken", "kind=openai", "fail_count_threshold=-1", "limit=ten"} {
		if code, body, _ := e.call(t, "GET", "/api/keys?"+bad, "", ""); code != http.StatusBadRequest {
			t.Errorf("?%s: %d %s, want 400", bad, code, body)
		}
	}

	var all struct {
		Valid   []map[string]any `json:"valid_keys"`
		Invalid []map[string]any `json:"invalid_keys"`
		Total   int              `json:"total_count"`
	}
	e.getJSON(t, "/api/keys/all", &all)
	if all.Total != 1500 || len(all.Invalid) != 500 || len(all.Valid) != 1000 {
		t.Errorf("all: total %d valid %d invalid %d", all.Total, len(all.Valid), len(all.Invalid))
	}
}

func TestSingleKeyRoutesAnswer404ForAnUnknownKeyAndOnlyRevealCarriesTheSecret(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	known := keyapi.Key{ID: "k1", Hint: "AIzaSy...AAAA", Kind: "gemini", Status: "active"}
	respondOn(t, nc, bus.SubjectKeyGet, func(b []byte) answer {
		var req keyapi.GetRequest
		_ = json.Unmarshal(b, &req)
		if req.ID == "k1" {
			return answer{body: keyapi.GetReply{Key: &known}}
		}
		return answer{body: keyapi.GetReply{Error: "not found"}}
	})
	respondOn(t, nc, bus.SubjectKeyReveal, func(b []byte) answer {
		var req keyapi.GetRequest
		_ = json.Unmarshal(b, &req)
		if req.ID == "k1" {
			return answer{body: keyapi.RevealReply{ID: "k1", Secret: apiKey1}}
		}
		return answer{body: keyapi.RevealReply{ID: req.ID, Error: "not found"}}
	})
	del := respondOn(t, nc, bus.SubjectKeyDelete, func(b []byte) answer {
		var sel keyapi.Selection
		_ = json.Unmarshal(b, &sel)
		if len(sel.IDs) == 1 && sel.IDs[0] == "k1" {
			return answer{body: keyapi.ChangeReply{Changed: 1, IDs: []string{"k1"}}}
		}
		return answer{body: keyapi.ChangeReply{IDs: []string{}}}
	})

	code, body, _ := e.call(t, "GET", "/api/keys/k1", "", "")
	if code != 200 || !strings.Contains(body, known.Hint) || strings.Contains(body, apiKey1) {
		t.Errorf("get: %d %s", code, body)
	}
	code, body, h := e.call(t, "GET", "/api/keys/k1/reveal", "", "")
	if code != 200 || !strings.Contains(body, apiKey1) || h.Get("Cache-Control") != "no-store" {
		t.Errorf("reveal: %d %s, Cache-Control %q", code, body, h.Get("Cache-Control"))
	}
	for _, r := range []struct{ method, path string }{{"GET", "/api/keys/nope"}, {"GET", "/api/keys/nope/reveal"}, {"DELETE", "/api/keys/nope"}} {
		if code, body, _ := e.call(t, r.method, r.path, "", ""); code != http.StatusNotFound {
			t.Errorf("%s %s: %d %s, want 404", r.method, r.path, code, body)
		}
	}
	if code, body, _ := e.call(t, "DELETE", "/api/keys/k1", "", ""); code != 200 || !strings.Contains(body, `"changed":1`) {
		t.Errorf("delete k1: %d %s", code, body)
	}
	code, _, _ = e.call(t, "DELETE", "/api/keys", "application/json", `{"ids":["a","b"]}`)
	var sel keyapi.Selection
	del.last(t, &sel)
	if code != 200 || len(sel.IDs) != 2 || sel.All {
		t.Errorf("bulk delete: %d, keyd got %+v", code, sel)
	}
	if code, _, _ := e.call(t, "DELETE", "/api/keys", "application/json", `{"ids":[]}`); code != 400 {
		t.Errorf("bulk delete of nothing: %d, want 400", code)
	}
}

func TestBulkAddTakesPastedTextOrJSONAndReportsKeydsCounts(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	add := respondOn(t, nc, bus.SubjectKeyAdd, func(b []byte) answer {
		var req keyapi.AddRequest
		_ = json.Unmarshal(b, &req)
		if req.Kind == "vertex" {
			return answer{body: keyapi.AddReply{Error: "unknown kind for this text"}}
		}
		return answer{body: keyapi.AddReply{Added: []keyapi.Key{{ID: "k1", Hint: "AIzaSy...AAAA"}}, Duplicates: []string{"AIzaSy...BBBB"}, Invalid: []string{}, AddedCount: 1, DupCount: 1}}
	})
	pasted := apiKey1 + "\n" + apiKey2 + "\n"
	code, body, _ := e.call(t, "POST", "/api/keys?kind=paid", "text/plain", pasted)
	var req keyapi.AddRequest
	add.last(t, &req)
	if code != 200 || req.Text != pasted || req.Kind != "paid" {
		t.Errorf("text/plain: %d %s; keyd got %+v", code, body, req)
	}
	if !strings.Contains(body, `"added_count":1`) || !strings.Contains(body, `"duplicate_count":1`) || strings.Contains(body, apiKey1) {
		t.Errorf("reply %s", body)
	}
	code, _, _ = e.call(t, "POST", "/api/keys", "application/json", `{"keys":["`+apiKey1+`"],"kind":"gemini","note":"team a"}`)
	add.last(t, &req)
	if code != 200 || len(req.Keys) != 1 || req.Note != "team a" {
		t.Errorf("json: %d; keyd got %+v", code, req)
	}
	for _, bad := range []string{`{}`, `{"text":"  "}`, `{"text":"x","kind":"openai"}`, `not json`} {
		if code, body, _ := e.call(t, "POST", "/api/keys", "application/json", bad); code != 400 {
			t.Errorf("body %s: %d %s, want 400", bad, code, body)
		}
	}
	if code, body, _ := e.call(t, "POST", "/api/keys", "application/json", `{"text":"x","kind":"vertex"}`); code != 400 || !strings.Contains(body, "unknown kind") {
		t.Errorf("keyd's refusal: %d %s, want 400 with its message", code, body)
	}
}

func TestBulkKeyActionsPassTheSelectionAndRefuseAnEmptyOne(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	seen := map[string]*responder{}
	for _, subj := range []string{bus.SubjectKeyReset, bus.SubjectKeyEnable, bus.SubjectKeyDisable} {
		seen[subj] = respondOn(t, nc, subj, canned(keyapi.ChangeReply{Changed: 1, IDs: []string{"k1"}}))
	}
	verify := respondOn(t, nc, bus.SubjectKeyVerify, canned(keyapi.VerifyReply{
		Results: []keyapi.VerifyResult{{ID: "k1", Hint: "AIza...AAAA", OK: true, State: "active"}, {ID: "k2", Hint: "AIza...BBBB", Status: 400, Error: "API key not valid", State: "disabled"}},
		OK:      1, Failed: 1,
	}))
	seen[bus.SubjectKeyVerify] = verify
	for path, subj := range map[string]string{"reset": bus.SubjectKeyReset, "enable": bus.SubjectKeyEnable, "disable": bus.SubjectKeyDisable, "verify": bus.SubjectKeyVerify} {
		code, body, _ := e.call(t, "POST", "/api/keys/"+path, "application/json", `{"status":"disabled","kind":"gemini","reason":"by hand"}`)
		var sel keyapi.Selection
		seen[subj].last(t, &sel)
		if code != 200 || sel.Status != "disabled" || sel.Kind != "gemini" || sel.Reason != "by hand" {
			t.Errorf("%s: %d %s; keyd got %+v", path, code, body, sel)
		}
		for _, bad := range []string{`{}`, `{"ids":[]}`, `{"status":"valid"}`, `{"all":true,"kind":"x"}`} {
			if code, _, _ := e.call(t, "POST", "/api/keys/"+path, "application/json", bad); code != 400 {
				t.Errorf("%s with %s: %d, want 400", path, bad, code)
			}
		}
	}
	var vr keyapi.VerifyReply
	code, body, _ := e.call(t, "POST", "/api/keys/verify", "application/json", `{"all":true}`)
	if err := json.Unmarshal([]byte(body), &vr); err != nil || code != 200 || len(vr.Results) != 2 || vr.Failed != 1 {
		t.Errorf("verify: %d %s", code, body)
	}
}

func TestRequestLogFiltersReachLogd(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	rl := respondOn(t, nc, bus.SubjectLogRequestsList, canned(logapi.RequestLogPage{Logs: []logapi.RequestLog{{ID: "r1", Model: "gemini-2.5-flash", Status: 200, Success: true}}, Total: ptr(int64(41)), TotalExact: true}))
	var page logapi.RequestLogPage
	e.getJSON(t, "/api/logs/requests?from=2026-11-01&to=2026-11-02T12:00:00%2B01:00&key=k1&model=m&token=t1&status=429&success=false&route=gemini&sort=latency&order=asc&limit=50&offset=100", &page)
	var q logapi.RequestLogQuery
	rl.last(t, &q)
	wantFrom := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	wantTo := time.Date(2026, 11, 2, 11, 0, 0, 0, time.UTC)
	if !q.From.Equal(wantFrom) || !q.To.Equal(wantTo) || q.KeyID != "k1" || q.Model != "m" || q.TokenID != "t1" ||
		q.Status != 429 || q.Success == nil || *q.Success || q.Route != "gemini" || q.SortBy != "latency" || q.Order != "asc" ||
		q.Limit != 50 || q.Offset != 100 {
		t.Errorf("logd got %+v", q)
	}
	if page.Total == nil || *page.Total != 41 || len(page.Logs) != 1 {
		t.Errorf("page %+v", page)
	}
	// A "+" left unescaped in a query arrives as a space; the offset still counts.
	e.getJSON(t, "/api/logs/requests?from=2026-11-01T10:00:00+02:00", &page)
	rl.last(t, &q)
	if !q.From.Equal(time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("from with an unescaped offset: %v", q.From)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "offset=-1", "from=yesterday", "status=42", "sort=key", "order=up", "success=maybe", "from=2026-11-02&to=2026-11-01"} {
		if code, body, _ := e.call(t, "GET", "/api/logs/requests?"+bad, "", ""); code != 400 {
			t.Errorf("?%s: %d %s, want 400", bad, code, body)
		}
	}
}

func TestErrorLogSearchTakesGeminiBalancesParameters(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	el := respondOn(t, nc, bus.SubjectLogErrorsList, canned(logapi.ErrorLogPage{Logs: []logapi.ErrorLog{{ID: "e1", Code: 429, Type: "gemini-chat-stream"}}, Total: 1}))
	var page logapi.ErrorLogPage
	e.getJSON(t, "/api/logs/errors?limit=20&offset=40&key_search=AAAA&error_search=quota&error_code_search=429&start_date=2026-11-01T08:30:00&end_date=2026-11-02T00:00:00Z&sort_by=error_code&sort_order=asc", &page)
	var q logapi.ErrorLogQuery
	el.last(t, &q)
	want := logapi.ErrorLogQuery{Search: "quota", Code: 429, KeySearch: "AAAA", From: time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC),
		To: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), SortBy: "code", Order: "asc", Limit: 20, Offset: 40}
	if !q.From.Equal(want.From) || !q.To.Equal(want.To) {
		t.Errorf("dates %v..%v, want %v..%v", q.From, q.To, want.From, want.To)
	}
	q.From, q.To, want.From, want.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if q != want {
		t.Errorf("logd got %+v\nwant       %+v", q, want)
	}
	if page.Total != 1 || page.Logs[0].ID != "e1" {
		t.Errorf("page %+v", page)
	}

	// A code that is not a number is ignored, as in gemini-balance; so are defaults.
	e.getJSON(t, "/api/logs/errors?error_code_search=abc&sort_by=id", &page)
	el.last(t, &q)
	if q.Code != 0 || q.Limit != 10 || q.SortBy != "time" || q.Order != "" {
		t.Errorf("logd got %+v", q)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "offset=-5", "start_date=01/11/2026", "sort_by=gemini_key", "sort_order=sideways"} {
		if code, body, _ := e.call(t, "GET", "/api/logs/errors?"+bad, "", ""); code != 400 {
			t.Errorf("?%s: %d %s, want 400", bad, code, body)
		}
	}
}

func TestErrorLogDetailsAndDeletesAnswerLikeGeminiBalance(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	respondOn(t, nc, bus.SubjectLogErrorsGet, func(b []byte) answer {
		var g logapi.ErrorLogGet
		_ = json.Unmarshal(b, &g)
		if g.ID == "e1" {
			return answer{body: logapi.ErrorLog{ID: "e1", Code: 500, Message: "upstream said no", RequestBody: `{"contents":[]}`}}
		}
		return answer{errCode: "404", errMsg: "not found"}
	})
	del := respondOn(t, nc, bus.SubjectLogErrorsDelete, func(b []byte) answer {
		var d logapi.ErrorLogDelete
		_ = json.Unmarshal(b, &d)
		switch {
		case len(d.IDs) == 1 && d.IDs[0] == "gone":
			return answer{body: logapi.DeleteReply{}}
		case len(d.IDs) > 0:
			return answer{body: logapi.DeleteReply{Deleted: int64(len(d.IDs))}}
		default:
			return answer{body: logapi.DeleteReply{Deleted: 7}}
		}
	})
	var el logapi.ErrorLog
	e.getJSON(t, "/api/logs/errors/e1/details", &el)
	if el.Message != "upstream said no" || el.RequestBody == "" {
		t.Errorf("details %+v", el)
	}
	if code, body, _ := e.call(t, "GET", "/api/logs/errors/e9/details", "", ""); code != 404 {
		t.Errorf("missing details: %d %s, want 404", code, body)
	}

	var d logapi.ErrorLogDelete
	if code, _, _ := e.call(t, "DELETE", "/api/logs/errors", "application/json", `{"ids":["e1","e2"]}`); code != 204 {
		t.Errorf("delete by ids: %d, want 204", code)
	}
	del.last(t, &d)
	if len(d.IDs) != 2 || d.All || !d.Before.IsZero() {
		t.Errorf("logd got %+v", d)
	}
	if code, _, _ := e.call(t, "DELETE", "/api/logs/errors/all", "", ""); code != 204 {
		t.Errorf("delete all: %d", code)
	}
	del.last(t, &d)
	if !d.All || len(d.IDs) != 0 {
		t.Errorf("delete all sent %+v", d)
	}
	if code, _, _ := e.call(t, "DELETE", "/api/logs/errors/e1", "", ""); code != 204 {
		t.Errorf("delete one: %d", code)
	}
	if code, _, _ := e.call(t, "DELETE", "/api/logs/errors/gone", "", ""); code != 404 {
		t.Errorf("delete a missing one: %d, want 404", code)
	}
	code, body, _ := e.call(t, "DELETE", "/api/logs/errors?before=2026-10-01", "", "")
	del.last(t, &d)
	if code != 200 || !strings.Contains(body, `"deleted":7`) || !d.Before.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("delete before: %d %s; logd got %+v", code, body, d)
	}
	for _, bad := range []string{`{}`, `{"ids":[]}`, `[1]`} {
		if code, _, _ := e.call(t, "DELETE", "/api/logs/errors", "application/json", bad); code != 400 {
			t.Errorf("delete with %s: %d, want 400", bad, code)
		}
	}
	if code, _, _ := e.call(t, "DELETE", "/api/logs/errors?before=soon", "", ""); code != 400 {
		t.Errorf("before=soon: %d, want 400", code)
	}
}

func TestStatsRoutesPassQueriesToLogdAndNameAttentionKeysByHint(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	respondOn(t, nc, bus.SubjectLogOverview, canned(logapi.Overview{Minute: logapi.Totals{Requests: 3, Successes: 2, Failures: 1}}))
	series := respondOn(t, nc, bus.SubjectLogSeries, canned(logapi.Series{Points: []logapi.SeriesPoint{{Hour: "2026-11-01T10"}}}))
	att := respondOn(t, nc, bus.SubjectLogAttention, canned(logapi.Attention{Code: 403, Keys: []logapi.AttentionKey{{KeyID: "k1", Count: 9}, {KeyID: "deleted", Count: 5}, {KeyID: "k2", Count: 1}}}))
	respondOn(t, nc, bus.SubjectKeyGet, func(b []byte) answer {
		var req keyapi.GetRequest
		_ = json.Unmarshal(b, &req)
		if req.ID == "deleted" {
			return answer{body: keyapi.GetReply{Error: "not found"}}
		}
		return answer{body: keyapi.GetReply{Key: &keyapi.Key{ID: req.ID, Hint: "hint-" + req.ID, Status: "cooling"}}}
	})
	usage := respondOn(t, nc, bus.SubjectLogKeyUsage, canned(logapi.KeyUsage{KeyID: "k1", Models: map[string]logapi.Totals{"gemini-2.5-flash": {Requests: 4}}}))

	var o logapi.Overview
	e.getJSON(t, "/api/stats/overview", &o)
	if o.Minute.Requests != 3 || o.Minute.Failures != 1 {
		t.Errorf("overview %+v", o.Minute)
	}

	var s logapi.Series
	e.getJSON(t, "/api/stats/series?model=gemini-2.5-pro&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", &s)
	var sq logapi.SeriesQuery
	series.last(t, &sq)
	if sq.Model != "gemini-2.5-pro" || sq.KeyID != "" || !sq.From.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || len(s.Points) != 1 {
		t.Errorf("series: logd got %+v; answer %+v", sq, s)
	}
	e.getJSON(t, "/api/stats/series?key=k1", &s)
	series.last(t, &sq)
	if sq.KeyID != "k1" || sq.Model != "" || !sq.From.IsZero() {
		t.Errorf("series by key: logd got %+v", sq)
	}
	e.getJSON(t, "/api/stats/series?key=k1&model=m&token=t1", &s)
	series.last(t, &sq)
	if sq.KeyID != "k1" || sq.Model != "m" || sq.TokenID != "t1" {
		t.Errorf("series by key, model and token: logd got %+v", sq)
	}
	for _, bad := range []string{"from=never", "to=yesterday"} {
		if code, _, _ := e.call(t, "GET", "/api/stats/series?"+bad, "", ""); code != 400 {
			t.Errorf("series ?%s: %d, want 400", bad, code)
		}
	}

	var a struct {
		Code int `json:"status_code"`
		Keys []struct {
			KeyID  string `json:"key_id"`
			Hint   string `json:"hint"`
			Status string `json:"status"`
			Count  int64  `json:"count"`
		} `json:"keys"`
	}
	e.getJSON(t, "/api/stats/attention-keys?status_code=403&limit=20", &a)
	var aq logapi.AttentionQuery
	att.last(t, &aq)
	if aq.Code != 403 || aq.Limit != 20 {
		t.Errorf("attention: logd got %+v", aq)
	}
	if a.Code != 403 || len(a.Keys) != 2 || a.Keys[0].Hint != "hint-k1" || a.Keys[0].Count != 9 || a.Keys[1].KeyID != "k2" || a.Keys[1].Status != "cooling" {
		t.Errorf("attention keys %+v, want k1 and k2 by hint, the deleted key left out", a)
	}
	e.getJSON(t, "/api/stats/attention-keys", &a)
	att.last(t, &aq)
	if aq.Code != 429 || aq.Limit != 10 {
		t.Errorf("attention defaults: logd got %+v", aq)
	}
	for _, bad := range []string{"status_code=42", "status_code=abc", "limit=0", "limit=1001"} {
		if code, _, _ := e.call(t, "GET", "/api/stats/attention-keys?"+bad, "", ""); code != 400 {
			t.Errorf("attention ?%s: %d, want 400", bad, code)
		}
	}

	var u logapi.KeyUsage
	e.getJSON(t, "/api/key-usage-details/k1?hours=8", &u)
	var uq logapi.KeyUsageQuery
	usage.last(t, &uq)
	if uq.KeyID != "k1" || uq.Hours != 8 || u.Models["gemini-2.5-flash"].Requests != 4 {
		t.Errorf("key usage: logd got %+v; answer %+v", uq, u)
	}
}

func TestLogdRefusalsKeepTheirMeaning(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	respondOn(t, nc, bus.SubjectLogRequestsList, func([]byte) answer { return answer{errCode: "400", errMsg: "sort_by must be time"} })
	respondOn(t, nc, bus.SubjectLogOverview, func([]byte) answer { return answer{errCode: "500", errMsg: "mongo: server selection timeout"} })
	if code, body, _ := e.call(t, "GET", "/api/logs/requests", "", ""); code != 400 || !strings.Contains(body, "sort_by must be time") {
		t.Errorf("logd's 400: %d %s, want 400 with its message", code, body)
	}
	code, body, _ := e.call(t, "GET", "/api/stats/overview", "", "")
	if code != http.StatusBadGateway || !strings.Contains(body, "server selection timeout") {
		t.Errorf("logd's 500: %d %s, want 502 with its message", code, body)
	}
}

func TestAFullKeyOrTokenInAFilterIsSentAsItsID(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	rl := respondOn(t, nc, bus.SubjectLogRequestsList, canned(logapi.RequestLogPage{}))
	el := respondOn(t, nc, bus.SubjectLogErrorsList, canned(logapi.ErrorLogPage{}))
	ku := respondOn(t, nc, bus.SubjectLogKeyUsage, canned(logapi.KeyUsage{}))
	keyID, tokenID := redact.ID(apiKey1), redact.ID(clientToken)

	var page logapi.RequestLogPage
	e.getJSON(t, "/api/logs/requests?key="+apiKey1+"&token="+clientToken, &page)
	var rq logapi.RequestLogQuery
	rl.last(t, &rq)
	if rq.KeyID != keyID || rq.TokenID != tokenID {
		t.Errorf("request logs: logd got key %q token %q, want the ids", rq.KeyID, rq.TokenID)
	}
	e.getJSON(t, "/api/logs/requests?key="+keyID, &page)
	rl.last(t, &rq)
	if rq.KeyID != keyID {
		t.Errorf("an id is sent as it is: %q", rq.KeyID)
	}

	var ep logapi.ErrorLogPage
	e.getJSON(t, "/api/logs/errors?key_search="+apiKey1, &ep)
	var eq logapi.ErrorLogQuery
	el.last(t, &eq)
	if eq.KeyID != keyID || eq.KeySearch != "" {
		t.Errorf("key_search with a full key: logd got key_id %q key_search %q", eq.KeyID, eq.KeySearch)
	}
	e.getJSON(t, "/api/logs/errors?key_search=AAAA", &ep)
	el.last(t, &eq)
	if eq.KeyID != "" || eq.KeySearch != "AAAA" {
		t.Errorf("key_search with a fragment: logd got key_id %q key_search %q", eq.KeyID, eq.KeySearch)
	}

	code, body, _ := e.call(t, "GET", "/api/key-usage-details/"+apiKey1, "", "")
	var uq logapi.KeyUsageQuery
	ku.last(t, &uq)
	if code != 200 || uq.KeyID != keyID || strings.Contains(body, apiKey1) {
		t.Errorf("key usage by full key (gemini-balance's form): %d %s; logd got %q", code, body, uq.KeyID)
	}
}

func TestKeyWeightAndNoteChangeThroughKeyd(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	up := respondOn(t, nc, bus.SubjectKeyUpdate, func(b []byte) answer {
		var req keyapi.UpdateRequest
		_ = json.Unmarshal(b, &req)
		if req.ID != "k1" {
			return answer{body: keyapi.GetReply{Error: "not found"}}
		}
		return answer{body: keyapi.GetReply{Key: &keyapi.Key{ID: "k1", Weight: *req.Weight, Note: *req.Note}}}
	})
	code, body, _ := e.call(t, "PATCH", "/api/keys/k1", "application/json", `{"weight":5,"note":"team b"}`)
	var req keyapi.UpdateRequest
	up.last(t, &req)
	if code != 200 || req.ID != "k1" || *req.Weight != 5 || *req.Note != "team b" || !strings.Contains(body, `"weight":5`) {
		t.Errorf("update: %d %s; keyd got %+v", code, body, req)
	}
	if code, _, _ := e.call(t, "PATCH", "/api/keys/nope", "application/json", `{"weight":1,"note":""}`); code != 404 {
		t.Errorf("unknown key: %d, want 404", code)
	}
	for _, bad := range []string{`{}`, `{"weight":101}`, `{"weight":-1}`, `nope`} {
		if code, _, _ := e.call(t, "PATCH", "/api/keys/k1", "application/json", bad); code != 400 {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
}

func ptr[T any](v T) *T { return &v }
