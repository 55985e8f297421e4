//go:build cgo && !noblas

package cpu

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import "unsafe"

// baseRoute is the route of products that take no blocked kernel.
const baseRoute = GemmOpenBLAS

// OpenBLAS runs single-threaded: the backend splits large products across
// its own workers (Gemm below) and runs the small per-head attention
// products of different heads on different cores. Debian's
// libopenblas0-pthread would otherwise start its own threads, which
// busy-wait after each call and fight the Go workers for the same cores.
// Calls from several threads at once are safe in OpenBLAS ≥ 0.3.7.
func init() { C.openblas_set_num_threads(1) }

// baseSgemm is one OpenBLAS call.
func baseSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	if k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
