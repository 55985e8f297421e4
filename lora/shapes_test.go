package lora_test

import (
	"fmt"
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
