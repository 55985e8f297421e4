package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestGemmBias: the one-pass Linear forward equals Gemm then AddBias, on
// shapes below and above the split threshold.
func TestGemmBias(t *testing.T) {
	for _, tc := range []struct{ m, n, k int }{{3, 5, 7}, {300, 200, 40}, {513, 96, 64}} {
		r := rand.New(rand.NewPCG(uint64(tc.m), 1))
		a, w, b := randVec(r, tc.m*tc.k, 1), randVec(r, tc.n*tc.k, 1), randVec(r, tc.n, 1)
		be := New()
		want := make(F32, tc.m*tc.n)
		be.Gemm(false, true, tc.m, tc.n, tc.k, 1, F32(a), tc.k, F32(w), tc.k, 0, want, tc.n)
		be.AddBias(want, F32(b), tc.m, tc.n)
		got := make(F32, tc.m*tc.n)
		be.GemmBias(tc.m, tc.n, tc.k, F32(a), tc.k, F32(w), tc.k, F32(b), got, tc.n)
		assertGrad(t, fmt.Sprintf("%dx%dx%d", tc.m, tc.n, tc.k), to64(want), got, 1e-5)
	}
}
