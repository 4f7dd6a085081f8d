package events

import "sync"

// queue holds the events of one subject: *bus.RequestEvent or
// *bus.ErrorEvent, encoded by the publisher, off the request path. It is a
// bounded FIFO that takes memory only for the events in it: a channel
// bounded the same way (64 Ki events) would hold 1 MiB per queue for good,
// and the GC would scan all of it every cycle, however empty.
type queue struct {
	subject string
	max     int
	// ready holds a token after a push; a worker that finds both queues
	// empty waits for one. A token may be stale (its event already taken):
	// the worker then finds the queue empty and waits again.
	ready chan struct{}

	mu    sync.Mutex
	items []any
	head  int // items[head:] are queued
}

// keepCap is the most slots an empty queue keeps for the next burst; a
// larger backing array (after an outage filled the queue) is let go.
const keepCap = 4096

func newQueue(subject string, max int) *queue {
	return &queue{subject: subject, max: max, ready: make(chan struct{}, 1)}
}

// push appends ev unless the queue holds max events already.
func (q *queue) push(ev any) bool {
	q.mu.Lock()
	n := len(q.items) - q.head
	if n >= q.max {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) { // slide down rather than grow
		copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, ev)
	q.mu.Unlock()
	q.wake()
	return true
}

// pop takes the oldest event. While more are left it leaves a token, so
// another worker can take part.
func (q *queue) pop() (any, bool) {
	q.mu.Lock()
	if q.head == len(q.items) {
		q.mu.Unlock()
		return nil, false
	}
	ev := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	more := q.head < len(q.items)
	if !more {
		q.head = 0
		if cap(q.items) > keepCap {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
	}
	q.mu.Unlock()
	if more {
		q.wake()
	}
	return ev, true
}

func (q *queue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// len is the number of queued events.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}
