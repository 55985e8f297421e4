package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkGemm compares the two CPU GEMM routes on the projection shapes
// of a MiniLM-L6 training step (16×128 tokens): OpenBLAS through cgo (the
// default build) and the pure-Go fallback (-tags noblas, or no cgo).
func BenchmarkGemm(b *testing.B) {
	shapes := []struct{ m, n, k int }{
		{2048, 1152, 384}, // fused QKV
		{2048, 1536, 384}, // intermediate
		{2048, 384, 1536}, // output
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range shapes {
		a, w, c := randVec(r, s.m*s.k, 1), randVec(r, s.n*s.k, 1), make([]float32, s.m*s.n)
		flops := 2 * float64(s.m*s.n*s.k)
		b.Run(fmt.Sprintf("%s/%dx%dx%d", GemmImpl, s.m, s.n, s.k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				sgemm(false, true, s.m, s.n, s.k, 1, a, s.k, w, s.k, 0, c, s.n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("go/%dx%dx%d", s.m, s.n, s.k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				goGemm(false, true, 0, s.m, s.n, s.k, 1, a, s.k, w, s.k, 0, c, s.n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
