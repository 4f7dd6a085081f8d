package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/logd/ingest"
	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/logd/service"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/storetest"
)

type env struct {
	nats *testenv.NATS
	db   *mongo.Database
}

func start(t *testing.T, set config.Settings) *env {
	t.Helper()
	e := &env{nats: testenv.StartNATS(t), db: testenv.Mongo(t, storetest.Start(t), "logd")}
	t.Cleanup(e.run(t, set))
	return e
}

// run starts logd on the env and returns its stop function.
func (e *env) run(t *testing.T, set config.Settings) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	svc, err := service.New(service.Deps{
		NC: e.nats.Conn(t), JS: e.nats.JS, DB: e.db, Settings: natsx.NewSettings(set),
		Ingest:  ingest.Options{BatchSize: 50, FlushInterval: 50 * time.Millisecond},
		OnReady: func() { close(ready) },
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("logd stopped at start: %v", err)
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("logd stopped with %v", err)
		}
	}
}

// drained waits until logd acknowledged every event: rollups are written
// after the rows, so a row count alone does not mean the batch is done.
func (e *env) drained(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "consumers drained", func() bool {
		r, err1 := ingest.Backlog(context.Background(), e.nats.JS, bus.ConsumerLogdRequests)
		x, err2 := ingest.Backlog(context.Background(), e.nats.JS, bus.ConsumerLogdErrors)
		return err1 == nil && err2 == nil && r == 0 && x == 0
	})
	// And every rollup part is folded, for tests that read the rollups themselves.
	testenv.Eventually(t, 30*time.Second, "rollup parts folded", func() bool {
		n, err := e.db.Collection(logstore.CollParts).CountDocuments(context.Background(), bson.M{"_id": bson.M{"$ne": "~fold"}})
		return err == nil && n == 0
	})
}

// call makes one request to a logd endpoint and decodes the answer.
func call[Out any](t *testing.T, e *env, subject string, in any) (Out, error) {
	t.Helper()
	var out Out
	data, _ := json.Marshal(in)
	msg, err := e.nats.NC.Request(subject, data, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return out, fmt.Errorf("%s: %s", code, msg.Header.Get(micro.ErrorHeader))
	}
	if err := json.Unmarshal(msg.Data, &out); err != nil {
		t.Fatalf("decode %s reply %s: %v", subject, msg.Data, err)
	}
	return out, nil
}

func must[Out any](t *testing.T, e *env, subject string, in any) Out {
	t.Helper()
	out, err := call[Out](t, e, subject, in)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	return out
}

var now = time.Date(2026, 11, 27, 10, 20, 0, 0, time.UTC)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func reqEv(id, when, key, model, token string, status int, prompt, completion, thoughts int, latency float64) bus.RequestEvent {
	return bus.RequestEvent{
		V: 1, ID: id, Time: at(when), Route: "gemini.generateContent", Model: model, KeyID: key, KeyHint: "AIzaSy…" + key,
		TokenID: token, Status: status, Success: status/100 == 2, LatencyMS: latency, Attempts: 1,
		Usage: bus.Usage{Prompt: prompt, Candidates: completion, Thoughts: thoughts, Total: prompt + completion + thoughts},
	}
}

// The data every query test below is computed from. "now" is 2026-11-27T10:20Z.
var seed = []bus.RequestEvent{
	reqEv("e1", "2026-11-27T10:19:30Z", "k1", "m1", "tA", 200, 10, 5, 2, 100),  // minute, hour, day, month
	reqEv("e2", "2026-11-27T10:05:00Z", "k1", "m2", "tA", 429, 0, 0, 0, 50),    // hour, day, month
	reqEv("e3", "2026-11-27T09:50:00Z", "k2", "m1", "tB", 200, 20, 10, 0, 200), // hour, day, month
	reqEv("e4", "2026-11-27T09:10:00Z", "k2", "m1", "tB", 500, 0, 0, 0, 300),   // day, month
	reqEv("e5", "2026-11-26T11:00:00Z", "k1", "m1", "tA", 429, 0, 0, 0, 10),    // day, month
	reqEv("e6", "2026-11-26T10:00:00Z", "k2", "m1", "tB", 200, 3, 2, 0, 10),    // month only: 20 min before the 24 h window, same hour bucket
	reqEv("e7", "2026-11-01T00:00:00Z", "k1", "m1", "tA", 200, 50, 50, 0, 10),  // month only
	reqEv("e8", "2026-10-31T23:59:59Z", "k1", "m1", "tA", 200, 1, 1, 0, 10),    // last month
}

