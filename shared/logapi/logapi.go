// Package logapi is the request-reply contract of logd's NATS micro service
// "logd" (endpoint group gb.logd): the JSON payloads that admind (or
// `nats req`) uses to read and manage logs and statistics. The subjects are
// shared/bus's SubjectLog* constants.
//
// Every endpoint takes a JSON request (an empty body means the zero value)
// and answers JSON. Failures are answered with the micro error headers
// (Nats-Service-Error-Code 400 for a bad request, 404 for a missing error
// log, 500 otherwise) and a JSON body {"error": "..."}.
//
//	subject                  request            reply
//	gb.logd.requests.list    RequestLogQuery    RequestLogPage
//	gb.logd.errors.list      ErrorLogQuery      ErrorLogPage   (rows without message/body)
//	gb.logd.errors.get       ErrorLogGet        ErrorLog       (full row, body when recorded)
//	gb.logd.errors.delete    ErrorLogDelete     DeleteReply
//	gb.logd.stats.overview   OverviewQuery      Overview
//	gb.logd.stats.series     SeriesQuery        Series
//	gb.logd.stats.attention  AttentionQuery     Attention
//	gb.logd.stats.keyusage   KeyUsageQuery      KeyUsage
//	gb.logd.retention.run    (empty)            RetentionReply (same as the retention tick)
//	gb.logd.requests.delete  RequestLogDelete   DeleteReply
//	gb.logd.stats.tokens     TokenUsageQuery    TokenUsageReply
//
// Times are RFC 3339; hours are UTC buckets "2006-01-02T15".
package logapi

import "time"

// Limits on page sizes.
const (
	DefaultLimit = 10
	MaxLimit     = 1000
)

// ErrorReply is the body of a failed call.
type ErrorReply struct {
	Error string `json:"error"`
}

// RequestLog is one recorded client request.
type RequestLog struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Route      string    `json:"route,omitempty"`
	Method     string    `json:"method,omitempty"`
	Path       string    `json:"path,omitempty"`
	Model      string    `json:"model"`
	Upstream   string    `json:"upstream_model,omitempty"`
	Stream     bool      `json:"stream,omitempty"`
	TokenID    string    `json:"token_id,omitempty"`
	TokenHint  string    `json:"token_hint,omitempty"`
	KeyID      string    `json:"key_id,omitempty"`
	KeyHint    string    `json:"key_hint,omitempty"`
	KeyKind    string    `json:"key_kind,omitempty"`
	Attempts   int       `json:"attempts"`
	Status     int       `json:"status"`
	Success    bool      `json:"success"`
	Class      string    `json:"class,omitempty"`
	LatencyMS  float64   `json:"latency_ms"`
	TTFBMS     float64   `json:"ttfb_ms,omitempty"`
	Prompt     int       `json:"prompt_tokens,omitempty"`
	Completion int       `json:"completion_tokens,omitempty"`
	Thoughts   int       `json:"thought_tokens,omitempty"`
	Cached     int       `json:"cached_tokens,omitempty"`
	Tokens     int       `json:"total_tokens,omitempty"`
	Replica    string    `json:"replica,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// RequestLogQuery filters, sorts and pages request logs. Zero fields do not filter.
type RequestLogQuery struct {
	From    time.Time `json:"from,omitzero"` // inclusive
	To      time.Time `json:"to,omitzero"`   // exclusive
	KeyID   string    `json:"key_id,omitempty"`
	Model   string    `json:"model,omitempty"`
	TokenID string    `json:"token_id,omitempty"`
	Route   string    `json:"route,omitempty"`
	Status  int       `json:"status,omitempty"`
	Success *bool     `json:"success,omitempty"`
	SortBy  string    `json:"sort_by,omitempty"` // time (default), latency, status, model
	Order   string    `json:"order,omitempty"`   // desc (default) or asc
	Limit   int       `json:"limit,omitempty"`   // 1..1000, default 10
	Offset  int       `json:"offset,omitempty"`
	// Count is auto (default: estimated from the rollups without filters
	// other than a time range, key, model and token; an exact count with
	// others), exact, or none.
	Count string `json:"count,omitempty"`
}

// Count modes of RequestLogQuery.
const (
	CountAuto  = "auto"
	CountExact = "exact"
	CountNone  = "none"
)

// RequestLogPage is one page and the total matching the filter.
type RequestLogPage struct {
	Logs []RequestLog `json:"logs"`
	// Total is absent with count none; TotalExact is false when it is an
	// estimate. HasMore says another page follows.
	Total      *int64 `json:"total,omitempty"`
	TotalExact bool   `json:"total_exact"`
	HasMore    bool   `json:"has_more"`
}

// RequestLogDelete deletes request logs by ids, everything (All), or
// everything older than Before; exactly one of the three. Rollups stay.
type RequestLogDelete struct {
	IDs    []string  `json:"ids,omitempty"`
	All    bool      `json:"all,omitempty"`
	Before time.Time `json:"before,omitzero"`
}

// ErrorLog is one failed upstream attempt. Message and RequestBody are only
// filled by gb.logd.errors.get.
type ErrorLog struct {
	ID          string    `json:"id"`
	RequestID   string    `json:"request_id,omitempty"`
	Time        time.Time `json:"time"`
	Route       string    `json:"route,omitempty"`
	Model       string    `json:"model"`
	KeyID       string    `json:"key_id,omitempty"`
	KeyHint     string    `json:"key_hint,omitempty"`
	Attempt     int       `json:"attempt"`
	Class       string    `json:"class,omitempty"`
	Code        int       `json:"error_code"`
	Type        string    `json:"error_type"`
	Message     string    `json:"error_log,omitempty"`
	RequestBody string    `json:"request_body,omitempty"`
}

// ErrorLogQuery searches, filters, sorts and pages error logs.
type ErrorLogQuery struct {
	Search    string    `json:"search,omitempty"`     // case-insensitive substring of message or type
	Code      int       `json:"code,omitempty"`       // exact status code
	KeyID     string    `json:"key_id,omitempty"`     // exact key id
	KeySearch string    `json:"key_search,omitempty"` // substring of the key hint or id
	Model     string    `json:"model,omitempty"`
	RequestID string    `json:"request_id,omitempty"` // the errors behind one request
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"`
	SortBy    string    `json:"sort_by,omitempty"` // time (default), code, model, type
	Order     string    `json:"order,omitempty"`
	Limit     int       `json:"limit,omitempty"`
	Offset    int       `json:"offset,omitempty"`
}

