package optim_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/optim"
)

func TestLinearSchedule(t *testing.T) {
	s := optim.LinearSchedule{Peak: 1e-3, Warmup: 10, Total: 110}
	for _, tc := range []struct {
		step int
		want float64
	}{{0, 0}, {5, 5e-4}, {10, 1e-3}, {60, 5e-4}, {110, 0}, {200, 0}} {
		assert.InDelta(t, tc.want, s.LR(tc.step), 1e-12, "step %d", tc.step)
	}
	assert.Equal(t, 1e-3, optim.LinearSchedule{Peak: 1e-3, Total: 10}.LR(0), "no warmup starts at the peak")
	assert.Equal(t, 11, optim.WarmupSteps(0.1, 101), "ceil as transformers")
}

func model(t *testing.T) *nn.Model {
	m, err := nn.New(cpu.New(), nn.Config{Arch: nn.BERT, VocabSize: 10, Hidden: 4, Layers: 1, Heads: 1, Intermediate: 4,
		MaxPositions: 8, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1})
	require.NoError(t, err)
	m.InitRandom(1, 0.02)
	return m
}

func TestClipGradNorm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxNorm float64
		scaled  bool
	}{{"clips", 1, true}, {"below limit", 1e9, false}, {"measure only", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			m := model(t)
			require.NoError(t, m.EnableGrads(nil))
			be := m.Backend()
			for _, p := range m.Params() {
				be.Fill(p.G, 1)
			}
			n := 0
			for _, p := range m.Params() {
				n += p.Size()
			}
			norm := optim.ClipGradNorm(be, m.Params(), tc.maxNorm)
			assert.InDelta(t, math.Sqrt(float64(n)), norm, 1e-6)
			after := optim.GradNorm(be, m.Params())
			if tc.scaled {
				assert.InDelta(t, tc.maxNorm, after, 1e-5)
			} else {
				assert.InDelta(t, norm, after, 1e-6)
			}
		})
	}
}

func TestAdamWStateRoundTrip(t *testing.T) {
	m := model(t)
	require.NoError(t, m.EnableGrads(func(p *nn.Param) bool { return p.Decay }))
	be := m.Backend()
	opt, err := optim.NewAdamW(be, m.Params(), 0.01)
	require.NoError(t, err)
	for _, p := range opt.Params() {
		require.True(t, p.Decay, "only parameters with gradients are optimised")
		be.Fill(p.G, 0.5)
	}
	require.NoError(t, opt.Step(1e-3))
	st, err := opt.State()
	require.NoError(t, err)
	assert.Equal(t, 1, st.Step)

	other, err := optim.NewAdamW(be, m.Params(), 0.01)
	require.NoError(t, err)
	require.NoError(t, other.SetState(st))
	back, err := other.State()
	require.NoError(t, err)
	assert.Equal(t, st, back)

	delete(st.M, opt.Params()[0].Name)
	assert.ErrorContains(t, other.SetState(st), "no moments for")

	require.NoError(t, m.EnableGrads(func(*nn.Param) bool { return false }))
	_, err = optim.NewAdamW(be, m.Params(), 0)
	assert.ErrorContains(t, err, "no trainable parameter")
}