var seedErrors = []bus.ErrorEvent{
	{V: 1, ID: "er1", RequestID: "e2", Time: at("2026-11-27T10:05:00Z"), Model: "m2", KeyID: "k1", KeyHint: "AIzaSy…k1", Attempt: 1,
		Class: "rate_limited", UpstreamStatus: 429, ErrorType: "gemini-chat-stream", Message: "Resource has been exhausted (e.g. check quota).", RequestBody: `{"contents":[]}`},
	{V: 1, ID: "er2", RequestID: "e4", Time: at("2026-11-27T09:10:00Z"), Model: "m1", KeyID: "k2", KeyHint: "AIzaSy…k2", Attempt: 1,
		Class: "server", UpstreamStatus: 500, ErrorType: "openai-chat-non-stream", Message: "internal error"},
	{V: 1, ID: "er3", Time: at("2026-11-20T08:00:00Z"), Model: "m2", KeyID: "k1", KeyHint: "AIzaSy…k1", Attempt: 2,
		Class: "invalid_key", UpstreamStatus: 400, ErrorType: "gemini-count-tokens", Message: "API key not valid. Please pass a valid API key."},
}

func seeded(t *testing.T) *env {
	t.Helper()
	e := start(t, config.Defaults())
	e.nats.PublishRequests(t, seed)
	e.nats.PublishErrors(t, seedErrors)
	testenv.Eventually(t, 30*time.Second, "seed stored", func() bool {
		nr := testenv.CountRequestLogs(e.db, "")
		ne, _ := e.db.Collection(logstore.CollErrors).CountDocuments(context.Background(), bson.M{})
		return nr == int64(len(seed)) && ne == int64(len(seedErrors))
	})
	e.drained(t)
	return e
}

func ids[T any](rows []T, id func(T) string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = id(r)
	}
	return out
}

func reqIDs(p logapi.RequestLogPage) string {
	return fmt.Sprint(ids(p.Logs, func(r logapi.RequestLog) string { return r.ID }))
}

func errIDs(p logapi.ErrorLogPage) string {
	return fmt.Sprint(ids(p.Logs, func(r logapi.ErrorLog) string { return r.ID }))
}

