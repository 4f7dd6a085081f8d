package bus

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// ClientToken is the value of one entry in BucketClientTokens.
type ClientToken struct {
	V int `json:"v"`
	// ID is redact.ID of the token (the first 16 hex digits of SHA256), the
	// same token_id that request events carry for ALLOWED_TOKENS.
	ID   string `json:"id"`
	Name string `json:"name"`
	Hint string `json:"hint"` // masked token, e.g. sk-gb-…abcd
	// SHA256 is the lowercase hex SHA-256 of the whole token.
	SHA256   string `json:"sha256"`
	Disabled bool   `json:"disabled,omitempty"`
	// ExpiresAt, when set, is the instant after which edge rejects the token.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Models is the token's model allow-list, lower-case without "models/";
	// empty means every model. A base model admits its derived variants
	// (-search, -image, -non-thinking). Edge refuses other models with 403.
	Models []string `json:"models,omitempty"`
}

// TokenSHA256 is the hash form of a client token that ClientToken.SHA256 holds.
func TokenSHA256(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