// ErrorLogPage is one page and the total matching the filter.
type ErrorLogPage struct {
	Logs  []ErrorLog `json:"logs"`
	Total int64      `json:"total"`
}

// ErrorLogGet names one error log.
type ErrorLogGet struct {
	ID string `json:"id"`
}

// ErrorLogDelete deletes by ids, everything (All), or everything older than Before.
// Exactly one of the three must be set.
type ErrorLogDelete struct {
	IDs    []string  `json:"ids,omitempty"`
	All    bool      `json:"all,omitempty"`
	Before time.Time `json:"before,omitzero"`
}

// DeleteReply says how many documents went.
type DeleteReply struct {
	Deleted int64 `json:"deleted"`
}

// Totals are request counters over a window or an hour.
type Totals struct {
	Requests       int64   `json:"requests"`
	Successes      int64   `json:"successes"`
	Failures       int64   `json:"failures"`
	Failures4xx    int64   `json:"failures_4xx"`
	Failures5xx    int64   `json:"failures_5xx"`
	FailuresOther  int64   `json:"failures_other"`
	PromptTokens   int64   `json:"prompt_tokens"`
	CompletionToks int64   `json:"completion_tokens"`
	ThoughtTokens  int64   `json:"thought_tokens"`
	Tokens         int64   `json:"total_tokens"`
	LatencyMSSum   float64 `json:"latency_ms_sum"`
}

// OverviewQuery may pin "now" (tests, reports); zero means the current time.
type OverviewQuery struct {
	Now time.Time `json:"now,omitzero"`
}

// Overview holds the dashboard counters: last minute, last hour, last 24
// hours and the current calendar month (UTC), each exact.
type Overview struct {
	Now    time.Time `json:"now"`
	Minute Totals    `json:"minute"`
	Hour   Totals    `json:"hour"`
	Day    Totals    `json:"day"`
	Month  Totals    `json:"month"`
}

// SeriesQuery asks for hourly points, overall or narrowed by any of KeyID,
// Model and TokenID. From/To default to the last 24 hours.
type SeriesQuery struct {
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	KeyID   string    `json:"key_id,omitempty"`
	Model   string    `json:"model,omitempty"`
	TokenID string    `json:"token_id,omitempty"`
}

// SeriesPoint is one hour.
type SeriesPoint struct {
	Hour string `json:"hour"`
	Totals
}

// Series has one point per hour from From's hour to To's hour, zeros included.
type Series struct {
	Points []SeriesPoint `json:"points"`
}

// AttentionQuery asks for the keys with the most failures of one status code
// over the last 24 hourly buckets (the current hour and the 23 before it).
type AttentionQuery struct {
	Code  int       `json:"status_code"`     // default 429
	Limit int       `json:"limit,omitempty"` // 1..1000, default 10
	Now   time.Time `json:"now,omitzero"`
}

// AttentionKey is one key and its count.
type AttentionKey struct {
	KeyID string `json:"key_id"`
	Count int64  `json:"count"`
}

// Attention lists keys, most occurrences first.
type Attention struct {
	Code int            `json:"status_code"`
	Keys []AttentionKey `json:"keys"`
}

// KeyUsageQuery asks for one key's usage by model over the last Hours hourly
// buckets (default 24).
type KeyUsageQuery struct {
	KeyID string    `json:"key_id"`
	Hours int       `json:"hours,omitempty"`
	Now   time.Time `json:"now,omitzero"`
}

// KeyUsage maps model → totals.
type KeyUsage struct {
	KeyID  string            `json:"key_id"`
	Models map[string]Totals `json:"models"`
}

// TokenUsageQuery asks for the usage of client tokens (all with traffic in
// the last 30 days when TokenIDs is empty).
type TokenUsageQuery struct {
	TokenIDs []string  `json:"token_ids,omitempty"`
	Now      time.Time `json:"now,omitzero"`
}

// TokenUsage is one token's usage from the hourly rollups: the last 24
// hourly buckets and the last 30 days (720 buckets).
type TokenUsage struct {
	Requests24h int64 `json:"requests_24h"`
	Failures24h int64 `json:"failures_24h"`
	Tokens24h   int64 `json:"tokens_24h"`
	Requests30d int64 `json:"requests_30d"`
	Tokens30d   int64 `json:"tokens_30d"`
	// LastUsed is the start of the newest hour with a request (hour
	// precision, within the 30 days); nil when none.
	LastUsed *time.Time `json:"last_used,omitempty"`
}

// TokenUsageReply maps token id → usage.
type TokenUsageReply struct {
	Tokens map[string]TokenUsage `json:"tokens"`
}

// RetentionReply says what a retention pass deleted.
type RetentionReply struct {
	RequestLogs int64 `json:"request_logs"`
	ErrorLogs   int64 `json:"error_logs"`
	Rollups     int64 `json:"rollups"`
	Batches     int64 `json:"batches"`
}