func TestQueriesAnswerFromStoredEvents(t *testing.T) {
	e := seeded(t)

	t.Run("overview", func(t *testing.T) {
		o := must[logapi.Overview](t, e, bus.SubjectLogOverview, logapi.OverviewQuery{Now: now})
		check := func(name string, got logapi.Totals, req, ok, fail, tokens int64) {
			t.Helper()
			if got.Requests != req || got.Successes != ok || got.Failures != fail || got.Tokens != tokens {
				t.Errorf("%s = %d requests, %d ok, %d failed, %d tokens; want %d, %d, %d, %d",
					name, got.Requests, got.Successes, got.Failures, got.Tokens, req, ok, fail, tokens)
			}
		}
		check("minute", o.Minute, 1, 1, 0, 17)
		check("hour", o.Hour, 3, 2, 1, 47)
		check("day", o.Day, 5, 2, 3, 47)
		check("month", o.Month, 7, 4, 3, 152)
		// Windows starting mid-minute read that minute's rows: e1 is at 10:19:30.
		o2 := must[logapi.Overview](t, e, bus.SubjectLogOverview, logapi.OverviewQuery{Now: at("2026-11-27T10:20:15Z")})
		check("minute to 10:20:15", o2.Minute, 1, 1, 0, 17)
		o2 = must[logapi.Overview](t, e, bus.SubjectLogOverview, logapi.OverviewQuery{Now: at("2026-11-27T10:20:31Z")})
		check("minute to 10:20:31", o2.Minute, 0, 0, 0, 0)
		check("hour to 10:20:31", o2.Hour, 3, 2, 1, 47)
		o2 = must[logapi.Overview](t, e, bus.SubjectLogOverview, logapi.OverviewQuery{Now: at("2026-11-27T10:05:00Z")})
		check("hour to 10:05", o2.Hour, 3, 1, 2, 30) // e4, e3 and e2 (at exactly 10:05); not e1, later in the same hour
		if o.Day.Failures4xx != 2 || o.Day.Failures5xx != 1 || o.Hour.PromptTokens != 30 || o.Minute.ThoughtTokens != 2 {
			t.Errorf("day classes/tokens = %+v, hour = %+v", o.Day, o.Hour)
		}
	})

	t.Run("series overall", func(t *testing.T) {
		s := must[logapi.Series](t, e, bus.SubjectLogSeries, logapi.SeriesQuery{From: at("2026-11-27T08:00:00Z"), To: now})
		if len(s.Points) != 3 {
			t.Fatalf("points = %+v, want 08, 09, 10", s.Points)
		}
		p8, p9, p10 := s.Points[0], s.Points[1], s.Points[2]
		if p8.Hour != "2026-11-27T08" || p8.Requests != 0 {
			t.Errorf("08 = %+v, want an empty hour", p8)
		}
		if p9.Requests != 2 || p9.Successes != 1 || p9.Failures5xx != 1 || p9.Tokens != 30 || p9.LatencyMSSum != 500 {
			t.Errorf("09 = %+v", p9)
		}
		if p10.Requests != 2 || p10.Failures4xx != 1 || p10.Tokens != 17 {
			t.Errorf("10 = %+v", p10)
		}
	})

	t.Run("series per key and per model", func(t *testing.T) {
		s := must[logapi.Series](t, e, bus.SubjectLogSeries, logapi.SeriesQuery{KeyID: "k1", From: at("2026-11-26T10:00:00Z"), To: now})
		if len(s.Points) != 25 {
			t.Fatalf("k1 points = %d, want 25", len(s.Points))
		}
		var total int64
		for _, p := range s.Points {
			total += p.Requests
		}
		if total != 3 || s.Points[1].Requests != 1 || s.Points[24].Requests != 2 {
			t.Errorf("k1 series: total %d, 11h %+v, 10h %+v", total, s.Points[1], s.Points[24])
		}
		m := must[logapi.Series](t, e, bus.SubjectLogSeries, logapi.SeriesQuery{Model: "m2", From: at("2026-11-27T09:00:00Z"), To: now})
		if m.Points[0].Requests != 0 || m.Points[1].Requests != 1 || m.Points[1].Failures != 1 {
			t.Errorf("m2 series = %+v", m.Points)
		}
		// Dimensions combine: k1 on m1 since 09:00 is e1 only (e2 was m2).
		km := must[logapi.Series](t, e, bus.SubjectLogSeries, logapi.SeriesQuery{KeyID: "k1", Model: "m1", From: at("2026-11-27T09:00:00Z"), To: now})
		if km.Points[0].Requests != 0 || km.Points[1].Requests != 1 || km.Points[1].Failures != 0 {
			t.Errorf("k1+m1 series = %+v", km.Points)
		}
		tm := must[logapi.Series](t, e, bus.SubjectLogSeries, logapi.SeriesQuery{TokenID: "tA", Model: "m2", KeyID: "k1", From: at("2026-11-27T10:00:00Z"), To: now})
		if tm.Points[0].Requests != 1 || tm.Points[0].Failures4xx != 1 {
			t.Errorf("k1+m2+tA series = %+v", tm.Points)
		}
	})

	t.Run("attention keys", func(t *testing.T) {
		a := must[logapi.Attention](t, e, bus.SubjectLogAttention, logapi.AttentionQuery{Code: 429, Now: now})
		// Failed attempts count (error events), not the requests' final
		// status: er1 is the one 429 attempt in the last 24 hours.
		if fmt.Sprint(a.Keys) != "[{k1 1}]" {
			t.Errorf("429 keys = %v, want [{k1 1}]", a.Keys)
		}
		a = must[logapi.Attention](t, e, bus.SubjectLogAttention, logapi.AttentionQuery{Code: 500, Now: now})
		if fmt.Sprint(a.Keys) != "[{k2 1}]" {
			t.Errorf("500 keys = %v, want [{k2 1}]", a.Keys)
		}
		a = must[logapi.Attention](t, e, bus.SubjectLogAttention, logapi.AttentionQuery{Code: 403, Now: now})
		if len(a.Keys) != 0 {
			t.Errorf("403 keys = %v, want none", a.Keys)
		}
	})

	t.Run("key usage by model", func(t *testing.T) {
		u := must[logapi.KeyUsage](t, e, bus.SubjectLogKeyUsage, logapi.KeyUsageQuery{KeyID: "k1", Now: now})
		if len(u.Models) != 2 || u.Models["m1"].Requests != 2 || u.Models["m2"].Requests != 1 || u.Models["m1"].Tokens != 17 {
			t.Errorf("k1 usage = %+v, want m1: 2 requests (17 tokens), m2: 1", u.Models)
		}
	})

	t.Run("request logs", func(t *testing.T) {
		p := must[logapi.RequestLogPage](t, e, bus.SubjectLogRequestsList, logapi.RequestLogQuery{KeyID: "k1", Limit: 2})
		if total(p) != 5 || reqIDs(p) != "[e1 e2]" {
			t.Errorf("k1 newest first = %s of %d, want [e1 e2] of 5", reqIDs(p), total(p))
		}
		p = must[logapi.RequestLogPage](t, e, bus.SubjectLogRequestsList, logapi.RequestLogQuery{KeyID: "k1", Limit: 2, Offset: 2})
		if reqIDs(p) != "[e5 e7]" {
			t.Errorf("k1 page 2 = %s, want [e5 e7]", reqIDs(p))
		}
		p = must[logapi.RequestLogPage](t, e, bus.SubjectLogRequestsList, logapi.RequestLogQuery{Status: 429})
		if reqIDs(p) != "[e2 e5]" || total(p) != 2 {
			t.Errorf("status 429 = %s", reqIDs(p))
		}
		p = must[logapi.RequestLogPage](t, e, bus.SubjectLogRequestsList, logapi.RequestLogQuery{
			From: at("2026-11-27T00:00:00Z"), To: now, Model: "m1", SortBy: "latency", Order: "asc"})
		if reqIDs(p) != "[e1 e3 e4]" {
			t.Errorf("today m1 by latency = %s, want [e1 e3 e4]", reqIDs(p))
		}
		ok := false
		p = must[logapi.RequestLogPage](t, e, bus.SubjectLogRequestsList, logapi.RequestLogQuery{TokenID: "tB", Success: &ok})
		if reqIDs(p) != "[e4]" {
			t.Errorf("tB failures = %s, want [e4]", reqIDs(p))
		}
		p = must[logapi.RequestLogPage](t, e, bus.SubjectLogRequestsList, logapi.RequestLogQuery{Route: "openai.chat"})
		if total(p) != 0 {
			t.Errorf("openai.chat = %d rows, want 0", total(p))
		}
		got := must[logapi.RequestLogPage](t, e, bus.SubjectLogRequestsList, logapi.RequestLogQuery{Limit: 1, Order: "asc"}).Logs[0]
		if got.ID != "e8" || got.KeyHint != "AIzaSy…k1" || got.Prompt != 1 || got.Tokens != 2 {
			t.Errorf("oldest row = %+v", got)
		}
		if _, err := call[logapi.RequestLogPage](t, e, bus.SubjectLogRequestsList, logapi.RequestLogQuery{Limit: 5000}); err == nil {
			t.Error("limit 5000 accepted, want 400")
		}
	})

	t.Run("error logs", func(t *testing.T) {
		p := must[logapi.ErrorLogPage](t, e, bus.SubjectLogErrorsList, logapi.ErrorLogQuery{Search: "quota"})
		if errIDs(p) != "[er1]" || p.Logs[0].Message != "" {
			t.Errorf("search quota = %+v, want er1 without its body", p.Logs)
		}
		p = must[logapi.ErrorLogPage](t, e, bus.SubjectLogErrorsList, logapi.ErrorLogQuery{Search: "OPENAI"})
		if errIDs(p) != "[er2]" {
			t.Errorf("search OPENAI (type) = %s, want [er2]", errIDs(p))
		}
		p = must[logapi.ErrorLogPage](t, e, bus.SubjectLogErrorsList, logapi.ErrorLogQuery{Code: 400})
		if errIDs(p) != "[er3]" {
			t.Errorf("code 400 = %s", errIDs(p))
		}
		p = must[logapi.ErrorLogPage](t, e, bus.SubjectLogErrorsList, logapi.ErrorLogQuery{KeySearch: "…K1", Order: "asc"})
		if errIDs(p) != "[er3 er1]" || p.Total != 2 {
			t.Errorf("key search k1 oldest first = %s", errIDs(p))
		}
		p = must[logapi.ErrorLogPage](t, e, bus.SubjectLogErrorsList, logapi.ErrorLogQuery{From: at("2026-11-27T00:00:00Z"), To: at("2026-11-27T10:05:00Z")})
		if errIDs(p) != "[er2]" {
			t.Errorf("today before 10:05 (end exclusive) = %s, want [er2]", errIDs(p))
		}
		p = must[logapi.ErrorLogPage](t, e, bus.SubjectLogErrorsList, logapi.ErrorLogQuery{Model: "m2", SortBy: "code"})
		if errIDs(p) != "[er1 er3]" {
			t.Errorf("m2 by code desc = %s, want [er1 er3]", errIDs(p))
		}
		p = must[logapi.ErrorLogPage](t, e, bus.SubjectLogErrorsList, logapi.ErrorLogQuery{RequestID: "e4"})
		if errIDs(p) != "[er2]" {
			t.Errorf("errors of request e4 = %s", errIDs(p))
		}
		d := must[logapi.ErrorLog](t, e, bus.SubjectLogErrorsGet, logapi.ErrorLogGet{ID: "er1"})
		if d.Message != seedErrors[0].Message || d.RequestBody != `{"contents":[]}` || d.Code != 429 || d.Type != "gemini-chat-stream" {
			t.Errorf("details er1 = %+v", d)
		}
		if _, err := call[logapi.ErrorLog](t, e, bus.SubjectLogErrorsGet, logapi.ErrorLogGet{ID: "nope"}); err == nil || err.Error()[:3] != "404" {
			t.Errorf("missing error log: err = %v, want 404", err)
		}
	})

	t.Run("error log deletion", func(t *testing.T) {
		del := func(q logapi.ErrorLogDelete) int64 {
			return must[logapi.DeleteReply](t, e, bus.SubjectLogErrorsDelete, q).Deleted
		}
		if _, err := call[logapi.DeleteReply](t, e, bus.SubjectLogErrorsDelete, logapi.ErrorLogDelete{}); err == nil {
			t.Error("empty delete accepted, want 400")
		}
		if n := del(logapi.ErrorLogDelete{IDs: []string{"er3", "missing"}}); n != 1 {
			t.Errorf("delete by ids = %d, want 1", n)
		}
		if n := del(logapi.ErrorLogDelete{Before: at("2026-11-27T10:00:00Z")}); n != 1 {
			t.Errorf("delete older than 10:00 = %d, want 1 (er2)", n)
		}
		if n := del(logapi.ErrorLogDelete{All: true}); n != 1 {
			t.Errorf("delete all = %d, want 1 (er1)", n)
		}
	})
}

