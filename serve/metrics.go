package serve

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rerank-go/rerank/crossencoder"
)

// metrics are the server's Prometheus metrics, named after TEI's (te_*)
// with the rerank_ prefix.
type metrics struct {
	requests, successes *prometheus.CounterVec
	failures            *prometheus.CounterVec
	duration            *prometheus.HistogramVec
	tokenize, queue     prometheus.Histogram
	inference           prometheus.Histogram
	batchSize           prometheus.Histogram
	batchTokens         prometheus.Histogram
	passDuration        prometheus.Histogram
	passFailures        prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, queued func() float64) (*metrics, error) {
	secs := prometheus.ExponentialBuckets(0.0005, 2, 18) // 0.5 ms .. 65 s
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rerank_request_count",
			Help: "Rerank requests received, by API shape (tei, predict, v1, v2)."}, []string{"api"}),
		successes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rerank_request_success",
			Help: "Rerank requests answered 200, by API shape."}, []string{"api"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rerank_request_failure",
			Help: "Rerank requests that failed, by API shape and TEI error type."}, []string{"api", "err"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rerank_request_duration_seconds",
			Help: "Time from a request's arrival to its answer, successful requests.", Buckets: secs}, []string{"api"}),
		tokenize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rerank_request_tokenization_duration_seconds",
			Help: "Time tokenizing a request's pairs.", Buckets: secs}),
		queue: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rerank_request_queue_duration_seconds",
			Help: "Time from a request's pairs entering the queue to its first forward pass.", Buckets: secs}),
		inference: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rerank_request_inference_duration_seconds",
			Help: "Time from a request's first forward pass to its last one's end.", Buckets: secs}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rerank_batch_size",
			Help: "Pairs per forward pass.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		batchTokens: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rerank_batch_tokens",
			Help: "Real tokens per forward pass.", Buckets: prometheus.ExponentialBuckets(16, 2, 14)}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rerank_batch_inference_duration_seconds",
			Help: "Time of one forward pass.", Buckets: secs}),
		passFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "rerank_batch_failure",
			Help: "Forward passes that failed."}),
	}
	qs := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rerank_queue_size",
		Help: "Pairs waiting for a forward pass."}, queued)
	for _, c := range []prometheus.Collector{m.requests, m.successes, m.failures, m.duration, m.tokenize, m.queue,
		m.inference, m.batchSize, m.batchTokens, m.passDuration, m.passFailures, qs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observePass(p crossencoder.PassInfo) {
	if p.Err != nil {
		m.passFailures.Inc()
		return
	}
	m.batchSize.Observe(float64(p.Pairs))
	m.batchTokens.Observe(float64(p.Tokens))
	m.passDuration.Observe(p.Duration.Seconds())
}
