package pool

import (
	"time"

	"github.com/gemini-balance-go/shared/bus"
)

// Admin and replica changes: disable, restore, weight and note, and events applied from another replica.

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