func TestRetentionTickDeletesWhatIsPastItsHorizon(t *testing.T) {
	set := config.Defaults()
	set.AutoDeleteRequestLogsEnabled, set.AutoDeleteRequestLogsDays = true, 30
	set.AutoDeleteErrorLogsEnabled, set.AutoDeleteErrorLogsDays = true, 7
	set.RollupRetentionDays = 60
	e := start(t, set)
	real := time.Now().UTC()
	ts := func(days int) string { return real.AddDate(0, 0, -days).Format(time.RFC3339) }
	e.nats.PublishRequests(t, []bus.RequestEvent{
		reqEv("old", ts(31), "k", "m", "t", 200, 1, 1, 0, 1),
		reqEv("mid", ts(29), "k", "m", "t", 200, 1, 1, 0, 1), // rollup kept (60 days), log kept (30)
		reqEv("ancient", ts(61), "k", "m", "t", 200, 1, 1, 0, 1),
		reqEv("new", ts(0), "k", "m", "t", 200, 1, 1, 0, 1),
	})
	e.nats.PublishErrors(t, []bus.ErrorEvent{
		{V: 1, ID: "err-old", Time: real.AddDate(0, 0, -8), Model: "m", UpstreamStatus: 500},
		{V: 1, ID: "err-new", Time: real.AddDate(0, 0, -6), Model: "m", UpstreamStatus: 500},
	})
	ctx := context.Background()
	countIDs := func(coll string) string {
		cur, err := e.db.Collection(coll).Find(ctx, bson.M{})
		if err != nil {
			return err.Error()
		}
		var rows []struct {
			ID string `bson:"_id"`
		}
		_ = cur.All(ctx, &rows)
		return fmt.Sprint(len(rows))
	}
	testenv.Eventually(t, 20*time.Second, "events stored", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 4 && countIDs(logstore.CollErrors) == "2"
	})
	e.drained(t)
	rollupsBefore := countIDs(logstore.CollRollups)

	tick := bus.Tick{V: 1, Name: "retention", Slot: real.Format("2006-01-02T15:04"), Time: real}
	e.nats.Publish(t, bus.SubjectTickRetention, bus.TickMsgID(tick), tick)
	testenv.Eventually(t, 20*time.Second, "old request and error logs deleted", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 2 && countIDs(logstore.CollErrors) == "1"
	})
	for _, id := range []string{"mid", "new"} {
		if n := testenv.CountRequestLogs(e.db, id); n != 1 {
			t.Errorf("request log %s deleted, want kept", id)
		}
	}
	if n, _ := e.db.Collection(logstore.CollErrors).CountDocuments(ctx, bson.M{"_id": "err-new"}); n != 1 {
		t.Error("error log err-new deleted, want kept")
	}
	// Rollups: the 61-day-old hour's five levels go, the others stay.
	var got int64
	testenv.Eventually(t, 10*time.Second, "old rollups deleted", func() bool {
		got, _ = e.db.Collection(logstore.CollRollups).CountDocuments(ctx, bson.M{})
		return fmt.Sprint(got+5) == rollupsBefore
	})
	n, _ := e.db.Collection(logstore.CollRollups).CountDocuments(ctx, bson.M{"h": real.AddDate(0, 0, -29).Format("2006-01-02T15")})
	if n != 5 {
		t.Errorf("rollups of the 29-day-old hour = %d, want 5 levels kept", n)
	}

	// The manual endpoint runs the same pass.
	r := must[logapi.RetentionReply](t, e, bus.SubjectLogRetentionRun, struct{}{})
	if r.RequestLogs != 0 || r.ErrorLogs != 0 {
		t.Errorf("second pass deleted %+v, want nothing", r)
	}
}

