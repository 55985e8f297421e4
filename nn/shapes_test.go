package nn_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/nntest"
	"github.com/rerank-go/rerank/nn"
)

// TestOddShapesGradients checks the training path's backward pass at the
// shapes of real Hub rerankers and edge shapes (nntest.OddShapes: heads of
// 26, 1 and 3 values, hidden 312 and 128, intermediate 1200, two labels,
// XLM-R with 8194 positions; rows of 1 token up), on every GEMM route this
// CPU has, stored and tiled attention (tile 5), padded and packed: for
// every parameter tensor, the gradient's component along a random
// direction against a central finite difference of nntest.RefLogits (a
// float64 forward pass written from transformers' definition), so that
// neither side shares code with the other.
func TestOddShapesGradients(t *testing.T) {
	for si, sh := range nntest.OddShapes() {
		if sh.Grad[0] == 0 {
			continue
		}
		t.Run(sh.Name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(si), 17))
			b := nntest.OddBatch(r, sh.Cfg, sh.Grad[0], sh.Grad[1])
			dl := make([]float32, b.N*sh.Cfg.NumLabels)
			for i := range dl {
				dl[i] = float32(r.NormFloat64())
			}
			// fd[i] is d(Σ dl·logits) along dirs[i], a random direction
			// within parameter tensor i, in float64.
			var fd []float64
			var dirs [][]float64
			for ri, route := range cpu.GemmRoutes() {
				be, err := cpu.NewWithOptions(cpu.Options{Workers: 2, Gemm: route})
				require.NoError(t, err)
				m, err := nn.New(be, sh.Cfg)
				require.NoError(t, err)
				m.InitRandom(uint64(si), 0.1)
				nntest.Perturb(m, uint64(si), 0.05)
				require.NoError(t, m.EnableGrads(nil))
				if ri == 0 {
					fd, dirs = refDirectional(m, b, dl, r)
				}
				for _, tc := range []struct {
					name string
					o    nn.RunOptions
					att  nn.AttentionOptions
				}{
					{"stored", nn.RunOptions{}, nn.AttentionOptions{Mode: nn.AttentionStored}},
					{"tiled, packed", nn.RunOptions{SkipPadding: true}, nn.AttentionOptions{Mode: nn.AttentionTiled, Tile: 5}},
				} {
					m.Attention = tc.att
					_, err := m.Forward(b, tc.o)
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
						assert.InDelta(t, fd[i], dot, 2e-5*math.Max(1, math.Abs(fd[i])), "%s, %s: %s: backward %g, finite difference %g",
							route, tc.name, p.Name, dot, fd[i])
					}
				}
			}
		})
	}
}

// refDirectional returns, for each parameter tensor of m, a random unit
// direction within it and the central finite difference of Σ dl·logits
// along it, in float64.
func refDirectional(m *nn.Model, b *nn.Batch, dl []float32, r *rand.Rand) (fd []float64, dirs [][]float64) {
	const h = 1e-4
	for _, p := range m.Params() {
		w := make([]float32, p.Size())
		m.Backend().Download(w, p.W)
		d := make([]float64, len(w))
		norm := 0.0
		for j := range d {
			d[j] = r.NormFloat64()
			norm += d[j] * d[j]
		}
		for j := range d {
			d[j] /= math.Sqrt(norm)
		}
		at := func(s float64) float64 {
			v := make([]float64, len(w))
			for j := range v {
				v[j] = float64(w[j]) + s*d[j]
			}
			sum := 0.0
			for i, l := range nntest.RefLogitsWith(m, b, map[*nn.Param][]float64{p: v}) {
				sum += float64(dl[i]) * l
			}
			return sum
		}
		fd = append(fd, (at(h)-at(-h))/(2*h))
		dirs = append(dirs, d)
	}
	return fd, dirs
}
