//go:build !cgo || noblas

package cpu

import "github.com/rerank-go/rerank/backend"

// GemmImpl names the matrix-product route this build uses.
const GemmImpl = "go"

// Gemm implements backend.Backend.
func (bk *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a backend.Buf, lda int, b backend.Buf, ldb int, beta float32, c backend.Buf, ldc int) {
	bk.gemmPar(transA, transB, m, n, k, alpha, f(a), lda, f(b), ldb, beta, f(c), ldc)
}

func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	goGemm(transA, transB, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
