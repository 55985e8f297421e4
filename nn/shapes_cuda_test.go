//go:build cuda

package nn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/cuda"
	"github.com/rerank-go/rerank/cuda/cudatest"
	"github.com/rerank-go/rerank/internal/nntest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

// TestOddShapesCUDA runs nntest.OddShapes on the GPU backend (go test
// -tags cuda ./nn/; on the CPU emulation with -tags cuda,cudaemu): the
// training forward and the inference runner against the float64
// reference, and every tensor's gradient against its finite difference,
// as TestOddShapesAgainstFloat64 and TestOddShapesGradients do on the CPU.
// Heads of 26, 1 and 3 values take the bounded attention kernels.
func TestOddShapesCUDA(t *testing.T) {
	cudatest.Open(t, cuda.Options{})
	for si, sh := range nntest.OddShapes() {
		t.Run(sh.Name, func(t *testing.T) {
			be := cudatest.Open(t, cuda.Options{})
			m, err := nn.New(be, sh.Cfg)
			require.NoError(t, err)
			m.InitRandom(uint64(si), 0.1)
			nntest.Perturb(m, uint64(si), 0.05)
			r := rand.New(rand.NewPCG(uint64(si), 3))
			run, err := infer.New(m)
			require.NoError(t, err)
			for _, ns := range sh.Batches {
				b := nntest.OddBatch(r, sh.Cfg, ns[0], ns[1])
				want := nntest.RefLogits(m, b)
				name := fmt.Sprintf("%dx%d", b.N, b.S)
				got, err := m.Forward(b, nn.RunOptions{AllPositions: true})
				require.NoError(t, err, name)
				assert.LessOrEqual(t, nntest.RelErr(got, want), 1e-4, "%s: training forward %v, want %v", name, got, want)
				got, err = run.Forward(b)
				require.NoError(t, err, name)
				assert.LessOrEqual(t, nntest.RelErr(got, want), 1e-4, "%s: runner %v, want %v", name, got, want)
			}
			if sh.Grad[0] == 0 {
				return
			}
			gr := rand.New(rand.NewPCG(uint64(si), 17))
			b := nntest.OddBatch(gr, sh.Cfg, sh.Grad[0], sh.Grad[1])
			dl := make([]float32, b.N*sh.Cfg.NumLabels)
			for i := range dl {
				dl[i] = float32(gr.NormFloat64())
			}
			require.NoError(t, m.EnableGrads(nil))
			fd, dirs := refDirectional(m, b, dl, gr)
			_, err = m.Forward(b, nn.RunOptions{SkipPadding: true})
			require.NoError(t, err)
			m.ZeroGrads()
			require.NoError(t, m.Backward(dl))
			for i, p := range m.Params() {
				g := make([]float32, p.Size())
				be.Download(g, p.G)
				dot := 0.0
				for j, v := range g {
					dot += float64(v) * dirs[i][j]
				}
				assert.InDelta(t, fd[i], dot, 1e-4*math.Max(1, math.Abs(fd[i])), "%s: backward %g, finite difference %g", p.Name, dot, fd[i])
			}
		})
	}
}
