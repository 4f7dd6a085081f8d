package bus

import "time"

// Version is the schema version carried by every event in its "v" field.
// Additive changes keep the version; a breaking change gets new subjects.
const Version = 1

// Usage is token accounting from Gemini's usageMetadata.
type Usage struct {
	Prompt     int `json:"prompt,omitempty"`
	Candidates int `json:"candidates,omitempty"`
	Thoughts   int `json:"thoughts,omitempty"`
	Cached     int `json:"cached,omitempty"`
	Total      int `json:"total,omitempty"`
}

// MaxBatchEvents bounds the events of one RequestBatch or ErrorBatch, which
// keeps a message well under NATS's default 1 MiB payload limit.
const MaxBatchEvents = 256

// RequestBatch is the payload on SubjectEventRequests: one or more request
// events, each still a whole event with its own id.
type RequestBatch struct {
	V      int            `json:"v"`
	Events []RequestEvent `json:"events"`
}

// ErrorBatch is the payload on SubjectEventErrors.
type ErrorBatch struct {
	V      int          `json:"v"`
	Events []ErrorEvent `json:"events"`
}

// RequestEvent is recorded once per client request (inside a RequestBatch).
// It never carries a full key or client token: only ids and masked hints.
type RequestEvent struct {
	V           int       `json:"v"`
	ID          string    `json:"id"` // unique; logd uses it as the document _id
	Time        time.Time `json:"time"`
	Route       string    `json:"route"` // e.g. "gemini.generateContent", "openai.chat"
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	Model       string    `json:"model"`                    // as requested, suffix included
	Upstream    string    `json:"upstream_model,omitempty"` // as sent upstream
	Stream      bool      `json:"stream,omitempty"`
	TokenID     string    `json:"token_id,omitempty"`
	TokenHint   string    `json:"token_hint,omitempty"`
	KeyID       string    `json:"key_id,omitempty"` // key of the last attempt
	KeyHint     string    `json:"key_hint,omitempty"`
	KeyKind     string    `json:"key_kind,omitempty"`
	Attempts    int       `json:"attempts"`
	Status      int       `json:"status"` // status the client saw
	Success     bool      `json:"success"`
	Class       string    `json:"class,omitempty"` // outcome class of the last attempt
	LatencyMS   float64   `json:"latency_ms"`
	TTFBMS      float64   `json:"ttfb_ms,omitempty"`
	Usage       Usage     `json:"usage"`
	Replica     string    `json:"replica,omitempty"`
	ClientError string    `json:"error,omitempty"` // redacted reason for a failure
}

// ErrorEvent is recorded once per failed upstream attempt (inside an ErrorBatch).
type ErrorEvent struct {
	V              int       `json:"v"`
	ID             string    `json:"id"`
	RequestID      string    `json:"request_id"`
	Time           time.Time `json:"time"`
	Route          string    `json:"route"`
	Model          string    `json:"model"`
	KeyID          string    `json:"key_id,omitempty"`
	KeyHint        string    `json:"key_hint,omitempty"`
	Attempt        int       `json:"attempt"`
	Class          string    `json:"class"`
	UpstreamStatus int       `json:"upstream_status"`
	ErrorType      string    `json:"error_type"` // e.g. "gemini-chat-stream", as gemini-balance names them
	Message        string    `json:"message"`    // redacted upstream body or local error
	RequestBody    string    `json:"request_body,omitempty"`
}

// Key states.
const (
	KeyActive   = "active"
	KeyCooling  = "cooling"
	KeyDisabled = "disabled"
)

// Further KeyStateEvent.To values: a key joined or left the pool, or its
// weight or note changed (its state did not).
const (
	KeyAdded   = "added"
	KeyDeleted = "deleted"
	KeyUpdated = "updated"
)

// KeyStateEvent is published on SubjectEventKeyState (durable, for taps and
// history) and on SubjectKeySync (replica sync) whenever a key changes state.
type KeyStateEvent struct {
	V       int       `json:"v"`
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	KeyID   string    `json:"key_id"`
	KeyHint string    `json:"key_hint"`
	Kind    string    `json:"kind"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
	Model   string    `json:"model,omitempty"` // for a per-model cooldown
	Until   time.Time `json:"until,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Replica string    `json:"replica,omitempty"`
}

// Tick is a schedulerd tick. Its Nats-Msg-Id is "<name>:<slot>", so several
// schedulerd replicas yield one tick per slot.
type Tick struct {
	V    int       `json:"v"`
	Name string    `json:"name"` // TickRecover or TickRetention
	Slot string    `json:"slot"` // e.g. "2026-11-27T06:00"
	Time time.Time `json:"time"`
}

// Tick names: Tick.Name, TickStatus.Name and TickRunRequest.Name.
const (
	TickRecover   = "recover"   // on SubjectTickRecover: keyd re-verifies disabled keys
	TickRetention = "retention" // on SubjectTickRetention: logd deletes old logs
)

// TickMsgID is the JetStream de-duplication id of a tick.
func TickMsgID(t Tick) string { return t.Name + ":" + t.Slot }

// DeadLetter wraps a message logd could not handle.
type DeadLetter struct {
	V       int       `json:"v"`
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"`
	Reason  string    `json:"reason"`
	Payload string    `json:"payload"`
	// PayloadEncoding is "base64" when Payload holds the base64 of bytes
	// that are not UTF-8 text (a compressed batch that would not decode);
	// empty when Payload is the message's text as it was.
	PayloadEncoding string `json:"payload_encoding,omitempty"`
}
