//go:build !cgo || noblas

package cpu

// baseRoute is the route of products that take no blocked kernel: pure
// Go in this build.
const baseRoute = GemmGo

// baseSgemm is the pure-Go product on the calling goroutine.
func baseSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	goGemm(transA, transB, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
