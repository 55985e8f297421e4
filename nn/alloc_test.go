package nn_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/nntest"
	"github.com/rerank-go/rerank/loss"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/optim"
)

// TestSteadyStateAllocs: once a batch shape has been seen, a forward pass
// and a training step (forward with dropout, loss gradient, backward,
// AdamW) allocate nothing on the CPU backend, with one worker and with
// two. The shape is large enough that every op splits its work across two
// workers. (The inference runner's passes: nn/infer's test of the name.)
func TestSteadyStateAllocs(t *testing.T) {
	c := nn.Config{Arch: nn.BERT, VocabSize: 100, Hidden: 64, Layers: 2, Heads: 4, Intermediate: 256,
		MaxPositions: 64, TypeVocab: 2, LayerNormEps: 1e-12,
		HiddenDropout: 0.1, AttentionDropout: 0.1, ClassifierDropout: 0.1, NumLabels: 1}
	const n, s, group = 8, 64, 4
	for _, tc := range []struct {
		name    string
		mode    string // infer (a forward pass alone) or train
		workers int
		skip    bool // RunOptions.SkipPadding
	}{
		{"infer 1 worker", "infer", 1, false},
		{"infer 2 workers", "infer", 2, false},
		{"infer 2 workers skip padding", "infer", 2, true},
		{"train 1 worker", "train", 1, false},
		{"train 2 workers", "train", 2, false},
		{"train 2 workers skip padding", "train", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := nn.New(cpu.NewWorkers(tc.workers), c)
			require.NoError(t, err)
			m.InitRandom(1, 0.02)
			b := randomBatch(rand.New(rand.NewPCG(1, 2)), c, n, s)
			o := nn.RunOptions{SkipPadding: tc.skip}
			var step func() error
			switch tc.mode {
			case "infer":
				step = func() error { _, err := m.Forward(b, o); return err }
			case "train":
				require.NoError(t, m.EnableGrads(nil))
				opt, err := optim.NewAdamW(m.Backend(), m.Params(), 0.01)
				require.NoError(t, err)
				var dl []float32
				seed := uint64(0)
				step = func() error {
					seed++
					logits, err := m.Forward(b, nn.RunOptions{Train: true, Seed: seed, SkipPadding: tc.skip})
					if err != nil {
						return err
					}
					if _, dl, err = loss.AppendGroupSoftmaxCE(dl[:0], logits, group); err != nil {
						return err
					}
					m.ZeroGrads()
					if err := m.Backward(dl); err != nil {
						return err
					}
					return opt.Step(1e-4)
				}
			}
			require.NoError(t, step()) // sizes the buffers, starts the workers
			nntest.NoSteadyAllocs(t, step)
		})
	}
}
