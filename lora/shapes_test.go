package lora_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/nntest"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

// TestOddShapesAdapters: LoRA adapters of odd rank (3) on every linear
// layer, at the shapes of nntest.OddShapes (heads of 26, 1 and 3 values,
// hidden 312 and 128, intermediate 1200, two labels, 8194 positions), on
// every GEMM route: the unmerged model (training forward, and the
// inference runner) gives the float64 reference's logits of the merged
// weights (nntest.RefLogits after Merge), to 1e-4.
func TestOddShapesAdapters(t *testing.T) {
	for si, sh := range nntest.OddShapes() {
		if sh.Grad[0] == 0 {
			continue // the widest shapes: TestOddShapesAgainstFloat64 covers their products
		}
		t.Run(sh.Name, func(t *testing.T) {
			b := nntest.OddBatch(rand.New(rand.NewPCG(uint64(si), 5)), sh.Cfg, sh.Grad[0], sh.Grad[1])
			for _, route := range cpu.GemmRoutes() {
				be, err := cpu.NewWithOptions(cpu.Options{Workers: 2, Gemm: route})
				require.NoError(t, err)
				m, err := nn.New(be, sh.Cfg)
				require.NoError(t, err)
				m.InitRandom(uint64(si), 0.1)
				base := nntest.RefLogits(m, b)
				a, err := lora.Attach(m, lora.Config{R: 3, Alpha: 5, TargetModules: []string{"query", "key", "value", "dense"}}, 7)
				require.NoError(t, err)
				r := rand.New(rand.NewPCG(9, uint64(si)))
				for _, p := range a.Params() { // lora_B starts at zero
					v := make([]float32, p.Size())
					for i := range v {
						v[i] = float32(r.NormFloat64() * 0.1)
					}
					be.Upload(p.W, v)
				}
				run, err := infer.New(m)
				require.NoError(t, err)
				train, err := m.Forward(b, nn.RunOptions{AllPositions: true})
				require.NoError(t, err)
				train = append([]float32(nil), train...)
				scored, err := run.Forward(b)
				require.NoError(t, err)
				scored = append([]float32(nil), scored...)
				require.NoError(t, a.Merge())
				want := nntest.RefLogits(m, b)
				assert.Greater(t, nntest.RelErr(float32s(base), want), 1e-3, "the adapters change the logits")
				name := fmt.Sprintf("%s %dx%d", route, b.N, b.S)
				assert.LessOrEqual(t, nntest.RelErr(train, want), 1e-4, "%s: training forward %v, want %v", name, train, want)
				assert.LessOrEqual(t, nntest.RelErr(scored, want), 1e-4, "%s: runner %v, want %v", name, scored, want)
			}
		})
	}
}

func float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// TestOddShapesAdapterGradients: at the shapes of nntest.OddShapes, on
// every GEMM route, the gradient of every trainable tensor of rank-3
// adapters on every linear layer (lora_A, lora_B and the head PEFT trains)
// along a random direction is the central finite difference, in float64,
// of nntest.RefLogits over the merged weights W + scaling·B·A.
func TestOddShapesAdapterGradients(t *testing.T) {
	for si, sh := range nntest.OddShapes() {
		if sh.Grad[0] == 0 {
			continue
		}
		t.Run(sh.Name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(si), 23))
			b := nntest.OddBatch(r, sh.Cfg, sh.Grad[0], sh.Grad[1])
			dl := make([]float32, b.N*sh.Cfg.NumLabels)
			for i := range dl {
				dl[i] = float32(r.NormFloat64())
			}
			var fd []float64
			var dirs [][]float64
			for ri, route := range cpu.GemmRoutes() {
				be, err := cpu.NewWithOptions(cpu.Options{Workers: 2, Gemm: route})
				require.NoError(t, err)
				m, err := nn.New(be, sh.Cfg)
				require.NoError(t, err)
				m.InitRandom(uint64(si), 0.1)
				a, err := lora.Attach(m, lora.Config{R: 3, Alpha: 5, TargetModules: []string{"query", "key", "value", "dense"}}, 7)
				require.NoError(t, err)
				rr := rand.New(rand.NewPCG(9, uint64(si)))
				for _, p := range a.Params() {
					v := make([]float32, p.Size())
					for i := range v {
						v[i] = float32(rr.NormFloat64() * 0.1)
					}
					be.Upload(p.W, v)
				}
				if ri == 0 {
					fd, dirs = adapterDirectional(t, m, a, b, dl, r)
				}
				_, err = m.Forward(b, nn.RunOptions{SkipPadding: true})
				require.NoError(t, err)
				m.ZeroGrads()
				a.ZeroGrads()
				require.NoError(t, m.Backward(dl))
				for i, p := range a.Trainable() {
					g := make([]float32, p.Size())
					be.Download(g, p.G)
					dot := 0.0
					for j, v := range g {
						dot += float64(v) * dirs[i][j]
					}
					assert.InDelta(t, fd[i], dot, 2e-5*max(1, abs(fd[i])), "%s: %s: backward %g, finite difference %g", route, p.Name, dot, fd[i])
				}
			}
		})
	}
}

func abs(x float64) float64 { return max(x, -x) }

// adapterDirectional returns, for each trainable tensor of a, a random
// unit direction within it and the central finite difference of
// Σ dl·logits along it, in float64 over the merged weights.
func adapterDirectional(t *testing.T, m *nn.Model, a *lora.Adapters, b *nn.Batch, dl []float32, r *rand.Rand) (fd []float64, dirs [][]float64) {
	get := func(p *nn.Param) []float64 { return nntest.Float64s(m, p) }
	linear := map[string]*nn.Linear{}
	for _, l := range m.Linears() {
		linear[l.Name] = l
	}
	vals := map[*nn.Param][]float64{}
	for _, p := range a.Trainable() {
		vals[p] = get(p)
	}
	// merged is the float64 override of every wrapped weight and of the
	// trainable tensors that are weights themselves (the head), at vals.
	merged := func() map[*nn.Param][]float64 {
		over := map[*nn.Param][]float64{}
		for _, ad := range a.List() {
			l := linear[ad.Module]
			require.NotNil(t, l, ad.Module)
			w := get(l.W)
			if v, ok := vals[l.W]; ok {
				w = append([]float64(nil), v...)
			}
			A, B := vals[ad.A], vals[ad.B]
			for o := 0; o < ad.Out; o++ {
				for i := 0; i < ad.In; i++ {
					s := 0.0
					for k := 0; k < ad.R; k++ {
						s += B[o*ad.R+k] * A[k*ad.In+i]
					}
					w[o*ad.In+i] += float64(ad.Scaling) * s
				}
			}
			over[l.W] = w
		}
		for p, v := range vals {
			if _, ok := over[p]; !ok {
				over[p] = v
			}
		}
		return over
	}
	const h = 1e-4
	for _, p := range a.Trainable() {
		base := vals[p]
		d := make([]float64, len(base))
		norm := 0.0
		for j := range d {
			d[j] = r.NormFloat64()
			norm += d[j] * d[j]
		}
		at := func(s float64) float64 {
			v := make([]float64, len(base))
			for j := range v {
				v[j] = base[j] + s*d[j]/math.Sqrt(norm)
			}
			vals[p] = v
			defer func() { vals[p] = base }()
			sum := 0.0
			for i, l := range nntest.RefLogitsWith(m, b, merged()) {
				sum += float64(dl[i]) * l
			}
			return sum
		}
		fd = append(fd, (at(h)-at(-h))/(2*h))
		for j := range d {
			d[j] /= math.Sqrt(norm)
		}
		dirs = append(dirs, d)
	}
	return fd, dirs
}
