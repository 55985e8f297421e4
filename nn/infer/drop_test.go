package infer_test

import (
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

// TestQuantizeWeightsDropping: a scoring-only runner keeps one copy of
// each encoder linear weight, the int8 one: the float32 originals' pages
// go back to the system (on Linux; they read as zeros), the logits are
// QuantizeWeights' to the bit (several lanes and the whole-batch pass),
// and every path that needs the float32 weights fails with
// nn.ErrLinearWeightsDropped instead of reading zeros.
func TestQuantizeWeightsDropping(t *testing.T) {
	c := tinyConfig(nn.BERT)
	c.Hidden, c.Intermediate, c.Heads = 256, 1024, 4
	model := func() (*nn.Model, *infer.Runner) { return twoLanes(t, c, 11) }
	r := rand.New(rand.NewPCG(7, 7))
	batches := []*nn.Batch{randomBatch(r, c, 6, 16), randomBatch(r, c, 1, 12)}

	ref, refRun := model()
	release, err := refRun.QuantizeWeights()
	require.NoError(t, err)
	defer release()
	assert.Zero(t, refRun.DroppedBytes())
	assert.False(t, ref.LinearWeightsDropped())

	m, run := model()
	release, err = run.QuantizeWeightsDropping()
	require.NoError(t, err)
	for i, b := range batches {
		want, err := refRun.Forward(b)
		require.NoError(t, err)
		want = slices.Clone(want)
		got, err := run.Forward(b)
		require.NoError(t, err)
		assert.Equal(t, want, got, "batch %d: logits differ from QuantizeWeights'", i)
	}

	if runtime.GOOS == "linux" {
		// Every weight of the layers' linear layers, less at most two
		// partial pages each (they share pages with their neighbours).
		var linear int64
		items := 0
		for l := range c.Layers {
			L := m.Layer(l)
			for _, w := range []*nn.Param{L.Q.W, L.K.W, L.V.W, L.AttnOut.W, L.Inter.W, L.Out.W} {
				linear += int64(w.Size()) * 4
			}
			items += 4 // query-key-value, attention output, intermediate, output
		}
		page := int64(os.Getpagesize())
		assert.GreaterOrEqual(t, run.DroppedBytes(), linear-int64(items)*2*page)
		assert.LessOrEqual(t, run.DroppedBytes(), linear)
		// The float32 copy is gone: its pages read as zeros.
		inter := []float32(m.Layer(0).Inter.W.W.(cpu.F32))
		mid := inter[len(inter)/4 : 3*len(inter)/4]
		assert.Equal(t, make([]float32, len(mid)), mid, "the intermediate weight's float32 copy is still there")
		assert.NotEqual(t, make([]float32, 64), []float32(m.Embeddings().Word.W.(cpu.F32))[5*256:5*256+64], "the embeddings were dropped too")
	}

	// What needs the float32 weights refuses.
	require.True(t, m.LinearWeightsDropped())
	_, err = m.Forward(batches[0], nn.RunOptions{})
	assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
	assert.ErrorIs(t, m.EnableGrads(nil), nn.ErrLinearWeightsDropped)
	_, err = run.PackWeights(-1)
	assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
	_, err = run.QuantizeWeights()
	assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
	_, err = lora.Attach(m, lora.DefaultConfig(), 1)
	assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
	err = hfmodel.Save(m, nil, t.TempDir(), "")
	assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
	shared, err := m.Share(false)
	require.NoError(t, err)
	assert.True(t, shared.LinearWeightsDropped(), "a replica reads the same dropped weights")
	other, err := infer.New(shared)
	require.NoError(t, err)
	_, err = other.Forward(batches[0])
	assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
	// Without the int8 copy nothing is left to score with.
	release()
	_, err = run.Forward(batches[0])
	assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
}

// TestPackWeightsDropping: a scoring-only runner with float32 weights
// keeps one copy of each linear weight, the packed one, written over the
// float32 original (the heap does not grow by a copy; the weight's memory
// holds the packed layout); every pass reads it (several lanes, the
// whole-batch pass of a single sequence, one worker without lanes) with
// the logits of the float32 weights and of PackWeights beside them to the
// bit; what needs the float32 weights refuses. On a route that does not
// pack nothing is dropped.
func TestPackWeightsDropping(t *testing.T) {
	have := map[string]bool{}
	for _, r := range cpu.GemmRoutes() {
		have[r] = true
	}
	for _, tc := range []struct {
		name    string
		arch    nn.Arch
		route   string
		workers int
	}{
		{"bert avx512", nn.BERT, cpu.GemmAVX512, 2},
		{"xlmr avx512", nn.XLMRoberta, cpu.GemmAVX512, 2},
		{"bert avx512 one worker", nn.BERT, cpu.GemmAVX512, 1},
		{"xlmr avx2", nn.XLMRoberta, cpu.GemmAVX2, 2},
		{"bert avx2 one worker", nn.BERT, cpu.GemmAVX2, 1},
		{"bert openblas", nn.BERT, cpu.GemmOpenBLAS, 2},
		{"bert go", nn.BERT, cpu.GemmGo, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !have[tc.route] {
				t.Skipf("the %s route is not available here (routes: %v)", tc.route, cpu.GemmRoutes())
			}
			c := tinyConfig(tc.arch)
			c.Hidden, c.Intermediate, c.Heads = 256, 1024, 4
			model := func() (*nn.Model, *infer.Runner, *cpu.Backend) {
				be, err := cpu.NewWithOptions(cpu.Options{Workers: tc.workers, Gemm: tc.route})
				require.NoError(t, err)
				m, err := nn.New(be, c)
				require.NoError(t, err)
				m.InitRandom(13, 0.2)
				run, err := infer.New(m)
				require.NoError(t, err)
				return m, run, be
			}
			r := rand.New(rand.NewPCG(9, 9))
			batches := []*nn.Batch{randomBatch(r, c, 6, 16), randomBatch(r, c, 1, 12)}
			plainModel, plain, _ := model()
			keepModel, keep, be := model()
			releaseKeep, err := keep.PackWeights(-1)
			require.NoError(t, err)
			defer releaseKeep()

			var linear int64
			for l := range c.Layers {
				L := plainModel.Layer(l)
				for _, w := range []*nn.Param{L.Q.W, L.K.W, L.V.W, L.AttnOut.W, L.Inter.W, L.Out.W} {
					linear += int64(w.Size()) * 4
				}
			}
			m, run, _ := model()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			release, err := run.PackWeightsDropping()
			require.NoError(t, err)
			runtime.GC()
			runtime.ReadMemStats(&after)

			for i, b := range batches {
				want, err := plain.Forward(b)
				require.NoError(t, err)
				want = slices.Clone(want)
				kept, err := keep.Forward(b)
				require.NoError(t, err)
				assert.Equal(t, want, kept, "batch %d: PackWeights changed the logits", i)
				got, err := run.Forward(b)
				require.NoError(t, err)
				assert.Equal(t, want, got, "batch %d: the packed copy changed the logits", i)
			}

			inter := []float32(m.Layer(0).Inter.W.W.(cpu.F32))
			orig := keepModel.Layer(0).Inter.W.W
			if be.PackedSize(c.Hidden, c.Hidden) == 0 {
				// Nothing packs: the float32 weights stay, unmarked.
				assert.Zero(t, run.DroppedBytes())
				assert.False(t, m.LinearWeightsDropped())
				assert.Equal(t, []float32(orig.(cpu.F32)), inter)
				release()
				_, err = run.Forward(batches[0])
				assert.NoError(t, err)
				return
			}
			// One copy: the heap holds no second copy of the weights, the
			// float32 weight's memory holds the packed layout, and
			// everything the runner reads is counted.
			grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			assert.Less(t, grown, linear/8, "the heap grew by %d bytes: a second copy of the %d bytes of weights", grown, linear)
			assert.GreaterOrEqual(t, run.DroppedBytes(), linear)
			assert.GreaterOrEqual(t, run.PackedBytes(), linear)
			packed := make(cpu.F32, be.PackedSize(c.Intermediate, c.Hidden))
			be.PackWeight(packed, orig, c.Hidden, c.Intermediate, c.Hidden)
			require.Len(t, inter, len(packed))
			assert.Equal(t, []float32(packed), inter, "the intermediate weight's memory does not hold its packed copy")

			require.True(t, m.LinearWeightsDropped())
			_, err = m.Forward(batches[0], nn.RunOptions{})
			assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
			_, err = run.PackWeightsDropping()
			assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
			_, err = run.QuantizeWeightsDropping()
			assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
			_, err = lora.Attach(m, lora.DefaultConfig(), 1)
			assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
			release()
			release()
			_, err = run.Forward(batches[0])
			assert.ErrorIs(t, err, nn.ErrLinearWeightsDropped)
		})
	}
}
