package mine

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rerank-go/rerank/bm25"
	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeScorer scores the positive 10, the planted false negative
// (contains "secretly") 9.5, everything else 1.
type fakeScorer struct{ calls atomic.Int64 }

func (f *fakeScorer) Score(_ context.Context, _ string, passages []string) ([]float32, error) {
	f.calls.Add(1)
	out := make([]float32, len(passages))
	for i, p := range passages {
		switch {
		case strings.Contains(p, "secretly"):
			out[i] = 9.5
		case strings.HasPrefix(p, "solar panels relevant"): // the positive, not its near-duplicate
			out[i] = 10
		default:
			out[i] = 1
		}
	}
	return out, nil
}

type failingScorer struct{}

func (failingScorer) Score(context.Context, string, []string) ([]float32, error) {
	return nil, errors.New("engine down")
}

func testPool(t *testing.T) *Pool {
	t.Helper()
	ids := []string{"p1", "fn", "d1", "d2", "d3", "d4", "d5", "dup", "far"}
	passages := []string{
		"solar panels relevant answer about solar energy",
		"solar energy is secretly the answer too",
		"solar wind in space",
		"solar system planets",
		"energy prices rise",
		"solar eclipse energy",
		"the solar year",
		"Solar panels relevant answer about  solar energy.", // near-duplicate of p1
		"cooking pasta at home",
	}
	p, err := NewPool(context.Background(), ids, passages, nil, nil)
	require.NoError(t, err)
	return p
}

func ids(ex flagdata.Example) []string {
	var s []string
	_ = json.Unmarshal(ex.Extra["neg_ids"], &s)
	return s
}

