package eval

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleResults builds two models over n queries, the second better on
// most of them.
func sampleResults(t *testing.T, n int) *Results {
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
	cs, err := CompareResults("bm25", rb, "fine-tuned", rm, CompareOptions{Permutations: 1000, Bootstrap: 1000})
	require.NoError(t, err)
	return &Results{
		Metrics:     []string{"ndcg@10", "mrr@10", "map@100", "recall@100"},
		Baseline:    "bm25",
		Models:      []ModelResult{NewModelResult("bm25", rb), NewModelResult("fine-tuned", rm)},
		Comparisons: cs,
	}
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
