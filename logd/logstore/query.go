package logstore

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// ErrNotFound is returned for a missing error log.
var ErrNotFound = fmt.Errorf("not found")

// BadRequestError marks a query the caller got wrong.
type BadRequestError struct{ Msg string }

func (e *BadRequestError) Error() string { return e.Msg }

func badRequest(format string, a ...any) error {
	return &BadRequestError{Msg: fmt.Sprintf(format, a...)}
}

func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return logapi.DefaultLimit, nil
	case n < 0 || n > logapi.MaxLimit:
		return 0, badRequest("limit must be 1..%d", logapi.MaxLimit)
	}
	return n, nil
}

func sortOrder(order string) (int, error) {
	switch order {
	case "", "desc":
		return -1, nil
	case "asc":
		return 1, nil
	}
	return 0, badRequest("order must be asc or desc")
}

func timeRange(f bson.M, from, to time.Time) {
	r := bson.M{}
	if !from.IsZero() {
		r["$gte"] = from.UTC()
	}
	if !to.IsZero() {
		r["$lt"] = to.UTC()
	}
	if len(r) > 0 {
		f["t"] = r
	}
}

// RequestLogs answers gb.logd.requests.list.
func (s *Store) RequestLogs(ctx context.Context, q logapi.RequestLogQuery) (logapi.RequestLogPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return logapi.RequestLogPage{}, err
	}
	order, err := sortOrder(q.Order)
	if err != nil {
		return logapi.RequestLogPage{}, err
	}
	sortField := map[string]string{"": "t", "time": "t", "latency": "latency_ms", "status": "status", "model": "model"}[q.SortBy]
	if sortField == "" {
		return logapi.RequestLogPage{}, badRequest("sort_by must be time, latency, status or model")
	}
	if q.Offset < 0 {
		return logapi.RequestLogPage{}, badRequest("offset must not be negative")
	}
	f := bson.M{}
	timeRange(f, q.From, q.To)
	for k, v := range map[string]string{"key_id": q.KeyID, "model": q.Model, "token_id": q.TokenID, "route": q.Route} {
		if v != "" {
			f[k] = v
		}
	}
	if q.Status != 0 {
		f["status"] = q.Status
	}
	if q.Success != nil {
		f["success"] = *q.Success
	}
	total, err := s.requests.CountDocuments(ctx, f)
	if err != nil {
		return logapi.RequestLogPage{}, fmt.Errorf("count request logs: %w", err)
	}
	// _id breaks ties so pages are stable.
	opts := options.Find().SetSort(bson.D{{Key: sortField, Value: order}, {Key: "_id", Value: order}}).
		SetSkip(int64(q.Offset)).SetLimit(int64(limit))
	cur, err := s.requests.Find(ctx, f, opts)
	if err != nil {
		return logapi.RequestLogPage{}, fmt.Errorf("find request logs: %w", err)
	}
	var rows []RequestLog
	if err := cur.All(ctx, &rows); err != nil {
		return logapi.RequestLogPage{}, fmt.Errorf("read request logs: %w", err)
	}
	page := logapi.RequestLogPage{Total: total, Logs: make([]logapi.RequestLog, len(rows))}
	for i, r := range rows {
		page.Logs[i] = logapi.RequestLog{
			ID: r.ID, Time: r.Time, Route: r.Route, Method: r.Method, Path: r.Path, Model: r.Model,
			Upstream: r.Upstream, Stream: r.Stream, TokenID: r.TokenID, TokenHint: r.TokenHint,
			KeyID: r.KeyID, KeyHint: r.KeyHint, KeyKind: r.KeyKind, Attempts: r.Attempts,
			Status: r.Status, Success: r.Success, Class: r.Class, LatencyMS: r.LatencyMS, TTFBMS: r.TTFBMS,
			Prompt: r.Prompt, Completion: r.Completion, Thoughts: r.Thoughts, Cached: r.Cached, Tokens: r.Tokens,
			Replica: r.Replica, Error: r.Error,
		}
	}
	return page, nil
}

