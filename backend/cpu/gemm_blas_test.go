//go:build cgo && !noblas

package cpu

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestGemmRouteEnv: RERANK_CPU_GEMM=openblas forces OpenBLAS; otherwise
// the AVX-512 kernel is taken where the CPU has it.
func TestGemmRouteEnv(t *testing.T) {
	t.Setenv("RERANK_CPU_GEMM", "openblas")
	assert.Equal(t, "openblas", pickGemmRoute())
	t.Setenv("RERANK_CPU_GEMM", "")
	want := "openblas"
	if haveAVX512 {
		want = "avx512"
	}
	assert.Equal(t, want, pickGemmRoute())
	assert.Equal(t, gemmRoute, GemmRoute())
	assert.Equal(t, gemmRoute == "avx512", New().avx512)
}
