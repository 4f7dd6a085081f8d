package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics caches the children of gb_edge_requests_total and
// gb_edge_request_seconds by route and status: WithLabelValues per request
// hashed and validated the labels and formatted the status each time. Reads
// are one lock-free map load per level; a new route or status (a handful
// per process) copies its small map under the lock.
type requestMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	mu     sync.Mutex
	routes atomic.Pointer[map[string]*routeMetrics]
}

type routeMetrics struct {
	latency prometheus.Observer
	codes   atomic.Pointer[map[int]prometheus.Counter]
}

func (m *requestMetrics) route(route string) *routeMetrics {
	if p := m.routes.Load(); p != nil {
		if r, ok := (*p)[route]; ok {
			return r
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := map[string]*routeMetrics{}
	if p := m.routes.Load(); p != nil {
		if r, ok := (*p)[route]; ok {
			return r
		}
		old = *p
	}
	r := &routeMetrics{latency: m.latency.WithLabelValues(route)}
	next := make(map[string]*routeMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[route] = r
	m.routes.Store(&next)
	return r
}

// observe counts one finished request and its latency.
func (m *requestMetrics) observe(route string, status int, seconds float64) {
	r := m.route(route)
	r.latency.Observe(seconds)
	if p := r.codes.Load(); p != nil {
		if c, ok := (*p)[status]; ok {
			c.Inc()
			return
		}
	}
	m.mu.Lock()
	old := map[int]prometheus.Counter{}
	if p := r.codes.Load(); p != nil {
		old = *p
	}
	c, ok := old[status]
	if !ok {
		c = m.requests.WithLabelValues(route, strconv.Itoa(status))
		next := make(map[int]prometheus.Counter, len(old)+1)
		for k, v := range old {
			next[k] = v
		}
		next[status] = c
		r.codes.Store(&next)
	}
	m.mu.Unlock()
	c.Inc()
}