func TestMineFalseNegativeFilter(t *testing.T) {
	pool := testPool(t)
	q := []Query{{ID: "q1", Text: "solar energy", Pos: []string{pool.Passages[0]}, PosIDs: []string{"p1"}}}
	tests := []struct {
		name    string
		scorer  Scorer
		filter  Filter
		wantFN  bool // the planted false negative survives
		dropped int
	}{
		{"no cross-encoder keeps the planted false negative", nil, Filter{}, true, 0},
		{"default filter keeps it (scores below the positive)", &fakeScorer{}, Filter{}, true, 0},
		{"absolute margin drops it", &fakeScorer{}, Filter{AbsoluteMargin: 1}, false, 1},
		{"relative margin drops it", &fakeScorer{}, Filter{RelativeMargin: 0.1}, false, 1},
		{"max score drops it", &fakeScorer{}, Filter{HasMaxScore: true, MaxScore: 5}, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exs, st, err := Mine(context.Background(), pool, q, Options{
				RangeStart: 0, RangeEnd: 100, NegativeNumber: 10, Seed: 1,
				NearDupThreshold: 0.9, Scorer: tc.scorer, Filter: tc.filter,
			})
			require.NoError(t, err)
			require.Len(t, exs, 1)
			got := ids(exs[0])
			assert.Equal(t, tc.wantFN, contains(got, "fn"), "negatives %v", got)
			assert.Equal(t, tc.dropped, st.FalseNegatives)
			assert.NotContains(t, got, "p1", "the positive is never a negative")
			assert.NotContains(t, got, "dup", "near-duplicates of the positive are excluded")
			assert.NotContains(t, got, "far", "documents without a shared term are not candidates")
			assert.Equal(t, 1, st.NearDuplicates)
		})
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestMineTeacherScores(t *testing.T) {
	pool := testPool(t)
	q := []Query{{ID: "q1", Text: "solar energy", Pos: []string{pool.Passages[0]}, PosIDs: []string{"p1"}}}
	exs, _, err := Mine(context.Background(), pool, q, Options{
		RangeEnd: 100, NegativeNumber: 3, Seed: 2, Scorer: &fakeScorer{}, TeacherScores: true, Filter: Filter{AbsoluteMargin: 1},
	})
	require.NoError(t, err)
	ex := exs[0]
	assert.Equal(t, []float64{10}, ex.PosScores)
	require.Len(t, ex.NegScores, len(ex.Neg))
	for _, s := range ex.NegScores {
		assert.Equal(t, 1.0, s)
	}
	// The example is valid training data with distillation.
	line, err := flagdata.Marshal(&ex)
	require.NoError(t, err)
	_, err = flagdata.Parse(strings.NewReader(string(line)), "x.jsonl", flagdata.Options{RequireScores: true})
	assert.NoError(t, err)
}

func TestMineWindowSeedAndFill(t *testing.T) {
	pool := testPool(t)
	q := []Query{{ID: "q1", Text: "solar energy", Pos: []string{pool.Passages[0]}, PosIDs: []string{"p1"}}}
	all := func(o Options) []string {
		exs, _, err := Mine(context.Background(), pool, q, o)
		require.NoError(t, err)
		return ids(exs[0])
	}
	ranked := pool.Index.Search("solar energy", 100)
	var order []string
	for _, h := range ranked {
		order = append(order, h.ID)
	}
	t.Run("window skips the top ranks", func(t *testing.T) {
		got := all(Options{RangeStart: 3, RangeEnd: 100, NegativeNumber: 50, Seed: 1})
		for _, id := range order[:3] {
			assert.NotContains(t, got, id)
		}
	})
	t.Run("rank order kept and seeded", func(t *testing.T) {
		a := all(Options{RangeEnd: 100, NegativeNumber: 3, Seed: 7, Workers: 1})
		b := all(Options{RangeEnd: 100, NegativeNumber: 3, Seed: 7, Workers: 4})
		assert.Equal(t, a, b)
		assert.Len(t, a, 3)
		pos := -1
		for _, id := range a {
			k := indexOf(order, id)
			assert.Greater(t, k, pos, "rank order")
			pos = k
		}
		differs := false
		for seed := uint64(8); seed < 20 && !differs; seed++ {
			differs = !assert.ObjectsAreEqual(a, all(Options{RangeEnd: 100, NegativeNumber: 3, Seed: seed}))
		}
		assert.True(t, differs, "other seeds give other samples")
	})
	t.Run("random fill tops up", func(t *testing.T) {
		got := all(Options{RangeStart: 0, RangeEnd: 2, NegativeNumber: 5, Seed: 1, FillRandom: true})
		assert.Len(t, got, 5)
		assert.NotContains(t, got, "p1")
	})
}

func indexOf(s []string, x string) int {
	for i, v := range s {
		if v == x {
			return i
		}
	}
	return -1
}

func TestMineErrors(t *testing.T) {
	pool := testPool(t)
	good := []Query{{Text: "solar", Pos: []string{"x"}}}
	tests := []struct {
		name string
		qs   []Query
		opts Options
		want string
	}{
		{"no negatives asked", good, Options{RangeEnd: 10}, "negative number"},
		{"empty range", good, Options{RangeStart: 5, RangeEnd: 5, NegativeNumber: 1}, "empty"},
		{"teacher without model", good, Options{RangeEnd: 10, NegativeNumber: 1, TeacherScores: true}, "--rescore-model"},
		{"no positives", []Query{{Text: "x"}}, Options{RangeEnd: 10, NegativeNumber: 1}, "no positives"},
		{"scorer fails", []Query{{ID: "q9", Text: "solar", Pos: []string{"x"}}}, Options{RangeEnd: 10, NegativeNumber: 1, Scorer: failingScorer{}}, "qid q9): cross-encoder: engine down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Mine(context.Background(), pool, tc.qs, tc.opts)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in         string
		start, end int
		ok         bool
	}{
		{"2-200", 2, 200, true}, {"0-100", 0, 100, true}, {" 10 - 210 ", 10, 210, true},
		{"200-2", 0, 0, false}, {"5-5", 0, 0, false}, {"abc", 0, 0, false}, {"-1-3", 0, 0, false}, {"", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			s, e, err := ParseRange(tc.in)
			if !tc.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, [2]int{tc.start, tc.end}, [2]int{s, e})
		})
	}
}

