package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// CompareOptions configure the significance tests of Compare.
type CompareOptions struct {
	// Permutations is the number of random sign flips of the paired
	// randomization test (default 10,000). When 2^n does not exceed it,
	// all 2^n sign assignments are enumerated and the p-value is exact.
	Permutations int
	// Bootstrap is the number of bootstrap resamples (default 10,000).
	Bootstrap int
	// Confidence is the level of the bootstrap interval (default 0.95).
	Confidence float64
	// Seed makes both tests reproducible (default 0, a fixed seed too).
	Seed uint64
	// Test is the significance test of each comparison: the paired
	// randomization test (default) or the paired t-test.
	Test Test
	// Correction adjusts the p-values of a family of comparisons for
	// multiple testing (NewTable: every comparison of one table). The
	// default is Holm–Bonferroni; CorrectionNone keeps them raw.
	Correction Correction
}

// Test names a paired significance test.
type Test string

const (
	// TestRandomization is the paired randomization (sign-flip) test.
	TestRandomization Test = "randomization"
	// TestT is the two-sided paired Student t-test, df = n-1.
	TestT Test = "t"
)

// ParseTest reads a --test value: randomization or t.
func ParseTest(s string) (Test, error) {
	switch Test(s) {
	case TestRandomization, TestT:
		return Test(s), nil
	}
	return "", fmt.Errorf("significance test %q: want randomization (paired sign-flip test) or t (paired t-test)", s)
}

// Correction names a multiple-comparison correction of p-values.
type Correction string

const (
	// CorrectionHolm is Holm's step-down Bonferroni adjustment.
	CorrectionHolm Correction = "holm"
	// CorrectionNone keeps the raw p-values.
	CorrectionNone Correction = "none"
)

// ParseCorrection reads a --correction value: holm or none.
func ParseCorrection(s string) (Correction, error) {
	switch Correction(s) {
	case CorrectionHolm, CorrectionNone:
		return Correction(s), nil
	}
	return "", fmt.Errorf("multiple-comparison correction %q: want holm (Holm–Bonferroni) or none", s)
}

func (o CompareOptions) withDefaults() CompareOptions {
	if o.Permutations <= 0 {
		o.Permutations = 10000
	}
	if o.Bootstrap <= 0 {
		o.Bootstrap = 10000
	}
	if o.Confidence <= 0 || o.Confidence >= 1 {
		o.Confidence = 0.95
	}
	if o.Test == "" {
		o.Test = TestRandomization
	}
	if o.Correction == "" {
		o.Correction = CorrectionHolm
	}
	return o
}

// Comparison is a paired comparison of a model against a baseline on one
// metric, over the queries both were evaluated on.
type Comparison struct {
	Metric   string `json:"metric"`
	Baseline string `json:"baseline"`
	Model    string `json:"model"`
	// N is the number of paired queries.
	N            int     `json:"n"`
	BaselineMean float64 `json:"baseline_mean"`
	ModelMean    float64 `json:"model_mean"`
	// MeanDiff is mean(model - baseline).
	MeanDiff float64 `json:"mean_diff"`
	// Test is the significance test behind PValue (randomization or t).
	Test Test `json:"test,omitempty"`
	// PValue is the raw two-sided p-value of Test.
	PValue float64 `json:"p_value"`
	// PExact is true when PValue comes from enumerating every sign
	// assignment rather than from random permutations (or from the
	// t-distribution's CDF, for the t-test).
	PExact bool `json:"p_exact"`
	// T and DF are the t statistic and its degrees of freedom (n-1) of the
	// paired t-test; zero for the randomization test.
	T  float64 `json:"t,omitempty"`
	DF int     `json:"df,omitempty"`
	// Correction is the multiple-comparison correction applied to
	// PAdjusted ("" when none was applied, as for a lone Compare).
	Correction Correction `json:"correction,omitempty"`
	// PAdjusted is PValue adjusted over the comparison's family (see
	// AdjustPValues); equal to PValue under CorrectionNone.
	PAdjusted float64 `json:"p_adjusted"`
	// CILow and CIHigh bound the bootstrap percentile interval of MeanDiff.
	CILow      float64 `json:"ci_low"`
	CIHigh     float64 `json:"ci_high"`
	Confidence float64 `json:"confidence"`
	// Wins, Ties and Losses count queries where the model is above, equal
	// to (within 1e-9) or below the baseline.
	Wins   int `json:"wins"`
	Ties   int `json:"ties"`
	Losses int `json:"losses"`
}

