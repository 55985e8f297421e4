package nn_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

func TestAttentionOptions(t *testing.T) {
	for _, tc := range []struct {
		o     nn.AttentionOptions
		s     int
		tiled bool
	}{
		{nn.AttentionOptions{}, nn.DefaultTiledFrom - 1, false},
		{nn.AttentionOptions{}, nn.DefaultTiledFrom, true},
		{nn.AttentionOptions{TiledFrom: 64}, 63, false},
		{nn.AttentionOptions{TiledFrom: 64}, 64, true},
		{nn.AttentionOptions{Mode: nn.AttentionStored}, 8192, false},
		{nn.AttentionOptions{Mode: nn.AttentionTiled}, 1, true},
	} {
		assert.Equal(t, tc.tiled, tc.o.Tiled(tc.s), "%+v at %d tokens", tc.o, tc.s)
	}
	for name, want := range map[string]nn.AttentionMode{"auto": nn.AttentionAuto, "stored": nn.AttentionStored, "tiled": nn.AttentionTiled, "TILED": nn.AttentionTiled} {
		m, err := nn.ParseAttentionMode(name)
		require.NoError(t, err)
		assert.Equal(t, want, m, name)
		back, err := nn.ParseAttentionMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, back)
	}
	_, err := nn.ParseAttentionMode("flash")
	assert.ErrorContains(t, err, "auto, stored, tiled")
}

// TestAttentionModes: a model whose Attention tiles (by mode, or by
// length under AttentionAuto) trains and scores like one that stores the
// probabilities, dropout masks included, with and without gradient
// checkpointing and padding skipped, and keeps S values per head and
// layer instead of S².
func TestAttentionModes(t *testing.T) {
	c := tinyConfig(nn.XLMRoberta)
	r := rand.New(rand.NewPCG(5, 5))
	const n, s = 6, 21
	b := randomBatch(r, c, n, s)
	for _, tc := range []struct {
		name string
		att  nn.AttentionOptions
		ckpt bool
		skip bool
	}{
		{"tiled", nn.AttentionOptions{Mode: nn.AttentionTiled, Tile: 4}, false, false},
		{"auto by length", nn.AttentionOptions{TiledFrom: s, Tile: 5}, true, true},
		{"tiled default blocks", nn.AttentionOptions{Mode: nn.AttentionTiled}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := nn.RunOptions{Train: true, Seed: 7, SkipPadding: tc.skip}
			ref := newModel(t, c, 4)
			ref.Attention = nn.AttentionOptions{Mode: nn.AttentionStored}
			got := newModel(t, c, 4)
			got.Attention = tc.att
			oc := o
			oc.GradientCheckpointing = tc.ckpt
			l0, _ := lossAndGrad(t, ref, b, o, 3)
			l1, _ := lossAndGrad(t, got, b, oc, 3)
			assert.InDelta(t, l0, l1, 1e-5, "loss")
			assert.LessOrEqual(t, closeRel(flatGrads(got), flatGrads(ref)), 2e-5, "gradients")
			assert.Equal(t, n*c.Heads*s*s, ref.AttentionSave(0).Len())
			assert.Equal(t, n*c.Heads*s, got.AttentionSave(0).Len())

			// Scoring too (nn/infer: a last layer attending for position 0
			// alone).
			refRun, err := infer.New(ref)
			require.NoError(t, err)
			gotRun, err := infer.New(got)
			require.NoError(t, err)
			want, err := refRun.Forward(b)
			require.NoError(t, err)
			want = append([]float32(nil), want...)
			have, err := gotRun.Forward(b)
			require.NoError(t, err)
			assert.LessOrEqual(t, closeRel(have, want), 2e-6, "inference logits")
		})
	}
}
