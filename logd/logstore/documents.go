// Package logstore owns logd's MongoDB collections:
//
//   - request_log_buckets: the request logs, one document per bus message
//     and minute holding its rows compressed (buckets.go); request_logs: the
//     rows of earlier versions, one document per event, still read;
//   - error_logs: one document per event, _id = event id;
//   - request_logs_recent_<yyyymmddhhmm> and request_logs_watermark: a copy
//     of the newest request logs, one collection per minute, that serves
//     the logs page (recent.go);
//   - error_minutes and error_hours: the time index of error_logs, and
//     error_logs_copy_<yyyymmddhh>m<m0>: ten-minute copies of the newest
//     error logs' list fields that serve the errors page (errindex.go);
//   - rollups_hourly and rollups_minute: the counters every chart reads;
//   - rollups_attention and rollups_minute_seconds: per-hour counts of every
//     key by status code and per-minute second rollups, kept by the fold
//     beside the rollups so attention and the overview's window edges are
//     _id lookups (derived.go);
//   - rollups_month_days: each day's overall counters, one document per
//     month, kept by the fold for the month and all-time totals
//     (monthdays.go);
//   - rollups_token_hours and rollups_token_days: every client token's
//     counters per hour and per day, for the tokens page (tokenrollups.go);
//   - rollups_key_models: a key's counters by model per hour, for the key
//     view (keymodels.go);
//   - rollups_second_<yyyymmddhh> and rollups_second: the second rollups of
//     earlier versions, read only to backfill rollups_minute_seconds and
//     dropped by retention (seconds.go);
//   - rollup_parts, rollup_rounds and rollup_folded: the parts that feed the
//     rollups, the fold's rounds and its journal (parts.go).
//
// It writes batches idempotently (a redelivered message writes the same
// documents: the bucket's or error log's _id), keeps
// the rollups exactly equal to the rows (parts.go) and answers the queries
// the admin API needs, keeping busy-day answers on the hourly rollups.
//
// Everything stays inside the subset MongoDB and FerretDB share: no date
// operators (hour/month buckets are stored as strings), no transactions, one
// accumulator per $group (sums over rollups are done in Go instead).
package logstore

import (
	"strconv"
	"strings"
	"time"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/mongox"
)

// Collection names owned by logd.
const (
	CollRequests = "request_logs"
	CollErrors   = "error_logs"
	CollRollups  = "rollups_hourly"
	// CollParts holds the rollup parts not yet folded into the rollups, one
	// per bus message, and the fold state (see parts.go).
	CollParts = "rollup_parts"
	// CollFolded journals the folded parts, so a message redelivered after
	// its part was folded is not counted again. Kept BatchJournalAge.
	CollFolded = "rollup_folded"
	// CollRounds holds the fold rounds (_id = zero-padded number); inserting
	// one is how a fold claims its number. Kept BatchJournalAge.
	CollRounds = "rollup_rounds"
	// CollMinutes holds overall per-minute rollups (_id "2026-11-27T06:05"),
	// so the dashboard windows (last minute, hour, 24 h) are exact without
	// scanning more than a minute of raw logs. Kept MinuteRollupAge.
	CollMinutes = "rollups_minute"
	// CollSeconds held overall per-second rollups (_id "2026-11-27T06:05:07",
	// m = its minute) in earlier versions; see seconds.go. Rollup parts name
	// their second entries under it.
	CollSeconds = "rollups_second"
	// CollErrorMinutes indexes error logs by minute (_id "2026-11-27T06:05",
	// ev = "<time>|<id>" of each error log in it), and CollErrorHours counts
	// them by hour (_id "2026-11-27T06", n): FerretDB serves _id lookups
	// fast but sorts in Go over every row, so the newest error logs are found
	// through these (see errindex.go).
	CollErrorMinutes = "error_minutes"
	CollErrorHours   = "error_hours"
)

// Any is the rollup dimension value meaning "all": rollups are kept at the
// full hour|key|model|token level and at overall, per-key, per-model and
// per-token levels, so every chart reads a handful of documents.
const Any = "*"

