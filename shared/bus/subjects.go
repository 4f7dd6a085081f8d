// Package bus is the public contract between services: NATS subjects,
// JetStream stream and KV bucket names, and the versioned JSON payloads that
// travel on them. docs/EVENTS.md describes the same contract for people.
package bus

// Request-reply subjects. keyd and logd serve them as NATS micro services.
const (
	// KeydService is the micro service name of the key pool.
	KeydService = "keyd"
	// KeydPrefix is the endpoint group of keyd; endpoints live under it.
	KeydPrefix = "gb.keyd"

	SubjectKeyAcquire = "gb.keyd.acquire" // AcquireRequest → AcquireReply
	SubjectKeyReport  = "gb.keyd.report"  // Report, fire-and-forget (no reply expected)
	// SubjectKeySync carries KeyStateEvent between keyd replicas (core NATS,
	// every replica subscribes without a queue group).
	SubjectKeySync = "gb.keyd.sync"

	// Admin endpoints of keyd, called by admind.
	SubjectKeyList    = "gb.keyd.admin.list"
	SubjectKeyGet     = "gb.keyd.admin.get"
	SubjectKeyAdd     = "gb.keyd.admin.add"
	SubjectKeyDelete  = "gb.keyd.admin.delete"
	SubjectKeyReset   = "gb.keyd.admin.reset"
	SubjectKeyEnable  = "gb.keyd.admin.enable"
	SubjectKeyDisable = "gb.keyd.admin.disable"
	SubjectKeyVerify  = "gb.keyd.admin.verify"
	SubjectKeyReveal  = "gb.keyd.admin.reveal"
	SubjectKeyStats   = "gb.keyd.admin.stats"

	// File↔key binding: Gemini files are readable only by the uploading key.
	SubjectFileBind   = "gb.keyd.files.bind"
	SubjectFileLookup = "gb.keyd.files.lookup"
	SubjectFileList   = "gb.keyd.files.list"
	SubjectFileDelete = "gb.keyd.files.delete"

	// schedulerd's endpoints (admind calls them): SchedulerStatus of every
	// tick, and TickRunRequest → TickRunReply to emit a tick now.
	SubjectSchedulerStatus = "gb.schedulerd.status"
	SubjectSchedulerRun    = "gb.schedulerd.run"

	// LogdService is the micro service name of the log store.
	LogdService = "logd"
	LogdPrefix  = "gb.logd"
)

// JetStream streams and the subjects they capture.
const (
	// StreamEvents holds request, error and key-state events.
	StreamEvents     = "GB_EVENTS"
	SubjectEventsAll = "gb.events.>"
	// Request and error events travel in batches (RequestBatch, ErrorBatch):
	// edge groups what accumulates while its previous publish is in flight, so
	// one JetStream message carries one event at low traffic and hundreds
	// under load, and the per-event bus cost stays small.
	SubjectEventRequests = "gb.events.requests"
	SubjectEventErrors   = "gb.events.errors"
	SubjectEventKeyState = "gb.events.keystate"

	// StreamTicks holds schedulerd ticks, deduplicated by Nats-Msg-Id.
	StreamTicks        = "GB_TICKS"
	SubjectTicksAll    = "gb.ticks.>"
	SubjectTickRecover = "gb.ticks.recover"
	// SubjectTickRetention triggers logd's log retention.
	SubjectTickRetention = "gb.ticks.retention"

	// StreamDeadLetter keeps events logd could not parse, with the reason.
	StreamDeadLetter  = "GB_DLQ"
	SubjectDeadLetter = "gb.dlq.>"
	SubjectDLQLogd    = "gb.dlq.logd"
)

// Deliver subjects of the durable push consumers. They sit outside "gb.>" on
// purpose: a tap such as `nats sub 'gb.>'` must never receive (and so hold
// back) deliveries meant for keyd or logd.
const (
	SubjectDeliverKeydRecover  = "_GB.deliver.keyd.recover"
	SubjectDeliverLogdRequests = "_GB.deliver.logd.request"
	SubjectDeliverLogdErrors   = "_GB.deliver.logd.error"
)

// Settings broadcast: admind owns the settings document in MongoDB and mirrors
// it into this KV bucket; every service watches the bucket and applies changes
// live.
const (
	BucketSettings = "gb_settings"
	KeySettings    = "current"

	// BucketClientTokens carries the client tokens admind manages to every
	// edge replica: one ClientToken entry per token, keyed by the token id.
	// admind writes it on every change and re-syncs it from MongoDB at start;
	// edge watches it and applies changes live. Entries hold a SHA-256 of the
	// token, never the token.
	BucketClientTokens = "gb_client_tokens"
)

// Service names, used for NATS connection names and micro service discovery.
const (
	ServiceEdge       = "edge"
	ServiceKeyd       = "keyd"
	ServiceLogd       = "logd"
	ServiceAdmind     = "admind"
	ServiceSchedulerd = "schedulerd"
)

// AllServices lists every service, in the order health reports show them.
var AllServices = []string{ServiceEdge, ServiceKeyd, ServiceLogd, ServiceAdmind, ServiceSchedulerd}
