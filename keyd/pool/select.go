package pool

import (
	"slices"
	"time"

	"github.com/gemini-balance-go/shared/bus"
)

// Selection: which key an acquire gets.

// Acquire picks the next usable key of a kind for a model: fair weighted
// rotation, skipping keys that are disabled, cooling for the model or
// excluded. It costs one cursor step in the common case and never touches
// the database. Without a key the reply says why.
func (p *Pool) Acquire(req bus.AcquireRequest) bus.AcquireReply {
	model := NormalizeModel(req.Model)
	kind := req.Kind
	if kind == "" {
		kind = bus.KindGemini
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if req.KeyID != "" {
		return p.acquirePinned(req.KeyID, kind, model, now)
	}
	r := p.kinds[kind]
	if r == nil || len(r.members) == 0 {
		return bus.AcquireReply{NoKey: bus.NoKeyNone, Kind: kind}
	}
	if r.stale {
		r.rebuild()
	}
	n := len(r.slots)
	if n == 0 {
		return bus.AcquireReply{NoKey: bus.NoKeyAllDisabled, Kind: kind}
	}
	if t := p.throttle[kind+"|"+model]; t != nil && t.until.After(now) {
		return bus.AcquireReply{NoKey: bus.NoKeyAllCooling, RetryAt: t.until, Kind: kind}
	}
	if c, ok := p.coolAll[kind+"|"+model]; ok && c.gen == p.gen && c.until.After(now) {
		return bus.AcquireReply{NoKey: bus.NoKeyAllCooling, RetryAt: c.until, Kind: kind}
	}
	var earliest time.Time
	excluded := false
	for probe := 0; probe < n; probe++ {
		i := (r.cursor + probe) % n
		k := r.slots[i]
		if len(req.Exclude) > 0 && slices.Contains(req.Exclude, k.ID) {
			excluded = true
			continue
		}
		if until := k.coolingUntil(model, now); !until.IsZero() {
			if earliest.IsZero() || until.Before(earliest) {
				earliest = until
			}
			continue
		}
		r.cursor = (i + 1) % n
		k.LastUsed = now
		return bus.AcquireReply{ID: k.ID, Secret: k.Secret, Hint: k.Hint, Kind: k.Kind}
	}
	if !earliest.IsZero() {
		if !excluded {
			p.coolAll[kind+"|"+model] = coolMark{p.gen, earliest}
		}
		return bus.AcquireReply{NoKey: bus.NoKeyAllCooling, RetryAt: earliest, Kind: kind}
	}
	if excluded {
		return bus.AcquireReply{NoKey: bus.NoKeyExhausted, Kind: kind}
	}
	return bus.AcquireReply{NoKey: bus.NoKeyAllDisabled, Kind: kind}
}

func (p *Pool) acquirePinned(id, kind, model string, now time.Time) bus.AcquireReply {
	k := p.keys[id]
	if k == nil {
		return bus.AcquireReply{NoKey: bus.NoKeyNone, Kind: kind, Error: "unknown key " + id}
	}
	if k.Disabled {
		return bus.AcquireReply{NoKey: bus.NoKeyAllDisabled, Kind: k.Kind}
	}
	if t := p.throttle[k.Kind+"|"+model]; t != nil && t.until.After(now) {
		return bus.AcquireReply{NoKey: bus.NoKeyAllCooling, RetryAt: t.until, Kind: k.Kind}
	}
	if until := k.coolingUntil(model, now); !until.IsZero() {
		return bus.AcquireReply{NoKey: bus.NoKeyAllCooling, RetryAt: until, Kind: k.Kind}
	}
	k.LastUsed = now
	return bus.AcquireReply{ID: k.ID, Secret: k.Secret, Hint: k.Hint, Kind: k.Kind}
}

// Report applies the outcome of one attempt and returns the state changes
// it caused. The effect is the shared policy table's row for the class.
// Every replica applies every report (so counts agree); dirty says whether
