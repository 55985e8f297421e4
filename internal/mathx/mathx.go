// Package mathx holds the small numeric routines that several packages
// share, written once: log-sum-exp, and bounded random integers that never
// change with the Go version.
package mathx

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// LogSumExp returns log Σ exp(x_i) in float64, computed stably as
// m + log Σ exp(x_i − m) with m the largest x_i. It is −Inf for an empty x.
func LogSumExp[T float32 | float64](x []T) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	if math.IsInf(m, 0) {
		return m
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - m)
	}
	return m + math.Log(sum)
}

// Uniform returns an integer in [0, n) from r without modulo bias
// (Lemire's nearly divisionless method). It is written here rather than
// taken from math/rand/v2 so that seeded sequences (data order, sampled
// negatives) stay the same on every Go version. n must be positive.
func Uniform(r *rand.PCG, n int) int {
	un := uint64(n)
	hi, lo := bits.Mul64(r.Uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), un)
		}
	}
	return int(hi)
}