func toAPIError(e ErrorLog, full bool) logapi.ErrorLog {
	out := logapi.ErrorLog{
		ID: e.ID, RequestID: e.RequestID, Time: e.Time, Route: e.Route, Model: e.Model,
		KeyID: e.KeyID, KeyHint: e.KeyHint, Attempt: e.Attempt, Class: e.Class, Code: e.Code, Type: e.Type,
	}
	if full {
		out.Message, out.RequestBody = e.Message, e.RequestBody
	}
	return out
}

// ErrorLogs answers gb.logd.errors.list.
func (s *Store) ErrorLogs(ctx context.Context, q logapi.ErrorLogQuery) (logapi.ErrorLogPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return logapi.ErrorLogPage{}, err
	}
	order, err := sortOrder(q.Order)
	if err != nil {
		return logapi.ErrorLogPage{}, err
	}
	sortField := map[string]string{"": "t", "time": "t", "code": "code", "model": "model", "type": "type"}[q.SortBy]
	if sortField == "" {
		return logapi.ErrorLogPage{}, badRequest("sort_by must be time, code, model or type")
	}
	if q.Offset < 0 {
		return logapi.ErrorLogPage{}, badRequest("offset must not be negative")
	}
	f := bson.M{}
	timeRange(f, q.From, q.To)
	for k, v := range map[string]string{"key_id": q.KeyID, "model": q.Model, "request_id": q.RequestID} {
		if v != "" {
			f[k] = v
		}
	}
	if q.Code != 0 {
		f["code"] = q.Code
	}
	var and bson.A
	if q.Search != "" {
		re := bson.Regex{Pattern: regexp.QuoteMeta(q.Search), Options: "i"}
		and = append(and, bson.M{"$or": bson.A{bson.M{"message": re}, bson.M{"type": re}}})
	}
	if q.KeySearch != "" {
		re := bson.Regex{Pattern: regexp.QuoteMeta(q.KeySearch), Options: "i"}
		and = append(and, bson.M{"$or": bson.A{bson.M{"key_hint": re}, bson.M{"key_id": re}}})
	}
	if len(and) > 0 {
		f["$and"] = and
	}
	total, err := s.errors.CountDocuments(ctx, f)
	if err != nil {
		return logapi.ErrorLogPage{}, fmt.Errorf("count error logs: %w", err)
	}
	opts := options.Find().SetSort(bson.D{{Key: sortField, Value: order}, {Key: "_id", Value: order}}).
		SetSkip(int64(q.Offset)).SetLimit(int64(limit)).
		SetProjection(bson.M{"message": 0, "request_body": 0})
	cur, err := s.errors.Find(ctx, f, opts)
	if err != nil {
		return logapi.ErrorLogPage{}, fmt.Errorf("find error logs: %w", err)
	}
	var rows []ErrorLog
	if err := cur.All(ctx, &rows); err != nil {
		return logapi.ErrorLogPage{}, fmt.Errorf("read error logs: %w", err)
	}
	page := logapi.ErrorLogPage{Total: total, Logs: make([]logapi.ErrorLog, len(rows))}
	for i, r := range rows {
		page.Logs[i] = toAPIError(r, false)
	}
	return page, nil
}

// ErrorLog answers gb.logd.errors.get.
func (s *Store) ErrorLog(ctx context.Context, id string) (logapi.ErrorLog, error) {
	if id == "" {
		return logapi.ErrorLog{}, badRequest("id is required")
	}
	var e ErrorLog
	err := s.errors.FindOne(ctx, bson.M{"_id": id}).Decode(&e)
	if err == mongo.ErrNoDocuments {
		return logapi.ErrorLog{}, ErrNotFound
	}
	if err != nil {
		return logapi.ErrorLog{}, fmt.Errorf("get error log %s: %w", id, err)
	}
	return toAPIError(e, true), nil
}

