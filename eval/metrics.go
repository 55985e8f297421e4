package eval

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// relevanceLevel is trec_eval's default -l: labels at or above it are
// relevant for the binary metrics.
const relevanceLevel = 1

// Measure is a family of metrics with a cutoff.
type Measure int

// The measures; see the package documentation for their definitions.
const (
	NDCG Measure = iota
	MRR          // reciprocal rank of the first relevant document
	AP
	Recall
	Precision
)

// RR is MRR's former name.
//
// Deprecated: use MRR.
const RR = MRR

var measureNames = []string{NDCG: "ndcg", MRR: "mrr", AP: "map", Recall: "recall", Precision: "p"}

// measureAliases maps accepted spellings to measures.
var measureAliases = map[string]Measure{
	"ndcg": NDCG, "ndcg_cut": NDCG,
	"mrr": MRR, "rr": MRR, "recip_rank": MRR,
	"map": AP, "ap": AP, "map_cut": AP,
	"recall": Recall, "r": Recall,
	"p": Precision, "precision": Precision,
}

// String returns the measure's canonical name.
func (m Measure) String() string {
	if int(m) < len(measureNames) {
		return measureNames[m]
	}
	return "Measure(" + strconv.Itoa(int(m)) + ")"
}

// ParseMeasure parses a measure name (ndcg, mrr/rr/recip_rank, map/ap,
// recall, p/precision; case-insensitive).
func ParseMeasure(s string) (Measure, error) {
	m, ok := measureAliases[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return 0, fmt.Errorf("unknown metric %q (want ndcg, mrr, map, recall or p)", s)
	}
	return m, nil
}

// Metric is a measure at a cutoff k.
type Metric struct {
	Measure Measure
	K       int
}

// String returns the name used in results, as in dev.metrics.json:
// "ndcg@10", "mrr@10", "map@100", "recall@100", "p@5".
func (m Metric) String() string { return m.Measure.String() + "@" + strconv.Itoa(m.K) }

// ParseMetric parses "name@k" (for example "ndcg@10", "MRR@10", "map_cut@100").
func ParseMetric(s string) (Metric, error) {
	name, k, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Metric{}, fmt.Errorf("metric %q has no cutoff: write it as name@k, e.g. ndcg@10", s)
	}
	ms, err := ParseMeasure(name)
	if err != nil {
		return Metric{}, err
	}
	n, err := strconv.Atoi(k)
	if err != nil || n < 1 {
		return Metric{}, fmt.Errorf("metric %q: cutoff %q is not a positive integer", s, k)
	}
	return Metric{Measure: ms, K: n}, nil
}

// DefaultMetrics are the metrics of bm25/dev.metrics.json.
var DefaultMetrics = []Metric{{NDCG, 10}, {MRR, 10}, {AP, 100}, {Recall, 100}}

