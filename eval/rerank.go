package eval

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"
)

// Scorer scores (query, passage) pairs with a reranker. Score returns one
// score per passage, higher meaning more relevant. Implementations do
// their own truncation; Rerank already groups passages of similar length
// into one call, at most RerankOptions.BatchSize passages at a time.
type Scorer interface {
	Score(ctx context.Context, query string, passages []string) ([]float32, error)
}

// ScorerFunc adapts a function to Scorer.
type ScorerFunc func(ctx context.Context, query string, passages []string) ([]float32, error)

// Score calls f.
func (f ScorerFunc) Score(ctx context.Context, query string, passages []string) ([]float32, error) {
	return f(ctx, query, passages)
}

// PassageLookup returns the passage text of a document id.
type PassageLookup func(docID string) (string, bool)

// CorpusPassages looks passages up in a corpus (see Doc.Passage).
func CorpusPassages(c Corpus) PassageLookup {
	return func(id string) (string, bool) {
		d, ok := c[id]
		if !ok {
			return "", false
		}
		return d.Passage(), true
	}
}

// RerankOptions configure Rerank.
type RerankOptions struct {
	// TopK is how many candidates of each query are rescored (default
	// 100); the rest keep their first-stage order below them.
	TopK int
	// BatchSize is the most passages passed to one Score call (default 32).
	BatchSize int
	// Progress, when set, is called after each batch with the number of
	// pairs scored so far and the total.
	Progress func(done, total int)
	// Latency, when not nil, receives the time spent scoring, the depth
	// and the number of queries and pairs scored.
	Latency *Latency
}

// batch is a unit of work: passages of one query, similar in length.
type batch struct {
	cand  int   // index into the candidate slice
	items []int // candidate positions
	size  int   // character length of the longest query+passage pair
}

// Rerank rescores the top TopK candidates of every query with s and
// returns the resulting run. Queries come from the candidates' Query
// field, or from queries when that is empty; passages from the
// candidates' Passages, or from passages. Work is grouped by length: each
// query's passages are sorted by length and cut into batches, and batches
// run longest first, so that padding is small and an out-of-memory error
// shows up at once.
//
// In the run, the rescored candidates carry the model's scores (equal
// scores keep first-stage order, see TiesInputOrder), and candidates below
// TopK follow in first-stage order with scores strictly below every model
// score (min - 1, min - 2, ...).
func Rerank(ctx context.Context, s Scorer, cands []Candidate, queries Queries, passages PassageLookup, opts RerankOptions) (Run, error) {
	if opts.TopK <= 0 {
		opts.TopK = 100
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 32
	}
	type prepared struct {
		query string
		texts []string
	}
	prep := make([]prepared, len(cands))
	var batches []batch
	total := 0
	for ci, c := range cands {
		q := c.Query
		if q == "" {
			var ok bool
			if q, ok = queries[c.QID]; !ok {
				return nil, fmt.Errorf("query %q: no query text in the candidates or in queries.jsonl", c.QID)
			}
		}
		n := min(opts.TopK, len(c.DocIDs))
		texts := make([]string, n)
		for i := 0; i < n; i++ {
			if c.Passages != nil {
				texts[i] = c.Passages[i]
				continue
			}
			t, ok := passages(c.DocIDs[i])
			if !ok {
				return nil, fmt.Errorf("query %q: document %q is not in the corpus", c.QID, c.DocIDs[i])
			}
			texts[i] = t
		}
		prep[ci] = prepared{query: q, texts: texts}
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return len(texts[order[a]]) > len(texts[order[b]]) })
		for start := 0; start < n; start += opts.BatchSize {
			items := order[start:min(n, start+opts.BatchSize)]
			batches = append(batches, batch{cand: ci, items: items, size: len(q) + len(texts[items[0]])})
		}
		total += n
	}
	sort.SliceStable(batches, func(a, b int) bool { return batches[a].size > batches[b].size })

	scores := make([][]float32, len(cands))
	for ci := range cands {
		scores[ci] = make([]float32, len(prep[ci].texts))
	}
	done, spent := 0, 0.0
	for _, b := range batches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := prep[b.cand]
		texts := make([]string, len(b.items))
		for i, it := range b.items {
			texts[i] = p.texts[it]
		}
		start := time.Now()
		out, err := s.Score(ctx, p.query, texts)
		spent += since(start)
		if err != nil {
			return nil, fmt.Errorf("query %q: scoring: %w", cands[b.cand].QID, err)
		}
		if len(out) != len(texts) {
			return nil, fmt.Errorf("query %q: the scorer returned %d scores for %d passages", cands[b.cand].QID, len(out), len(texts))
		}
		for i, it := range b.items {
			if math.IsNaN(float64(out[i])) {
				return nil, fmt.Errorf("query %q: the scorer returned NaN for document %q", cands[b.cand].QID, cands[b.cand].DocIDs[it])
			}
			scores[b.cand][it] = out[i]
		}
		done += len(texts)
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}

	if opts.Latency != nil {
		*opts.Latency = Latency{Depth: opts.TopK, Queries: len(cands), Pairs: total, Seconds: spent}
	}
	run := make(Run, len(cands))
	for ci, c := range cands {
		docs := make([]ScoredDoc, len(c.DocIDs))
		low := math.Inf(1)
		for i, sc := range scores[ci] {
			docs[i] = ScoredDoc{DocID: c.DocIDs[i], Score: float64(sc)}
			low = math.Min(low, float64(sc))
		}
		if math.IsInf(low, 1) {
			low = 0
		}
		for i := len(scores[ci]); i < len(c.DocIDs); i++ {
			low = math.Min(low-1, math.Nextafter(low, math.Inf(-1)))
			docs[i] = ScoredDoc{DocID: c.DocIDs[i], Score: low}
		}
		run[c.QID] = docs
	}
	return run, nil
}
