package infer_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/nntest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

// TestRunnerIsTheForwardPass: the runner's logits (padding skipped, the
// last layer at position 0 only, one set of layer activations, first-query
// attention) are those of the training path's full forward pass, whatever
// the lane count, batch size, padding and attention; the runner sees the
// model's weights change between passes.
func TestRunnerIsTheForwardPass(t *testing.T) {
	for _, tc := range []struct {
		name  string
		arch  nn.Arch
		lanes int
		n, s  int
		att   nn.AttentionOptions
	}{
		{"bert 2 lanes", nn.BERT, 2, 6, 12, nn.AttentionOptions{}},
		{"bert 3 lanes", nn.BERT, 3, 7, 12, nn.AttentionOptions{}},
		{"xlmr 2 lanes", nn.XLMRoberta, 2, 5, 12, nn.AttentionOptions{}},
		{"more lanes than rows", nn.BERT, 4, 3, 12, nn.AttentionOptions{}},
		{"one row", nn.XLMRoberta, 2, 1, 12, nn.AttentionOptions{}},
		{"one lane", nn.BERT, 1, 4, 12, nn.AttentionOptions{}},
		{"tiled attention", nn.XLMRoberta, 2, 6, 21, nn.AttentionOptions{Mode: nn.AttentionTiled, Tile: 4}},
		{"tiled by length one lane", nn.BERT, 1, 6, 21, nn.AttentionOptions{TiledFrom: 21, Tile: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			c.Layers = 3
			m, err := nn.New(cpu.NewWorkers(tc.lanes), c)
			require.NoError(t, err)
			m.InitRandom(3, 0.2)
			m.Attention = tc.att
			run, err := infer.New(m)
			require.NoError(t, err)
			assert.Equal(t, tc.lanes, run.Count())
			r := rand.New(rand.NewPCG(5, uint64(tc.n)))
			for step := 0; step < 2; step++ {
				b := randomBatch(r, c, tc.n, tc.s)
				got, err := run.Forward(b)
				require.NoError(t, err)
				assert.LessOrEqual(t, closeRel(got, trainingLogits(t, m, b)), 2e-6, "step %d", step)
				// A weight update shows in the next pass.
				m.InitRandom(uint64(10+step), 0.2)
			}
		})
	}
}

// TestRunnerWithGrads: a model being trained (gradient buffers) scores on
// its runner, and the runner's passes leave its training activations
// alone: Backward still follows the model's own last Forward.
func TestRunnerWithGrads(t *testing.T) {
	c := tinyConfig(nn.BERT)
	c.HiddenDropout, c.AttentionDropout, c.ClassifierDropout = 0, 0, 0
	m, err := nn.New(cpu.NewWorkers(2), c)
	require.NoError(t, err)
	m.InitRandom(4, 0.2)
	require.NoError(t, m.EnableGrads(nil))
	run, err := infer.New(m)
	require.NoError(t, err)
	b := randomBatch(rand.New(rand.NewPCG(1, 1)), c, 4, 10)
	want := trainingLogits(t, m, b)
	got, err := run.Forward(b)
	require.NoError(t, err)
	assert.LessOrEqual(t, closeRel(got, want), 2e-6)
	assert.NoError(t, m.Backward(make([]float32, b.N)))
}

// TestRunnerPackWeights: packed weights give the bits of the runner
// without, whatever part of the weights the budget covers; after release
// the runner reads the model's weights again.
func TestRunnerPackWeights(t *testing.T) {
	packs := cpu.NewWorkers(2).PackedSize(64, 64) > 0
	for _, tc := range []struct {
		name   string
		arch   nn.Arch
		budget int64
	}{
		{"bert all", nn.BERT, -1},
		{"xlmr all", nn.XLMRoberta, -1},
		{"xlmr part", nn.XLMRoberta, 20_000},
		{"bert head only", nn.BERT, 5_000},
		{"budget too small", nn.BERT, 100},
		{"zero budget", nn.BERT, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			m, run := twoLanes(t, c, 3)
			r := rand.New(rand.NewPCG(7, 7))
			b := randomBatch(r, c, 6, 12)
			want, err := run.Forward(b)
			require.NoError(t, err)
			want = slices.Clone(want) // the next pass reuses the logits

			release, err := run.PackWeights(tc.budget)
			require.NoError(t, err)
			if tc.budget >= 0 {
				assert.LessOrEqual(t, run.PackedBytes(), tc.budget)
			}
			if packs && (tc.budget < 0 || tc.budget > 1000) {
				assert.Positive(t, run.PackedBytes())
			}
			_, err = run.PackWeights(-1)
			assert.ErrorContains(t, err, "already packed")
			got, err := run.Forward(b)
			require.NoError(t, err)
			assert.Equal(t, want, got, "packed weights change the logits")

			release()
			release()
			assert.Zero(t, run.PackedBytes())
			m.InitRandom(4, 0.2)
			got, err = run.Forward(b)
			require.NoError(t, err)
			assert.LessOrEqual(t, closeRel(got, trainingLogits(t, m, b)), 2e-6, "released: the runner reads the new weights")
		})
	}
}

