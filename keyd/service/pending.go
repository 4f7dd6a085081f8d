package service

import "sync"

// pendingKeys holds the ids of keys another replica added or updated until
// loadAddedLoop loads them. A set: an id announced twice loads once. It
// takes memory only for the ids in it (a channel of its bound would keep
// 1 MiB for good, scanned by every GC cycle).
type pendingKeys struct {
	max   int
	ready chan struct{} // a token after an add; may be stale

	mu  sync.Mutex
	ids map[string]struct{}
}

func newPendingKeys(max int) *pendingKeys {
	return &pendingKeys{max: max, ready: make(chan struct{}, 1)}
}

// add records id unless max ids wait already.
func (p *pendingKeys) add(id string) bool {
	p.mu.Lock()
	if p.ids == nil {
		p.ids = map[string]struct{}{}
	}
	_, dup := p.ids[id]
	if !dup && len(p.ids) >= p.max {
		p.mu.Unlock()
		return false
	}
	p.ids[id] = struct{}{}
	p.mu.Unlock()
	p.wake()
	return true
}

// take removes and returns up to n ids, leaving a token while more wait.
func (p *pendingKeys) take(n int) []string {
	p.mu.Lock()
	var out []string
	for id := range p.ids {
		if len(out) == n {
			break
		}
		out = append(out, id)
		delete(p.ids, id)
	}
	more := len(p.ids) > 0
	if !more {
		p.ids = nil // a map keeps its buckets however many it deletes
	}
	p.mu.Unlock()
	if more {
		p.wake()
	}
	return out
}

func (p *pendingKeys) wake() {
	select {
	case p.ready <- struct{}{}:
	default:
	}
}
