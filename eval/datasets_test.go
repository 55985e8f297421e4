package eval

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/internal/testdir"
)

// collections writes BEIR directories: a/x and a/y with candidates, a/z
// without, b/x with, and a stray file.
func collections(t testing.TB) string {
	t.Helper()
	return testdir.Write(t, map[string]string{
		"a/x/corpus.jsonl":          "{}\n",
		"a/x/bm25/dev.top100.jsonl": "{}\n",
		"a/y/corpus.jsonl":          "{}\n",
		"a/y/bm25/dev.top100.jsonl": "{}\n",
		"a/notes/README.md":         "not a collection\n",
		"b/x/corpus.jsonl":          "{}\n",
		"b/x/bm25/dev.top100.jsonl": "{}\n",
		"c/z/corpus.jsonl":          "{}\n",
		"empty/README.md":           "nothing\n",
		"file.txt":                  "x\n",
	})
}

func TestFindDatasets(t *testing.T) {
	root := collections(t)
	p := func(s string) string { return filepath.Join(root, filepath.FromSlash(s)) }
	cand := func(s string) string { return DefaultCandidates(p(s), "dev") }
	tests := []struct {
		name    string
		paths   []string
		cands   []string
		want    []DatasetSpec
		wantErr string
	}{
		{"one collection", []string{p("a/x")}, nil,
			[]DatasetSpec{{Name: "x", Dir: p("a/x"), Candidates: cand("a/x")}}, ""},
		{"repeated flag", []string{p("a/y"), p("a/x")}, nil,
			[]DatasetSpec{{Name: "y", Dir: p("a/y"), Candidates: cand("a/y")}, {Name: "x", Dir: p("a/x"), Candidates: cand("a/x")}}, ""},
		{"directory of collections, in name order", []string{p("a")}, nil,
			[]DatasetSpec{{Name: "x", Dir: p("a/x"), Candidates: cand("a/x")}, {Name: "y", Dir: p("a/y"), Candidates: cand("a/y")}}, ""},
		{"same base name twice", []string{p("a/x"), p("b/x")}, nil,
			[]DatasetSpec{{Name: "x", Dir: p("a/x"), Candidates: cand("a/x")}, {Name: "x#2", Dir: p("b/x"), Candidates: cand("b/x")}}, ""},
		{"candidates given, in order", []string{p("a"), p("c/z")}, []string{"1.jsonl", "2.jsonl", "3.jsonl"},
			[]DatasetSpec{{Name: "x", Dir: p("a/x"), Candidates: "1.jsonl"}, {Name: "y", Dir: p("a/y"), Candidates: "2.jsonl"}, {Name: "z", Dir: p("c/z"), Candidates: "3.jsonl"}}, ""},
		{"missing directory", []string{p("nope")}, nil, nil, "BEIR directory " + p("nope")},
		{"a file", []string{p("file.txt")}, nil, nil, p("file.txt") + ": not a directory"},
		{"no collection inside", []string{p("empty")}, nil, nil, p("empty") + ": no corpus.jsonl"},
		{"no default candidates", []string{p("c/z")}, nil, nil, "collection " + p("c/z") + " has no candidates"},
		{"no default candidates says how to make them", []string{p("c/z")}, nil, nil, "rerank retrieve --beir " + p("c/z") + " --split dev --output " + filepath.Join(p("c/z"), "bm25", "dev.top100.jsonl")},
		{"candidates count", []string{p("a")}, []string{"1.jsonl"}, nil, "1 candidates files for 2 collections (" + p("a/x") + ", " + p("a/y") + ")"},
		{"empty path", []string{""}, nil, nil, "empty BEIR directory path"},
		{"nothing", nil, nil, nil, "no BEIR directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FindDatasets(tc.paths, "dev", tc.cands)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func FuzzFindDatasets(f *testing.F) {
	for _, s := range []string{"a", "a/x", "a/../b", "", ".", "file.txt", "nope/x", "a/x/corpus.jsonl"} {
		f.Add(s)
	}
	root := collections(f)
	f.Fuzz(func(t *testing.T, rel string) {
		if strings.ContainsRune(rel, 0) {
			return
		}
		path := filepath.Join(root, rel)
		specs, err := FindDatasets([]string{path}, "dev", nil)
		if err != nil {
			assert.Contains(t, err.Error(), path, "the error names the path")
			return
		}
		require.NotEmpty(t, specs)
		for _, s := range specs {
			assert.NotEmpty(t, s.Name)
			_, err := os.Stat(s.Candidates)
			assert.NoError(t, err)
		}
	})
}

func TestPoolResults(t *testing.T) {
	ms := []Metric{{NDCG, 10}}
	a := &Result{Metrics: ms, QueryIDs: []string{"1", "2"}, Mean: map[string]float64{"ndcg@10": 0.5},
		PerQuery: map[string]map[string]float64{"1": {"ndcg@10": 1}, "2": {"ndcg@10": 0}}, Missing: []string{"2"}}
	b := &Result{Metrics: ms, QueryIDs: []string{"1"}, Mean: map[string]float64{"ndcg@10": 0.25},
		PerQuery: map[string]map[string]float64{"1": {"ndcg@10": 0.25}}}
	p, err := PoolResults([]string{"x", "y"}, []*Result{a, b})
	require.NoError(t, err)
	assert.Equal(t, []string{"x/1", "x/2", "y/1"}, p.QueryIDs, "ids prefixed, distinct")
	assert.InDelta(t, 1.25/3, p.Mean["ndcg@10"], 1e-12, "every query weighs the same")
	assert.Equal(t, []string{"x/2"}, p.Missing)

	_, err = PoolResults([]string{"x", "x"}, []*Result{a, a})
	assert.ErrorContains(t, err, `query id "x/1" occurs twice`)
	_, err = PoolResults([]string{"x", "y"}, []*Result{a, {Metrics: []Metric{{MRR, 10}}}})
	assert.ErrorContains(t, err, `dataset "y" has metric mrr@10 where "x" has ndcg@10`)
	_, err = PoolResults([]string{"x"}, []*Result{a, b})
	assert.Error(t, err)
}

func TestSummarize(t *testing.T) {
	lat := func(q, p int, s float64) *Latency { return &Latency{Depth: 100, Queries: q, Pairs: p, Seconds: s} }
	tables := []NamedTable{
		{"x", &Table{Baseline: "bm25", Models: []ModelResult{
			{Label: "bm25", Metrics: map[string]float64{"ndcg@10": 0.5}, PerQuery: map[string]map[string]float64{"1": nil, "2": nil}},
			{Label: "ce", Metrics: map[string]float64{"ndcg@10": 0.7}, PerQuery: map[string]map[string]float64{"1": nil, "2": nil}, Latency: lat(2, 200, 1)},
		}, Comparisons: []Comparison{{Metric: "ndcg@10", Model: "ce", PValue: 0.004}, {Metric: "mrr@10", Model: "ce", PValue: 0.5}}}},
		{"y", &Table{Baseline: "bm25", Models: []ModelResult{
			{Label: "bm25", Metrics: map[string]float64{"ndcg@10": 0.3}},
			{Label: "ce", Metrics: map[string]float64{"ndcg@10": 0.2}, Latency: lat(6, 600, 2)},
			{Label: "extra", Metrics: map[string]float64{"ndcg@10": 0.9}},
		}, Comparisons: []Comparison{{Metric: "ndcg@10", Model: "ce", PValue: 0.03}}}},
	}
	pooled := &Table{Baseline: "bm25", Models: []ModelResult{
		{Label: "bm25", Metrics: map[string]float64{"ndcg@10": 0.4}},
		{Label: "ce", Metrics: map[string]float64{"ndcg@10": 0.45}},
	}, Comparisons: []Comparison{{Metric: "ndcg@10", Model: "ce", PValue: 0.2}}}
	s := Summarize("ndcg@10", tables, pooled)
	assert.Equal(t, "bm25", s.Baseline)
	assert.Equal(t, []string{"bm25", "ce", "extra"}, s.Models)
	require.Len(t, s.Rows, 2)
	assert.Equal(t, "x", s.Rows[0].Dataset)
	assert.Equal(t, 2, s.Rows[0].Queries)
	assert.Equal(t, []string{"", "**", ""}, s.Rows[0].Marks)
	assert.Equal(t, []string{"", "*", ""}, s.Rows[1].Marks)
	assert.Nil(t, s.Rows[0].Values[2], "extra is not on x")
	assert.InDelta(t, 0.4, *s.Macro[0], 1e-12)
	assert.InDelta(t, 0.45, *s.Macro[1], 1e-12)
	assert.Nil(t, s.Macro[2], "no macro average over a missing dataset")
	require.NotNil(t, s.Pooled)
	assert.InDelta(t, 0.45, *s.Pooled.Values[1], 1e-12)
	assert.Nil(t, s.Latency[0], "BM25 has no rerank cost")
	assert.Equal(t, Latency{Depth: 100, Queries: 8, Pairs: 800, Seconds: 3}, *s.Latency[1])

	var b bytes.Buffer
	require.NoError(t, WriteSummary(&b, s))
	out := b.String()
	assert.Regexp(t, `macro average\s+0\.4000\s+0\.4500\s+-`, out)
	assert.Regexp(t, `x\s+0\.5000\s+0\.7000 \*\*`, out)
	assert.Regexp(t, `ms/query\s+-\s+375\.0`, out)
	assert.Regexp(t, `pairs/s\s+-\s+267`, out)
	assert.False(t, math.IsNaN(*s.Macro[0]))
}
