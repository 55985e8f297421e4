package nn_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
)

// TestLanesQuantizeWeights: int8 logits stay close to float32 ones (a
// random model amplifies the quantization error: 1-7% here; the quality
// on a trained model is measured in bench/RESULTS.md) (on
// several lanes and on one), the head and embeddings are left alone,
// quantizing twice or after packing is refused, and release brings back
// the float32 logits to the bit.
func TestLanesQuantizeWeights(t *testing.T) {
	for _, tc := range []struct {
		name    string
		arch    nn.Arch
		workers int
		o       nn.RunOptions
	}{
		{"bert two lanes", nn.BERT, 2, nn.RunOptions{}},
		{"bert skip padding", nn.BERT, 2, nn.RunOptions{SkipPadding: true}},
		{"xlmr all positions", nn.XLMRoberta, 2, nn.RunOptions{AllPositions: true}},
		{"xlmr one worker", nn.XLMRoberta, 1, nn.RunOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			c.Hidden, c.Intermediate, c.Heads = 64, 128, 4
			m, err := nn.New(cpu.NewWorkers(tc.workers), c)
			require.NoError(t, err)
			m.InitRandom(11, 0.2)
			ln, err := nn.NewLanes(m)
			require.NoError(t, err)
			r := rand.New(rand.NewPCG(7, 7))
			b := randomBatch(r, c, 8, 16)
			want, err := ln.Forward(b, tc.o)
			require.NoError(t, err)
			want = slices.Clone(want)

			release, err := ln.QuantizeWeights()
			require.NoError(t, err)
			assert.Positive(t, ln.PackedBytes())
			_, err = ln.QuantizeWeights()
			assert.ErrorContains(t, err, "already packed or quantized")
			_, err = ln.PackWeights(-1)
			assert.ErrorContains(t, err, "already packed")
			got, err := ln.Forward(b, tc.o)
			require.NoError(t, err)
			got = slices.Clone(got)
			var num, den float64
			for i := range want {
				d := float64(got[i] - want[i])
				num, den = num+d*d, den+float64(want[i])*float64(want[i])
			}
			rel := math.Sqrt(num / den)
			t.Logf("int8 logits: relative error %.4f", rel)
			assert.Less(t, rel, 0.1, "int8 logits %v, float32 %v", got, want)
			assert.NotEqual(t, want, got, "int8 took no effect")

			release()
			release()
			assert.Zero(t, ln.PackedBytes())
			got, err = ln.Forward(b, tc.o)
			require.NoError(t, err)
			assert.Equal(t, want, got, "released: the float32 logits are back")
		})
	}
}
