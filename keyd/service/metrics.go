package service

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gemini-balance-go/keyd/pool"
)

type metrics struct {
	reg          *prometheus.Registry
	acquires     *prometheus.CounterVec
	reports      *prometheus.CounterVec
	stateChanges *prometheus.CounterVec
	flushed      prometheus.Counter
	flushErrors  prometheus.Counter
	recovered    prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg:          reg,
		acquires:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyd_acquires_total", Help: "Acquires by kind and result (ok or the no-key reason)."}, []string{"kind", "result"}),
		reports:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyd_reports_total", Help: "Reports by outcome class."}, []string{"class"}),
		stateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyd_key_state_changes_total", Help: "Key state changes made by this replica, by new state."}, []string{"to"}),
		flushed:      prometheus.NewCounter(prometheus.CounterOpts{Name: "keyd_state_writes_total", Help: "Key states written by the batched writer."}),
		flushErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "keyd_state_write_errors_total", Help: "Failed batched writes (retried)."}),
		recovered:    prometheus.NewCounter(prometheus.CounterOpts{Name: "keyd_keys_recovered_total", Help: "Keys restored by recover ticks."}),
	}
	m.register(m.acquires, m.reports, m.stateChanges, m.flushed, m.flushErrors, m.recovered)
	return m
}

func (m *metrics) register(cs ...prometheus.Collector) {
	if m.reg == nil {
		return
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err) // a malformed metric is a programming error
			}
		}
	}
}

// watchPool exports the pool's size by kind and status.
func (m *metrics) watchPool(p *pool.Pool) {
	m.register(poolCollector{p, prometheus.NewDesc("keyd_keys", "Keys in the pool by kind and status.", []string{"kind", "status"}, nil)})
}

type poolCollector struct {
	p    *pool.Pool
	desc *prometheus.Desc
}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for kind, byStatus := range c.p.Counts() {
		for status, n := range byStatus {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), kind, status)
		}
	}
}
