//go:build cuda

package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/cuda"
	"github.com/rerank-go/rerank/cuda/cudatest"
	"github.com/rerank-go/rerank/nn"
)

// TestAdapterCUDA runs one adapter's forward and backward, and a merge
// and unmerge, on the GPU backend and on the CPU backend with the same
// inputs (strided like the model's Q/K/V buffer, with and without LoRA
// dropout) and compares every output.
func TestAdapterCUDA(t *testing.T) {
	cases := []struct {
		name              string
		rows, in, out, r  int
		padX, padY, padDX int
		dropout           float32
		train             bool
	}{
		{"qkv_like", 64, 32, 32, 4, 0, 64, 0, 0, false},
		{"ffn_like_dropout", 50, 32, 96, 8, 0, 0, 0, 0.1, true},
		{"strided_dropout", 33, 24, 40, 3, 5, 7, 3, 0.3, true},
		{"dropout_in_eval", 17, 16, 16, 2, 0, 0, 0, 0.5, false},
	}
	gpu := cudatest.Open(t, cuda.Options{})
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 3))
			vec := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				return v
			}
			ldx, ldy, lddx := tc.in+tc.padX, tc.out+tc.padY, tc.in+tc.padDX
			x, y0, dy, dx0 := vec(tc.rows*ldx), vec(tc.rows*ldy), vec(tc.rows*ldy), vec(tc.rows*lddx)
			a, b, w := vec(tc.r*tc.in), vec(tc.out*tc.r), vec(tc.out*tc.in)
			type result struct{ y, dx, dA, dB, merged, unmerged []float32 }
			run := func(be backend.Backend) result {
				ad, err := newStandalone(be, "m", tc.in, tc.out, tc.r, 2, tc.dropout)
				require.NoError(t, err)
				up := func(v []float32) backend.Buf {
					buf, err := be.Alloc(len(v))
					require.NoError(t, err)
					be.Upload(buf, v)
					return buf
				}
				down := func(buf backend.Buf) []float32 {
					v := make([]float32, buf.Len())
					be.Download(v, buf)
					return v
				}
				be.Upload(ad.A.W, a)
				be.Upload(ad.B.W, b)
				xb, yb, dyb, dxb, wb := up(x), up(y0), up(dy), up(dx0), up(w)
				require.NoError(t, ad.Forward(be, nn.AdapterForward{X: xb, LDX: ldx, Y: yb, LDY: ldy, Rows: tc.rows, Train: tc.train, Seed: 99}))
				require.NoError(t, ad.Backward(be, nn.AdapterBackward{X: xb, LDX: ldx, DY: dyb, LDDY: ldy, DX: dxb, LDDX: lddx, Rows: tc.rows, Train: tc.train, Seed: 99}))
				var r result
				r.y, r.dx, r.dA, r.dB = down(yb), down(dxb), down(ad.A.G), down(ad.B.G)
				be.LoraMerge(wb, ad.A.W, ad.B.W, tc.out, tc.in, tc.r, ad.Scaling)
				r.merged = down(wb)
				be.LoraMerge(wb, ad.A.W, ad.B.W, tc.out, tc.in, tc.r, -ad.Scaling)
				r.unmerged = down(wb)
				require.NoError(t, be.Sync())
				return r
			}
			want, got := run(cpu.New()), run(gpu)
			for _, c := range []struct {
				name      string
				want, got []float32
			}{{"y", want.y, got.y}, {"dx", want.dx, got.dx}, {"dA", want.dA, got.dA}, {"dB", want.dB, got.dB},
				{"merged", want.merged, got.merged}, {"unmerged", want.unmerged, got.unmerged}} {
				require.Len(t, c.got, len(c.want), c.name)
				worst := 0.0
				for i := range c.want {
					worst = math.Max(worst, math.Abs(float64(c.want[i]-c.got[i]))/(1+math.Abs(float64(c.want[i]))))
				}
				assert.LessOrEqual(t, worst, 1e-4, fmt.Sprintf("%s: max relative diff GPU vs CPU", c.name))
			}
		})
	}
}
