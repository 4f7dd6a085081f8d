// One concern, kept whole: the request- and error-log list queries with their
// filters, sorts and counts (the rollup queries are in query_*.go).

package logstore

import (
	"context"
	"fmt"
	"regexp"
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
	rq := rowQuery{From: q.From, To: q.To, KeyID: q.KeyID, Model: q.Model, TokenID: q.TokenID, Route: q.Route, Status: q.Status, Success: q.Success}
	f := rq.rowFilter()
	page := logapi.RequestLogPage{}
	// An exact count over a million rows is the slow part of a page (and
	// FerretDB answers even an estimated count by reading every row): without
	// filters other than key, model and token the hourly rollups' request
	// count stands in (auto), and a caller that pages by has_more asks for
	// none.
	switch q.Count {
	case "", logapi.CountAuto, logapi.CountExact:
		var total int64
		var err error
		if dims, ok := rollupDims(f); ok && q.Count != logapi.CountExact {
			total, err = s.estimateRequests(ctx, q.From, q.To, dims)
		} else {
			total, err = s.countRequestLogs(ctx, rq)
			page.TotalExact = true
		}
		if err != nil {
			return logapi.RequestLogPage{}, fmt.Errorf("count request logs: %w", err)
		}
		page.Total = &total
	case logapi.CountNone:
	default:
		return logapi.RequestLogPage{}, badRequest("count must be auto, exact or none")
	}
	var rows []RequestLog
	fast := false
	if sortField == "t" && order == -1 {
		// Newest first: the recent copy, then (no filter) the minute walk
		// over request_logs, then the sorted query.
		all, ok, err := s.recentPage(ctx, q, q.Offset+limit+1)
		if err != nil {
			return logapi.RequestLogPage{}, err
		}
		if ok {
			rows, fast = all[min(q.Offset, len(all)):], true
		} else if onlyTime(f) {
			if rows, fast, err = s.newestFirst(ctx, q, limit); err != nil {
				return logapi.RequestLogPage{}, err
			}
		}
	}
	if !fast {
		// The id breaks ties so pages are stable; one row more than asked
		// tells whether another page follows.
		var err error
		if rows, err = s.sortedRequestLogs(ctx, rq, sortField, order, q.Offset, limit+1); err != nil {
			return logapi.RequestLogPage{}, err
		}
	}
	if len(rows) > limit {
		rows, page.HasMore = rows[:limit], true
	}
	page.Logs = make([]logapi.RequestLog, len(rows))
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
	// The default view (no filter, newest first) reads the time index: the
	// sorted query and the count read every row on FerretDB.
	if len(f) == 0 && sortField == "t" && order == -1 {
		rows, total, ok, err := s.errorsNewestFirst(ctx, q.Offset, limit)
		if err != nil {
			return logapi.ErrorLogPage{}, err
		}
		if ok {
			page := logapi.ErrorLogPage{Total: total, Logs: make([]logapi.ErrorLog, len(rows))}
			for i, r := range rows {
				page.Logs[i] = toAPIError(r, false)
			}
			return page, nil
		}
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

// deleteFilter is the filter of a log delete: exactly one of ids, all or
// before.
func deleteFilter(ids []string, all bool, before time.Time) (bson.M, error) {
	var f bson.M
	set := 0
	if len(ids) > 0 {
		set++
		f = bson.M{"_id": bson.M{"$in": ids}}
	}
	if all {
		set++
		f = bson.M{}
	}
	if !before.IsZero() {
		set++
		f = bson.M{"t": bson.M{"$lt": before.UTC()}}
	}
	if set != 1 {
		return nil, badRequest("set exactly one of ids, all or before")
	}
	return f, nil
}

// DeleteErrorLogs answers gb.logd.errors.delete.
func (s *Store) DeleteErrorLogs(ctx context.Context, q logapi.ErrorLogDelete) (int64, error) {
	f, err := deleteFilter(q.IDs, q.All, q.Before)
	if err != nil {
		return 0, err
	}
	// The rows' times say which index entries to drop.
	var byID []*ErrorLog
	if len(q.IDs) > 0 {
		var err error
		if byID, err = byIDs[ErrorLog](ctx, s.errors, q.IDs, bson.M{"t": 1}); err != nil {
			return 0, err
		}
	}
	res, err := s.errors.DeleteMany(ctx, f)
	if err != nil {
		return 0, fmt.Errorf("delete error logs: %w", err)
	}
	switch {
	case q.All:
		err = s.clearErrorIndex(ctx)
	case !q.Before.IsZero():
		err = s.unindexErrorsBefore(ctx, q.Before)
	default:
		var gone []ErrorLog
		for _, r := range byID {
			if r != nil {
				gone = append(gone, *r)
			}
		}
		err = s.unindexErrors(ctx, gone)
	}
	if err != nil {
		return res.DeletedCount, err
	}
	return res.DeletedCount, nil
}

// onlyTime reports a request-log filter that names at most a time range.
func onlyTime(f bson.M) bool {
	_, ranged := f["t"]
	return len(f) == 0 || (len(f) == 1 && ranged)
}

// rollupDims returns the rollup level of a request-log filter naming only
// a time range and any of key, model and token; ok is false for any other
// filter.
func rollupDims(f bson.M) (lvl bson.M, ok bool) {
	dims := map[string]string{}
	for k, v := range f {
		field := map[string]string{"key_id": "k", "model": "mo", "token_id": "tk"}[k]
		s, isString := v.(string)
		switch {
		case k == "t":
		case field != "" && isString:
			dims[field] = s
		default:
			return nil, false
		}
	}
	if len(dims) <= 1 {
		return level(dims["k"], dims["mo"], dims["tk"]), true
	}
	// Two or three dimensions: the full-level rollups with those fixed,
	// summed over the others (as Series does).
	lvl = bson.M{}
	for _, k := range []string{"k", "mo", "tk"} {
		if v, set := dims[k]; set {
			lvl[k] = v
		} else {
			lvl[k] = bson.M{"$ne": Any}
		}
	}
	return lvl, true
}

// estimateRequests is the request count of the hourly rollups of level lvl
// in [from, to) (whole hours; all of them when from is zero). It overstates
// after logs were deleted while their rollups stay.
func (s *Store) estimateRequests(ctx context.Context, from, to time.Time, lvl bson.M) (int64, error) {
	var docs []Rollup
	var err error
	if from.IsZero() && to.IsZero() && lvl["k"] == Any && lvl["mo"] == Any && lvl["tk"] == Any {
		// Every request kept: the month-day rollups, a few documents
		// (monthdays.go), not every overall hour.
		days, err := s.monthDays(ctx)
		var n int64
		for _, c := range days {
			n += c.Requests
		}
		return n, err
	}
	if from.IsZero() {
		docs, err = s.rollupDocs(ctx, lvl)
	} else {
		if to.IsZero() {
			to = s.now()
		}
		docs, err = s.hourDocs(ctx, lvl, from, to)
	}
	var n int64
	for _, d := range docs {
		if to.IsZero() || d.Hour <= mongox.HourBucket(to) {
			n += d.Requests
		}
	}
	return n, err
}

// DeleteRequestLogs answers gb.logd.requests.delete. The rollups stay, so
// counters, charts and token usage keep their history.
func (s *Store) DeleteRequestLogs(ctx context.Context, q logapi.RequestLogDelete) (int64, error) {
	if _, err := deleteFilter(q.IDs, q.All, q.Before); err != nil {
		return 0, err
	}
	n, err := s.deleteRequestLogs(ctx, rowQuery{IDs: q.IDs, To: q.Before})
	if err != nil {
		return n, err
	}
	if err := s.deleteRecent(ctx, q.IDs, q.All, q.Before); err != nil {
		return n, err
	}
	return n, nil
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

// rollupDocsIn reads the rollup documents of coll matching f, with the
// parts not yet folded added (the query's view; see Store.consistent).
func (s *Store) rollupDocsIn(ctx context.Context, coll *mongo.Collection, f bson.M) ([]Rollup, error) {
	v, _ := ctx.Value(viewKey{}).(*view)
	if v == nil {
		var err error
		if v, err = s.loadView(ctx); err != nil {
			return nil, err
		}
	}
	var out []Rollup
	byID, err := s.guardByLookup(ctx) // FerretDB on SQLite (rollupids.go)
	if err != nil {
		return nil, err
	}
	if ids, ok := rollupIDs(coll.Name(), f); ok && byID {
		if out, err = s.rollupsByID(ctx, coll, ids); err != nil {
			return nil, err
		}
		return v.merge(coll.Name(), f, out)
	}
	cur, err := coll.Find(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("find rollups: %w", err)
	}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("read rollups: %w", err)
	}
	return v.merge(coll.Name(), f, out)
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

// Series answers gb.logd.stats.series.
func (s *Store) Series(ctx context.Context, q logapi.SeriesQuery) (logapi.Series, error) {
	return consistently(ctx, s, func(ctx context.Context) (logapi.Series, error) { return s.series(ctx, q) })
}

func (s *Store) series(ctx context.Context, q logapi.SeriesQuery) (logapi.Series, error) {
	n := 0
	for _, v := range []string{q.KeyID, q.Model, q.TokenID} {
		if v != "" {
			n++
		}
	}
	lvl := level(q.KeyID, q.Model, q.TokenID)
	if n > 1 {
		// Two or three dimensions: the full-level rollups (key|model|token)
		// with those fixed, summed over the others.
		lvl = bson.M{}
		for k, v := range map[string]string{"k": q.KeyID, "mo": q.Model, "tk": q.TokenID} {
			if v != "" {
				lvl[k] = v
			} else {
				lvl[k] = bson.M{"$ne": Any}
			}
		}
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
	docs, err := s.hourDocs(ctx, lvl, from, to)
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

// KeyUsage answers gb.logd.stats.keyusage from the full-level rollups of one key.
func (s *Store) KeyUsage(ctx context.Context, q logapi.KeyUsageQuery) (logapi.KeyUsage, error) {
	return consistently(ctx, s, func(ctx context.Context) (logapi.KeyUsage, error) { return s.keyUsage(ctx, q) })
}

func (s *Store) keyUsage(ctx context.Context, q logapi.KeyUsageQuery) (logapi.KeyUsage, error) {
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
	now = now.UTC()
	var byModel map[string]Counters
	if hours <= keyModelHours {
		// The key-model rollups (keymodels.go): a document per hour.
		hs := make([]string, 0, hours)
		for h := now.Add(-time.Duration(hours-1) * time.Hour); !h.After(now); h = h.Add(time.Hour) {
			hs = append(hs, mongox.HourBucket(h))
		}
		var err error
		if byModel, err = s.keyModels(ctx, q.KeyID, hs); err != nil {
			return logapi.KeyUsage{}, err
		}
	} else {
		f := bson.M{"k": q.KeyID, "mo": bson.M{"$ne": Any}, "tk": bson.M{"$ne": Any}}
		docs, err := s.hourDocs(ctx, f, now.Add(-time.Duration(hours-1)*time.Hour), now)
		if err != nil {
			return logapi.KeyUsage{}, err
		}
		byModel = map[string]Counters{}
		for _, d := range docs {
			c := byModel[d.Model]
			c.Add(d.Counters)
			byModel[d.Model] = c
		}
	}
	out := logapi.KeyUsage{KeyID: q.KeyID, Models: make(map[string]logapi.Totals, len(byModel))}
	for m, c := range byModel {
		out.Models[m] = c.totals()
	}
	return out, nil
}
