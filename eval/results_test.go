package eval

import (
	"bytes"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleResults builds two models over n queries, the second better on
// most of them.
func sampleResults(t *testing.T, n int) *Table {
	t.Helper()
	qrels := Qrels{}
	base, model := Run{}, Run{}
	for i := 0; i < n; i++ {
		q := "q" + strconv.Itoa(i)
		qrels[q] = map[string]int{"r" + q: 1 + i%3, "s" + q: 1}
		var b, m []ScoredDoc
		for j := 0; j < 30; j++ {
			b = append(b, ScoredDoc{"n" + strconv.Itoa(j), float64(100 - j)})
			m = append(m, ScoredDoc{"n" + strconv.Itoa(j), float64(100 - j)})
		}
		b = append(b, ScoredDoc{"r" + q, float64(100 - (i*7)%25)}, ScoredDoc{"s" + q, float64(80 - i%20)})
		m = append(m, ScoredDoc{"r" + q, float64(100 - (i*3)%9)}, ScoredDoc{"s" + q, float64(70 - i%20)})
		base[q], model[q] = b, m
	}
	ms, err := ParseMetrics([]string{"ndcg@10", "mrr@10", "map@100", "recall@100"}, nil)
	require.NoError(t, err)
	rb, err := Evaluate(base, qrels, ms, TiesInputOrder)
	require.NoError(t, err)
	rm, err := Evaluate(model, qrels, ms, TiesInputOrder)
	require.NoError(t, err)
	table, err := NewTable(ms, []Evaluated{{Label: "bm25", Result: rb}, {Label: "fine-tuned", Result: rm}},
		"bm25", CompareOptions{Permutations: 1000, Bootstrap: 1000})
	require.NoError(t, err)
	return table
}

func TestWriteTable(t *testing.T) {
	res := sampleResults(t, 12)
	var b bytes.Buffer
	require.NoError(t, WriteTable(&b, res))
	out := b.String()
	assert.Regexp(t, `^model +ndcg@10 +mrr@10 +map@100 +recall@100\n`, out)
	assert.Contains(t, out, "vs bm25")
	assert.Contains(t, out, "fine-tuned  ndcg@10")
}

func TestNewTable(t *testing.T) {
	qrels := Qrels{"q1": {"a": 1}, "q2": {"b": 1}}
	ms := []Metric{{NDCG, 10}, {MRR, 10}}
	eval := func(run Run) *Result {
		r, err := Evaluate(run, qrels, ms, TiesInputOrder)
		require.NoError(t, err)
		return r
	}
	good := eval(Run{"q1": {{"a", 2}, {"b", 1}}, "q2": {{"b", 2}, {"a", 1}}})
	bad := eval(Run{"q1": {{"b", 2}, {"a", 1}}, "q2": {{"a", 2}, {"b", 1}}})
	for _, tc := range []struct {
		name        string
		runs        []Evaluated
		baseline    string
		comparisons int
		err         string
	}{
		{"no baseline, no comparisons", []Evaluated{{"bad", bad}, {"good", good}}, "", 0, ""},
		{"each other run against the baseline", []Evaluated{{"bad", bad}, {"good", good}, {"again", good}}, "bad", 4, ""},
		{"unknown baseline", []Evaluated{{"bad", bad}}, "good", 0, `baseline "good" is not one of the runs (bad)`},
		{"labels repeat", []Evaluated{{"x", bad}, {"x", good}}, "", 0, `two runs are labelled "x"`},
		{"no result", []Evaluated{{"x", nil}}, "", 0, `run "x" has no result`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := NewTable(ms, tc.runs, tc.baseline, CompareOptions{Permutations: 100, Bootstrap: 100})
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{"ndcg@10", "mrr@10"}, tab.Metrics)
			require.Len(t, tab.Models, len(tc.runs))
			for i, r := range tc.runs {
				assert.Equal(t, r.Label, tab.Models[i].Label)
				assert.Equal(t, r.Result.MeanOf(Metric{MRR, 10}), tab.Models[i].Metrics["mrr@10"])
			}
			assert.Len(t, tab.Comparisons, tc.comparisons)
			assert.NotNil(t, tab.Comparisons, "JSON writes [] rather than null")
			for _, c := range tab.Comparisons {
				assert.Equal(t, "bad", c.Baseline)
				want := map[string]float64{"mrr@10": 0.5, "ndcg@10": 1 - 1/math.Log2(3)}[c.Metric]
				assert.InDelta(t, want, c.MeanDiff, 1e-12, "%s %s", c.Model, c.Metric)
			}
			// One family: the table's comparisons adjusted together.
			var raw []float64
			for _, c := range tab.Comparisons {
				raw = append(raw, c.PValue)
			}
			for i, a := range HolmAdjust(raw) {
				assert.Equal(t, CorrectionHolm, tab.Comparisons[i].Correction)
				assert.Equal(t, a, tab.Comparisons[i].PAdjusted)
			}
			if tc.comparisons > 0 {
				assert.Equal(t, CorrectionHolm, tab.Correction)
				assert.Equal(t, TestRandomization, tab.Test)
			}
		})
	}
}

func TestWriteTableAdjusted(t *testing.T) {
	res := sampleResults(t, 12)
	var b bytes.Buffer
	require.NoError(t, WriteTable(&b, res))
	assert.Contains(t, b.String(), "p holm")
	assert.Contains(t, b.String(), "Holm–Bonferroni over the table's 4 comparisons")
	res.Correction = CorrectionNone
	b.Reset()
	require.NoError(t, WriteTable(&b, res))
	assert.NotContains(t, b.String(), "p holm")
	assert.Contains(t, b.String(), "not corrected for multiple comparisons")
}

func TestMeanOf(t *testing.T) {
	res, err := Evaluate(Run{"q": {{"a", 1}, {"b", 2}}}, Qrels{"q": {"a": 1}}, []Metric{{MRR, 10}, {Recall, 1}}, TiesInputOrder)
	require.NoError(t, err)
	for _, tc := range []struct {
		metric Metric
		want   float64
	}{
		{Metric{MRR, 10}, 0.5},
		{Metric{RR, 10}, 0.5}, // the former name
		{Metric{Recall, 1}, 0},
		{Metric{NDCG, 10}, math.NaN()}, // not evaluated
	} {
		got := res.MeanOf(tc.metric)
		if math.IsNaN(tc.want) {
			assert.True(t, math.IsNaN(got), "%s: %v", tc.metric, got)
		} else {
			assert.Equal(t, tc.want, got, "%s", tc.metric)
		}
	}
}
