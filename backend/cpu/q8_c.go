//go:build cgo && !noblas && amd64

package cpu

/*
#cgo CFLAGS: -O3
#include "q8.h"
*/
import "C"

import "unsafe"

// haveVNNI reports whether the CPU has AVX-512 VNNI (vpdpbusd).
var haveVNNI = C.rr_has_vnni() != 0

// q8Kernels says whether int8 products take the C kernels: where the CPU
// has AVX2 (haveC), unless the backend is told to use the Go reference.
func q8Kernels(goRef bool) bool { return haveC && !goRef }

func q8Quantize(r *q8Rows, a []float32, lda, m, k, kp int) {
	C.rr_q8_quantize_rows((*C.uint8_t)(unsafe.Pointer(&r.q[0])), C.int64_t(kp), fp(r.scale), (*C.int32_t)(unsafe.Pointer(&r.zp[0])),
		fp(a), C.int64_t(lda), C.int64_t(m), C.int64_t(k))
}

func q8Gemm(vnni bool, m, n int, w q8Weight, r *q8Rows, bias, c []float32, ldc int, gelu int) {
	C.rr_q8_gemm(bint(vnni), C.int64_t(m), C.int64_t(n), C.int64_t(w.kp), (*C.uint8_t)(unsafe.Pointer(&r.q[0])), fp(r.scale),
		(*C.int32_t)(unsafe.Pointer(&r.zp[0])), (*C.int8_t)(unsafe.Pointer(&w.q[0])), fp(w.scale), (*C.int32_t)(unsafe.Pointer(&w.sum[0])),
		fp(bias), fp(c), C.int64_t(ldc), C.int(gelu))
}
