// Package mine mines hard negatives for FlagEmbedding reranker training
// data with BM25, as FlagEmbedding's hn_mine script does with a dense
// retriever: retrieve, keep the ranks of a window (--range-for-sampling
// "2-200" is the Python slice [2:200], ranks 3 to 200), drop positives,
// near-duplicates of positives and the query itself, and sample up to
// --negative-number of the rest without replacement (seeded, kept in rank
// order). Queries with too few candidates are topped up with random
// passages of the pool, as hn_mine does, unless FillRandom is off.
//
// An optional cross-encoder pass removes likely false negatives the way
// sentence-transformers' mine_hard_negatives does (max_score,
// absolute_margin, relative_margin against the positives' scores) and can
// attach teacher scores (pos_scores/neg_scores) for distillation.
package mine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rerank-go/rerank/bm25"
	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/internal/mathx"
)

// Scorer scores (query, passage) pairs with a cross-encoder: one score per
// passage, higher is more relevant. eval.Scorer has the same method set.
type Scorer interface {
	Score(ctx context.Context, query string, passages []string) ([]float32, error)
}

// Filter drops candidates that score too close to (or above) the
// positives, the false-negative filter of sentence-transformers'
// mine_hard_negatives. A candidate is kept only if, for the lowest
// positive score p and its own score s:
//
//	s <= MaxScore                (when HasMaxScore)
//	s <= p - AbsoluteMargin      (when AbsoluteMargin is set, > 0)
//	s <= p * (1 - RelativeMargin) (when RelativeMargin is set, > 0)
//
// and always s < p when neither margin is set (a candidate the model
// ranks above a positive is taken for a false negative).
type Filter struct {
	HasMaxScore    bool
	MaxScore       float64
	AbsoluteMargin float64
	RelativeMargin float64
}

// Keep reports whether a candidate with score s survives against the
// lowest positive score p.
func (f Filter) Keep(p, s float64) bool {
	if math.IsNaN(s) {
		return false
	}
	if f.HasMaxScore && s > f.MaxScore {
		return false
	}
	if f.AbsoluteMargin <= 0 && f.RelativeMargin <= 0 {
		return s < p
	}
	if f.AbsoluteMargin > 0 && s > p-f.AbsoluteMargin {
		return false
	}
	if f.RelativeMargin > 0 && s > p*(1-f.RelativeMargin) {
		return false
	}
	return true
}

// Options configure Mine.
type Options struct {
	// RangeStart and RangeEnd select ranked candidates [RangeStart,
	// RangeEnd) (0-based, a Python slice), see ParseRange.
	RangeStart, RangeEnd int
	// NegativeNumber is how many negatives each query gets (at most).
	NegativeNumber int
	// Seed makes sampling reproducible; each query draws from its own
	// generator (seed, query index), so the output does not depend on
	// concurrency.
	Seed uint64
	// NearDupThreshold excludes candidates whose analyzed-term set has a
	// Jaccard similarity >= the threshold with a positive's (0 disables;
	// identical text and positive ids are always excluded).
	NearDupThreshold float64
	// FillRandom tops up queries with fewer candidates than
	// NegativeNumber with random pool passages (FlagEmbedding does).
	FillRandom bool

	// Scorer, when set, scores the positives and the window's candidates
	// and drops those Filter rejects before sampling.
	Scorer Scorer
	Filter Filter
	// TeacherScores writes pos_scores/neg_scores from Scorer.
	TeacherScores bool

	Workers  int                   // concurrent queries; 0 = GOMAXPROCS
	Progress func(done, total int) // called after each query
}

