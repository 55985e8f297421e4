package eval

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPickExamples(t *testing.T) {
	tests := []struct {
		name          string
		base, model   map[string]float64
		n             int
		gains, losses []string
	}{
		{
			name:   "largest first, each way",
			base:   map[string]float64{"a": 0.1, "b": 0.5, "c": 0.9, "d": 0.3, "e": 0.6},
			model:  map[string]float64{"a": 0.9, "b": 0.6, "c": 0.2, "d": 0.2, "e": 0.6},
			n:      5,
			gains:  []string{"a", "b"},
			losses: []string{"c", "d"},
		},
		{
			name:   "n cuts the lists",
			base:   map[string]float64{"a": 0, "b": 0, "c": 0, "d": 1, "e": 1, "f": 1},
			model:  map[string]float64{"a": 0.3, "b": 0.2, "c": 0.1, "d": 0.7, "e": 0.8, "f": 0.9},
			n:      2,
			gains:  []string{"a", "b"},
			losses: []string{"d", "e"},
		},
		{
			name:   "equal differences in query id order",
			base:   map[string]float64{"q9": 0, "q1": 0, "q5": 0, "q2": 1, "q0": 1},
			model:  map[string]float64{"q9": 0.5, "q1": 0.5, "q5": 0.5, "q2": 0.5, "q0": 0.5},
			n:      2,
			gains:  []string{"q1", "q5"},
			losses: []string{"q0", "q2"},
		},
		{
			name:   "ties are neither",
			base:   map[string]float64{"a": 0.5, "b": 0.25},
			model:  map[string]float64{"a": 0.5, "b": 0.25 + 1e-12},
			n:      5,
			gains:  []string{},
			losses: []string{},
		},
		{
			name:   "fewer queries than n; queries missing from the model are skipped",
			base:   map[string]float64{"a": 0.2, "b": 0.4},
			model:  map[string]float64{"a": 0.4},
			n:      10,
			gains:  []string{"a"},
			losses: []string{},
		},
		{
			name:  "n = 0",
			base:  map[string]float64{"a": 0},
			model: map[string]float64{"a": 1},
			n:     0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 { // map order must not matter
				g, l := PickExamples(tc.base, tc.model, tc.n)
				assert.Equal(t, tc.gains, g, "gains")
				assert.Equal(t, tc.losses, l, "losses")
			}
		})
	}
}

func TestNewExamples(t *testing.T) {
	qrels := Qrels{"q1": {"d1": 2, "d3": 1, "d9": 1}, "q2": {"d2": 1}, "q3": {"d1": 1}}
	base := Run{
		"q1": {{"d2", 5}, {"d3", 4}, {"d1", 3}, {"d4", 2}},
		"q2": {{"d2", 5}, {"d1", 4}},
		"q3": {{"d1", 1}},
	}
	model := Run{
		"q1": {{"d2", 0.1}, {"d3", 0.2}, {"d1", 0.9}, {"d4", 0.3}},
		"q2": {{"d2", 0.1}, {"d1", 0.9}},
		"q3": {{"d1", 1}},
	}
	ms := []Metric{{NDCG, 10}}
	rb, err := Evaluate(base, qrels, ms, TiesInputOrder)
	require.NoError(t, err)
	rm, err := Evaluate(model, qrels, ms, TiesInputOrder)
	require.NoError(t, err)
	long := strings.Repeat("word ", 100)
	ex := NewExamples(ExampleInput{
		Metric: "ndcg@10", BaselineLabel: "bm25", ModelLabel: "ce",
		Baseline: base, Model: model,
		BaselineValues: rb.Values("ndcg@10"), ModelValues: rm.Values("ndcg@10"),
		Qrels:   qrels,
		Queries: Queries{"q1": "first query", "q2": "second"},
		Corpus:  Corpus{"d1": {ID: "d1", Title: "One", Text: long}, "d2": {ID: "d2", Text: "two"}},
	}, ExampleOptions{N: 3, Top: 3})

	assert.Equal(t, "ndcg@10", ex.Metric)
	require.Len(t, ex.Gains, 1)
	require.Len(t, ex.Losses, 1)
	g := ex.Gains[0]
	assert.Equal(t, "q1", g.QID)
	assert.Equal(t, "first query", g.Query)
	assert.Greater(t, g.ModelValue, g.BaselineValue)
	require.Len(t, g.Baseline, 3, "top 3 only")
	require.Len(t, g.Model, 3)
	assert.Equal(t, ExampleDoc{DocID: "d1", Label: 2, Rank: 1, OtherRank: 3, Title: "One", Snippet: Snippet(long, 200)}, g.Model[0])
	assert.Equal(t, ExampleDoc{DocID: "d2", Label: 0, Rank: 1, OtherRank: 4, Snippet: "two"}, g.Baseline[0])
	assert.Equal(t, "d4", g.Model[1].DocID)
	assert.Equal(t, 4, g.Model[1].OtherRank)
	assert.Equal(t, "q2", ex.Losses[0].QID)

	// Every judged relevant document both rankings hold, in query and id
	// order; d9 is in neither.
	assert.Equal(t, []RankShift{
		{QID: "q1", DocID: "d1", Before: 3, After: 1},
		{QID: "q1", DocID: "d3", Before: 2, After: 3},
		{QID: "q2", DocID: "d2", Before: 1, After: 2},
		{QID: "q3", DocID: "d1", Before: 1, After: 1},
	}, ex.Shifts)
}

func TestSnippet(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short text", 200, "short text"},
		{"  spaced \n\t out  ", 200, "spaced out"},
		{"alpha beta gamma delta", 12, "alpha beta…"},
		{"abcdefghijklmnop", 5, "abcde…"},
		{"ééééééé", 3, "ééé…"},
	}
	for _, tc := range tests {
		got := Snippet(tc.in, tc.n)
		assert.Equal(t, tc.want, got, "%q", tc.in)
		assert.True(t, utf8.ValidString(got))
	}
}
