//go:build !cgo || noblas || !amd64

package cpu

// Without cgo, OpenBLAS or amd64 there is no AVX-512 kernel.
const haveAVX512 = false

// avxMR is the row multiple shared products are cut at; without the kernel
// any multiple works, and 1 keeps blocks as the crew sizes them.
const avxMR = 1

func avxSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias []float32) {
	panic("cpu: no AVX-512 kernel")
}

func (bk *Backend) avxGemmPar(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias, pre []float32) {
	panic("cpu: no AVX-512 kernel")
}

func avxPrepackedRows(m0, m1, n, k int, a []float32, lda int, pw, c []float32, ldc int, bias []float32) {
	panic("cpu: no AVX-512 kernel")
}

func packedWeightSize(n, k int) int { panic("cpu: no AVX-512 kernel") }

func packWeight(dst, w []float32, ldw, n, k int) { panic("cpu: no AVX-512 kernel") }