// TieEps is the difference below which two per-query values are equal
// (a tie in Comparison's win/tie/loss counts).
const TieEps = 1e-9

// Compare tests model against baseline on paired per-query values (query
// id to value). Every query of baseline must have a model value.
//
// The randomization test flips the sign of each query's difference
// independently with probability 1/2 (the paired permutation test) and
// reports p = (1 + #{|mean of flipped| >= |observed mean|}) / (1 + B) for
// B random flips, or the exact fraction over all 2^n flips when 2^n <= B.
// Identical runs therefore get p = 1. The bootstrap resamples queries with
// replacement and reports the percentile interval of the mean difference.
func Compare(metric, baselineLabel, modelLabel string, baseline, model map[string]float64, opts CompareOptions) (Comparison, error) {
	opts = opts.withDefaults()
	qids := make([]string, 0, len(baseline))
	for q := range baseline {
		qids = append(qids, q)
	}
	sort.Strings(qids)
	c := Comparison{Metric: metric, Baseline: baselineLabel, Model: modelLabel, N: len(qids), Confidence: opts.Confidence}
	if len(qids) == 0 {
		return c, fmt.Errorf("%s: no queries to compare %s with %s", metric, modelLabel, baselineLabel)
	}
	diffs := make([]float64, len(qids))
	for i, q := range qids {
		m, ok := model[q]
		if !ok {
			return c, fmt.Errorf("%s: query %q has a value for %s but not for %s", metric, q, baselineLabel, modelLabel)
		}
		b := baseline[q]
		c.BaselineMean += b
		c.ModelMean += m
		d := m - b
		switch {
		case d > TieEps:
			c.Wins++
		case d < -TieEps:
			c.Losses++
		default:
			c.Ties++
			d = 0
		}
		diffs[i] = d
	}
	n := float64(len(qids))
	c.BaselineMean /= n
	c.ModelMean /= n
	c.MeanDiff = mean(diffs)
	c.Test = opts.Test
	switch opts.Test {
	case TestRandomization:
		c.PValue, c.PExact = RandomizationTest(diffs, opts.Permutations, opts.Seed)
	case TestT:
		c.T, c.DF, c.PValue = PairedTTest(diffs)
		c.PExact = true
	default:
		return c, fmt.Errorf("%s: unknown significance test %q (want randomization or t)", metric, opts.Test)
	}
	c.PAdjusted = c.PValue
	c.CILow, c.CIHigh = BootstrapCI(diffs, opts.Bootstrap, opts.Confidence, opts.Seed)
	return c, nil
}

// P is the p-value significance is judged by: PAdjusted when a correction
// was applied, else PValue.
func (c Comparison) P() float64 {
	if c.Correction == "" || c.Correction == CorrectionNone {
		return c.PValue
	}
	return c.PAdjusted
}

// PairedTTest is the two-sided paired Student t-test of the mean of diffs
// being 0: t = mean / (sd / sqrt(n)) with the sample standard deviation,
// df = n-1, p = 2·P(T_df >= |t|) from gonum's Student-t CDF. With fewer
// than two differences, or all of them equal to 0, there is no evidence:
// t = 0, p = 1. Equal non-zero differences (sd = 0, up to rounding) give
// t = ±Inf, p = 0.
func PairedTTest(diffs []float64) (t float64, df int, p float64) {
	n := len(diffs)
	if n < 2 {
		return 0, max(0, n-1), 1
	}
	df = n - 1
	m := mean(diffs)
	ss := 0.0
	for _, d := range diffs {
		ss += (d - m) * (d - m)
	}
	sd := math.Sqrt(ss / float64(df))
	// Equal differences leave only rounding in sd.
	switch {
	case m == 0 && sd == 0:
		return 0, df, 1
	case sd <= 1e-12*math.Abs(m):
		return math.Copysign(math.Inf(1), m), df, 0
	}
	t = m / (sd / math.Sqrt(float64(n)))
	dist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(df)}
	// Survival function of |t|, doubled; CDF(-|t|) keeps precision in
	// the tail.
	p = 2 * dist.CDF(-math.Abs(t))
	return t, df, min(1, p)
}

