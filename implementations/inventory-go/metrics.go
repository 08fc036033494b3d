package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the contract's series (docs/contract.md, section 7) in a registry of their own.
type Metrics struct {
	registry          *prometheus.Registry
	requests          *prometheus.CounterVec
	duration          *prometheus.HistogramVec
	logRecords        *prometheus.CounterVec
	stockUpdates      prometheus.Counter
	stockReservations prometheus.Counter
	eventsConsumed    *prometheus.CounterVec
}

var httpLabels = []string{"method", "endpoint", "status"}

func newMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by route template (endpoint) and status code",
		}, httpLabels),
		// Same labels as the counter, so each series' _count equals the matching counter series.
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request duration, by route template (endpoint) and status code",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, httpLabels),
		logRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "log_records_total", Help: "Log lines the service wrote to stdout",
		}, []string{"level"}),
		stockUpdates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stock_updates_total", Help: "Inventory receipts written",
		}),
		stockReservations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stock_reservations_total", Help: "Stock reservation rows written",
		}),
		eventsConsumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_consumed_total", Help: "Events processed and acked",
		}, []string{"subject"}),
	}
	m.registry.MustRegister(
		m.requests, m.duration, m.logRecords, m.stockUpdates, m.stockReservations,
		m.eventsConsumed,
		// process_start_time_seconds: LOG-NO-LOSS counts the stored lines from then.
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// initRoutes creates the success series of every route at 0 (the Prometheus practice for
// known label values): the client library exposes no family before its first series, and
// /metrics should show the request families from the start.
func (m *Metrics) initRoutes(routes map[string]string) {
	for route, methodAndStatus := range routes {
		var method, status string
		_, _ = fmt.Sscan(methodAndStatus, &method, &status)
		m.requests.WithLabelValues(method, route, status)
		m.duration.WithLabelValues(method, route, status)
	}
}
