package eval

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lg(i float64) float64 { return math.Log2(i) }

func TestScoreQueryHandComputed(t *testing.T) {
	binary := map[string]int{"d2": 1, "d4": 1, "d5": 1}
	graded := map[string]int{"a": 3, "c": 1, "d": 2, "e": 2, "f": 0, "g": -1}
	tests := []struct {
		name   string
		ranked []string
		judged map[string]int
		metric string
		want   float64
	}{
		// Binary labels, R = 3, relevant at ranks 2 and 4.
		{"binary rr", []string{"d1", "d2", "d3", "d4"}, binary, "mrr@10", 0.5},
		{"binary rr cut before first relevant", []string{"d1", "d2", "d3", "d4"}, binary, "mrr@1", 0},
		{"binary p@2", []string{"d1", "d2", "d3", "d4"}, binary, "p@2", 0.5},
		{"binary p@k beyond list divides by k", []string{"d1", "d2", "d3", "d4"}, binary, "p@10", 0.2},
		{"binary recall@2", []string{"d1", "d2", "d3", "d4"}, binary, "recall@2", 1.0 / 3},
		{"binary recall@k beyond list", []string{"d1", "d2", "d3", "d4"}, binary, "recall@10", 2.0 / 3},
		{"binary map divides by all relevant", []string{"d1", "d2", "d3", "d4"}, binary, "map@10", (1.0/2 + 2.0/4) / 3},
		{"binary map cut", []string{"d1", "d2", "d3", "d4"}, binary, "map@3", (1.0 / 2) / 3},
		{"binary ndcg ideal over all judged", []string{"d1", "d2", "d3", "d4"}, binary, "ndcg@10",
			(1/lg(3) + 1/lg(5)) / (1 + 1/lg(3) + 1/lg(4))},
		{"binary ndcg@1 zero", []string{"d1", "d2", "d3", "d4"}, binary, "ndcg@1", 0},
		// Graded labels: a=3 at rank 1, c=1 at rank 3, d=2 at rank 4; e=2 not
		// retrieved; f=0 and g=-1 judged but not relevant.
		{"graded ndcg@3", []string{"a", "b", "c", "d"}, graded, "ndcg@3",
			(3 + 1/lg(4)) / (3 + 2/lg(3) + 2/lg(4))},
		{"graded ndcg@10", []string{"a", "b", "c", "d"}, graded, "ndcg@10",
			(3 + 1/lg(4) + 2/lg(5)) / (3 + 2/lg(3) + 2/lg(4) + 1/lg(5))},
		{"graded map counts grades >= 1 as relevant", []string{"a", "b", "c", "d"}, graded, "map@10", (1 + 2.0/3 + 3.0/4) / 4},
		{"graded recall", []string{"a", "b", "c", "d"}, graded, "recall@10", 3.0 / 4},
		{"graded rr", []string{"b", "a"}, graded, "mrr@10", 0.5},
		{"negative label is no gain", []string{"g", "f", "a"}, graded, "ndcg@3", (3 / lg(4)) / (3 + 2/lg(3) + 2/lg(4))},
		// Nothing relevant retrieved.
		{"none retrieved ndcg", []string{"x", "y"}, map[string]int{"z": 1}, "ndcg@10", 0},
		{"none retrieved rr", []string{"x", "y"}, map[string]int{"z": 1}, "mrr@10", 0},
		{"none retrieved map", []string{"x", "y"}, map[string]int{"z": 1}, "map@100", 0},
		{"none retrieved recall", []string{"x", "y"}, map[string]int{"z": 1}, "recall@100", 0},
		// No relevant document judged at all (R = 0): trec_eval gives 0.
		{"R=0 ndcg", []string{"x"}, map[string]int{"x": 0}, "ndcg@10", 0},
		{"R=0 map", []string{"x"}, map[string]int{"x": 0}, "map@10", 0},
		{"R=0 recall", []string{"x"}, map[string]int{"x": 0}, "recall@10", 0},
		// Empty ranking.
		{"empty ranking", nil, binary, "ndcg@10", 0},
		{"empty ranking p", nil, binary, "p@5", 0},
		// Perfect ranking.
		{"perfect ndcg", []string{"a", "d", "e", "c"}, graded, "ndcg@10", 1},
		{"perfect map", []string{"d2", "d4", "d5"}, binary, "map@3", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMetric(tc.metric)
			require.NoError(t, err)
			got := ScoreQuery(tc.ranked, tc.judged, []Metric{m})
			assert.InDelta(t, tc.want, got[0], 1e-12)
		})
	}
}

