package pool

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/gemini-balance-go/shared/config"
)

// Policy holds the numbers of the key policy. The effect of each outcome
// class comes from the shared table (outcome.Policy); these say how much.
type Policy struct {
	MaxFailures int           // consecutive soft failures before a key is disabled
	Cooldown    time.Duration // 429 cooldown when upstream gives no retryDelay
	MaxCooldown time.Duration // the growing default cooldown stops here
	// StrikeMemory: a 429 this long after the previous one for the same key
	// and model counts as a first strike again.
	StrikeMemory time.Duration

	// IP/project throttle: when at least ThrottleShare of a kind's enabled
	// keys (and at least ThrottleMinKeys) answer 429 for one model within
	// ThrottleWindow, Google is throttling the caller (one IP or project),
	// not the keys. The pool then backs off for the whole kind and model for
	// the retry delay (ThrottleBackoff when none is given, never more than
	// Cooldown), lifts the per-key cooldowns those 429s caused and leaves
	// strikes alone, so no key is punished for it.
	ThrottleWindow  time.Duration
	ThrottleShare   float64
	ThrottleMinKeys int
	ThrottleBackoff time.Duration
}

// DefaultPolicy returns the policy with gemini-balance's defaults.
func DefaultPolicy() Policy {
	return PolicyFrom(config.Defaults())
}

// PolicyFrom derives the policy from live settings.
func PolicyFrom(s config.Settings) Policy {
	return Policy{
		MaxFailures:     max(1, s.MaxFailures),
		Cooldown:        time.Duration(max(1, s.CooldownSeconds)) * time.Second,
		MaxCooldown:     time.Hour,
		StrikeMemory:    10 * time.Minute,
		ThrottleWindow:  10 * time.Second,
		ThrottleShare:   0.5,
		ThrottleMinKeys: 3,
		ThrottleBackoff: 5 * time.Second,
	}
}

// Pool is the in-memory key pool. All methods are safe for concurrent use.
type Pool struct {
	mu       sync.Mutex
	policy   Policy
	now      func() time.Time
	keys     map[string]*Key
	kinds    map[string]*ring
	throttle map[string]*throttle // kind + "|" + model
	dirty    map[string]struct{}
	// gen counts state changes; coolAll remembers, per kind and model, that
	// every key was cooling at generation gen, so a flood of acquires while
	// a whole pool is rate-limited answers at once instead of scanning it.
	gen     uint64
	coolAll map[string]coolMark
}

type coolMark struct {
	gen   uint64
	until time.Time
}

// ring is the rotation of one kind: every enabled key appears Weight times,
// spread evenly. It is rebuilt lazily after a key joins, leaves, or is
// disabled or enabled, so an acquire is one step of a cursor.
type ring struct {
	members []*Key // insertion order, enabled or not
	slots   []*Key
	cursor  int
	stale   bool
}

type throttle struct {
	hits  map[string]time.Time // key id → time of its 429 inside the window
	until time.Time
}

// New returns an empty pool. now is the clock (time.Now in production).
func New(p Policy, now func() time.Time) *Pool {
	if now == nil {
		now = time.Now
	}
	return &Pool{policy: p, now: now, keys: map[string]*Key{}, kinds: map[string]*ring{}, throttle: map[string]*throttle{}, dirty: map[string]struct{}{}, coolAll: map[string]coolMark{}}
}

// SetPolicy applies new policy numbers (live settings).
func (p *Pool) SetPolicy(pol Policy) {
	p.mu.Lock()
	p.gen++
	p.policy = pol
	p.mu.Unlock()
}

// Load adds or replaces keys as they are stored. It marks nothing dirty.
func (p *Pool) Load(keys ...Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	for _, k := range keys {
		p.put(k)
	}
}

// Add adds keys that are not in the pool yet and returns those it added.
func (p *Pool) Add(keys ...Key) (added []Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	for _, k := range keys {
		if _, ok := p.keys[k.ID]; ok {
			continue
		}
		p.put(k)
		added = append(added, k)
	}
	return added
}

func (p *Pool) put(k Key) {
	k2 := k.clone()
	r := p.ring(k.Kind)
	if old, ok := p.keys[k.ID]; ok {
		if old.Kind != k.Kind {
			p.removeLocked(k.ID)
			r = p.ring(k.Kind)
		} else {
			*old = k2 // members and slots hold the same pointer
			r.stale = true
			return
		}
	}
	p.keys[k.ID] = &k2
	r.members = append(r.members, &k2)
	r.stale = true
}

func (p *Pool) ring(kind string) *ring {
	r := p.kinds[kind]
	if r == nil {
		r = &ring{}
		p.kinds[kind] = r
	}
	return r
}

// Remove deletes keys from the pool and returns the ones that were there.
func (p *Pool) Remove(ids ...string) (removed []Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	for _, id := range ids {
		if k, ok := p.keys[id]; ok {
			removed = append(removed, k.clone())
			p.removeLocked(id)
		}
	}
	return removed
}

func (p *Pool) removeLocked(id string) {
	k := p.keys[id]
	delete(p.keys, id)
	delete(p.dirty, id)
	r := p.kinds[k.Kind]
	if i := slices.Index(r.members, k); i >= 0 {
		r.members = slices.Delete(r.members, i, i+1)
	}
	r.stale = true
}

// rebuild lays out the enabled keys of a ring. With equal weights the order
// is the insertion order; with weights, each key's n slots sit at virtual
// times (j+½)/n, so a weight-3 key is spread through the ring, not bunched.
func (r *ring) rebuild() {
	r.stale = false
	r.slots = r.slots[:0]
	weighted := false
	for _, k := range r.members {
		if k.Disabled {
			continue
		}
		if k.weight() > 1 {
			weighted = true
		}
		r.slots = append(r.slots, k)
	}
	if !weighted {
		return
	}
	type slot struct {
		at  float64
		ord int
		k   *Key
	}
	var all []slot
	for i, k := range r.slots {
		w := k.weight()
		for j := 0; j < w; j++ {
			all = append(all, slot{(float64(j) + 0.5) / float64(w), i, k})
		}
	}
	slices.SortFunc(all, func(a, b slot) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.ord, b.ord)
	})
	r.slots = r.slots[:0]
	for _, s := range all {
		r.slots = append(r.slots, s.k)
	}
}