// DeleteErrorLogs answers gb.logd.errors.delete.
func (s *Store) DeleteErrorLogs(ctx context.Context, q logapi.ErrorLogDelete) (int64, error) {
	set := 0
	var f bson.M
	if len(q.IDs) > 0 {
		set++
		f = bson.M{"_id": bson.M{"$in": q.IDs}}
	}
	if q.All {
		set++
		f = bson.M{}
	}
	if !q.Before.IsZero() {
		set++
		f = bson.M{"t": bson.M{"$lt": q.Before.UTC()}}
	}
	if set != 1 {
		return 0, badRequest("set exactly one of ids, all or before")
	}
	res, err := s.errors.DeleteMany(ctx, f)
	if err != nil {
		return 0, fmt.Errorf("delete error logs: %w", err)
	}
	return res.DeletedCount, nil
}

func (c Counters) totals() logapi.Totals {
	return logapi.Totals{
		Requests: c.Requests, Successes: c.Successes, Failures: c.Failures,
		Failures4xx: c.Fail4xx, Failures5xx: c.Fail5xx, FailuresOther: c.FailOther,
		PromptTokens: c.Prompt, CompletionToks: c.Completion, ThoughtTokens: c.Thoughts,
		Tokens: c.Tokens, LatencyMSSum: c.LatencySum,
	}
}

// rollupDocs reads hourly rollup documents matching f.
func (s *Store) rollupDocs(ctx context.Context, f bson.M) ([]Rollup, error) {
	return s.rollupDocsIn(ctx, s.rollups, f)
}

func (s *Store) rollupDocsIn(ctx context.Context, coll *mongo.Collection, f bson.M) ([]Rollup, error) {
	cur, err := coll.Find(ctx, f, options.Find().SetProjection(bson.M{"lb": 0}))
	if err != nil {
		return nil, fmt.Errorf("find rollups: %w", err)
	}
	var out []Rollup
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("read rollups: %w", err)
	}
	return out, nil
}

func level(key, model, token string) bson.M {
	f := bson.M{"k": Any, "mo": Any, "tk": Any}
	if key != "" {
		f["k"] = key
	}
	if model != "" {
		f["mo"] = model
	}
	if token != "" {
		f["tk"] = token
	}
	return f
}

