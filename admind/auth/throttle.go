package auth

import (
	"sync"
	"time"
)

// Limiter counts failed logins per client address over a sliding window.
// Memory is bounded: at most Max timestamps per address and Cap addresses;
// when full, expired addresses go first, then the one idle longest.
// It lives in each admind replica's memory: with N replicas an address gets
// up to N×Max guesses per window (admind normally runs once).
type Limiter struct {
	Max    int           // failures allowed per Window (10)
	Window time.Duration // 15 minutes
	Cap    int           // addresses tracked (10 000)
	Now    func() time.Time

	mu sync.Mutex
	m  map[string][]time.Time // failure times, oldest first
}

// NewLimiter returns the login limiter: 10 failures per 15 minutes.
func NewLimiter() *Limiter {
	return &Limiter{Max: 10, Window: 15 * time.Minute, Cap: 10_000, Now: time.Now}
}

// live drops the failures that left the window; mu held.
func (l *Limiter) live(addr string, now time.Time) []time.Time {
	ts := l.m[addr]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.Window {
		i++
	}
	if i == len(ts) {
		delete(l.m, addr)
		return nil
	}
	if i > 0 {
		ts = ts[i:]
		l.m[addr] = ts
	}
	return ts
}

// Blocked reports whether addr used up its failures, and for how long.
func (l *Limiter) Blocked(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	ts := l.live(addr, now)
	if len(ts) < l.Max {
		return 0, false
	}
	return ts[0].Add(l.Window).Sub(now), true
}

// Fail records a failed login from addr.
func (l *Limiter) Fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string][]time.Time{}
	}
	now := l.Now()
	ts := l.live(addr, now)
	if ts == nil && len(l.m) >= l.Cap {
		l.evict(now)
	}
	if len(ts) >= l.Max {
		ts = ts[1:]
	}
	l.m[addr] = append(ts, now)
}

// evict makes room for one address; mu held.
func (l *Limiter) evict(now time.Time) {
	var idlest string
	var idleAt time.Time
	for a, ts := range l.m {
		last := ts[len(ts)-1]
		if now.Sub(last) >= l.Window {
			delete(l.m, a)
			continue
		}
		if idlest == "" || last.Before(idleAt) {
			idlest, idleAt = a, last
		}
	}
	if len(l.m) >= l.Cap && idlest != "" {
		delete(l.m, idlest)
	}
}

// Reset forgets addr's failures (after a successful login).
func (l *Limiter) Reset(addr string) {
	l.mu.Lock()
	delete(l.m, addr)
	l.mu.Unlock()
}

// Len is how many addresses are tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
