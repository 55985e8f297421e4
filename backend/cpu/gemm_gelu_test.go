package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGemmBiasGelu holds the products with GELU in their epilogue
// (backend.BiasGeluGemmer) to the product then Gelu in two passes, to the
// bit, on every route this build and CPU can take, on one worker and
// several: with the weight as it is, packed and quantized; writing the
// pre-activation too (training), only the activation (inference), and
// both into one buffer; on shapes with partial tiles and panels, two
// k-blocks (the GELU only after the last) and splits across workers. On
// the blocked kernels the fusion must really be taken.
func TestGemmBiasGelu(t *testing.T) {
	for _, route := range []string{GemmAVX512, GemmAVX2, GemmOpenBLAS, GemmGo} {
		t.Run(route, func(t *testing.T) {
			if _, err := NewWithOptions(Options{Workers: 1, Gemm: route}); err != nil {
				t.Skipf("skipped: %v", err)
			}
			for _, tc := range []struct{ m, n, k int }{
				{1, 1, 1}, {7, 17, 33}, {37, 45, 33}, {130, 96, 768}, {300, 256, 384}, {13, 1536, 384},
			} {
				r := rand.New(rand.NewPCG(uint64(tc.m), uint64(tc.n)))
				m, n, k := tc.m, tc.n, tc.k
				// Scaled so that the GELU sees its whole range, tails
				// included.
				a, w, bias := randVec(r, m*k, 2), randVec(r, n*k, 2), randVec(r, n, 2)
				for _, workers := range []int{1, 3} {
					name := fmt.Sprintf("%dx%dx%d/%d workers", m, n, k, workers)
					bk, err := NewWithOptions(Options{Workers: workers, Gemm: route})
					require.NoError(t, err)
					if bk.kern != nil {
						require.True(t, bk.geluFused(k), "%s: the %s kernel must take the GELU in its epilogue", name, route)
					}
					if route == GemmAVX2 {
						require.False(t, bk.geluWide(), "the avx2 route stands in for a CPU without AVX-512: its GELU too")
					}
					// check computes the unfused result, prod into pre0
					// then Gelu into act0, and holds fused to it (a nil
					// pre is "activation only").
					check := func(what string, prod func(c F32), fused func(pre, act F32)) {
						pre0, act0 := make(F32, m*n), make(F32, m*n)
						prod(pre0)
						bk.Gelu(act0, pre0)
						pre, act := nanVec(m*n), nanVec(m*n)
						fused(pre, act)
						require.Truef(t, sameBits(pre0, pre), "%s %s: the pre-activation differs from the two passes'", name, what)
						require.Truef(t, sameBits(act0, act), "%s %s: gelu differs from the two passes'", name, what)
						act = nanVec(m * n)
						fused(nil, act)
						require.Truef(t, sameBits(act0, act), "%s %s, activation only: gelu differs from the two passes'", name, what)
						act = nanVec(m * n)
						fused(act, act)
						require.Truef(t, sameBits(act0, act), "%s %s, pre and act one buffer: gelu differs from the two passes'", name, what)
					}
					check("GemmBiasGelu", func(c F32) {
						bk.GemmBias(m, n, k, F32(a), k, F32(w), k, F32(bias), c, n)
					}, func(pre, act F32) {
						bk.GemmBiasGelu(m, n, k, F32(a), k, F32(w), k, F32(bias), pre, act, n)
					})
					if size := bk.PackedSize(n, k); size > 0 {
						pw := make(F32, size)
						bk.PackWeight(pw, F32(w), k, n, k)
						check("GemmBiasPackedGelu", func(c F32) {
							bk.GemmBiasPacked(m, n, k, F32(a), k, pw, F32(bias), c, n)
						}, func(pre, act F32) {
							bk.GemmBiasPackedGelu(m, n, k, F32(a), k, pw, F32(bias), pre, act, n)
						})
					}
					qw := make(F32, bk.QuantizedSize(n, k))
					bk.QuantizeWeight(qw, F32(w), k, n, k)
					check("GemmBiasQuantizedGelu", func(c F32) {
						bk.GemmBiasQuantized(m, n, k, F32(a), k, qw, F32(bias), c, n)
					}, func(pre, act F32) {
						bk.GemmBiasQuantizedGelu(m, n, k, F32(a), k, qw, F32(bias), pre, act, n)
					})
				}
			}
		})
	}
}

// nanVec returns n NaNs: what a product must overwrite.
func nanVec(n int) F32 {
	v := make(F32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return v
}

// BenchmarkGemmBiasGelu compares MiniLM's first feed-forward product (2048
// tokens × 384 → 1536) with the GELU in its epilogue against the product
// then Gelu, on one worker, on each blocked kernel: inference (packed
// weight, the activation only, in place) and training (the weight as it
// is, pre-activation and activation).
//
//	go test ./backend/cpu -run XXX -bench GemmBiasGelu -count 3
func BenchmarkGemmBiasGelu(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	m, n, k := 2048, 1536, 384
	a, w, bias := F32(randVec(r, m*k, 1)), F32(randVec(r, n*k, 1)), F32(randVec(r, n, 1))
	pre, act := make(F32, m*n), make(F32, m*n)
	flops := 2 * float64(m*n*k)
	for _, route := range []string{GemmAVX512, GemmAVX2} {
		bk, err := NewWithOptions(Options{Workers: 1, Gemm: route})
		if err != nil {
			continue
		}
		pw := make(F32, bk.PackedSize(n, k))
		bk.PackWeight(pw, w, k, n, k)
		for _, bc := range []struct {
			name string
			run  func()
		}{
			{"infer/two-pass", func() {
				bk.GemmBiasPacked(m, n, k, a, k, pw, bias, act, n)
				bk.Gelu(act, act)
			}},
			{"infer/fused", func() { bk.GemmBiasPackedGelu(m, n, k, a, k, pw, bias, nil, act, n) }},
			{"train/two-pass", func() {
				bk.GemmBias(m, n, k, a, k, w, k, bias, pre, n)
				bk.Gelu(act, pre)
			}},
			{"train/fused", func() { bk.GemmBiasGelu(m, n, k, a, k, w, k, bias, pre, act, n) }},
		} {
			b.Run(route+"/"+bc.name, func(b *testing.B) {
				reportCPUGFLOPs(b, flops, func() {
					bc.run()
				})
			})
		}
	}
}
