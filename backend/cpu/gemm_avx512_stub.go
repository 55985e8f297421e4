//go:build !cgo || noblas || !amd64

package cpu

// Without cgo, OpenBLAS or amd64 there is no blocked kernel.
const haveAVX512 = false

var kernAVX512, kernAVX2 *kernel

func (kn *kernel) sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias, act []float32) {
	panic("cpu: no blocked GEMM kernel in this build")
}

func (bk *Backend) avxGemmPar(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias, pre, act []float32) {
	panic("cpu: no blocked GEMM kernel in this build")
}

func (kn *kernel) prepackedRows(m0, m1, n, k int, a []float32, lda int, pw, c []float32, ldc int, bias, act []float32) {
	panic("cpu: no blocked GEMM kernel in this build")
}

func (kn *kernel) packedWeightSize(n, k int) int { panic("cpu: no blocked GEMM kernel in this build") }

func (kn *kernel) packWeight(dst, w []float32, ldw, n, k int) {
	panic("cpu: no blocked GEMM kernel in this build")
}
