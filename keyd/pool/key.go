// Package pool holds the key pool in memory: the keys of each kind, their
// state, fair weighted selection and the effects of the outcome policy. It
// does no I/O; keystore persists what it marks dirty and endpoints serves it.
package pool

import (
	"strings"
	"time"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/redact"
)

// Cooldown is a per-model rate-limit cooldown of one key.
type Cooldown struct {
	Model   string    `json:"model" bson:"model"`
	Until   time.Time `json:"until" bson:"until"`
	Strikes int       `json:"strikes" bson:"strikes"` // 429s in a row for this model; grows the default cooldown
	Last    time.Time `json:"last" bson:"last"`       // time of the last 429
}

// Key is one upstream key and its state. The pool hands out copies; the
// Secret never leaves keyd except in an acquire reply or an admin reveal.
type Key struct {
	ID     string `json:"id"`
	Hint   string `json:"hint"`
	Secret string `json:"-"`
	Kind   string `json:"kind"`
	Weight int    `json:"weight,omitempty"` // 0 or 1 = normal share; n = n shares
	Note   string `json:"note,omitempty"`

	Disabled       bool      `json:"disabled"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	DisabledAt     time.Time `json:"disabled_at,omitzero"`

	Failures      int        `json:"failures"` // consecutive soft failures
	Cooldowns     []Cooldown `json:"cooldowns,omitempty"`
	LastUsed      time.Time  `json:"last_used,omitzero"`
	LastError     string     `json:"last_error,omitempty"`
	Successes     int64      `json:"successes"`
	FailuresTotal int64      `json:"failures_total"`
	Created       time.Time  `json:"created,omitzero"`
}

// NewKey builds a fresh active key of a kind from its secret.
func NewKey(secret, kind string, now time.Time) Key {
	secret = strings.TrimSpace(secret)
	return Key{ID: redact.ID(secret), Hint: redact.Hint(secret), Secret: secret, Kind: kind, Created: now}
}

// Status is the key's overall status at now: disabled, cooling (for at least
// one model) or active.
func (k *Key) Status(now time.Time) string {
	switch {
	case k.Disabled:
		return bus.KeyDisabled
	case k.coolingAny(now):
		return bus.KeyCooling
	default:
		return bus.KeyActive
	}
}

func (k *Key) coolingAny(now time.Time) bool {
	for _, c := range k.Cooldowns {
		if c.Until.After(now) {
			return true
		}
	}
	return false
}

// cooldown returns the cooldown record of a model, or nil.
func (k *Key) cooldown(model string) *Cooldown {
	for i := range k.Cooldowns {
		if k.Cooldowns[i].Model == model {
			return &k.Cooldowns[i]
		}
	}
	return nil
}

// coolingUntil returns the end of the model's cooldown, zero if it is not cooling.
func (k *Key) coolingUntil(model string, now time.Time) time.Time {
	if len(k.Cooldowns) == 0 { // the common case: no allocation, no loop
		return time.Time{}
	}
	if c := k.cooldown(model); c != nil && c.Until.After(now) {
		return c.Until
	}
	return time.Time{}
}

func (k *Key) dropCooldown(model string) {
	for i := range k.Cooldowns {
		if k.Cooldowns[i].Model == model {
			k.Cooldowns = append(k.Cooldowns[:i], k.Cooldowns[i+1:]...)
			if len(k.Cooldowns) == 0 {
				k.Cooldowns = nil
			}
			return
		}
	}
}

func (k *Key) clone() Key {
	c := *k
	if k.Cooldowns != nil {
		c.Cooldowns = append([]Cooldown(nil), k.Cooldowns...)
	}
	return c
}

func (k *Key) weight() int {
	switch {
	case k.Weight <= 1:
		return 1
	case k.Weight > MaxWeight:
		return MaxWeight
	default:
		return k.Weight
	}
}

// MaxWeight bounds a key's share so the rotation ring stays small.
const MaxWeight = 100

// NormalizeModel strips the "models/" prefix so "models/gemini-2.5-pro" and
// "gemini-2.5-pro" share one cooldown.
func NormalizeModel(m string) string {
	return strings.TrimPrefix(strings.TrimSpace(m), "models/")
}