// RequestLog is one request_logs document.
type RequestLog struct {
	ID   string    `bson:"_id"`
	Time time.Time `bson:"t"`
	Hour string    `bson:"h"`
	// Minute is the minute bucket: FerretDB pushes only equality filters
	// down to PostgreSQL, so a partial minute is read by bucket, not by range.
	Minute     string  `bson:"m"`
	Route      string  `bson:"route,omitempty"`
	Method     string  `bson:"method,omitempty"`
	Path       string  `bson:"path,omitempty"`
	Model      string  `bson:"model"`
	Upstream   string  `bson:"upstream_model,omitempty"`
	Stream     bool    `bson:"stream,omitempty"`
	TokenID    string  `bson:"token_id"`
	TokenHint  string  `bson:"token_hint,omitempty"`
	KeyID      string  `bson:"key_id"`
	KeyHint    string  `bson:"key_hint,omitempty"`
	KeyKind    string  `bson:"key_kind,omitempty"`
	Attempts   int     `bson:"attempts"`
	Status     int     `bson:"status"`
	Success    bool    `bson:"success"`
	Class      string  `bson:"class,omitempty"`
	LatencyMS  float64 `bson:"latency_ms"`
	TTFBMS     float64 `bson:"ttfb_ms,omitempty"`
	Prompt     int     `bson:"prompt,omitempty"`
	Completion int     `bson:"completion,omitempty"`
	Thoughts   int     `bson:"thoughts,omitempty"`
	Cached     int     `bson:"cached,omitempty"`
	Tokens     int     `bson:"tokens,omitempty"`
	Replica    string  `bson:"replica,omitempty"`
	Error      string  `bson:"error,omitempty"`
	// Batch is the rollup part that counts the row: the PartID of the message
	// that stored it first (see parts.go).
	Batch string `bson:"b"`
}

// ErrorLog is one error_logs document: one failed upstream attempt.
type ErrorLog struct {
	ID        string    `bson:"_id"`
	RequestID string    `bson:"request_id,omitempty"`
	Time      time.Time `bson:"t"`
	// Minute is the minute bucket, so the newest page reads a minute's rows
	// with one equality FerretDB pushes down (see errorsNewestFirst).
	Minute      string `bson:"m,omitempty"`
	Route       string `bson:"route,omitempty"`
	Model       string `bson:"model"`
	KeyID       string `bson:"key_id"`
	KeyHint     string `bson:"key_hint,omitempty"`
	Attempt     int    `bson:"attempt"`
	Class       string `bson:"class,omitempty"`
	Code        int    `bson:"code"`
	Type        string `bson:"type"`
	Message     string `bson:"message,omitempty"`
	RequestBody string `bson:"request_body,omitempty"`
	// Batch is the rollup part that counts the row, as for RequestLog.
	Batch string `bson:"b,omitempty"`
}

// Counters are the additive fields of a rollup, and the shape of every total
// the queries return.
type Counters struct {
	Requests   int64   `bson:"req,omitempty"`
	Successes  int64   `bson:"ok,omitempty"`
	Failures   int64   `bson:"fail,omitempty"`
	Fail4xx    int64   `bson:"f4xx,omitempty"`
	Fail5xx    int64   `bson:"f5xx,omitempty"`
	FailOther  int64   `bson:"fother,omitempty"`
	Prompt     int64   `bson:"pt,omitempty"`
	Completion int64   `bson:"ct,omitempty"`
	Thoughts   int64   `bson:"tt,omitempty"`
	Tokens     int64   `bson:"tok,omitempty"`
	LatencySum float64 `bson:"lat,omitempty"`
}

// Add accumulates o into c.
func (c *Counters) Add(o Counters) {
	c.Requests += o.Requests
	c.Successes += o.Successes
	c.Failures += o.Failures
	c.Fail4xx += o.Fail4xx
	c.Fail5xx += o.Fail5xx
	c.FailOther += o.FailOther
	c.Prompt += o.Prompt
	c.Completion += o.Completion
	c.Thoughts += o.Thoughts
	c.Tokens += o.Tokens
	c.LatencySum += o.LatencySum
}

