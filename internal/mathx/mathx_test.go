package mathx

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLogSumExp(t *testing.T) {
	for _, tc := range []struct {
		name string
		x    []float64
		want float64
	}{
		{"one", []float64{3}, 3},
		{"two equal", []float64{0, 0}, math.Ln2},
		{"large values do not overflow", []float64{1000, 1000}, 1000 + math.Ln2},
		{"small values do not underflow", []float64{-1000, -1000}, -1000 + math.Ln2},
		{"mixed", []float64{1, 2, 3}, math.Log(math.E + math.E*math.E + math.E*math.E*math.E)},
		{"empty", nil, math.Inf(-1)},
		{"all -Inf", []float64{math.Inf(-1), math.Inf(-1)}, math.Inf(-1)},
		{"an Inf", []float64{1, math.Inf(1)}, math.Inf(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, LogSumExp(tc.x), 1e-12)
			f32 := make([]float32, len(tc.x))
			for i, v := range tc.x {
				f32[i] = float32(v)
			}
			assert.InDelta(t, tc.want, LogSumExp(f32), 1e-6, "float32 input")
		})
	}
}

func TestUniform(t *testing.T) {
	// The sequence is part of every seeded run: it must never change.
	r := rand.NewPCG(1, 2)
	var got []int
	for range 8 {
		got = append(got, Uniform(r, 10))
	}
	assert.Equal(t, []int{7, 6, 7, 7, 2, 0, 4, 4}, got)

	// Every value of a small range comes up, nearly equally often.
	const n, draws = 7, 70000
	counts := make([]int, n)
	for range draws {
		counts[Uniform(r, n)]++
	}
	for v, c := range counts {
		assert.InDelta(t, draws/n, c, 0.05*draws/n, "value %d", v)
	}
}
