package train

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/loss"
)

// TestChanceLossMatchesTheLosses checks ChanceLoss against the losses
// themselves: uniform scores give ce and distill their chance exactly,
// and bce's chance is the least loss of any constant score.
func TestChanceLossMatchesTheLosses(t *testing.T) {
	const G, B = 8, 3
	rng := rand.New(rand.NewPCG(1, 2))
	teacher := make([]float64, G*B)
	for i := range teacher {
		teacher[i] = rng.NormFloat64() * 3
	}
	constant := func(z float32) []float32 {
		l := make([]float32, G*B)
		for i := range l {
			l[i] = z
		}
		return l
	}
	for _, name := range []string{"ce", "distill"} {
		chance, desc, ok := ChanceLoss(name, G)
		require.True(t, ok)
		assert.Contains(t, desc, name)
		fn, err := loss.ByName(name)
		require.NoError(t, err)
		got, _, err := fn(nil, constant(0.7), G, teacher)
		require.NoError(t, err)
		assert.InDelta(t, chance, got, 1e-6, name)
	}
	chance, _, ok := ChanceLoss("bce", G)
	require.True(t, ok)
	best := math.Inf(1)
	for z := -6.0; z <= 6; z += 0.001 {
		l, _, err := loss.BCE(nil, constant(float32(z)), G, nil)
		require.NoError(t, err)
		best = min(best, l)
	}
	assert.InDelta(t, chance, best, 1e-5, "bce: the best constant logit, logit(1/G)")
	assert.InDelta(t, math.Log(2), func() float64 { c, _, _ := ChanceLoss("bce", 2); return c }(), 1e-12)

	_, _, ok = ChanceLoss("ce", 1)
	assert.False(t, ok, "a group of one has no chance level")
	_, _, ok = ChanceLoss("hinge", 8)
	assert.False(t, ok)
}

// lossCurve returns n steps of f(step) plus noise of the given size.
func lossCurve(n int, noise float64, f func(step int) float64) []float64 {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = f(i+1) + noise*(2*rng.Float64()-1)
	}
	return out
}

