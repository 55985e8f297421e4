package eval

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reproTolerance is the acceptance bound; the reference numbers are
// rounded to 4 decimals, so exact agreement is within 5e-5.
const reproTolerance = 1e-4

// referenceMetrics is bm25/<split>.metrics.json.
type referenceMetrics struct {
	Collection string                        `json:"collection"`
	Split      string                        `json:"split"`
	NumQueries int                           `json:"num_queries"`
	Metrics    map[string]float64            `json:"metrics"`
	PerQuery   map[string]map[string]float64 `json:"per_query"`
}

// reproduceBM25 evaluates bm25/<split>.top100.jsonl (scores = bm25_scores)
// against qrels/<split>.tsv of the BEIR directory dir and returns the
// largest absolute difference from bm25/<split>.metrics.json over every
// aggregate and per-query metric.
func reproduceBM25(t *testing.T, dir, split string) float64 {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "bm25", split+".metrics.json"))
	require.NoError(t, err)
	var ref referenceMetrics
	require.NoError(t, json.Unmarshal(raw, &ref))

	col, err := LoadBEIR(dir, split)
	require.NoError(t, err)
	known := func(id string) bool { _, ok := col.Corpus[id]; return ok }
	cands, err := ReadCandidates(filepath.Join(dir, "bm25", split+".top100.jsonl"), known)
	require.NoError(t, err)
	run, err := RunFromCandidates(cands)
	require.NoError(t, err)

	var metrics []Metric
	for name := range ref.PerQuery[firstKey(ref.PerQuery)] {
		m, err := ParseMetric(name)
		require.NoError(t, err, "metric name in the reference file")
		metrics = append(metrics, m)
	}
	sort.Slice(metrics, func(i, j int) bool { return metrics[i].String() < metrics[j].String() })
	res, err := Evaluate(run, col.Qrels, metrics, TiesInputOrder)
	require.NoError(t, err)
	require.Empty(t, res.Missing, "judged queries without candidates")
	require.Equal(t, ref.NumQueries, len(res.QueryIDs), "number of evaluated queries")
	require.Equal(t, len(ref.PerQuery), len(res.PerQuery))

	maxDiff := 0.0
	check := func(what string, want, got float64) {
		d := math.Abs(want - got)
		maxDiff = math.Max(maxDiff, d)
		assert.LessOrEqual(t, d, reproTolerance, "%s: want %.4f, got %.6f", what, want, got)
	}
	for name, want := range ref.Metrics {
		if strings.HasPrefix(name, "queries_with_relevant_in_top") {
			k := strings.TrimPrefix(name, "queries_with_relevant_in_top")
			n := 0
			for _, q := range res.QueryIDs {
				if v, ok := res.PerQuery[q]["recall@"+k]; assert.True(t, ok, name) && v > 0 {
					n++
				}
			}
			check(name, want, float64(n))
			continue
		}
		got, ok := res.Mean[name]
		require.True(t, ok, "metric %s not computed", name)
		check(name, want, got)
	}
	for q, want := range ref.PerQuery {
		got, ok := res.PerQuery[q]
		require.True(t, ok, "query %s not evaluated", q)
		for name, w := range want {
			check("query "+q+" "+name, w, got[name])
		}
	}
	return maxDiff
}

func firstKey[V any](m map[string]V) string {
	for k := range m {
		return k
	}
	return ""
}

// splitsWithReference lists the splits of a collection that have both
// BM25 candidates and reference metrics, so that a held-back split laid
// out the same way (bm25/test.metrics.json) is picked up automatically.
func splitsWithReference(t *testing.T, dir string) []string {
	matches, err := filepath.Glob(filepath.Join(dir, "bm25", "*.metrics.json"))
	require.NoError(t, err)
	var splits []string
	for _, m := range matches {
		split := strings.TrimSuffix(filepath.Base(m), ".metrics.json")
		if _, err := os.Stat(filepath.Join(dir, "bm25", split+".top100.jsonl")); err != nil {
			continue
		}
		if _, err := os.Stat(QrelsPath(dir, split)); err != nil {
			continue
		}
		splits = append(splits, split)
	}
	sort.Strings(splits)
	return splits
}

// TestReproduceBM25Metrics checks every collection of the shared data
// folder, and every split that has bm25/<split>.metrics.json. To check a
// collection elsewhere (for example a held-back split), set
// RERANK_EVAL_COLLECTION=DIR and optionally RERANK_EVAL_SPLIT=NAME.
func TestReproduceBM25Metrics(t *testing.T) {
	if dir := os.Getenv("RERANK_EVAL_COLLECTION"); dir != "" {
		splits := splitsWithReference(t, dir)
		if s := os.Getenv("RERANK_EVAL_SPLIT"); s != "" {
			splits = []string{s}
		}
		require.NotEmpty(t, splits, "no split with bm25 metrics in %s", dir)
		for _, split := range splits {
			t.Run(filepath.Base(dir)+"/"+split, func(t *testing.T) {
				t.Logf("max abs diff %.2g", reproduceBM25(t, dir, split))
			})
		}
		return
	}
	data := sharedtest.Data(t)
	entries, err := os.ReadDir(data)
	require.NoError(t, err)
	var collections []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(data, e.Name(), "corpus.jsonl")); err == nil {
				collections = append(collections, e.Name())
			}
		}
	}
	require.NotEmpty(t, collections, "no collections under %s", data)
	for _, c := range collections {
		dir := filepath.Join(data, c)
		splits := splitsWithReference(t, dir)
		require.NotEmpty(t, splits, "collection %s has no split with bm25 metrics", c)
		for _, split := range splits {
			t.Run(c+"/"+split, func(t *testing.T) {
				d := reproduceBM25(t, dir, split)
				t.Logf("%s/%s: max abs diff %.2g", c, split, d)
			})
		}
	}
}