// ParseRange parses FlagEmbedding's --range-for-sampling "A-B" into the
// slice bounds [A, B).
func ParseRange(s string) (start, end int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if ok {
		start, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			end, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil || start < 0 || end <= start {
		return 0, 0, fmt.Errorf("range for sampling %q: want START-END with 0 <= START < END, e.g. 2-200", s)
	}
	return start, end, nil
}

// Pool is the candidate corpus: passages with ids, indexed with BM25.
type Pool struct {
	IDs      []string
	Passages []string
	Index    *bm25.Index
	pos      map[string]int
}

// NewPool indexes passages. indexTexts are the texts BM25 sees (for a
// BEIR corpus title + " " + text); nil means the passages themselves.
// ids must be unique.
func NewPool(ctx context.Context, ids, passages, indexTexts []string, progress func(done int)) (*Pool, error) {
	if len(ids) != len(passages) || indexTexts != nil && len(indexTexts) != len(ids) {
		return nil, errors.New("mine: ids, passages and index texts differ in length")
	}
	if indexTexts == nil {
		indexTexts = passages
	}
	docs := make([]bm25.Doc, len(ids))
	for i := range docs {
		docs[i] = bm25.Doc{ID: ids[i], Text: indexTexts[i]}
	}
	ix, err := bm25.Build(ctx, docs, bm25.BuildOptions{Progress: progress})
	if err != nil {
		return nil, err
	}
	p := &Pool{IDs: ids, Passages: passages, Index: ix, pos: make(map[string]int, len(ids))}
	for i, id := range ids {
		if _, dup := p.pos[id]; dup {
			return nil, fmt.Errorf("mine: pool id %q appears twice", id)
		}
		p.pos[id] = i
	}
	return p, nil
}

// Lookup returns the pool position of a document id.
func (p *Pool) Lookup(id string) (int, bool) {
	i, ok := p.pos[id]
	return i, ok
}

// normText is the text identity used for exact-duplicate checks:
// whitespace collapsed, case folded.
func normText(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// Query is one example to mine negatives for.
type Query struct {
	ID     string // optional; written as "qid" when set
	Text   string
	Prompt string
	Pos    []string // positive passages (text)
	PosIDs []string // their ids in the pool, when known (written as "pos_ids")
	// Exclude lists further pool ids never to use as negatives (e.g. a
	// collection's "source" documents).
	Exclude []string
	// Extra keys of the input line, kept in the output (except neg and
	// the score lists, which mining replaces).
	Extra map[string]json.RawMessage
}

// Stats summarise a mining run.
type Stats struct {
	Queries         int
	Negatives       int // written
	ExcludedPos     int // window candidates that were positives, their duplicates, excluded ids or the query
	NearDuplicates  int // sampled candidates skipped as near-duplicates of a positive
	FalseNegatives  int // dropped by the cross-encoder filter
	RandomFill      int // negatives drawn at random to top up
	ShortQueries    int // queries left with fewer than NegativeNumber negatives
	CandidatesTotal int // window candidates considered
}

func (s *Stats) add(o Stats) {
	s.Queries += o.Queries
	s.Negatives += o.Negatives
	s.ExcludedPos += o.ExcludedPos
	s.NearDuplicates += o.NearDuplicates
	s.FalseNegatives += o.FalseNegatives
	s.RandomFill += o.RandomFill
	s.ShortQueries += o.ShortQueries
	s.CandidatesTotal += o.CandidatesTotal
}

// Mine mines negatives for every query concurrently and returns the
// training examples in query order.
func Mine(ctx context.Context, pool *Pool, qs []Query, opts Options) ([]flagdata.Example, Stats, error) {
	if opts.NegativeNumber < 1 {
		return nil, Stats{}, fmt.Errorf("negative number must be at least 1, got %d", opts.NegativeNumber)
	}
	if opts.RangeStart < 0 || opts.RangeEnd <= opts.RangeStart {
		return nil, Stats{}, fmt.Errorf("range for sampling [%d, %d) is empty", opts.RangeStart, opts.RangeEnd)
	}
	if opts.TeacherScores && opts.Scorer == nil {
		return nil, Stats{}, errors.New("teacher scores need a cross-encoder (--rescore-model)")
	}
	for i, q := range qs {
		if len(q.Pos) == 0 {
			return nil, Stats{}, fmt.Errorf("query %d (%q): no positives", i, q.ID)
		}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([]flagdata.Example, len(qs))
	stats := make([]Stats, len(qs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     int
		firstErr error
	)
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := pool.Index.NewSearcher()
			for i := range next {
				ex, st, err := mineOne(ctx, pool, s, i, &qs[i], &opts)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("query %d (%s): %w", i+1, describe(&qs[i]), err)
					cancel()
				}
				out[i], stats[i] = ex, st
				done++
				if opts.Progress != nil {
					opts.Progress(done, len(qs))
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range qs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, Stats{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, Stats{}, err
	}
	var total Stats
	for _, s := range stats {
		total.add(s)
	}
	return out, total, nil
}

func describe(q *Query) string {
	if q.ID != "" {
		return "qid " + q.ID
	}
	t := q.Text
	if len(t) > 40 {
		t = t[:40] + "..."
	}
	return strconv.Quote(t)
}

// rngFor gives query i its own generator.
func rngFor(seed uint64, i int) *rand.PCG {
	h := fnv.New64a()
	fmt.Fprintf(h, "mine:%d", i)
	return rand.NewPCG(seed, h.Sum64())
}

// termSet is the set of analyzed terms of a text.
func termSet(s string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, t := range bm25.Analyze(s) {
		m[t] = struct{}{}
	}
	return m
}

func jaccard(a, b map[string]struct{}) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	inter := 0
	for t := range a {
		if _, ok := b[t]; ok {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}

func mineOne(ctx context.Context, pool *Pool, s *bm25.Searcher, qi int, q *Query, opts *Options) (flagdata.Example, Stats, error) {
	st := Stats{Queries: 1}
	excluded := map[int]bool{}
	for _, id := range q.PosIDs {
		if i, ok := pool.pos[id]; ok {
			excluded[i] = true
		}
	}
	for _, id := range q.Exclude {
		if i, ok := pool.pos[id]; ok {
			excluded[i] = true
		}
	}
	posText := map[string]bool{normText(q.Text): true}
	var posTerms []map[string]struct{}
	for _, p := range q.Pos {
		posText[normText(p)] = true
		if opts.NearDupThreshold > 0 {
			posTerms = append(posTerms, termSet(p))
		}
	}

	// nearDup compares analyzed-term sets; it runs only on candidates
	// that sampling reaches, which gives the same distribution as
	// filtering first (a uniform random order, first N that pass).
	nearDup := func(doc int) bool {
		if opts.NearDupThreshold <= 0 {
			return false
		}
		ts := termSet(pool.Passages[doc])
		for _, pt := range posTerms {
			if jaccard(ts, pt) >= opts.NearDupThreshold {
				return true
			}
		}
		return false
	}

	hits := s.Search(q.Text, opts.RangeEnd)
	var cands []int
	if opts.RangeStart < len(hits) {
		for _, h := range hits[opts.RangeStart:] {
			st.CandidatesTotal++
			if excluded[h.Doc] || posText[normText(pool.Passages[h.Doc])] {
				st.ExcludedPos++
				continue
			}
			cands = append(cands, h.Doc)
		}
	}

	// Cross-encoder pass: score positives and candidates, drop false
	// negatives.
	var posScores []float32
	candScore := map[int]float32{}
	if opts.Scorer != nil {
		texts := append(append([]string(nil), q.Pos...), passagesOf(pool, cands)...)
		scores, err := opts.Scorer.Score(ctx, q.Text, texts)
		if err != nil {
			return flagdata.Example{}, st, fmt.Errorf("cross-encoder: %w", err)
		}
		if len(scores) != len(texts) {
			return flagdata.Example{}, st, fmt.Errorf("cross-encoder returned %d scores for %d passages", len(scores), len(texts))
		}
		posScores = scores[:len(q.Pos)]
		minPos := math.Inf(1)
		for _, p := range posScores {
			minPos = math.Min(minPos, float64(p))
		}
		kept := cands[:0]
		for k, c := range cands {
			sc := scores[len(q.Pos)+k]
			if !opts.Filter.Keep(minPos, float64(sc)) {
				st.FalseNegatives++
				continue
			}
			candScore[c] = sc
			kept = append(kept, c)
		}
		cands = kept
	}

	// Sample without replacement (lazy Fisher-Yates, skipping
	// near-duplicates), then restore rank order.
	r := rngFor(opts.Seed, qi)
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	var picked []int
	for k := 0; k < len(order) && len(picked) < opts.NegativeNumber; k++ {
		j := k + mathx.Uniform(r, len(order)-k)
		order[k], order[j] = order[j], order[k]
		if nearDup(cands[order[k]]) {
			st.NearDuplicates++
			continue
		}
		picked = append(picked, order[k])
	}
	sort.Ints(picked)
	chosen := make([]int, len(picked))
	for i, k := range picked {
		chosen[i] = cands[k]
	}

	// Top up with random pool passages.
	if opts.FillRandom && len(chosen) < opts.NegativeNumber {
		taken := map[int]bool{}
		for _, c := range chosen {
			taken[c] = true
		}
		var extra []int
		for tries := 0; len(chosen)+len(extra) < opts.NegativeNumber && tries < 20*opts.NegativeNumber; tries++ {
			c := mathx.Uniform(r, len(pool.IDs))
			if taken[c] || excluded[c] || posText[normText(pool.Passages[c])] || nearDup(c) {
				continue
			}
			taken[c] = true
			extra = append(extra, c)
		}
		if len(extra) > 0 && opts.Scorer != nil {
			scores, err := opts.Scorer.Score(ctx, q.Text, passagesOf(pool, extra))
			if err != nil {
				return flagdata.Example{}, st, fmt.Errorf("cross-encoder: %w", err)
			}
			if len(scores) != len(extra) {
				return flagdata.Example{}, st, fmt.Errorf("cross-encoder returned %d scores for %d passages", len(scores), len(extra))
			}
			minPos := math.Inf(1)
			for _, p := range posScores {
				minPos = math.Min(minPos, float64(p))
			}
			kept := extra[:0]
			for k, c := range extra {
				if !opts.Filter.Keep(minPos, float64(scores[k])) {
					st.FalseNegatives++
					continue
				}
				candScore[c] = scores[k]
				kept = append(kept, c)
			}
			extra = kept
		}
		st.RandomFill += len(extra)
		chosen = append(chosen, extra...)
	}
	if len(chosen) < opts.NegativeNumber {
		st.ShortQueries++
	}
	st.Negatives = len(chosen)

	ex := flagdata.Example{
		Query:  q.Text,
		Pos:    q.Pos,
		Neg:    passagesOf(pool, chosen),
		Prompt: q.Prompt,
	}
	if opts.TeacherScores {
		ex.PosScores = make([]float64, len(posScores))
		for i, p := range posScores {
			ex.PosScores[i] = float64(p)
		}
		ex.NegScores = make([]float64, len(chosen))
		for i, c := range chosen {
			ex.NegScores[i] = float64(candScore[c])
		}
	}
	for k, v := range q.Extra {
		switch k {
		case "neg", "neg_ids", "pos_scores", "neg_scores":
			continue
		}
		if ex.Extra == nil {
			ex.Extra = map[string]json.RawMessage{}
		}
		ex.Extra[k] = v
	}
	setExtra := func(k string, v any) {
		b, _ := json.Marshal(v)
		if ex.Extra == nil {
			ex.Extra = map[string]json.RawMessage{}
		}
		ex.Extra[k] = b
	}
	if q.ID != "" {
		setExtra("qid", q.ID)
	}
	if q.PosIDs != nil {
		setExtra("pos_ids", q.PosIDs)
	}
	if q.PosIDs != nil {
		ids := make([]string, len(chosen))
		for i, c := range chosen {
			ids[i] = pool.IDs[c]
		}
		setExtra("neg_ids", ids)
	}
	return ex, st, nil
}

func passagesOf(pool *Pool, idx []int) []string {
	out := make([]string, len(idx))
	for i, c := range idx {
		out[i] = pool.Passages[c]
	}
	return out
}
