package infer_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/nntest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

func tinyConfig(arch nn.Arch) nn.Config { return nntest.TinyConfig(arch) }

// randomBatch builds n rows of at most s tokens with right padding.
func randomBatch(r *rand.Rand, c nn.Config, n, s int) *nn.Batch {
	return nntest.RandomBatch(r, c, n, s)
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
