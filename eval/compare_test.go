package eval

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func perQuery(vals []float64) map[string]float64 {
	m := make(map[string]float64, len(vals))
	for i, v := range vals {
		m["q"+strconv.Itoa(i)] = v
	}
	return m
}

func randomValues(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float64, n)
	for i := range v {
		v[i] = r.Float64()
	}
	return v
}

func TestCompareKnownAnswers(t *testing.T) {
	base30 := randomValues(30, 1)
	better30 := make([]float64, 30)
	for i, v := range base30 {
		better30[i] = v + 0.01 + 0.05*float64(i%3) // wins every query
	}
	mixed := randomValues(30, 2)
	tests := []struct {
		name      string
		base, mod []float64
		check     func(t *testing.T, c Comparison)
	}{
		{"identical runs n=30 (sampled): p=1", base30, base30, func(t *testing.T, c Comparison) {
			assert.Equal(t, 1.0, c.PValue)
			assert.False(t, c.PExact)
			assert.Equal(t, 0.0, c.MeanDiff)
			assert.Equal(t, [3]int{0, 30, 0}, [3]int{c.Wins, c.Ties, c.Losses})
			assert.Equal(t, 0.0, c.CILow)
			assert.Equal(t, 0.0, c.CIHigh)
		}},
		{"identical runs n=6 (exact): p=1", base30[:6], base30[:6], func(t *testing.T, c Comparison) {
			assert.Equal(t, 1.0, c.PValue)
			assert.True(t, c.PExact)
		}},
		{"wins every query n=30: p<0.01", base30, better30, func(t *testing.T, c Comparison) {
			assert.Less(t, c.PValue, 0.01)
			assert.InDelta(t, 1.0/10001, c.PValue, 1e-12, "no sign flip reaches the observed mean")
			assert.Equal(t, [3]int{30, 0, 0}, [3]int{c.Wins, c.Ties, c.Losses})
			assert.Greater(t, c.CILow, 0.0)
			assert.GreaterOrEqual(t, c.CIHigh, c.MeanDiff)
			assert.LessOrEqual(t, c.CILow, c.MeanDiff)
			assert.InDelta(t, mean(better30)-mean(base30), c.MeanDiff, 1e-12)
		}},
		{"loses every query n=30: p<0.01, negative interval", better30, base30, func(t *testing.T, c Comparison) {
			assert.Less(t, c.PValue, 0.01)
			assert.Less(t, c.CIHigh, 0.0)
			assert.Equal(t, 30, c.Losses)
		}},
		{"unrelated runs: not significant", base30, mixed, func(t *testing.T, c Comparison) {
			assert.Greater(t, c.PValue, 0.05)
			assert.Less(t, c.CILow, 0.0)
			assert.Greater(t, c.CIHigh, 0.0)
		}},
		// Exact enumeration: diffs (1, 1, 1) reach |sum| = 3 only with all
		// signs equal, 2 of 8 assignments.
		{"exact n=3 all wins: p=2/8", []float64{0, 0, 0}, []float64{1, 1, 1}, func(t *testing.T, c Comparison) {
			assert.True(t, c.PExact)
			assert.Equal(t, 0.25, c.PValue)
			assert.Equal(t, 1.0, c.CILow, "constant differences: the interval is the point")
			assert.Equal(t, 1.0, c.CIHigh)
		}},
		// diffs (1, -1, 2): |sum| >= 2 for sign vectors with sums 2, -2, 4,
		// -4 and 0 excluded: sums are ±2 (2 ways each... ) -> enumerate:
		// +++ 2, ++- -2, +-+ 4, +-- 0, -++ 0, -+- -4, --+ 2, --- -2 => 6/8.
		{"exact n=3 mixed: p=6/8", []float64{0, 1, 0}, []float64{1, 0, 2}, func(t *testing.T, c Comparison) {
			assert.Equal(t, 0.75, c.PValue)
			assert.Equal(t, [3]int{2, 0, 1}, [3]int{c.Wins, c.Ties, c.Losses})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compare("ndcg@10", "base", "model", perQuery(tc.base), perQuery(tc.mod), CompareOptions{Seed: 42})
			require.NoError(t, err)
			assert.Equal(t, len(tc.base), c.N)
			assert.Equal(t, 0.95, c.Confidence)
			tc.check(t, c)
		})
	}
}

func TestCompareDeterministicAndErrors(t *testing.T) {
	a, b := perQuery(randomValues(40, 3)), perQuery(randomValues(40, 4))
	opts := CompareOptions{Seed: 7, Permutations: 2000, Bootstrap: 2000}
	c1, err := Compare("m", "a", "b", a, b, opts)
	require.NoError(t, err)
	c2, err := Compare("m", "a", "b", a, b, opts)
	require.NoError(t, err)
	assert.Equal(t, c1, c2, "same seed, same answer")

	delete(b, "q3")
	_, err = Compare("m", "a", "b", a, b, opts)
	assert.ErrorContains(t, err, `query "q3" has a value for a but not for b`)
	_, err = Compare("m", "a", "b", map[string]float64{}, b, opts)
	assert.ErrorContains(t, err, "no queries")
}

