package infer_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

func tinyConfig(arch nn.Arch) nn.Config {
	c := nn.Config{Arch: arch, VocabSize: 50, Hidden: 16, Layers: 2, Heads: 4, Intermediate: 24,
		MaxPositions: 40, TypeVocab: 2, PadID: 0, LayerNormEps: 1e-12,
		HiddenDropout: 0.1, AttentionDropout: 0.1, ClassifierDropout: 0.1, NumLabels: 1}
	if arch == nn.XLMRoberta {
		c.TypeVocab, c.PadID, c.LayerNormEps, c.MaxPositions = 1, 1, 1e-5, 42
	}
	return c
}

// randomBatch builds n rows of at most s tokens with right padding.
func randomBatch(r *rand.Rand, c nn.Config, n, s int) *nn.Batch {
	b := &nn.Batch{N: n, S: s, InputIDs: make([]int32, n*s), TypeIDs: make([]int32, n*s), Mask: make([]int32, n*s)}
	for i := 0; i < n; i++ {
		l := s - r.IntN(s/2)
		for j := 0; j < s; j++ {
			k := i*s + j
			if j >= l {
				b.InputIDs[k] = int32(c.PadID)
				continue
			}
			b.InputIDs[k] = int32(2 + r.IntN(c.VocabSize-2))
			b.Mask[k] = 1
			if c.TypeVocab > 1 && j > l/2 {
				b.TypeIDs[k] = 1
			}
		}
	}
	return b
}

// closeRel reports the largest |a-b| / max(1, |b|).
func closeRel(a, b []float32) float64 {
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i]))/math.Max(1, math.Abs(float64(b[i]))))
	}
	return worst
}

// trainingLogits runs the training path's forward pass (package nn) in
// evaluation mode, every position of the last layer computed: the
// reference the runner's logits are checked against.
func trainingLogits(t testing.TB, m *nn.Model, b *nn.Batch) []float32 {
	t.Helper()
	logits, err := m.Forward(b, nn.RunOptions{AllPositions: true})
	require.NoError(t, err)
	return append([]float32(nil), logits...)
}

// twoLanes returns a model of shape c on a two-worker CPU backend, its
// weights drawn from seed, and its runner.
func twoLanes(t *testing.T, c nn.Config, seed uint64) (*nn.Model, *infer.Runner) {
	t.Helper()
	m, err := nn.New(cpu.NewWorkers(2), c)
	require.NoError(t, err)
	m.InitRandom(seed, 0.2)
	r, err := infer.New(m)
	require.NoError(t, err)
	return m, r
}
