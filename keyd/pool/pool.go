package pool

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/outcome"
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
// this replica is the one that persists it.
func (p *Pool) Report(r bus.Report, dirty bool) []bus.KeyStateEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keys[r.ID]
	if k == nil {
		return nil
	}
	p.gen++
	now := p.now()
	model := NormalizeModel(r.Model)
	class := outcome.Class(r.Class)
	var evs []bus.KeyStateEvent
	switch class.Effect() {
	case outcome.EffectNone:
		return nil
	case outcome.EffectReset:
		k.Successes++
		k.Failures = 0
		if c := k.cooldown(model); c != nil {
			wasCooling := c.Until.After(now)
			k.dropCooldown(model)
			if wasCooling && !k.Disabled {
				evs = append(evs, p.event(k, bus.KeyCooling, bus.KeyActive, model, time.Time{}, "success", now))
			}
		}
	case outcome.EffectDisable:
		k.FailuresTotal++
		k.LastError = lastError(r)
		if !k.Disabled {
			evs = append(evs, p.disable(k, k.LastError, now))
		}
	case outcome.EffectCooldown:
		k.FailuresTotal++
		k.LastError = lastError(r)
		evs = p.rateLimited(k, model, time.Duration(r.RetryDelay)*time.Millisecond, now)
	case outcome.EffectSoftFail:
		k.FailuresTotal++
		k.Failures++
		k.LastError = lastError(r)
		if !k.Disabled && k.Failures >= p.policy.MaxFailures {
			evs = append(evs, p.disable(k, fmt.Sprintf("%d consecutive failures, last: %s", k.Failures, k.LastError), now))
		}
	default:
		return nil // an unknown class changes nothing rather than guessing
	}
	if dirty {
		p.dirty[k.ID] = struct{}{}
	}
	return evs
}

