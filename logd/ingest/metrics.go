package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest series on /metrics.
type Metrics struct {
	events        *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	batchSize     prometheus.Histogram
	writeSeconds  prometheus.Histogram
	writeFailures prometheus.Counter
	foldSeconds   prometheus.Histogram
	foldParts     prometheus.Histogram
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
			Name: "logd_ingest_dead_letters_total", Help: "Messages or single events that could not be stored and went to the dead-letter subject.",
		}, []string{"subject"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "logd_ingest_batch_events", Help: "Events per inserted batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "logd_ingest_write_seconds", Help: "Time to insert the logs of one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10),
		}),
		writeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "logd_ingest_write_failures_total", Help: "Failed log inserts, rollup part writes and fold rounds (each is retried).",
		}),
		foldSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "logd_ingest_fold_round_seconds", Help: "Time to fold one round of rollup parts into the rollups.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10),
		}),
		foldParts: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "logd_ingest_fold_round_parts", Help: "Rollup parts (one per message) folded in one round.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		lastWrite: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "logd_ingest_last_write_timestamp_seconds", Help: "Time of the last successful batch write.",
		}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "logd_ingest_backlog_events", Help: "Messages of a consumer not yet acknowledged (pending + in flight); each carries up to 256 events.",
		}, []string{"consumer"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.deadLetters, m.batchSize, m.writeSeconds, m.writeFailures, m.foldSeconds, m.foldParts, m.lastWrite, m.backlog)
	}
	return m
}
