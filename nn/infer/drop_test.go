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
