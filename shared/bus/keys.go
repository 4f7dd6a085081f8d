package bus

import (
	"errors"
	"time"
)

// ErrNotFound is what a keyd answer with error code "not_found" (or "404")
// matches with errors.Is in keyd's clients.
var ErrNotFound = errors.New("not found")

// Key kinds: separate pools rotated independently.
const (
	KindGemini = "gemini"
	KindVertex = "vertex"
	KindPaid   = "paid"
)

// AcquireRequest asks keyd for a usable key of a kind for a model.
type AcquireRequest struct {
	Kind    string   `json:"kind"`
	Model   string   `json:"model"`
	Exclude []string `json:"exclude,omitempty"` // key ids already tried for this request
	// KeyID pins a specific key (file affinity); keyd answers it if usable.
	KeyID string `json:"key_id,omitempty"`
}

// Reasons for an AcquireReply without a key.
const (
	NoKeyNone        = "no_keys"      // the pool of that kind is empty
	NoKeyAllDisabled = "all_disabled" // every key is disabled
	NoKeyAllCooling  = "all_cooling"  // every usable key cools down for this model
	NoKeyExhausted   = "exhausted"    // every usable key is in Exclude
)

// AcquireReply carries a key, or says why there is none.
type AcquireReply struct {
	ID     string `json:"id,omitempty"`
	Secret string `json:"secret,omitempty"` // only ever sent to edge over NATS
	Hint   string `json:"hint,omitempty"`
	Kind   string `json:"kind,omitempty"`

	NoKey   string    `json:"no_key,omitempty"`
	RetryAt time.Time `json:"retry_at,omitempty"` // earliest cooldown end when all cooling
	Error   string    `json:"error,omitempty"`
}

// Failed reports whether keyd could not answer the acquire: an error with
// neither a key nor a reason why none is usable (NoKey is an answer, not a
// failure).
func (r AcquireReply) Failed() bool { return r.Error != "" && r.NoKey == "" && r.ID == "" }

// Report tells keyd how an attempt with a key went. keyd acks it when the
// message has a reply subject (edge waits for failures; see EVENTS.md).
type Report struct {
	ID         string `json:"id"`
	Model      string `json:"model"`
	Class      string `json:"class"` // an outcome.Class
	Status     int    `json:"status"`
	RetryDelay int64  `json:"retry_delay_ms,omitempty"` // from RetryInfo, for rate limits
	Reason     string `json:"reason,omitempty"`         // short redacted reason, e.g. API_KEY_INVALID
}

// FileBinding records which key uploaded a Gemini file and for which client token.
type FileBinding struct {
	Name      string    `json:"name"` // "files/abc123"
	KeyID     string    `json:"key_id"`
	TokenID   string    `json:"token_id,omitempty"`
	UploadURL string    `json:"upload_url,omitempty"` // the upstream resumable upload URL (pending uploads)
	UploadID  string    `json:"upload_id,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires,omitempty"`
	Metadata  []byte    `json:"metadata,omitempty"` // upstream file JSON as last seen
}
