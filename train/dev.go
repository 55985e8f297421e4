package train

import (
	"context"
	"fmt"

	"github.com/rerank-go/rerank/eval"
)

// DevSet is a dev evaluation: first-stage candidates, their judgments and
// passage texts.
type DevSet struct {
	Cands    []eval.Candidate
	Qrels    eval.Qrels
	Queries  eval.Queries
	Passages eval.PassageLookup
	// Missing lists the documents the kept judgments call relevant that
	// the BEIR corpus lacks (none without one): no reranking finds them.
	Missing []string
}

// DevMetrics are the metrics logged for dev evaluations.
var DevMetrics = []eval.Metric{{Measure: eval.NDCG, K: 10}, {Measure: eval.MRR, K: 10}}

// LoadDev reads a candidate file and, when beirDir is set, the BEIR
// collection (corpus, queries, qrels/<split>.tsv) it refers to. Without
// beirDir the candidate file must carry passages and judgments itself
// (FlagEmbedding JSONL). maxQueries > 0 keeps the first that many queries
// (in file order) and their judgments only.
func LoadDev(candidates, beirDir, split string, maxQueries int) (*DevSet, error) {
	d := &DevSet{}
	var known eval.DocFilter
	if beirDir != "" {
		col, err := eval.LoadBEIR(beirDir, split)
		if err != nil {
			return nil, fmt.Errorf("dev set: %w", err)
		}
		d.Qrels, d.Queries, d.Passages = col.Qrels, col.Queries, eval.CorpusPassages(col.Corpus)
		known = func(id string) bool { _, ok := col.Corpus[id]; return ok }
	}
	cands, qrels, err := eval.ReadCandidateFile(candidates, eval.FormatAuto, known)
	if err != nil {
		return nil, fmt.Errorf("dev set: %w", err)
	}
	if d.Qrels == nil {
		if qrels == nil {
			return nil, fmt.Errorf("dev set: %s carries no judgments: pass --dev-beir with the collection directory", candidates)
		}
		d.Qrels = qrels
	}
	if d.Passages == nil {
		d.Passages = func(string) (string, bool) { return "", false }
	}
	if maxQueries > 0 && len(cands) > maxQueries {
		cands = cands[:maxQueries]
	}
	kept := eval.Qrels{}
	for _, c := range cands {
		if j, ok := d.Qrels[c.QID]; ok {
			kept[c.QID] = j
		}
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("dev set: none of the %d queries of %s has judgments in the qrels", len(cands), candidates)
	}
	d.Cands, d.Qrels = cands, kept
	if known != nil {
		d.Missing = kept.MissingDocs(known)
	}
	return d, nil
}

// Evaluate reranks the top topK candidates of every query with s and
// returns the mean metrics (ndcg@10, mrr@10) and the run.
func (d *DevSet) Evaluate(ctx context.Context, s eval.Scorer, topK, batch int) (map[string]float64, eval.Run, error) {
	run, err := eval.Rerank(ctx, s, d.Cands, d.Queries, d.Passages, eval.RerankOptions{TopK: topK, BatchSize: batch})
	if err != nil {
		return nil, nil, err
	}
	res, err := eval.Evaluate(run, d.Qrels, DevMetrics, eval.TiesInputOrder)
	if err != nil {
		return nil, nil, err
	}
	return res.Mean, run, nil
}

// Pairs is the number of pairs an evaluation scores.
func (d *DevSet) Pairs(topK int) int {
	n := 0
	for _, c := range d.Cands {
		n += min(topK, len(c.DocIDs))
	}
	return n
}
