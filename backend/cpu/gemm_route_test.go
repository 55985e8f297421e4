package cpu

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGemmRouteChoice: the option forces each route this build and CPU
// can take (the others are errors that name what it can take), New reads
// RERANK_CPU_GEMM, and without either a backend takes the first of
// GemmRoutes.
func TestGemmRouteChoice(t *testing.T) {
	have := GemmRoutes()
	t.Logf("routes here: %v", have)
	require.Equal(t, GemmGo, have[len(have)-1], "pure Go is always a route")
	t.Setenv(GemmEnv, "")
	assert.Equal(t, have[0], New().GemmRoute())
	assert.Equal(t, have[0], GemmRoute())
	for _, r := range []string{GemmAVX512, GemmAVX2, GemmOpenBLAS, GemmGo} {
		bk, err := NewWithOptions(Options{Workers: 2, Gemm: r})
		if slices.Contains(have, r) != (err == nil) {
			t.Errorf("%s: err %v, routes %v", r, err, have)
			continue
		}
		if err != nil {
			t.Logf("skipped %s: %v", r, err)
			continue
		}
		assert.Equal(t, r, bk.GemmRoute())
		assert.Equal(t, r == GemmAVX512 || r == GemmAVX2, bk.PackedSize(8, 8) > 0, r)
		t.Setenv(GemmEnv, r)
		assert.Equal(t, r, New().GemmRoute(), "RERANK_CPU_GEMM=%s", r)
		assert.Equal(t, r, GemmRoute())
	}
	_, err := NewWithOptions(Options{Gemm: "mkl"})
	assert.ErrorContains(t, err, `unknown GEMM route "mkl"`)
	t.Setenv(GemmEnv, "mkl")
	assert.Equal(t, have[0], New().GemmRoute(), "an unknown route in the environment is ignored")
}

// TestGemmEveryRoute holds Gemm and GemmBias on every route
// this build and CPU can take to the pure-Go reference, on shapes with
// partial tiles, and says which routes it skipped.
func TestGemmEveryRoute(t *testing.T) {
	ref := &Backend{workers: 1, route: GemmGo}
	for _, route := range []string{GemmAVX512, GemmAVX2, GemmOpenBLAS, GemmGo} {
		t.Run(route, func(t *testing.T) {
			bk, err := NewWithOptions(Options{Workers: 2, Gemm: route})
			if err != nil {
				t.Skipf("skipped: %v", err)
			}
			for _, tc := range []struct{ m, n, k int }{{1, 1, 1}, {7, 17, 33}, {515, 257, 129}} {
				r := rand.New(rand.NewPCG(uint64(tc.m), 2))
				m, n, k := tc.m, tc.n, tc.k
				a, w, bias := randVec(r, m*k, 1), randVec(r, n*k, 1), randVec(r, n, 1)
				name := fmt.Sprintf("%dx%dx%d", m, n, k)
				want, got := make(F32, m*n), make(F32, m*n)
				ref.GemmBias(m, n, k, F32(a), k, F32(w), k, F32(bias), want, n)
				bk.GemmBias(m, n, k, F32(a), k, F32(w), k, F32(bias), got, n)
				assertGrad(t, name+" GemmBias", to64(want), got, 1e-4)
				// A weight gradient, dW += dYᵀ·X: A transposed, beta 1.
				dy, dw := randVec(r, m*n, 1), randVec(r, n*k, 1)
				wantW, gotW := append(F32(nil), dw...), append(F32(nil), dw...)
				ref.Gemm(true, false, n, k, m, 1, F32(dy), n, F32(a), k, 1, wantW, k)
				bk.Gemm(true, false, n, k, m, 1, F32(dy), n, F32(a), k, 1, gotW, k)
				assertGrad(t, name+" Gemm transA", to64(wantW), gotW, 1e-4)
				ref.Gemm(false, true, m, n, k, 0.5, F32(a), k, F32(w), k, 0, want, n)
				bk.Gemm(false, true, m, n, k, 0.5, F32(a), k, F32(w), k, 0, got, n)
				assertGrad(t, name+" Gemm", to64(want), got, 1e-4)
			}
		})
	}
}