// TestLanesHelpEachOther: with packed weights, a lane that finishes early
// (two short rows against one long one) takes blocks of the other's
// products; the logits keep the bits of lanes that do not share.
func TestLanesHelpEachOther(t *testing.T) {
	c := tinyConfig(nn.BERT)
	c.MaxPositions = 512
	_, run := twoLanes(t, c, 5)
	r := rand.New(rand.NewPCG(8, 8))
	b := randomBatch(r, c, 3, 500)
	for i := 1; i < 3; i++ { // rows 1 and 2 keep 8 tokens
		for j := 8; j < 500; j++ {
			b.InputIDs[i*500+j], b.TypeIDs[i*500+j], b.Mask[i*500+j] = int32(c.PadID), 0, 0
		}
	}
	want, err := run.Forward(b)
	require.NoError(t, err)
	want = slices.Clone(want) // the next pass reuses the logits
	release, err := run.PackWeights(-1)
	require.NoError(t, err)
	for pass := 0; pass < 3; pass++ {
		got, err := run.Forward(b)
		require.NoError(t, err)
		assert.Equal(t, want, got, "pass %d", pass)
	}
	release()
}

// TestQuantizeWeights: int8 logits stay close to float32 ones (a random
// model amplifies the quantization error: 4-11% here with 7-bit weights;
// the quality on a trained model is measured in bench/RESULTS.md) (on
// several lanes and on one), quantizing twice or after packing is
// refused, and release brings back the float32 logits to the bit.
func TestQuantizeWeights(t *testing.T) {
	for _, tc := range []struct {
		name    string
		arch    nn.Arch
		workers int
	}{
		{"bert two lanes", nn.BERT, 2},
		{"xlmr two lanes", nn.XLMRoberta, 2},
		{"xlmr one worker", nn.XLMRoberta, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			c.Hidden, c.Intermediate, c.Heads = 64, 128, 4
			m, err := nn.New(cpu.NewWorkers(tc.workers), c)
			require.NoError(t, err)
			m.InitRandom(11, 0.2)
			run, err := infer.New(m)
			require.NoError(t, err)
			r := rand.New(rand.NewPCG(7, 7))
			b := randomBatch(r, c, 8, 16)
			want, err := run.Forward(b)
			require.NoError(t, err)
			want = slices.Clone(want)

			release, err := run.QuantizeWeights()
			require.NoError(t, err)
			assert.Positive(t, run.PackedBytes())
			_, err = run.QuantizeWeights()
			assert.ErrorContains(t, err, "already packed or quantized")
			_, err = run.PackWeights(-1)
			assert.ErrorContains(t, err, "already packed")
			got, err := run.Forward(b)
			require.NoError(t, err)
			got = slices.Clone(got)
			var num, den float64
			for i := range want {
				d := float64(got[i] - want[i])
				num, den = num+d*d, den+float64(want[i])*float64(want[i])
			}
			rel := math.Sqrt(num / den)
			t.Logf("int8 logits: relative error %.4f", rel)
			assert.Less(t, rel, 0.15, "int8 logits %v, float32 %v", got, want)
			assert.NotEqual(t, want, got, "int8 took no effect")

			release()
			release()
			assert.Zero(t, run.PackedBytes())
			got, err = run.Forward(b)
			require.NoError(t, err)
			assert.Equal(t, want, got, "released: the float32 logits are back")
		})
	}
}

// TestBatchErrors: a bad batch is refused before any work, naming what is
// wrong.
func TestBatchErrors(t *testing.T) {
	c := tinyConfig(nn.BERT)
	_, run := twoLanes(t, c, 1)
	b := randomBatch(rand.New(rand.NewPCG(1, 2)), c, 2, 8)
	b.InputIDs[3] = int32(c.VocabSize)
	_, err := run.Forward(b)
	assert.ErrorContains(t, err, "outside the vocabulary")
}

// TestSteadyStateAllocs: once a batch shape has been seen, a pass (on the
// model's backend whole or on its lanes, weights packed or not, or all of
// them packed in place) allocates nothing on the CPU backend.
func TestSteadyStateAllocs(t *testing.T) {
	c := nn.Config{Arch: nn.BERT, VocabSize: 100, Hidden: 64, Layers: 2, Heads: 4, Intermediate: 256,
		MaxPositions: 64, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	const n, s = 8, 64
	for _, tc := range []struct {
		workers int
		pack    string
	}{{1, ""}, {2, ""}, {2, "budget"}, {1, "dropping"}, {2, "dropping"}} {
		t.Run(fmt.Sprintf("workers=%d/pack=%v", tc.workers, tc.pack), func(t *testing.T) {
			m, err := nn.New(cpu.NewWorkers(tc.workers), c)
			require.NoError(t, err)
			m.InitRandom(1, 0.02)
			run, err := infer.New(m)
			require.NoError(t, err)
			if tc.pack != "" {
				pack := func() (func(), error) { return run.PackWeights(-1) }
				if tc.pack == "dropping" {
					pack = run.PackWeightsDropping
				}
				release, err := pack()
				require.NoError(t, err)
				defer release()
			}
			b := randomBatch(rand.New(rand.NewPCG(1, 2)), c, n, s)
			step := func() error { _, err := run.Forward(b); return err }
			require.NoError(t, step())
			nntest.NoSteadyAllocs(t, step)
		})
	}
}