// ParseMetrics builds a metric list from names and cutoffs. A name with a
// cutoff ("ndcg@10") stands for itself; a bare name ("ndcg") is expanded
// with every cutoff in ks. Duplicates are dropped, order is kept.
func ParseMetrics(names []string, ks []int) ([]Metric, error) {
	var out []Metric
	seen := map[Metric]bool{}
	add := func(m Metric) {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if strings.Contains(n, "@") {
			m, err := ParseMetric(n)
			if err != nil {
				return nil, err
			}
			add(m)
			continue
		}
		ms, err := ParseMeasure(n)
		if err != nil {
			return nil, err
		}
		if len(ks) == 0 {
			return nil, fmt.Errorf("metric %q has no cutoff: give name@k or a cutoff list (--k)", n)
		}
		for _, k := range ks {
			if k < 1 {
				return nil, fmt.Errorf("cutoff %d is not positive", k)
			}
			add(Metric{ms, k})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no metrics given")
	}
	return out, nil
}

// ScoreQuery computes metrics for one query. ranked are the document ids in
// rank order (best first; see Rank) and judged the
// query's qrels labels (may be nil). The result is parallel to metrics.
func ScoreQuery(ranked []string, judged map[string]int, metrics []Metric) []float64 {
	labels := make([]int, len(ranked))
	for i, d := range ranked {
		labels[i] = judged[d]
	}
	numRel := 0
	var gains []int
	for _, l := range judged {
		if l >= relevanceLevel {
			numRel++
		}
		if l > 0 {
			gains = append(gains, l)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(gains)))
	out := make([]float64, len(metrics))
	for i, m := range metrics {
		out[i] = scoreOne(m, labels, numRel, gains)
	}
	return out
}

func scoreOne(m Metric, labels []int, numRel int, gains []int) float64 {
	n := min(m.K, len(labels))
	switch m.Measure {
	case NDCG:
		var dcg, idcg float64
		for i := 0; i < n; i++ {
			if labels[i] > 0 {
				dcg += float64(labels[i]) / math.Log2(float64(i+2))
			}
		}
		for i := 0; i < min(m.K, len(gains)); i++ {
			idcg += float64(gains[i]) / math.Log2(float64(i+2))
		}
		if idcg > 0 {
			return dcg / idcg
		}
		return 0
	case MRR:
		for i := 0; i < n; i++ {
			if labels[i] >= relevanceLevel {
				return 1 / float64(i+1)
			}
		}
		return 0
	case AP:
		if numRel == 0 {
			return 0
		}
		var sum float64
		rel := 0
		for i := 0; i < n; i++ {
			if labels[i] >= relevanceLevel {
				rel++
				sum += float64(rel) / float64(i+1)
			}
		}
		return sum / float64(numRel)
	case Recall, Precision:
		rel := 0
		for i := 0; i < n; i++ {
			if labels[i] >= relevanceLevel {
				rel++
			}
		}
		if m.Measure == Precision {
			return float64(rel) / float64(m.K)
		}
		if numRel == 0 {
			return 0
		}
		return float64(rel) / float64(numRel)
	}
	return 0
}

// Result holds the metrics of one run (Evaluate's outcome). A Table lays
// out several for presentation.
type Result struct {
	Metrics []Metric
	// QueryIDs are the evaluated queries (judged queries), sorted.
	QueryIDs []string
	// Mean maps a metric name to its mean over QueryIDs.
	Mean map[string]float64
	// PerQuery maps a query id to metric name to value.
	PerQuery map[string]map[string]float64
	// Missing are judged queries absent from the run (scored 0).
	Missing []string
}

// MeanOf returns the mean of metric over the evaluated queries, or NaN
// when the metric was not evaluated.
func (r *Result) MeanOf(metric Metric) float64 {
	v, ok := r.Mean[metric.String()]
	if !ok {
		return math.NaN()
	}
	return v
}

// Values returns the per-query values of a metric (named as
// Metric.String names it), keyed by query id.
func (r *Result) Values(metric string) map[string]float64 {
	out := make(map[string]float64, len(r.PerQuery))
	for q, m := range r.PerQuery {
		out[q] = m[metric]
	}
	return out
}

// Evaluate computes metrics for every judged query of qrels, ranking each
// query's documents by score with ties (see the package documentation for
// the definitions). It fails when a query of the run lists a document
// twice.
func Evaluate(run Run, qrels Qrels, metrics []Metric, ties TieBreak) (*Result, error) {
	if len(metrics) == 0 {
		return nil, fmt.Errorf("no metrics to compute")
	}
	res := &Result{
		Metrics:  metrics,
		QueryIDs: qrels.QueryIDs(),
		Mean:     make(map[string]float64, len(metrics)),
		PerQuery: make(map[string]map[string]float64, len(qrels)),
	}
	sums := make([]float64, len(metrics))
	for _, q := range res.QueryIDs {
		docs, ok := run[q]
		if !ok {
			res.Missing = append(res.Missing, q)
		}
		ranked := Rank(docs, ties)
		ids := make([]string, len(ranked))
		for i, d := range ranked {
			ids[i] = d.DocID
		}
		if err := checkUnique(q, ids); err != nil {
			return nil, err
		}
		vals := ScoreQuery(ids, qrels[q], metrics)
		pq := make(map[string]float64, len(metrics))
		for i, m := range metrics {
			pq[m.String()] = vals[i]
			sums[i] += vals[i]
		}
		res.PerQuery[q] = pq
	}
	for i, m := range metrics {
		if n := len(res.QueryIDs); n > 0 {
			res.Mean[m.String()] = sums[i] / float64(n)
		} else {
			res.Mean[m.String()] = 0
		}
	}
	return res, nil
}

func checkUnique(q string, ids []string) error {
	if len(ids) < 2 {
		return nil
	}
	seen := make(map[string]struct{}, len(ids))
	for _, d := range ids {
		if _, dup := seen[d]; dup {
			return fmt.Errorf("query %q: document %q occurs twice in the run", q, d)
		}
		seen[d] = struct{}{}
	}
	return nil
}
