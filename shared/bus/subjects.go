// Package bus is the public contract between services: NATS subjects,
// JetStream stream, durable consumer and KV bucket names, and the versioned
// JSON payloads that travel on them. Every name that crosses a service
// boundary is a constant here; no service spells one as a literal.
// docs/EVENTS.md describes the same contract for people, and a doc test
// (deployments/allinone/events_doc_test.go) fails when it misses a constant.
//
// The request and reply payloads of keyd's admin and file endpoints are in
// shared/keyapi, those of logd's endpoints in shared/logapi.
package bus

// Request-reply subjects. keyd, logd and schedulerd serve them as NATS micro
// services.
const (
	// KeydService is the micro service name of the key pool.
	KeydService = ServiceKeyd
	// KeydPrefix is the endpoint group of keyd; endpoints live under it.
	KeydPrefix = "gb.keyd"

	SubjectKeyAcquire = "gb.keyd.acquire" // AcquireRequest → AcquireReply
	SubjectKeyReport  = "gb.keyd.report"  // Report; acked (empty reply) when sent as a request
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
	// SubjectKeyUpdate changes a key's weight or note (keyapi.UpdateRequest
	// → keyapi.GetReply).
	SubjectKeyUpdate = "gb.keyd.admin.update"
	// SubjectKeyExport answers full keys for the admin's "copy keys"
	// (keyapi.ExportRequest → keyapi.ExportReply).
	SubjectKeyExport = "gb.keyd.admin.export"
	// SubjectKeyModels lists the upstream models with one pool key (an empty
	// request → keyapi.ModelsReply); keyd caches the answer for a few minutes.
	SubjectKeyModels = "gb.keyd.admin.models"

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
	LogdService = ServiceLogd
	// LogdPrefix is the endpoint group of logd; endpoints live under it.
	LogdPrefix = "gb.logd"

	// logd's endpoints (admind calls them); payloads are in shared/logapi.
	SubjectLogRequestsList   = "gb.logd.requests.list"
	SubjectLogRequestsDelete = "gb.logd.requests.delete"
	SubjectLogErrorsList     = "gb.logd.errors.list"
	SubjectLogErrorsGet      = "gb.logd.errors.get"
	SubjectLogErrorsDelete   = "gb.logd.errors.delete"
	SubjectLogOverview       = "gb.logd.stats.overview"
	SubjectLogSeries         = "gb.logd.stats.series"
	SubjectLogAttention      = "gb.logd.stats.attention"
	SubjectLogKeyUsage       = "gb.logd.stats.keyusage"
	SubjectLogTokenUsage     = "gb.logd.stats.tokens"
	SubjectLogRetentionRun   = "gb.logd.retention.run"
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

// Durable consumers. Each push consumer has a deliver group of the same name,
// so the replicas of its service share the work. New names follow
// "<service>-<what>"; keyd_recover predates that and keeps its name, because
// a renamed durable is a new consumer: the old one would stay behind on
// GB_TICKS and the NATS permissions name the durable.
const (
	// ConsumerKeydRecover reads SubjectTickRecover on StreamTicks.
	ConsumerKeydRecover = "keyd_recover"
	// ConsumerLogdRequests and ConsumerLogdErrors read SubjectEventRequests
	// and SubjectEventErrors on StreamEvents.
	ConsumerLogdRequests = "logd-request"
	ConsumerLogdErrors   = "logd-error"
	// ConsumerLogdRetention reads SubjectTickRetention on StreamTicks (a pull
	// consumer).
	ConsumerLogdRetention = "logd-retention"
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
