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
// quantization: under a percent of the result's scale), and its kernels
// (AVX2, and AVX-512 VNNI where the CPU has it) to the Go reference, to
// the bit, on shapes with partial row pairs, column quartets and 64-byte
// blocks, on one worker and several; and on extreme values, activations
// of 255 against weights of ±63, where the AVX2 kernel's int16 pair sums
// come closest to saturating (they would with 8-bit weights).
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
	for _, tc := range []struct {
		m, n, k int
		extreme bool
	}{
		{1, 1, 1, false}, {2, 3, 63, false}, {3, 5, 64, false}, {5, 7, 65, false}, {7, 37, 200, false},
		{64, 96, 384, false}, {300, 70, 129, false}, {45, 301, 100, false}, {5, 6, 384, true},
	} {
		name := fmt.Sprintf("%dx%dx%d", tc.m, tc.n, tc.k)
		a := randVec(r, tc.m*(tc.k+3), 1)
		w, bias := randVec(r, tc.n*tc.k, 1), randVec(r, tc.n, 1)
		if tc.extreme {
			// Each row of A quantizes to 0 then 255s; W's rows to
			// +63s, -63s, then mixed.
			name += " extreme"
			for i := 0; i < tc.m; i++ {
				for p := 0; p < tc.k; p++ {
					a[i*(tc.k+3)+p] = min(1, float32(p))
				}
			}
			for j := 0; j < tc.n; j++ {
				for p := 0; p < tc.k; p++ {
					w[j*tc.k+p] = []float32{1, -1, float32(1 - 2*(p%2))}[min(j, 2)]
				}
			}
		}
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

// TestQuantizeWeight: rows are scaled to ±63 (7 bits) by their largest
// magnitude, rounded to nearest even, the row sums are those of the int8
// values, a zero row gets scale 1, and the values lie in panels of 16
// columns by groups of 4 inputs (q8Index), the padding (inputs past k,
// columns past n) zero.
func TestQuantizeWeight(t *testing.T) {
	bk := New()
	w := []float32{0.5, -1, 0.25, 0, 0, 0, 63, 31.5, -62.5}
	qw := make(F32, bk.QuantizedSize(3, 3))
	bk.QuantizeWeight(qw, F32(w), 3, 3, 3)
	v := q8View(qw, 3, 3)
	assert.Equal(t, []float32{1.0 / 63, 1, 1}, v.scale)
	assert.Equal(t, []int32{31 - 63 + 16, 0, 63 + 32 - 62}, v.sum)
	require.Len(t, v.q, 16*64)
	want := make([]int8, 16*64)
	// Group 0 of the panel: column 0's inputs 0..3, column 1's, column 2's.
	copy(want, []int8{31, -63, 16, 0, 0, 0, 0, 0, 63, 32, -62, 0}) // 0.5·63 is 31.499998 in float32; 31.5 and -62.5 round to even
	assert.Equal(t, want, v.q)
	for _, c := range []struct{ j, p, kp, at int }{
		{0, 0, 64, 0}, {0, 3, 64, 3}, {0, 4, 64, 64}, {1, 0, 64, 4}, {15, 63, 64, 15*4 + 15*64 + 3},
		{16, 0, 64, 16 * 64}, {17, 5, 128, 16*128 + 64 + 4 + 1},
	} {
		assert.Equal(t, c.at, q8Index(c.j, c.p, c.kp), "q8Index(%d, %d, %d)", c.j, c.p, c.kp)
	}
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
					reportCPUGFLOPs(b, flops, func() {
						bk.GemmBiasPacked(s.m, s.n, s.k, F32(a), s.k, buf, F32(bias), c, s.n)
					})
				})
			}
			qw := make(F32, bk.QuantizedSize(s.n, s.k))
			bk.QuantizeWeight(qw, F32(w), s.k, s.n, s.k)
			b.Run(fmt.Sprintf("%dx%dx%d/%s/int8", s.m, s.n, s.k, route), func(b *testing.B) {
				reportCPUGFLOPs(b, flops, func() {
					bk.GemmBiasQuantized(s.m, s.n, s.k, F32(a), s.k, qw, F32(bias), c, s.n)
				})
			})
		}
	}
}