// Rollup is one rollups_hourly document. Codes counts failures by exact
// status code ("429" → n) for the attention-keys query.
type Rollup struct {
	ID    string           `bson:"_id"`
	Hour  string           `bson:"h"`
	Day   string           `bson:"d"` // for equality-filtered reads, see Store.hourDocs
	Month string           `bson:"mon"`
	Key   string           `bson:"k"`
	Model string           `bson:"mo"`
	Token string           `bson:"tk"`
	Codes map[string]int64 `bson:"codes,omitempty"` // requests by the status the client saw
	// Attempts counts failed upstream attempts by upstream status (key-level
	// rollups only, from error events): what attention keys rank by.
	Attempts map[string]int64 `bson:"acodes,omitempty"`
	// Round is the last fold round applied to the document (see parts.go).
	Round    int64 `bson:"fr,omitempty"`
	Counters `bson:",inline"`
}

// MinuteBucket returns "2026-11-27T06:05" (UTC).
func MinuteBucket(t time.Time) string { return t.UTC().Format("2006-01-02T15:04") }

// SecondBucket returns "2026-11-27T06:05:07" (UTC).
func SecondBucket(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

// RollupID is the _id of the rollup for one hour and dimension set.
func RollupID(hour, key, model, token string) string {
	return hour + "|" + key + "|" + model + "|" + token
}

// FromRequestEvent maps an event to its document.
func FromRequestEvent(e *bus.RequestEvent) RequestLog {
	total := e.Usage.Total
	if total == 0 {
		total = e.Usage.Prompt + e.Usage.Candidates + e.Usage.Thoughts
	}
	return RequestLog{
		ID: e.ID, Time: e.Time.UTC(), Hour: mongox.HourBucket(e.Time), Minute: MinuteBucket(e.Time),
		Route: e.Route, Method: e.Method, Path: e.Path, Model: e.Model, Upstream: e.Upstream, Stream: e.Stream,
		TokenID: e.TokenID, TokenHint: e.TokenHint, KeyID: e.KeyID, KeyHint: e.KeyHint, KeyKind: e.KeyKind,
		Attempts: e.Attempts, Status: e.Status, Success: e.Success, Class: e.Class,
		LatencyMS: e.LatencyMS, TTFBMS: e.TTFBMS,
		Prompt: e.Usage.Prompt, Completion: e.Usage.Candidates, Thoughts: e.Usage.Thoughts, Cached: e.Usage.Cached, Tokens: total,
		Replica: e.Replica, Error: e.ClientError,
	}
}

// FromErrorEvent maps an event to its document.
func FromErrorEvent(e *bus.ErrorEvent) ErrorLog {
	return ErrorLog{
		ID: e.ID, RequestID: e.RequestID, Time: e.Time.UTC(), Minute: MinuteBucket(e.Time), Route: e.Route, Model: e.Model,
		KeyID: e.KeyID, KeyHint: e.KeyHint, Attempt: e.Attempt, Class: e.Class,
		Code: e.UpstreamStatus, Type: e.ErrorType, Message: e.Message, RequestBody: e.RequestBody,
	}
}

// countersOf is what one request adds to its rollups. Success is the
// event's own verdict; gemini-balance counted 2xx as success, and edge sets
// Success accordingly.
func countersOf(r *RequestLog) (Counters, string) {
	c := Counters{
		Requests: 1, Prompt: int64(r.Prompt), Completion: int64(r.Completion),
		Thoughts: int64(r.Thoughts), Tokens: int64(r.Tokens), LatencySum: r.LatencyMS,
	}
	if r.Success {
		c.Successes = 1
		return c, ""
	}
	c.Failures = 1
	switch {
	case r.Status >= 400 && r.Status < 500:
		c.Fail4xx = 1
	case r.Status >= 500 && r.Status < 600:
		c.Fail5xx = 1
	default:
		c.FailOther = 1
	}
	return c, strconv.Itoa(r.Status)
}

// dim replaces an empty dimension value so "*" stays reserved for "all".
func dim(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	if s == "" || s == Any {
		return "-"
	}
	return s
}

// InsertOnly reports whether logd only inserts into a collection, scans it
// and drops it whole, never finding or updating one document by _id (only an
// admin's delete rewrites a few of the recent copy's buckets, in a small
// collection): the embedded store gives such collections no _id lookup index
// (deployments/embedded/ferret, idindex.go), which would only cost inserts.
// The request and error rows keep theirs: a redelivered batch looks its
// duplicates up by _id, and the error page reads its rows by _id.
func InsertOnly(coll string) bool {
	return strings.HasPrefix(coll, CollRecentPrefix) || strings.HasPrefix(coll, CollErrorCopyPrefix)
}
