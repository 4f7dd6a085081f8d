package pool

import (
	"fmt"
	"math"
	"time"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/outcome"
)

// Outcome handling: what a reported attempt does to its key (strikes, cooldowns, IP throttle).

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
