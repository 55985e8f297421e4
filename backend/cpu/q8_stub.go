//go:build !cgo || noblas || !amd64

package cpu

// Without the C kernels every int8 product takes the Go reference.
const haveVNNI = false

func q8Kernels(bool) bool { return false }

func q8Quantize(r *q8Rows, a []float32, lda, m, k, kp int) { panic("cpu: no int8 kernels") }

func q8Gemm(vnni bool, m, n int, w q8Weight, r *q8Rows, bias, c []float32, ldc int, gelu int) {
	panic("cpu: no int8 kernels")
}