// hourDocs reads the hourly rollups of one level (an equality filter) for
// the hours [from, to], one day bucket at a time: FerretDB pushes equality
// filters down to its backend but filters ranges in Go, so an equality on the
// day keeps every read to at most a day of documents.
func (s *Store) hourDocs(ctx context.Context, lvl bson.M, from, to time.Time) ([]Rollup, error) {
	var out []Rollup
	from, to = from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour)
	for day := from.Truncate(24 * time.Hour); !day.After(to); day = day.Add(24 * time.Hour) {
		f := bson.M{"d": mongox.DayBucket(day), "h": bson.M{"$gte": mongox.HourBucket(from), "$lte": mongox.HourBucket(to)}}
		for k, v := range lvl {
			f[k] = v
		}
		docs, err := s.rollupDocs(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

// secondDocs reads the second rollups for seconds [ceil(from), to), one
// minute bucket at a time (equality filter, see hourDocs). A window edge is
// thereby rounded to whole seconds.
func (s *Store) secondDocs(ctx context.Context, from, to time.Time) ([]Rollup, error) {
	from = ceil(from.UTC(), time.Second)
	to = ceil(to.UTC(), time.Second)
	var out []Rollup
	for m := from.Truncate(time.Minute); m.Before(to); m = m.Add(time.Minute) {
		f := bson.M{"m": MinuteBucket(m), "_id": bson.M{"$gte": SecondBucket(from), "$lt": SecondBucket(to)}}
		docs, err := s.rollupDocsIn(ctx, s.seconds, f)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

// minuteDocs reads the minute rollups for minutes [from, to), an hour bucket
// at a time for the same reason.
func (s *Store) minuteDocs(ctx context.Context, from, to time.Time) ([]Rollup, error) {
	var out []Rollup
	for h := from.UTC().Truncate(time.Hour); h.Before(to); h = h.Add(time.Hour) {
		f := bson.M{"h": mongox.HourBucket(h), "_id": bson.M{"$gte": MinuteBucket(from), "$lt": MinuteBucket(to)}}
		docs, err := s.rollupDocsIn(ctx, s.minutes, f)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

func ceil(t time.Time, d time.Duration) time.Time {
	tr := t.Truncate(d)
	if tr.Before(t) {
		tr = tr.Add(d)
	}
	return tr
}

// windowTotals counts requests in [from, now] from rollups only, to the
// second: second rollups for the partial minutes at both ends, minute
// rollups for the partial hours, hourly rollups in between. Raw logs are
// never scanned, so a busy day costs the same as a quiet one. It stays exact
// for a "now" in the past and for events stamped slightly ahead.
func (s *Store) windowTotals(ctx context.Context, from, now time.Time) (Counters, error) {
	from, now = from.UTC(), now.UTC()
	end := now.Truncate(time.Second).Add(time.Second) // the window includes now's second
	fromMin, nowMin := ceil(from, time.Minute), now.Truncate(time.Minute)
	if !fromMin.Before(nowMin) {
		c, err := s.secondDocs(ctx, from, end)
		var sum Counters
		for _, d := range c {
			sum.Add(d.Counters)
		}
		return sum, err
	}
	var c Counters
	addDocs := func(docs []Rollup, err error) error {
		for _, d := range docs {
			c.Add(d.Counters)
		}
		return err
	}
	// The partial minutes at both edges come from second rollups.
	if err := addDocs(s.secondDocs(ctx, from, fromMin)); err != nil {
		return c, err
	}
	if err := addDocs(s.secondDocs(ctx, nowMin, end)); err != nil {
		return c, err
	}
	fromHour, nowHour := ceil(fromMin, time.Hour), nowMin.Truncate(time.Hour)
	if !fromHour.Before(nowHour) {
		return c, addDocs(s.minuteDocs(ctx, fromMin, nowMin))
	}
	if err := addDocs(s.minuteDocs(ctx, fromMin, fromHour)); err != nil {
		return c, err
	}
	if err := addDocs(s.minuteDocs(ctx, nowHour, nowMin)); err != nil {
		return c, err
	}
	return c, addDocs(s.hourDocs(ctx, level("", "", ""), fromHour, nowHour.Add(-time.Hour)))
}

// Overview answers gb.logd.stats.overview.
func (s *Store) Overview(ctx context.Context, q logapi.OverviewQuery) (logapi.Overview, error) {
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	now = now.UTC()
	out := logapi.Overview{Now: now}
	for _, w := range []struct {
		dst  *logapi.Totals
		from time.Time
	}{
		{&out.Minute, now.Add(-time.Minute)},
		{&out.Hour, now.Add(-time.Hour)},
		{&out.Day, now.Add(-24 * time.Hour)},
	} {
		c, err := s.windowTotals(ctx, w.from, now)
		if err != nil {
			return out, err
		}
		*w.dst = c.totals()
	}
	f := level("", "", "")
	f["mon"] = mongox.MonthBucket(now)
	docs, err := s.rollupDocs(ctx, f)
	if err != nil {
		return out, err
	}
	var month Counters
	for _, d := range docs {
		month.Add(d.Counters)
	}
	out.Month = month.totals()
	return out, nil
}

// Series answers gb.logd.stats.series.
func (s *Store) Series(ctx context.Context, q logapi.SeriesQuery) (logapi.Series, error) {
	n := 0
	for _, v := range []string{q.KeyID, q.Model, q.TokenID} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return logapi.Series{}, badRequest("set at most one of key_id, model, token_id")
	}
	to := q.To
	if to.IsZero() {
		to = s.now()
	}
	from := q.From
	if from.IsZero() {
		from = to.Add(-23 * time.Hour)
	}
	from, to = from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour)
	if to.Before(from) {
		return logapi.Series{}, badRequest("from is after to")
	}
	if to.Sub(from) > 24*400*time.Hour {
		return logapi.Series{}, badRequest("range longer than 400 days")
	}
	docs, err := s.hourDocs(ctx, level(q.KeyID, q.Model, q.TokenID), from, to)
	if err != nil {
		return logapi.Series{}, err
	}
	byHour := make(map[string]Counters, len(docs))
	for _, d := range docs {
		c := byHour[d.Hour]
		c.Add(d.Counters)
		byHour[d.Hour] = c
	}
	var out logapi.Series
	for h := from; !h.After(to); h = h.Add(time.Hour) {
		b := mongox.HourBucket(h)
		out.Points = append(out.Points, logapi.SeriesPoint{Hour: b, Totals: byHour[b].totals()})
	}
	return out, nil
}

// Attention answers gb.logd.stats.attention from the per-key rollups.
func (s *Store) Attention(ctx context.Context, q logapi.AttentionQuery) (logapi.Attention, error) {
	code := q.Code
	if code == 0 {
		code = 429
	}
	if code < 100 || code > 599 {
		return logapi.Attention{}, badRequest("status_code must be an HTTP status")
	}
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return logapi.Attention{}, err
	}
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	field := "codes." + strconv.Itoa(code)
	f := bson.M{"k": bson.M{"$nin": bson.A{Any, dim("")}}, "mo": Any, "tk": Any, field: bson.M{"$gt": 0}}
	now = now.UTC()
	docs, err := s.hourDocs(ctx, f, now.Add(-23*time.Hour), now)
	if err != nil {
		return logapi.Attention{}, err
	}
	counts := map[string]int64{}
	for _, d := range docs {
		counts[d.Key] += d.Codes[strconv.Itoa(code)]
	}
	out := logapi.Attention{Code: code, Keys: []logapi.AttentionKey{}}
	for k, n := range counts {
		out.Keys = append(out.Keys, logapi.AttentionKey{KeyID: k, Count: n})
	}
	sort.Slice(out.Keys, func(i, j int) bool {
		if out.Keys[i].Count != out.Keys[j].Count {
			return out.Keys[i].Count > out.Keys[j].Count
		}
		return out.Keys[i].KeyID < out.Keys[j].KeyID
	})
	if len(out.Keys) > limit {
		out.Keys = out.Keys[:limit]
	}
	return out, nil
}

// KeyUsage answers gb.logd.stats.keyusage from the full-level rollups of one key.
func (s *Store) KeyUsage(ctx context.Context, q logapi.KeyUsageQuery) (logapi.KeyUsage, error) {
	if q.KeyID == "" {
		return logapi.KeyUsage{}, badRequest("key_id is required")
	}
	hours := q.Hours
	if hours == 0 {
		hours = 24
	}
	if hours < 1 || hours > 24*400 {
		return logapi.KeyUsage{}, badRequest("hours must be 1..9600")
	}
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	f := bson.M{"k": q.KeyID, "mo": bson.M{"$ne": Any}, "tk": bson.M{"$ne": Any}}
	now = now.UTC()
	docs, err := s.hourDocs(ctx, f, now.Add(-time.Duration(hours-1)*time.Hour), now)
	if err != nil {
		return logapi.KeyUsage{}, err
	}
	byModel := map[string]Counters{}
	for _, d := range docs {
		c := byModel[d.Model]
		c.Add(d.Counters)
		byModel[d.Model] = c
	}
	out := logapi.KeyUsage{KeyID: q.KeyID, Models: make(map[string]logapi.Totals, len(byModel))}
	for m, c := range byModel {
		out.Models[m] = c.totals()
	}
	return out, nil
}