func TestDisabledRetentionKeepsLogs(t *testing.T) {
	set := config.Defaults()
	set.AutoDeleteRequestLogsEnabled, set.AutoDeleteErrorLogsEnabled = false, false
	e := start(t, set)
	e.nats.PublishRequests(t, []bus.RequestEvent{reqEv("old", time.Now().AddDate(0, 0, -90).Format(time.RFC3339), "k", "m", "t", 200, 1, 1, 0, 1)})
	testenv.Eventually(t, 20*time.Second, "event stored", func() bool {
		return testenv.CountRequestLogs(e.db, "") == 1
	})
	e.drained(t)
	r := must[logapi.RetentionReply](t, e, bus.SubjectLogRetentionRun, struct{}{})
	if r.RequestLogs != 0 {
		t.Errorf("deleted %d request logs with auto-delete off", r.RequestLogs)
	}
}

func TestRestartedLogdStoresWhatArrivedWhileItWasDown(t *testing.T) {
	e := &env{nats: testenv.StartNATS(t), db: testenv.Mongo(t, storetest.Start(t), "logd")}
	ctx := context.Background()
	count := func() int64 { return testenv.CountRequestLogs(e.db, "") }
	evs := make([]bus.RequestEvent, 300)
	for i := range evs {
		evs[i] = reqEv(fmt.Sprintf("r%03d", i), "2026-11-27T10:00:00Z", "k", "m", "t", 200, 1, 1, 0, 1)
	}
	stop := e.run(t, config.Defaults())
	e.nats.PublishRequests(t, evs[:100])
	testenv.Eventually(t, 20*time.Second, "first 100 stored", func() bool { return count() == 100 })
	e.drained(t)
	stop()

	e.nats.PublishRequestsPer(t, evs[100:], 10) // a backlog of 20 messages
	stop = e.run(t, config.Defaults())          // indexes exist, consumers exist, a backlog waits
	defer stop()
	// Within AckWait (60 s): a backlog that stalls on resume, or an event
	// handed to the stopped logd, is redelivered by then at the latest.
	testenv.Eventually(t, 90*time.Second, "all 300 stored", func() bool { return count() == 300 })
	e.drained(t)
	var r logstore.Rollup
	if err := e.db.Collection(logstore.CollRollups).FindOne(ctx, bson.M{"_id": "2026-11-27T10|*|*|*"}).Decode(&r); err != nil || r.Requests != 300 {
		t.Fatalf("overall rollup = %d requests (%v), want 300", r.Requests, err)
	}
}

func TestLogdIsDiscoverableAsAMicroService(t *testing.T) {
	e := start(t, config.Defaults())
	subj, err := micro.ControlSubject(micro.InfoVerb, bus.LogdService, "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.nats.NC.Request(subj, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	subjects := map[string]bool{}
	for _, ep := range info.Endpoints {
		subjects[ep.Subject] = true
	}
	for _, want := range []string{bus.SubjectLogRequestsList, bus.SubjectLogErrorsList, bus.SubjectLogErrorsGet, bus.SubjectLogErrorsDelete,
		bus.SubjectLogOverview, bus.SubjectLogSeries, bus.SubjectLogAttention, bus.SubjectLogKeyUsage, bus.SubjectLogRetentionRun} {
		if !subjects[want] {
			t.Errorf("endpoint %s not listed; have %v", want, subjects)
		}
	}
	if info.Name != "logd" {
		t.Errorf("service name %q", info.Name)
	}
}

// total is a request-log page's total, -1 when it carries none.
func total(p logapi.RequestLogPage) int64 {
	if p.Total == nil {
		return -1
	}
	return *p.Total
}
