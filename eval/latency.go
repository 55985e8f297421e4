package eval

import "time"

// Latency is the scoring cost of a reranking, measured by Rerank around
// its calls to the Scorer: what a RAG pipeline pays per query at the
// rerank depth. A first-stage run has none.
type Latency struct {
	// Depth is the rerank depth (RerankOptions.TopK).
	Depth int `json:"depth"`
	// Queries and Pairs count the queries and (query, passage) pairs
	// scored.
	Queries int `json:"queries"`
	Pairs   int `json:"pairs"`
	// Seconds is the wall-clock time spent in Score calls.
	Seconds float64 `json:"seconds"`
}

// MsPerQuery is the mean scoring time of a query, in milliseconds.
func (l Latency) MsPerQuery() float64 {
	if l.Queries == 0 {
		return 0
	}
	return 1000 * l.Seconds / float64(l.Queries)
}

// PairsPerSecond is the scoring throughput.
func (l Latency) PairsPerSecond() float64 {
	if l.Seconds <= 0 {
		return 0
	}
	return float64(l.Pairs) / l.Seconds
}

// Add returns the latency of both rerankings together (for a summary over
// datasets); the depth is kept when both agree, else 0.
func (l Latency) Add(o Latency) Latency {
	d := l.Depth
	if l.Queries == 0 {
		d = o.Depth
	} else if o.Queries != 0 && o.Depth != d {
		d = 0
	}
	return Latency{Depth: d, Queries: l.Queries + o.Queries, Pairs: l.Pairs + o.Pairs, Seconds: l.Seconds + o.Seconds}
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }
