package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest series on /metrics.
type Metrics struct {
	events        *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	batchSize     prometheus.Histogram
	writeSeconds  prometheus.Histogram
	writeFailures prometheus.Counter
	lastWrite     prometheus.Gauge
	backlog       *prometheus.GaugeVec
}

// NewMetrics registers the ingest metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logd_ingest_events_total", Help: "Events written, by kind and result (inserted, duplicate).",
		}, []string{"kind", "result"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logd_ingest_dead_letters_total", Help: "Events that could not be parsed and went to the dead-letter subject.",
		}, []string{"subject"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "logd_ingest_batch_events", Help: "Events per written batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "logd_ingest_write_seconds", Help: "Time to write one batch to MongoDB.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10),
		}),
		writeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "logd_ingest_write_failures_total", Help: "Failed batch writes (each is retried).",
		}),
		lastWrite: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "logd_ingest_last_write_timestamp_seconds", Help: "Time of the last successful batch write.",
		}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "logd_ingest_backlog_events", Help: "Events of a consumer not yet acknowledged (pending + in flight).",
		}, []string{"consumer"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.deadLetters, m.batchSize, m.writeSeconds, m.writeFailures, m.lastWrite, m.backlog)
	}
	return m
}