// HolmAdjust returns Holm's step-down adjusted p-values, in the order of
// p: sorted ascending p_(1) <= ... <= p_(m), the i-th gets
// max over j <= i of min(1, (m-j+1)·p_(j)) (R's p.adjust(p, "holm")).
func HolmAdjust(p []float64) []float64 {
	m := len(p)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return p[order[a]] < p[order[b]] })
	adj := make([]float64, m)
	running := 0.0
	for rank, i := range order {
		v := min(1, float64(m-rank)*p[i])
		running = max(running, v) // adjusted p-values never decrease
		adj[i] = running
	}
	return adj
}

// AdjustPValues sets Correction and PAdjusted of every comparison in cs,
// which form one family (NewTable: every model-versus-baseline, metric
// pair of one table, that is of one dataset or of the pooled queries).
func AdjustPValues(cs []Comparison, corr Correction) error {
	switch corr {
	case CorrectionNone:
		for i := range cs {
			cs[i].Correction, cs[i].PAdjusted = corr, cs[i].PValue
		}
	case CorrectionHolm:
		p := make([]float64, len(cs))
		for i, c := range cs {
			p[i] = c.PValue
		}
		for i, a := range HolmAdjust(p) {
			cs[i].Correction, cs[i].PAdjusted = corr, a
		}
	default:
		return fmt.Errorf("unknown multiple-comparison correction %q (want holm or none)", corr)
	}
	return nil
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// RandomizationTest is the two-sided paired randomization (sign-flip)
// test of the mean of diffs being 0. It returns the p-value and whether it
// is exact (see Compare).
func RandomizationTest(diffs []float64, permutations int, seed uint64) (p float64, exact bool) {
	n := len(diffs)
	if n == 0 {
		return 1, true
	}
	obs := math.Abs(sum(diffs))
	// Sums are compared with a relative tolerance so that rounding in a
	// different summation order cannot turn a tie into a miss.
	tol := 1e-9 * (1 + obs)
	if n < 63 && uint64(1)<<n <= uint64(permutations) {
		total := uint64(1) << n
		count := uint64(0)
		for mask := uint64(0); mask < total; mask++ {
			s := 0.0
			for i, d := range diffs {
				if mask&(1<<i) != 0 {
					s -= d
				} else {
					s += d
				}
			}
			if math.Abs(s) >= obs-tol {
				count++
			}
		}
		return float64(count) / float64(total), true
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	count := 0
	for b := 0; b < permutations; b++ {
		s := 0.0
		for i := 0; i < n; i += 64 {
			r := rng.Uint64()
			for j := i; j < min(n, i+64); j++ {
				if r&(1<<(j-i)) != 0 {
					s -= diffs[j]
				} else {
					s += diffs[j]
				}
			}
		}
		if math.Abs(s) >= obs-tol {
			count++
		}
	}
	return float64(count+1) / float64(permutations+1), false
}

func sum(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s
}

// BootstrapCI returns the percentile bootstrap interval of the mean of
// diffs at the given confidence, from resamples of the queries with
// replacement.
func BootstrapCI(diffs []float64, resamples int, confidence float64, seed uint64) (lo, hi float64) {
	n := len(diffs)
	if n == 0 {
		return 0, 0
	}
	rng := rand.New(rand.NewPCG(seed, 0xb5ad4eceda1ce2a9))
	means := make([]float64, resamples)
	for b := range means {
		s := 0.0
		for i := 0; i < n; i++ {
			s += diffs[rng.IntN(n)]
		}
		means[b] = s / float64(n)
	}
	sort.Float64s(means)
	alpha := (1 - confidence) / 2
	return quantile(means, alpha), quantile(means, 1-alpha)
}

// quantile is the linearly interpolated quantile of sorted x.
func quantile(x []float64, q float64) float64 {
	if len(x) == 1 {
		return x[0]
	}
	pos := q * float64(len(x)-1)
	i := int(math.Floor(pos))
	if i >= len(x)-1 {
		return x[len(x)-1]
	}
	f := pos - float64(i)
	return x[i]*(1-f) + x[i+1]*f
}

// CompareResults compares every metric of model against baseline over the
// baseline's queries.
func CompareResults(baselineLabel string, baseline *Result, modelLabel string, model *Result, opts CompareOptions) ([]Comparison, error) {
	var out []Comparison
	for _, m := range baseline.Metrics {
		name := m.String()
		if _, ok := model.Mean[name]; !ok {
			continue
		}
		c, err := Compare(name, baselineLabel, modelLabel, baseline.Values(name), model.Values(name), opts)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
