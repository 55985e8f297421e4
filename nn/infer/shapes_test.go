package infer_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/nntest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

// TestOddShapesAgainstFloat64 runs the shapes of real Hub rerankers and
// edge shapes (nntest.OddShapes: heads of 26, 1 and 3 values, hidden 312 and
// 128, intermediate 1200, two labels, XLM-R with 8194 positions; batches of
// 1, 2, 3, 17 rows of 1 to 37 tokens) through every scoring path on every
// GEMM route this CPU has, and checks each against nntest.RefLogits, a
// float64 forward pass written from transformers' definition alone:
//
//	path                                   bound (largest |Δ| / max(1, |ref|))
//	training forward, all positions        1e-4
//	training forward, padding skipped      1e-4
//	runner (lanes, last layer at pos. 0)   1e-4
//	runner, weights packed                 1e-4
//	runner, tiled attention (tile 5)       1e-4
//	runner, int8 (default route only)      0.15 RMS |Δ| / max(1, RMS ref), TestQuantizeWeights' bound
func TestOddShapesAgainstFloat64(t *testing.T) {
	const tol = 1e-4
	for si, sh := range nntest.OddShapes() {
		t.Run(sh.Name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(si), 3))
			batches := make([]*nn.Batch, len(sh.Batches))
			for i, ns := range sh.Batches {
				batches[i] = nntest.OddBatch(r, sh.Cfg, ns[0], ns[1])
			}
			var want [][]float64
			for ri, route := range cpu.GemmRoutes() {
				be, err := cpu.NewWithOptions(cpu.Options{Workers: 2, Gemm: route})
				require.NoError(t, err)
				m, err := nn.New(be, sh.Cfg)
				require.NoError(t, err)
				m.InitRandom(uint64(si), 0.1)
				nntest.Perturb(m, uint64(si), 0.05)
				if want == nil {
					for _, b := range batches {
						want = append(want, nntest.RefLogits(m, b))
					}
				}
				run, err := infer.New(m)
				require.NoError(t, err)
				for bi, b := range batches {
					name := fmt.Sprintf("%s %dx%d", route, b.N, b.S)
					check := func(what string, got []float32, err error) {
						t.Helper()
						require.NoError(t, err, "%s: %s", name, what)
						require.Len(t, got, len(want[bi]), "%s: %s", name, what)
						assert.LessOrEqual(t, nntest.RelErr(got, want[bi]), tol, "%s: %s: %v, want %v", name, what, got, want[bi])
					}
					got, err := m.Forward(b, nn.RunOptions{AllPositions: true})
					check("training forward", got, err)
					got, err = m.Forward(b, nn.RunOptions{SkipPadding: true})
					check("training forward, padding skipped", got, err)
					got, err = run.Forward(b)
					check("runner", got, err)

					m.Attention = nn.AttentionOptions{Mode: nn.AttentionTiled, Tile: 5}
					got, err = run.Forward(b)
					check("runner, tiled attention", got, err)
					m.Attention = nn.AttentionOptions{}

					release, err := run.PackWeights(-1)
					require.NoError(t, err)
					got, err = run.Forward(b)
					check("runner, packed", got, err)
					release()

					if ri > 0 {
						continue
					}
					release, err = run.QuantizeWeights()
					require.NoError(t, err)
					got, err = run.Forward(b)
					require.NoError(t, err)
					// Absolute RMS error over max(1, RMS logit): a random
					// model's logits near 0 carry the same absolute error.
					var num, den float64
					for i, w := range want[bi] {
						d := float64(got[i]) - w
						num, den = num+d*d, den+w*w
					}
					n := float64(len(want[bi]))
					rel := math.Sqrt(num/n) / math.Max(1, math.Sqrt(den/n))
					t.Logf("%s: int8 error %.4f", name, rel)
					assert.Less(t, rel, 0.15, "%s: int8: %v, want %v", name, slices.Clone(got), want[bi])
					release()
				}
			}
		})
	}
}

// TestPadIDInText: a text may hold the padding token itself (XLM-R's
// tokenizer reads a literal "<pad>" as id 1, with attention mask 1). As
// transformers does, such a token attends and is attended to, and XLM-R
// gives it position padding_idx without counting it (positions come from
// the ids); every path agrees with the float64 reference.
func TestPadIDInText(t *testing.T) {
	for _, arch := range []nn.Arch{nn.BERT, nn.XLMRoberta} {
		t.Run(arch.String(), func(t *testing.T) {
			c := nntest.TinyConfig(arch)
			m, err := nn.New(cpu.NewWorkers(2), c)
			require.NoError(t, err)
			m.InitRandom(4, 0.2)
			nntest.Perturb(m, 4, 0.05)
			b := nntest.OddBatch(rand.New(rand.NewPCG(1, 9)), c, 5, 9)
			for _, k := range []int{2*9 + 1, 3*9 + 4, 4*9 + 8} { // inside rows (the last one its final token)
				b.InputIDs[k], b.Mask[k] = int32(c.PadID), 1
			}
			require.Equal(t, int32(1), b.Mask[2*9+1], "row 2 is long enough")
			want := nntest.RefLogits(m, b)
			got, err := m.Forward(b, nn.RunOptions{AllPositions: true})
			require.NoError(t, err)
			assert.LessOrEqual(t, nntest.RelErr(got, want), 1e-5, "training forward")
			got, err = m.Forward(b, nn.RunOptions{SkipPadding: true})
			require.NoError(t, err)
			assert.LessOrEqual(t, nntest.RelErr(got, want), 1e-5, "training forward, padding skipped")
			run, err := infer.New(m)
			require.NoError(t, err)
			got, err = run.Forward(b)
			require.NoError(t, err)
			assert.LessOrEqual(t, nntest.RelErr(got, want), 1e-5, "runner")
		})
	}
}
