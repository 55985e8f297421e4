package eval

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeScorer scores a passage by how many query words it contains, and
// records the calls it received.
type fakeScorer struct {
	mu    sync.Mutex
	calls [][]string
	fail  error
	nan   bool
	short bool
}

func (f *fakeScorer) Score(ctx context.Context, query string, passages []string) ([]float32, error) {
	f.mu.Lock()
	f.calls = append(f.calls, append([]string(nil), passages...))
	f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	out := make([]float32, len(passages))
	for i, p := range passages {
		for _, w := range strings.Fields(query) {
			if strings.Contains(p, w) {
				out[i]++
			}
		}
		if f.nan {
			out[i] = float32(math.NaN())
		}
	}
	if f.short {
		out = out[:len(out)-1]
	}
	return out, nil
}

func rerankFixture() (Corpus, []Candidate) {
	corpus := Corpus{
		"d1": {ID: "d1", Text: "nothing here"},
		"d2": {ID: "d2", Title: "wing", Text: "lift of a wing at high speed"},
		"d3": {ID: "d3", Text: "wing"},
		"d4": {ID: "d4", Text: "lift"},
		"d5": {ID: "d5", Text: "wing lift"},
	}
	cands := []Candidate{
		{QID: "q1", DocIDs: []string{"d1", "d3", "d4", "d5", "d2"}, Scores: []float64{9, 8, 7, 6, 5}},
		{QID: "q2", Query: "speed", DocIDs: []string{"d2", "d1"}},
	}
	return corpus, cands
}

func TestRerankPipeline(t *testing.T) {
	corpus, cands := rerankFixture()
	queries := Queries{"q1": "wing lift", "q2": "ignored: the candidate has its own query"}
	var progress [][2]int
	s := &fakeScorer{}
	run, err := Rerank(context.Background(), s, cands, queries, CorpusPassages(corpus), RerankOptions{
		TopK: 4, BatchSize: 2,
		Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) },
	})
	require.NoError(t, err)

	// q1: top 4 rescored: d1=0, d3=1, d4=1, d5=2; d2 (rank 5) stays below.
	q1 := Rank(run["q1"], TiesInputOrder)
	ids := func(docs []ScoredDoc) []string {
		var s []string
		for _, d := range docs {
			s = append(s, d.DocID)
		}
		return s
	}
	assert.Equal(t, []string{"d5", "d3", "d4", "d1", "d2"}, ids(q1), "ties (d3, d4) keep first-stage order; tail below")
	assert.Equal(t, -1.0, q1[4].Score, "tail scored below the lowest model score")
	assert.Equal(t, []string{"d2", "d1"}, ids(Rank(run["q2"], TiesInputOrder)))

	// Batches: at most 2 passages, grouped by length, longest first.
	for _, c := range s.calls {
		assert.LessOrEqual(t, len(c), 2)
	}
	require.NotEmpty(t, s.calls)
	assert.Contains(t, s.calls[0], "wing lift of a wing at high speed", "the longest batch runs first")
	assert.Equal(t, [2]int{6, 6}, progress[len(progress)-1])
	assert.Len(t, progress, len(s.calls))
}

func TestRerankEvaluatesBetterThanFirstStage(t *testing.T) {
	corpus, cands := rerankFixture()
	qrels := Qrels{"q1": {"d5": 2, "d2": 1}}
	first, err := RunFromCandidates(cands[:1])
	require.NoError(t, err)
	rer, err := Rerank(context.Background(), &fakeScorer{}, cands[:1], Queries{"q1": "wing lift"}, CorpusPassages(corpus), RerankOptions{})
	require.NoError(t, err)
	b, err := Evaluate(first, qrels, DefaultMetrics, TiesInputOrder)
	require.NoError(t, err)
	m, err := Evaluate(rer, qrels, DefaultMetrics, TiesInputOrder)
	require.NoError(t, err)
	assert.Equal(t, 1.0, m.Mean["mrr@10"])
	assert.Less(t, b.Mean["ndcg@10"], m.Mean["ndcg@10"])
	assert.Equal(t, b.Mean["recall@100"], m.Mean["recall@100"])
}

func TestRerankInlinePassages(t *testing.T) {
	cands := []Candidate{{QID: "7", Query: "wing", DocIDs: []string{"pos-0", "neg-0"}, Passages: []string{"a wing", "a car"}}}
	run, err := Rerank(context.Background(), &fakeScorer{}, cands, nil, nil, RerankOptions{})
	require.NoError(t, err)
	assert.Equal(t, []ScoredDoc{{"pos-0", 1}, {"neg-0", 0}}, run["7"])
}

func TestRerankErrors(t *testing.T) {
	corpus, cands := rerankFixture()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		s       Scorer
		cands   []Candidate
		queries Queries
		want    string
	}{
		{"scorer error", context.Background(), &fakeScorer{fail: errors.New("out of memory")}, cands, Queries{"q1": "x"}, `query "q2": scoring: out of memory`},
		{"NaN score", context.Background(), &fakeScorer{nan: true}, cands[1:], nil, "NaN"},
		{"wrong score count", context.Background(), &fakeScorer{short: true}, cands[1:], nil, "returned 1 scores for 2 passages"},
		{"no query text", context.Background(), &fakeScorer{}, cands[:1], Queries{}, `query "q1": no query text`},
		{"unknown doc", context.Background(), &fakeScorer{}, []Candidate{{QID: "q", Query: "x", DocIDs: []string{"zz"}}}, nil, `document "zz" is not in the corpus`},
		{"cancelled", cancelled, &fakeScorer{}, cands[1:], nil, "context canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Rerank(tc.ctx, tc.s, tc.cands, tc.queries, CorpusPassages(corpus), RerankOptions{})
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
