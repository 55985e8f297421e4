package nn_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
)

// TestLanes: splitting a batch's sequences across lanes gives the logits
// of one pass over the whole batch, whatever the lane count, batch size and
// padding; the model keeps working on its own afterwards and the lanes see
// its weights change.
func TestLanes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		arch  nn.Arch
		lanes int
		n     int
		skip  bool
	}{
		{"bert 2 lanes", nn.BERT, 2, 6, false},
		{"bert 3 lanes skip padding", nn.BERT, 3, 7, true},
		{"xlmr 2 lanes skip padding", nn.XLMRoberta, 2, 5, true},
		{"more lanes than rows", nn.BERT, 4, 3, false},
		{"one row", nn.XLMRoberta, 2, 1, true},
		{"one lane", nn.BERT, 1, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			m, err := nn.New(cpu.NewWorkers(tc.lanes), c)
			require.NoError(t, err)
			m.InitRandom(3, 0.2)
			ln, err := nn.NewLanes(m)
			require.NoError(t, err)
			assert.Equal(t, tc.lanes, ln.Count())
			r := rand.New(rand.NewPCG(5, uint64(tc.n)))
			o := nn.RunOptions{SkipPadding: tc.skip}
			for step := 0; step < 2; step++ {
				b := randomBatch(r, c, tc.n, 12)
				got, err := ln.Forward(b, o)
				require.NoError(t, err)
				want, err := m.Forward(b, o)
				require.NoError(t, err)
				assert.LessOrEqual(t, closeRel(got, want), 1e-6, "step %d", step)
				// A weight update shows in the next pass of the lanes.
				m.InitRandom(uint64(10+step), 0.2)
			}
			_, err = ln.Forward(randomBatch(r, c, tc.n, 12), nn.RunOptions{Train: true})
			assert.ErrorContains(t, err, "EnableGrads")
		})
	}
}

// TestLanesWithGrads: a model being trained (gradient buffers) still
// scores on its lanes.
func TestLanesWithGrads(t *testing.T) {
	c := tinyConfig(nn.BERT)
	m := newModel(t, c, 4) // gradient buffers enabled: the lanes still run
	ln, err := nn.NewLanes(m)
	require.NoError(t, err)
	b := randomBatch(rand.New(rand.NewPCG(1, 1)), c, 4, 10)
	got, err := ln.Forward(b, nn.RunOptions{})
	require.NoError(t, err)
	want, err := m.Forward(b, nn.RunOptions{})
	require.NoError(t, err)
	assert.LessOrEqual(t, closeRel(got, want), 1e-6)
}

// TestLanesTrain: a training step split across lanes gives the loss and
// the gradients of one pass over the whole batch (dropout off), with
// padding skipped or not, gradient checkpointing, frozen parameters and
// gradient accumulation over two batches; with dropout, two runs agree
// bit for bit.
func TestLanesTrain(t *testing.T) {
	frozenEmb := func(p *nn.Param) bool { return !strings.Contains(p.Name, "embeddings") }
	for _, tc := range []struct {
		name      string
		arch      nn.Arch
		lanes     int
		skip      bool
		ckpt      bool
		trainable func(*nn.Param) bool
		micro     int
		dropout   bool
	}{
		{name: "bert", arch: nn.BERT, lanes: 2, micro: 1},
		{name: "xlmr skip padding 3 lanes", arch: nn.XLMRoberta, lanes: 3, skip: true, micro: 1},
		{name: "bert checkpointing accumulation", arch: nn.BERT, lanes: 2, ckpt: true, micro: 2},
		{name: "bert frozen embeddings", arch: nn.BERT, lanes: 2, trainable: frozenEmb, micro: 1},
		{name: "bert dropout", arch: nn.BERT, lanes: 2, skip: true, micro: 2, dropout: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			if !tc.dropout {
				c.HiddenDropout, c.AttentionDropout, c.ClassifierDropout = 0, 0, 0
			}
			newM := func() *nn.Model {
				m, err := nn.New(cpu.NewWorkers(tc.lanes), c)
				require.NoError(t, err)
				m.InitRandom(6, 0.2)
				require.NoError(t, m.EnableGrads(tc.trainable))
				m.GradientCheckpointing = tc.ckpt
				return m
			}
			type fb struct {
				fwd func(*nn.Batch, nn.RunOptions) ([]float32, error)
				bwd func([]float32) error
			}
			step := func(m *nn.Model, f fb) float64 {
				r := rand.New(rand.NewPCG(7, 7))
				m.ZeroGrads()
				var total float64
				for k := 0; k < tc.micro; k++ {
					b := randomBatch(r, c, 6, 11)
					logits, err := f.fwd(b, nn.RunOptions{Train: true, Seed: uint64(k + 1), SkipPadding: tc.skip})
					require.NoError(t, err)
					loss, dl, err := nn.GroupSoftmaxCE(logits, 3)
					require.NoError(t, err)
					require.NoError(t, f.bwd(dl))
					total += float64(loss)
				}
				return total
			}
			lanesStep := func() (*nn.Model, float64) {
				m := newM()
				ln, err := nn.NewLanes(m)
				require.NoError(t, err)
				require.Equal(t, tc.lanes, ln.Count())
				step(m, fb{ln.Forward, ln.Backward}) // stale lane buffers for the step compared
				return m, step(m, fb{ln.Forward, ln.Backward})
			}
			got, gotLoss := lanesStep()
			if tc.dropout {
				again, againLoss := lanesStep()
				assert.Equal(t, againLoss, gotLoss)
				assert.Equal(t, flatGrads(again), flatGrads(got))
				return
			}
			ref := newM()
			wantLoss := step(ref, fb{ref.Forward, ref.Backward})
			assert.InDelta(t, wantLoss, gotLoss, 1e-5)
			assert.LessOrEqual(t, closeRel(flatGrads(got), flatGrads(ref)), 1e-5)
			if tc.trainable != nil {
				for _, p := range got.Params() {
					assert.Equal(t, tc.trainable(p), p.G != nil, p.Name)
				}
			}
		})
	}
}