func TestCompareResults(t *testing.T) {
	qrels := Qrels{"q1": {"a": 1}, "q2": {"b": 1}}
	base, err := Evaluate(Run{"q1": {{"x", 2}, {"a", 1}}, "q2": {{"b", 1}}}, qrels, DefaultMetrics, TiesInputOrder)
	require.NoError(t, err)
	model, err := Evaluate(Run{"q1": {{"a", 2}, {"x", 1}}, "q2": {{"b", 1}}}, qrels, DefaultMetrics, TiesInputOrder)
	require.NoError(t, err)
	cs, err := CompareResults("bm25", base, "ce", model, CompareOptions{})
	require.NoError(t, err)
	require.Len(t, cs, len(DefaultMetrics))
	assert.Equal(t, "mrr@10", cs[1].Metric)
	assert.InDelta(t, 0.25, cs[1].MeanDiff, 1e-12)
	assert.Equal(t, [3]int{1, 1, 0}, [3]int{cs[1].Wins, cs[1].Ties, cs[1].Losses})
	assert.Equal(t, 0.0, cs[3].MeanDiff, "recall@100 unchanged by reranking")
}

// TestHolmAdjust checks Holm's step-down adjustment against cases worked
// by hand (and equal to R's p.adjust(p, "holm")).
func TestHolmAdjust(t *testing.T) {
	tests := []struct {
		name   string
		p, adj []float64
	}{
		// Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 =
		// 0.04, raised to 0.06 by the monotonicity step.
		{"monotonicity step", []float64{0.01, 0.04, 0.03, 0.005}, []float64{0.03, 0.06, 0.06, 0.02}},
		// 0.3·3 = 0.9, 0.6·2 = 1.2 capped at 1, 0.9·1 raised to 1.
		{"capped at 1", []float64{0.3, 0.9, 0.6}, []float64{0.9, 1, 1}},
		{"one comparison unchanged", []float64{0.2}, []float64{0.2}},
		{"equal p-values", []float64{0.02, 0.02}, []float64{0.04, 0.04}},
		{"empty", []float64{}, []float64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := HolmAdjust(tc.p)
			require.Len(t, got, len(tc.adj))
			for i := range got {
				assert.InDelta(t, tc.adj[i], got[i], 1e-12, "p[%d] = %v", i, tc.p[i])
			}
		})
	}
}

// TestPairedTTestKnownValue uses R's sleep data (Cushny & Peebles; R's
// ?t.test example): t.test(extra ~ group, data = sleep, paired = TRUE)
// prints t = -4.0621, df = 9, p-value = 0.002833. The digits below are
// the same p to 17 places, I_{df/(df+t²)}(df/2, 1/2), the regularized
// incomplete beta, computed with mpmath at 30 digits.
func TestPairedTTestKnownValue(t *testing.T) {
	g1 := []float64{0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0}
	g2 := []float64{1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4}
	diffs := make([]float64, len(g1))
	for i := range g1 {
		diffs[i] = g1[i] - g2[i]
	}
	tstat, df, p := PairedTTest(diffs)
	assert.InDelta(t, -4.062127683382037, tstat, 1e-9)
	assert.Equal(t, 9, df)
	assert.InDelta(t, 0.0028328901973842727, p, 1e-12)
	assert.InDelta(t, 0.002833, p, 5e-7, "R's printed value")

	// Through Compare: the same test, the model being group 1.
	c, err := Compare("x", "g2", "g1", perQuery(g2), perQuery(g1), CompareOptions{Test: TestT})
	require.NoError(t, err)
	assert.Equal(t, TestT, c.Test)
	assert.InDelta(t, 0.0028328901973842727, c.PValue, 1e-9)
	assert.Equal(t, 9, c.DF)

	for _, tc := range []struct {
		name  string
		diffs []float64
		p     float64
	}{
		{"all zero", []float64{0, 0, 0}, 1},
		{"one query", []float64{0.3}, 1},
		{"equal non-zero", []float64{0.1, 0.1, 0.1}, 0},
	} {
		_, _, p := PairedTTest(tc.diffs)
		assert.Equal(t, tc.p, p, tc.name)
	}
}

func TestParseTestAndCorrection(t *testing.T) {
	for _, s := range []string{"randomization", "t"} {
		got, err := ParseTest(s)
		require.NoError(t, err)
		assert.Equal(t, Test(s), got)
	}
	for _, s := range []string{"holm", "none"} {
		got, err := ParseCorrection(s)
		require.NoError(t, err)
		assert.Equal(t, Correction(s), got)
	}
	_, err := ParseTest("wilcoxon")
	assert.ErrorContains(t, err, `"wilcoxon": want randomization`)
	_, err = ParseCorrection("bonferroni")
	assert.ErrorContains(t, err, `"bonferroni": want holm`)
}

// TestNewTableAdjustsOneFamily checks that NewTable adjusts every
// comparison of the table together and marks significance by the
// adjusted p.
func TestNewTableAdjustsOneFamily(t *testing.T) {
	comps := []Comparison{{PValue: 0.01}, {PValue: 0.04}, {PValue: 0.03}, {PValue: 0.005}}
	require.NoError(t, AdjustPValues(comps, CorrectionHolm))
	for i, want := range []float64{0.03, 0.06, 0.06, 0.02} {
		assert.InDelta(t, want, comps[i].PAdjusted, 1e-12)
		assert.InDelta(t, want, comps[i].P(), 1e-12)
	}
	assert.Equal(t, "", Significance(comps[1].P()), "raw 0.04 is no longer significant")
	require.NoError(t, AdjustPValues(comps, CorrectionNone))
	assert.Equal(t, 0.04, comps[1].P())
	assert.Error(t, AdjustPValues(comps, "bonferroni"))
}
