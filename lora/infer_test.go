package lora_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

// TestRunnerFollowsAdapters: an inference runner made before adapters are
// attached runs the adapted model (on the model's backend whole, not its
// lanes), and the base model again once the adapters are detached.
func TestRunnerFollowsAdapters(t *testing.T) {
	m := tinyModel(t, nn.BERT)
	ln, err := infer.New(m)
	require.NoError(t, err)
	b := tinyBatch(m.Cfg)
	base, err := ln.Forward(b)
	require.NoError(t, err)
	base = slices.Clone(base) // the lanes reuse their logits

	a, err := lora.Attach(m, lora.Config{R: 2, Alpha: 4, TargetModules: []string{"query", "value", "output.dense"}}, 1)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(2, 3))
	for _, ad := range a.List() {
		v := make([]float32, ad.B.W.Len())
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		m.Backend().Upload(ad.B.W, v)
	}
	got, err := ln.Forward(b)
	require.NoError(t, err)
	assert.Equal(t, logitsOf(t, m, nn.RunOptions{SkipPadding: true}), got)
	assert.NotEqual(t, base, got, "the adapters change the logits")

	require.NoError(t, a.Detach())
	got, err = ln.Forward(b)
	require.NoError(t, err)
	for i := range base {
		assert.InDelta(t, base[i], got[i], 1e-6)
	}
}
