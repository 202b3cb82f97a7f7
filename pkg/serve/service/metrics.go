package service

import (
	"net/http"
	"strconv"
	"time"

	"github.com/peftlab/peftlab/pkg/serve"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the service's Prometheus metrics, in a registry of their own (with the Go
// runtime's and the process's collectors), so several services in one process (tests) do
// not collide.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // by endpoint and status code
	latency   *prometheus.HistogramVec // by endpoint
	itemsByM  *prometheus.CounterVec   // predicted items by method
	batchSize prometheus.Histogram
	batchMix  prometheus.Histogram
	batchRun  prometheus.Histogram
	queueWait prometheus.Histogram
	dropped   prometheus.Counter
	inflight  prometheus.Gauge
	adapters  prometheus.GaugeFunc
	compiles  prometheus.CounterFunc
	e         *serve.Engine
}

func newMetrics(e *serve.Engine) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), e: e}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "peftlab_http_requests_total", Help: "HTTP requests by endpoint and status code (499: the client left first).",
	}, []string{"endpoint", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "peftlab_http_request_duration_seconds", Help: "Time from a request's arrival to its answer, by endpoint.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms .. 33 s
	}, []string{"endpoint"})
	m.itemsByM = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "peftlab_predict_items_total", Help: "Items accepted for prediction, by the method of their adapter (base: none).",
	}, []string{"method"})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "peftlab_batch_size", Help: "Items per batch the engine ran.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	})
	m.batchMix = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "peftlab_batch_adapters", Help: "Distinct adapters per batch (the base alone counts as one).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
	})
	m.batchRun = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "peftlab_batch_duration_seconds", Help: "Time the engine took to answer one batch.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "peftlab_batch_fill_seconds", Help: "Time a batch's first item waited for the batch to fill.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
	})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "peftlab_dropped_items_total", Help: "Items left out of their batch because the client had gone.",
	})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "peftlab_http_requests_in_flight", Help: "Requests being handled (a prediction waiting for its batch included).",
	})
	m.adapters = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "peftlab_adapters_loaded", Help: "Adapters loaded.",
	}, func() float64 { return float64(len(e.Adapters())) })
	m.compiles = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "peftlab_graph_compiles_total", Help: "Graphs the engine built and compiled (mixing adapters never adds one).",
	}, func() float64 { return float64(e.Compiles()) })
	m.reg.MustRegister(m.requests, m.latency, m.itemsByM, m.batchSize, m.batchMix, m.batchRun, m.queueWait,
		m.dropped, m.inflight, m.adapters, m.compiles,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) request(endpoint string, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	if d > 0 {
		m.latency.WithLabelValues(endpoint).Observe(d.Seconds())
	}
}

func (m *metrics) items(items []serve.Item) {
	for _, it := range items {
		method := "base"
		if info, ok := m.e.Adapter(it.Adapter); ok {
			method = info.Method
		}
		m.itemsByM.WithLabelValues(method).Inc()
	}
}

func (m *metrics) batch(st serve.BatchStats) {
	m.dropped.Add(float64(st.Dropped))
	if st.Items == 0 {
		return
	}
	m.batchSize.Observe(float64(st.Items))
	m.batchMix.Observe(float64(st.Adapters))
	m.batchRun.Observe(st.Run.Seconds())
	m.queueWait.Observe(st.Wait.Seconds())
}