func TestHealthChance(t *testing.T) {
	lnG := math.Log(16)
	tests := []struct {
		name   string
		opts   HealthOptions
		losses []float64
		want   []int // steps of chance warnings
	}{
		{"stuck at chance: once, after the window", HealthOptions{Chance: lnG},
			lossCurve(300, 0.01, func(int) float64 { return lnG }), []int{50}},
		{"stuck after a warmup: the window starts after it", HealthOptions{Chance: lnG, After: 20},
			lossCurve(300, 0.01, func(int) float64 { return lnG }), []int{70}},
		{"normal decreasing curve from chance: no alarm", HealthOptions{Chance: lnG},
			lossCurve(1000, 0.05, func(s int) float64 { return lnG * (0.3 + 0.7*math.Exp(-float64(s)/150)) }), nil},
		{"a pretrained reranker far below chance: no alarm", HealthOptions{Chance: lnG},
			lossCurve(500, 0.2, func(int) float64 { return 0.4 }), nil},
		{"flat warmup then learning, warmup not judged: no alarm", HealthOptions{Chance: lnG, After: 100},
			lossCurve(600, 0.01, func(s int) float64 {
				if s <= 100 {
					return lnG
				}
				return lnG * (0.3 + 0.7*math.Exp(-float64(s-100)/50))
			}), nil},
		{"same curve with the warmup judged: an alarm", HealthOptions{Chance: lnG},
			lossCurve(600, 0.01, func(s int) float64 {
				if s <= 100 {
					return lnG
				}
				return lnG * (0.3 + 0.7*math.Exp(-float64(s-100)/50))
			}), []int{50}},
		{"streak broken before the window: no alarm", HealthOptions{Chance: lnG, Window: 30},
			lossCurve(200, 0, func(s int) float64 {
				if s%25 == 0 {
					return 1
				}
				return lnG
			}), nil},
		{"no chance level (0): no alarm", HealthOptions{},
			lossCurve(300, 0, func(int) float64 { return lnG }), nil},
		{"disabled", HealthOptions{Chance: lnG, Disable: true},
			lossCurve(300, 0, func(int) float64 { return lnG }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealth(tc.opts)
			var got []int
			for i, l := range tc.losses {
				for _, w := range h.Observe(i+1, l, false) {
					assert.Equal(t, "chance", w.Kind)
					assert.Equal(t, i+1, w.Step)
					assert.Contains(t, w.Message, "step ")
					assert.NotContains(t, w.Message, "\n")
					got = append(got, w.Step)
				}
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestHealthCollapse(t *testing.T) {
	const G = 4
	rng := rand.New(rand.NewPCG(3, 3))
	normal := func() []float32 { // two groups of distinct scores
		l := make([]float32, 2*G)
		for i := range l {
			l[i] = float32(rng.NormFloat64())
		}
		return l
	}
	flat := func() []float32 { // every group scores its passages alike
		return []float32{2.5, 2.5, 2.5, 2.5, -1, -1, -1, -1}
	}
	oneFlat := func() []float32 { // only the first group collapsed
		l := normal()
		copy(l, []float32{3, 3, 3, 3})
		return l
	}
	tests := []struct {
		name  string
		steps [][]float32
		want  []int
	}{
		{"normal scores", [][]float32{normal(), normal(), normal(), normal(), normal()}, nil},
		{"collapsed for 3 steps: once", [][]float32{normal(), flat(), flat(), flat(), flat(), flat()}, []int{4}},
		{"one group collapsed is not a collapse", [][]float32{oneFlat(), oneFlat(), oneFlat(), oneFlat()}, nil},
		{"streak broken", [][]float32{flat(), flat(), normal(), flat(), flat(), normal()}, nil},
		{"rounding-level spread counts as alike", [][]float32{{1, 1.000001, 1, 1}, {1, 1, 1.000001, 1}, {5, 5, 5, 5.00001}}, []int{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealth(HealthOptions{})
			var got []int
			for i, logits := range tc.steps {
				for _, w := range h.Observe(i+1, 1.0, h.Collapsed(logits, G)) {
					assert.Equal(t, "collapse", w.Kind)
					got = append(got, w.Step)
				}
			}
			assert.Equal(t, tc.want, got)
		})
	}
	assert.False(t, AllGroupsCollapsed([]float32{1, 1, float32(math.NaN()), 1}, G, 1e-5), "NaN is no collapse")
	assert.False(t, AllGroupsCollapsed(nil, G, 1e-5), "no groups")
	var nilHealth *Health
	assert.False(t, nilHealth.Collapsed(flat(), G))
	assert.Nil(t, nilHealth.Observe(1, 1, true))
}

// TestHealthReachesProgress: Run passes the warnings to
// Progress.Message, once each, with the step.
func TestHealthReachesProgress(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps, a.WarmupRatio, a.LearningRate = 6, 0, 0, 1e-9
	var progress recorder
	// A tolerance wide enough for the random head's near-uniform scores,
	// and a score tolerance that calls any spread alike: both fire.
	_, err := Run(context.Background(), cpu.New(), a, Options{Progress: &progress,
		Health: HealthOptions{Window: 3, Tolerance: 0.5, CollapseSteps: 2, ScoreTol: 1e6}})
	require.NoError(t, err)
	var warnings []string
	for _, m := range progress.msgs {
		if strings.HasPrefix(m, "warning: step ") {
			warnings = append(warnings, m)
		}
	}
	require.Len(t, warnings, 2, "%q", progress.msgs)
	assert.Contains(t, warnings[0], "warning: step 2: every passage of every group has got the same score")
	assert.Contains(t, warnings[1], "warning: step 3: the loss has stayed within 50% of chance")
	assert.Contains(t, warnings[1], "ln 4 for ce with groups of 4")
}