func TestTieBreaking(t *testing.T) {
	qrels := Qrels{"q": {"a": 1}}
	run := Run{"q": {{"a", 1}, {"b", 1}, {"c", 0.5}}}
	tests := []struct {
		ties TieBreak
		want float64
	}{
		{TiesInputOrder, 1}, // a is given before b
		{TiesTrecEval, 0.5}, // trec_eval: equal scores by docno descending, b before a
	}
	for _, tc := range tests {
		t.Run(tc.ties.String(), func(t *testing.T) {
			res, err := Evaluate(run, qrels, []Metric{{MRR, 10}}, tc.ties)
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Mean["mrr@10"])
		})
	}
	// Rank does not reorder the caller's slice and is deterministic.
	docs := []ScoredDoc{{"b", 2}, {"10", 2}, {"9", 2}, {"a", 3}}
	assert.Equal(t, []ScoredDoc{{"a", 3}, {"b", 2}, {"9", 2}, {"10", 2}}, Rank(docs, TiesTrecEval))
	assert.Equal(t, []ScoredDoc{{"a", 3}, {"b", 2}, {"10", 2}, {"9", 2}}, Rank(docs, TiesInputOrder))
	assert.Equal(t, "b", docs[0].DocID)
}

func TestEvaluateMeanAndMissing(t *testing.T) {
	qrels := Qrels{
		"q1": {"a": 1},
		"q2": {"b": 2},
		"q3": {"c": 1}, // judged but absent from the run: counts as 0
	}
	run := Run{
		"q1": {{"a", 3}, {"x", 2}},
		"q2": {{"x", 3}, {"b", 2}},
		"q9": {{"a", 1}}, // not judged: ignored
	}
	res, err := Evaluate(run, qrels, []Metric{{MRR, 10}, {Recall, 1}}, TiesInputOrder)
	require.NoError(t, err)
	assert.Equal(t, []string{"q1", "q2", "q3"}, res.QueryIDs)
	assert.Equal(t, []string{"q3"}, res.Missing)
	assert.InDelta(t, (1+0.5+0)/3.0, res.Mean["mrr@10"], 1e-12)
	assert.InDelta(t, 1/3.0, res.Mean["recall@1"], 1e-12)
	assert.Equal(t, 0.5, res.PerQuery["q2"]["mrr@10"])
	assert.NotContains(t, res.PerQuery, "q9")

	_, err = Evaluate(Run{"q1": {{"a", 1}, {"a", 2}}}, qrels, DefaultMetrics, TiesInputOrder)
	assert.ErrorContains(t, err, `document "a" occurs twice`)
}

func TestParseMetrics(t *testing.T) {
	tests := []struct {
		names   []string
		ks      []int
		want    []string
		wantErr string
	}{
		{[]string{"ndcg@10", "MRR@10", "map_cut@100", "recall@100", "P@5"}, nil, []string{"ndcg@10", "mrr@10", "map@100", "recall@100", "p@5"}, ""},
		{[]string{"ndcg", "rr"}, []int{5, 10}, []string{"ndcg@5", "ndcg@10", "mrr@5", "mrr@10"}, ""},
		{[]string{"ndcg@10", "ndcg"}, []int{10, 20}, []string{"ndcg@10", "ndcg@20"}, ""},
		{[]string{"recip_rank@3", "ap@7", "precision@2"}, nil, []string{"mrr@3", "map@7", "p@2"}, ""},
		{[]string{"ndcg"}, nil, nil, "no cutoff"},
		{[]string{"bpref@10"}, nil, nil, "unknown metric"},
		{[]string{"ndcg@0"}, nil, nil, "not a positive integer"},
		{[]string{"ndcg@x"}, nil, nil, "not a positive integer"},
		{[]string{""}, nil, nil, "no metrics"},
	}
	for _, tc := range tests {
		got, err := ParseMetrics(tc.names, tc.ks)
		if tc.wantErr != "" {
			assert.ErrorContains(t, err, tc.wantErr, "%v", tc.names)
			continue
		}
		require.NoError(t, err)
		var s []string
		for _, m := range got {
			s = append(s, m.String())
		}
		assert.Equal(t, tc.want, s)
	}
}