func TestFilterKeep(t *testing.T) {
	tests := []struct {
		name string
		f    Filter
		p, s float64
		keep bool
	}{
		{"default: below positive", Filter{}, 5, 4.9, true},
		{"default: above positive", Filter{}, 5, 5.1, false},
		{"absolute margin inside", Filter{AbsoluteMargin: 0.5}, 5, 4.6, false},
		{"absolute margin outside", Filter{AbsoluteMargin: 0.5}, 5, 4.5, true},
		{"relative margin", Filter{RelativeMargin: 0.05}, 10, 9.6, false},
		{"relative margin ok", Filter{RelativeMargin: 0.05}, 10, 9.5, true},
		{"max score", Filter{HasMaxScore: true, MaxScore: 0.8}, 10, 0.9, false},
		{"NaN", Filter{}, 10, nan(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.keep, tc.f.Keep(tc.p, tc.s))
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestFromExamplesAndPool(t *testing.T) {
	in := `{"query":"q","pos":["a","b"],"qid":"7","pos_ids":["1","2"],"src":"x"}
{"query":"r","pos":["b"],"neg":["c"]}
`
	exs, err := flagdata.Parse(strings.NewReader(in), "in.jsonl", flagdata.Options{AllowMissingNeg: true})
	require.NoError(t, err)
	qs := FromExamples(exs)
	assert.Equal(t, "7", qs[0].ID)
	assert.Equal(t, []string{"1", "2"}, qs[0].PosIDs)
	assert.Contains(t, qs[0].Extra, "src")
	assert.Empty(t, qs[1].ID)
	ids, passages := PoolFromExamples(exs)
	assert.Equal(t, []string{"a", "b", "c"}, passages)
	assert.Equal(t, []string{"0", "1", "2"}, ids)
}

// TestMineSharedBEIR mines a shared collection's train split with the
// window of the provided data (top 100) and checks every negative is a
// non-relevant document of the provided BM25 top 100.
func TestMineSharedBEIR(t *testing.T) {
	dir := filepath.Join(sharedtest.Data(t), "scifact")
	b, err := bm25.OpenBEIR(dir)
	require.NoError(t, err)
	qrels, qs, err := b.Split("train")
	require.NoError(t, err)
	queries, err := FromBEIR(b.Corpus, qrels, qs)
	require.NoError(t, err)
	n := b.Corpus.Len()
	docIDs, passages, texts := make([]string, n), make([]string, n), make([]string, n)
	for i := range docIDs {
		docIDs[i], passages[i], texts[i] = b.Corpus.IDs[i], b.Corpus.Passage(i), b.Corpus.Titles[i]+" "+b.Corpus.Texts[i]
	}
	pool, err := NewPool(context.Background(), docIDs, passages, texts, nil)
	require.NoError(t, err)
	exs, st, err := Mine(context.Background(), pool, queries, Options{RangeEnd: 100, NegativeNumber: 15, Seed: 1})
	require.NoError(t, err)
	ref, err := bm25.ReadRun(filepath.Join(dir, "bm25", "train.top100.jsonl"))
	require.NoError(t, err)
	require.Len(t, exs, len(ref))
	for i, ex := range exs {
		top := map[string]bool{}
		for _, id := range ref[i].DocIDs {
			top[id] = true
		}
		for _, id := range ids(ex) {
			require.True(t, top[id], "query %s: %s not in the BM25 top 100", ref[i].QID, id)
			require.Zero(t, qrels[ref[i].QID][id], "query %s: relevant %s used as negative", ref[i].QID, id)
		}
	}
	assert.Equal(t, len(ref), st.Queries)
	t.Logf("scifact train: %+v", st)
}
