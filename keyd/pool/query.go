package pool

import (
	"slices"
	"strings"
	"time"

	"github.com/gemini-balance-go/shared/bus"
)

// Queries: reading keys by filter, counts and the sets recovery and persistence work on.

// Get returns a copy of one key.
func (p *Pool) Get(id string) (Key, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keys[id]
	if k == nil {
		return Key{}, false
	}
	return k.clone(), true
}

// Filter selects keys for a listing.
type Filter struct {
	Kind   string
	Status string // active, cooling or disabled; valid = not disabled
	Search string // substring of id, hint or note
	IDs    []string
	// MinFailures keeps keys with at least this many consecutive failures.
	MinFailures int
}

// StatusValid is the Filter status of every key that is not disabled
// (gemini-balance's "valid").
const StatusValid = "valid"

// Match reports whether a key passes the filter at now. ids, when not nil,
// is the set form of f.IDs (List builds it once, so selecting 30,000 ids
// stays linear).
func (f Filter) match(k *Key, now time.Time, ids map[string]bool) bool {
	if f.Kind != "" && k.Kind != f.Kind {
		return false
	}
	if f.MinFailures > 0 && k.Failures < f.MinFailures {
		return false
	}
	if f.Status != "" {
		st := k.Status(now)
		if f.Status == StatusValid {
			if st == bus.KeyDisabled {
				return false
			}
		} else if st != f.Status {
			return false
		}
	}
	if ids != nil && !ids[k.ID] {
		return false
	}
	if f.Search != "" {
		s := strings.ToLower(f.Search)
		if !strings.Contains(k.ID, s) && !strings.Contains(strings.ToLower(k.Hint), s) && !strings.Contains(strings.ToLower(k.Note), s) {
			return false
		}
	}
	return true
}

// Match reports whether a key passes the filter at now.
func (f Filter) Match(k *Key, now time.Time) bool {
	return f.match(k, now, f.idSet())
}

func (f Filter) idSet() map[string]bool {
	if len(f.IDs) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(f.IDs))
	for _, id := range f.IDs {
		ids[id] = true
	}
	return ids
}

// List returns copies of the keys that match, in kind then insertion order.
func (p *Pool) List(f Filter) []Key {
	var out []Key
	p.Each(f, func(k *Key) { out = append(out, k.clone()) })
	return out
}

// Each calls fn, under the pool's lock, for every key that matches, in kind
// then insertion order. fn must not keep k or call back into the pool; it
// lets a caller page or count without copying every key.
func (p *Pool) Each(f Filter, fn func(k *Key)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	ids := f.idSet()
	kinds := make([]string, 0, len(p.kinds))
	for kind := range p.kinds {
		kinds = append(kinds, kind)
	}
	slices.Sort(kinds)
	for _, kind := range kinds {
		for _, k := range p.kinds[kind].members {
			if f.match(k, now, ids) {
				fn(k)
			}
		}
	}
}

// Counts tallies keys by kind and status.
func (p *Pool) Counts() map[string]map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	out := map[string]map[string]int{}
	for kind, r := range p.kinds {
		c := map[string]int{bus.KeyActive: 0, bus.KeyCooling: 0, bus.KeyDisabled: 0}
		for _, k := range r.members {
			c[k.Status(now)]++
		}
		out[kind] = c
	}
	return out
}

// Len returns the number of keys.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.keys)
}

// RecoveryCandidates returns the keys a recover tick re-verifies: disabled
// keys and keys with a cooldown that has run out.
func (p *Pool) RecoveryCandidates() []Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	var out []Key
	for _, r := range p.kinds {
		for _, k := range r.members {
			expired := false
			for _, c := range k.Cooldowns {
				if !c.Until.After(now) {
					expired = true
				}
			}
			if k.Disabled || expired {
				out = append(out, k.clone())
			}
		}
	}
	return out
}

// TakeDirty returns copies of the keys changed since the last call, for the
// batched writer, and forgets them.
func (p *Pool) TakeDirty() []Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.dirty) == 0 {
		return nil
	}
	out := make([]Key, 0, len(p.dirty))
	for id := range p.dirty {
		if k := p.keys[id]; k != nil {
			out = append(out, k.clone())
		}
	}
	clear(p.dirty)
	return out
}

// MarkDirty queues keys for the next write again (after a failed flush).
func (p *Pool) MarkDirty(ids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if _, ok := p.keys[id]; ok {
			p.dirty[id] = struct{}{}
		}
	}
}
