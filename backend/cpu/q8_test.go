package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQ8Gemm holds the int8 product to the float64 product (the error of
// quantization: a few tenths of a percent of the result's scale), and its
// kernels (AVX2, and AVX-512 VNNI where the CPU has it) to the Go
// reference, to the bit, on shapes with partial row pairs, column
// quartets and 64-byte blocks, on one worker and several.
func TestQ8Gemm(t *testing.T) {
	paths := []struct {
		name      string
		goRef     bool
		vnni, run bool
	}{
		{"go", true, false, true},
		{"avx2", false, false, q8Kernels(false)},
		{"vnni", false, true, q8Kernels(false) && haveVNNI},
	}
	r := rand.New(rand.NewPCG(5, 5))
	for _, tc := range []struct{ m, n, k int }{
		{1, 1, 1}, {2, 3, 63}, {3, 5, 64}, {5, 7, 65}, {7, 37, 200}, {64, 96, 384}, {300, 70, 129}, {45, 301, 100},
	} {
		name := fmt.Sprintf("%dx%dx%d", tc.m, tc.n, tc.k)
		a := randVec(r, tc.m*(tc.k+3), 1)
		w, bias := randVec(r, tc.n*tc.k, 1), randVec(r, tc.n, 1)
		want, scale := refGemmFull(false, true, gemmCase{m: tc.m, n: tc.n, k: tc.k, alpha: 1}, a, tc.k+3, w, tc.k, nil, 0, bias)
		var first []float32
		for _, p := range paths {
			if !p.run {
				t.Logf("%s: skipped the %s kernel: not on this CPU or in this build", name, p.name)
				continue
			}
			for _, workers := range []int{1, 3} {
				bk := &Backend{workers: workers, route: GemmOpenBLAS, q8Go: p.goRef, q8NoVNNI: !p.vnni}
				qw := make(F32, bk.QuantizedSize(tc.n, tc.k))
				bk.QuantizeWeight(qw, F32(w), tc.k, tc.n, tc.k)
				got := make(F32, tc.m*tc.n)
				bk.GemmBiasQuantized(tc.m, tc.n, tc.k, F32(a), tc.k+3, qw, F32(bias), got, tc.n)
				if first == nil {
					first = got
					var num, den float64
					for i, g := range got {
						num += (float64(g) - want[i]) * (float64(g) - want[i])
						den += scale[i] * scale[i]
					}
					require.Less(t, math.Sqrt(num/den), 0.01, "%s: int8 error relative to the sums of |a·w|", name)
					continue
				}
				require.Truef(t, sameBits(first, got), "%s: %s on %d workers differs from the Go reference", name, p.name, workers)
			}
		}
	}
}

// TestQuantizeWeight: rows are scaled to ±127 by their largest magnitude,
// the row sums are those of the int8 values, the padding is zero, and a
// zero row gets scale 1.
func TestQuantizeWeight(t *testing.T) {
	bk := New()
	w := []float32{0.5, -1, 0.25, 0, 0, 0, 2, 1, -2}
	qw := make(F32, bk.QuantizedSize(3, 3))
	bk.QuantizeWeight(qw, F32(w), 3, 3, 3)
	v := q8View(qw, 3, 3)
	assert.Equal(t, []float32{1.0 / 127, 1, 2.0 / 127}, v.scale)
	assert.Equal(t, []int8{64, -127, 32}, v.q[:3]) // 63.5 rounds to even
	assert.Equal(t, []int8{0, 0, 0}, v.q[64:67])
	assert.Equal(t, []int8{127, 64, -127}, v.q[128:131]) // 63.5 again
	assert.Equal(t, []int32{64 - 127 + 32, 0, 64}, v.sum)
	assert.Equal(t, make([]int8, 61), v.q[3:64])
}

// BenchmarkQ8 compares the int8 product with the float32 one on a packed
// weight, on one worker, for MiniLM's FFN shapes (2048 tokens).
//
//	go test ./backend/cpu -run XXX -bench Q8 -count 3
func BenchmarkQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct{ m, n, k int }{{2048, 1536, 384}, {2048, 384, 1536}} {
		a, w, bias, c := randVec(r, s.m*s.k, 1), randVec(r, s.n*s.k, 1), randVec(r, s.n, 1), make(F32, s.m*s.n)
		for _, route := range GemmRoutes() {
			if route == GemmGo {
				continue
			}
			bk, _ := NewWithOptions(Options{Workers: 1, Gemm: route})
			flops := 2 * float64(s.m*s.n*s.k)
			if pw := bk.PackedSize(s.n, s.k); pw > 0 {
				buf := make(F32, pw)
				bk.PackWeight(buf, F32(w), s.k, s.n, s.k)
				b.Run(fmt.Sprintf("%dx%dx%d/%s/fp32", s.m, s.n, s.k, route), func(b *testing.B) {
					for range b.N {
						bk.GemmBiasPacked(s.m, s.n, s.k, F32(a), s.k, buf, F32(bias), c, s.n)
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
			qw := make(F32, bk.QuantizedSize(s.n, s.k))
			bk.QuantizeWeight(qw, F32(w), s.k, s.n, s.k)
			b.Run(fmt.Sprintf("%dx%dx%d/%s/int8", s.m, s.n, s.k, route), func(b *testing.B) {
				for range b.N {
					bk.GemmBiasQuantized(s.m, s.n, s.k, F32(a), s.k, qw, F32(bias), c, s.n)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