func lastError(r bus.Report) string {
	s := r.Class
	if r.Status != 0 {
		s = fmt.Sprintf("%d %s", r.Status, r.Class)
	}
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

func (p *Pool) disable(k *Key, reason string, now time.Time) bus.KeyStateEvent {
	from := k.Status(now)
	k.Disabled, k.DisabledReason, k.DisabledAt = true, reason, now
	p.kinds[k.Kind].stale = true
	return p.event(k, from, bus.KeyDisabled, "", time.Time{}, reason, now)
}

// rateLimited cools a key down for a model, or recognises an IP/project
// throttle (see Policy) and backs off for the whole kind instead.
func (p *Pool) rateLimited(k *Key, model string, retry time.Duration, now time.Time) []bus.KeyStateEvent {
	tk := k.Kind + "|" + model
	t := p.throttle[tk]
	if t == nil {
		t = &throttle{hits: map[string]time.Time{}}
		p.throttle[tk] = t
	}
	for id, at := range t.hits {
		if now.Sub(at) > p.policy.ThrottleWindow {
			delete(t.hits, id)
		}
	}
	backoff := retry
	if backoff <= 0 {
		backoff = p.policy.ThrottleBackoff
	}
	backoff = min(backoff, p.policy.Cooldown)
	if t.until.After(now) { // already throttled: extend, punish nobody
		t.until = maxTime(t.until, now.Add(backoff))
		return nil
	}
	t.hits[k.ID] = now
	if len(t.hits) >= p.throttleThreshold(k.Kind) {
		t.until = now.Add(backoff)
		var evs []bus.KeyStateEvent
		for id := range t.hits {
			hk := p.keys[id]
			if hk == nil {
				continue
			}
			if c := hk.cooldown(model); c != nil && c.Until.After(now) {
				c.Until = now // lifted; strikes roll back below
				c.Strikes = max(0, c.Strikes-1)
				if hk.ID != k.ID && !hk.Disabled {
					evs = append(evs, p.event(hk, bus.KeyCooling, bus.KeyActive, model, time.Time{}, "ip_throttle", now))
				}
				p.dirty[hk.ID] = struct{}{}
			}
		}
		clear(t.hits)
		return evs
	}
	from := k.Status(now)
	c := k.cooldown(model)
	if c == nil {
		k.Cooldowns = append(k.Cooldowns, Cooldown{Model: model})
		c = &k.Cooldowns[len(k.Cooldowns)-1]
	}
	if !c.Last.IsZero() && now.Sub(c.Last) > p.policy.StrikeMemory {
		c.Strikes = 0
	}
	c.Strikes++
	c.Last = now
	d := retry
	if d <= 0 { // no retryDelay: the default, doubling with each strike
		d = p.policy.Cooldown << min(c.Strikes-1, 16)
		d = min(d, p.policy.MaxCooldown)
	}
	c.Until = now.Add(d)
	if k.Disabled {
		return nil
	}
	return []bus.KeyStateEvent{p.event(k, from, bus.KeyCooling, model, c.Until, "rate_limited", now)}
}

func (p *Pool) throttleThreshold(kind string) int {
	enabled := 0
	for _, m := range p.kinds[kind].members {
		if !m.Disabled {
			enabled++
		}
	}
	return max(p.policy.ThrottleMinKeys, int(math.Ceil(p.policy.ThrottleShare*float64(enabled))))
}

// Throttled reports whether a kind and model are in an IP/project back-off, and until when.
func (p *Pool) Throttled(kind, model string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.throttle[kind+"|"+NormalizeModel(model)]
	if t == nil || !t.until.After(p.now()) {
		return time.Time{}, false
	}
	return t.until, true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (p *Pool) event(k *Key, from, to, model string, until time.Time, reason string, now time.Time) bus.KeyStateEvent {
	return bus.KeyStateEvent{V: bus.Version, Time: now, KeyID: k.ID, KeyHint: k.Hint, Kind: k.Kind, From: from, To: to, Model: model, Until: until, Reason: reason}
}

// Disable takes a key out of rotation by hand.
func (p *Pool) Disable(id, reason string) (bus.KeyStateEvent, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	k := p.keys[id]
	if k == nil || k.Disabled {
		return bus.KeyStateEvent{}, false
	}
	if reason == "" {
		reason = "disabled by admin"
	}
	ev := p.disable(k, reason, p.now())
	p.dirty[id] = struct{}{}
	return ev, true
}

// Restore makes a key fully active: enabled, no cooldowns, failure count 0.
// Enable, reset and a successful verify all end here.
func (p *Pool) Restore(id, reason string) (bus.KeyStateEvent, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	k := p.keys[id]
	if k == nil {
		return bus.KeyStateEvent{}, false
	}
	now := p.now()
	from := k.Status(now)
	ev := p.event(k, from, bus.KeyActive, "", time.Time{}, reason, now)
	p.restore(k)
	p.dirty[id] = struct{}{}
	return ev, true
}

func (p *Pool) restore(k *Key) {
	if k.Disabled {
		p.kinds[k.Kind].stale = true
	}
	k.Disabled, k.DisabledReason, k.DisabledAt = false, "", time.Time{}
	k.Failures = 0
	k.Cooldowns = nil
}

// SetMeta changes a key's weight and note. dirty says whether this replica
// persists the change (false when applying another replica's).
func (p *Pool) SetMeta(id string, weight int, note string, dirty bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	k := p.keys[id]
	if k == nil {
		return false
	}
	k.Weight, k.Note = max(0, min(weight, MaxWeight)), note
	p.kinds[k.Kind].stale = true
	if dirty {
		p.dirty[id] = struct{}{}
	}
	return true
}

// Apply takes a state change made by another replica. It marks nothing
// dirty (the other replica persists it) and reports whether anything changed.
func (p *Pool) Apply(ev bus.KeyStateEvent) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	k := p.keys[ev.KeyID]
	if k == nil {
		return false
	}
	switch ev.To {
	case bus.KeyDisabled:
		if k.Disabled {
			return false
		}
		k.Disabled, k.DisabledReason, k.DisabledAt = true, ev.Reason, ev.Time
		p.kinds[k.Kind].stale = true
	case bus.KeyCooling:
		c := k.cooldown(ev.Model)
		if c == nil {
			k.Cooldowns = append(k.Cooldowns, Cooldown{Model: ev.Model, Strikes: 1, Last: ev.Time})
			c = &k.Cooldowns[len(k.Cooldowns)-1]
		}
		c.Until = ev.Until
	case bus.KeyActive:
		if ev.Model != "" {
			if c := k.cooldown(ev.Model); c != nil {
				c.Until = ev.Time
			}
			return true
		}
		p.restore(k)
	default:
		return false
	}
	return true
}

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
