// Package keyapi holds the JSON requests and replies of keyd's admin and file
// endpoints (subjects in shared/bus): the contract keyd serves and admind and
// edge call.
//
// Every reply carries Error when the request failed. No reply carries a full
// key except RevealReply and ExportReply.
package keyapi

import (
	"time"

	"github.com/gemini-balance-go/shared/bus"
)

// Cooldown is a per-model cooldown as admins see it.
type Cooldown struct {
	Model   string    `json:"model"`
	Until   time.Time `json:"until"`
	Strikes int       `json:"strikes"`
}

// Key is a key as admins see it: masked.
type Key struct {
	ID             string     `json:"id"`
	Hint           string     `json:"hint"`
	Kind           string     `json:"kind"`
	Status         string     `json:"status"` // active, cooling, disabled
	Weight         int        `json:"weight,omitempty"`
	Note           string     `json:"note,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	DisabledAt     time.Time  `json:"disabled_at,omitzero"`
	Failures       int        `json:"failures"`
	Cooldowns      []Cooldown `json:"cooldowns,omitempty"` // only those still running
	LastUsed       time.Time  `json:"last_used,omitzero"`
	LastError      string     `json:"last_error,omitempty"`
	Successes      int64      `json:"successes"`
	FailuresTotal  int64      `json:"failures_total"`
	Created        time.Time  `json:"created,omitzero"`
}

// UpdateRequest sets the weight (0 or 1 = normal share, up to 100) and/or
// the note of one key; nil fields are left as they are.
type UpdateRequest struct {
	ID     string  `json:"id"`
	Weight *int    `json:"weight,omitempty"`
	Note   *string `json:"note,omitempty"`
}

// ListRequest (gb.keyd.admin.list) filters and pages the keys.
type ListRequest struct {
	Kind string `json:"kind,omitempty"`
	// Status is active, cooling, disabled, valid (not disabled) or invalid (disabled).
	Status string `json:"status,omitempty"`
	Search string `json:"search,omitempty"` // substring of id, hint or note
	// MinFailures keeps keys with at least this many consecutive failures.
	MinFailures int `json:"min_failures,omitempty"`
	Page        int `json:"page,omitempty"` // from 1
	PageSize    int `json:"page_size,omitempty"`
}

// gemini-balance's status filters, accepted by list and export.
const (
	StatusValid   = "valid"   // not disabled
	StatusInvalid = "invalid" // disabled
)

// ExportRequest names keys by id (in that order), or by status (valid,
// invalid or empty for all) and kind.
type ExportRequest struct {
	IDs    []string `json:"ids,omitempty"`
	Status string   `json:"status,omitempty"`
	Kind   string   `json:"kind,omitempty"`
}

// ModelInfo is one upstream model, from GET {BASE_URL}/v1beta/models.
type ModelInfo struct {
	Name             string   `json:"name"` // without "models/"
	DisplayName      string   `json:"display_name,omitempty"`
	InputTokenLimit  int      `json:"input_token_limit,omitempty"`
	OutputTokenLimit int      `json:"output_token_limit,omitempty"`
	Methods          []string `json:"methods,omitempty"` // supportedGenerationMethods
}

// ModelsReply carries the upstream model list, or Error.
type ModelsReply struct {
	Models    []ModelInfo `json:"models"`
	FetchedAt time.Time   `json:"fetched_at,omitzero"`
	Error     string      `json:"error,omitempty"`
}

// ExportReply carries full keys, one per entry. With RevealReply it is the
// only reply that carries keys.
type ExportReply struct {
	Keys  []string `json:"keys"`
	Error string   `json:"error,omitempty"`
}

// ListReply is one page of keys.
type ListReply struct {
	Keys     []Key  `json:"keys"`
	Total    int    `json:"total"`
	Page     int    `json:"page"`
	PageSize int    `json:"page_size"`
	Error    string `json:"error,omitempty"`
}

// GetRequest (gb.keyd.admin.get) names one key.
type GetRequest struct {
	ID string `json:"id"`
}

// GetReply carries the key, or Error "not found".
type GetReply struct {
	Key   *Key   `json:"key,omitempty"`
	Error string `json:"error,omitempty"`
}

// AddRequest (gb.keyd.admin.add): keys are extracted from Text by pattern
// (AIza… Gemini keys, AQ.… Vertex Express keys); Keys are taken as they are.
type AddRequest struct {
	Text   string   `json:"text,omitempty"`
	Keys   []string `json:"keys,omitempty"`
	Kind   string   `json:"kind,omitempty"` // gemini (default), vertex or paid
	Weight int      `json:"weight,omitempty"`
	Note   string   `json:"note,omitempty"`
}

// AddReply counts what happened to each candidate.
type AddReply struct {
	Added      []Key    `json:"added"`
	Duplicates []string `json:"duplicates"` // hints
	Invalid    []string `json:"invalid"`    // masked fragments that are not keys
	AddedCount int      `json:"added_count"`
	DupCount   int      `json:"duplicate_count"`
	InvalidCnt int      `json:"invalid_count"`
	Error      string   `json:"error,omitempty"`
}

// Selection picks keys for delete, reset, enable, disable and verify:
// the listed ids, or every key (All), optionally only of a status and kind.
type Selection struct {
	IDs    []string `json:"ids,omitempty"`
	All    bool     `json:"all,omitempty"`
	Status string   `json:"status,omitempty"`
	Kind   string   `json:"kind,omitempty"`
	Reason string   `json:"reason,omitempty"` // for disable
}

// ChangeReply says which keys a bulk action changed.
type ChangeReply struct {
	Changed int      `json:"changed"`
	IDs     []string `json:"ids"`
	Error   string   `json:"error,omitempty"`
}

// VerifyResult is one key's live test call.
type VerifyResult struct {
	ID        string  `json:"id"`
	Hint      string  `json:"hint"`
	OK        bool    `json:"ok"`
	Class     string  `json:"class"`
	Status    int     `json:"status,omitempty"`
	Error     string  `json:"error,omitempty"` // redacted
	LatencyMS float64 `json:"latency_ms"`
	State     string  `json:"state"` // the key's status after the verdict
}

// VerifyReply lists a result per key.
type VerifyReply struct {
	Results []VerifyResult `json:"results"`
	OK      int            `json:"ok"`
	Failed  int            `json:"failed"`
	Error   string         `json:"error,omitempty"`
}

// RevealReply carries the full key for the admin's copy button.
type RevealReply struct {
	ID     string `json:"id"`
	Secret string `json:"secret,omitempty"`
	Error  string `json:"error,omitempty"`
}

// StatsReply counts keys per kind and status.
type StatsReply struct {
	Counts  map[string]map[string]int `json:"counts"` // kind → status → n
	Total   int                       `json:"total"`
	Replica string                    `json:"replica"`
	Error   string                    `json:"error,omitempty"`
}

// FileQuery (gb.keyd.files.lookup, gb.keyd.files.delete) names a file or a
// pending upload. With TokenID set, a binding of another token is not found:
// a client token sees only its own files.
type FileQuery struct {
	Name     string `json:"name,omitempty"`
	UploadID string `json:"upload_id,omitempty"`
	TokenID  string `json:"token_id,omitempty"`
}

// FileListRequest (gb.keyd.files.list) lists finished files of a token.
// The same bindings also pin key-affine Gemini resources (cachedContents/…,
// batches/…, models/…/operations/…) to the key that created them.
type FileListRequest struct {
	TokenID string `json:"token_id,omitempty"`
	KeyID   string `json:"key_id,omitempty"`
	Limit   int    `json:"limit,omitempty"`
	// Prefix keeps only bindings whose name starts with it ("files/",
	// "cachedContents/", "batches/").
	Prefix string `json:"prefix,omitempty"`
	// Owned lists only TokenID's bindings even when
	// FILES_USER_ISOLATION_ENABLED is off: caches, batches and operations
	// always belong to the client token that created them.
	Owned bool `json:"owned,omitempty"`
}

// OKReply acknowledges a bind or delete. Found is false when nothing matched.
type OKReply struct {
	OK    bool   `json:"ok"`
	Found bool   `json:"found,omitempty"`
	Error string `json:"error,omitempty"`
}

// FileReply carries a binding, or nil when none matched.
type FileReply struct {
	File  *bus.FileBinding `json:"file,omitempty"`
	Error string           `json:"error,omitempty"`
}

// FileListReply lists bindings, newest first.
type FileListReply struct {
	Files []bus.FileBinding `json:"files"`
	Error string            `json:"error,omitempty"`
}
