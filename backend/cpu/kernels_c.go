//go:build cgo && !noblas && amd64

package cpu

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lopenblas -lm
#include "kernels.h"
*/
import "C"

import (
	"unsafe"
)

// haveC reports whether the fused AVX2/FMA kernels of kernels_amd64.c can
// run on this CPU; without them every op takes its pure-Go path.
var haveC = C.rr_has_avx2_fma() != 0

func fp(x []float32) *C.float {
	if len(x) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&x[0]))
}

func dp(x []float64) *C.double {
	if len(x) == 0 {
		return nil
	}
	return (*C.double)(unsafe.Pointer(&x[0]))
}

// use512 selects the AVX-512 variants of the GELU and attention softmax
// kernels (where the CPU has AVX-512F; tests switch it off to hold the
// AVX2 ones to the same checks). Set it with setUse512, which tells the C
// side too.
var use512 bool

func init() { setUse512(haveAVX512) }

func setUse512(on bool) {
	use512 = on
	v := C.int(0)
	if on {
		v = 1
	}
	C.rr_softmax_use_avx512(v)
}

// geluWide says whether the backend's GELU takes the AVX-512 kernel: where
// use512 is set, except on the avx2 GEMM route, which stands in for a CPU
// without AVX-512 (and whose GEMM epilogue computes the AVX2 GELU).
func (b *Backend) geluWide() bool { return use512 && b.route != GemmAVX2 }

func cGelu(out, x []float32, wide bool) {
	if wide {
		C.rr_gelu512(fp(out), fp(x), C.int64_t(len(x)))
		return
	}
	C.rr_gelu(fp(out), fp(x), C.int64_t(len(x)))
}

func cGeluBackward(dx, dout, x []float32, wide bool) {
	if wide {
		C.rr_gelu_backward512(fp(dx), fp(dout), fp(x), C.int64_t(len(x)))
		return
	}
	C.rr_gelu_backward(fp(dx), fp(dout), fp(x), C.int64_t(len(x)))
}

func cDropout(out, x []float32, p, scale float32, seed, base uint64) {
	C.rr_dropout(fp(out), fp(x), C.int64_t(len(x)), C.float(p), C.float(scale), C.uint64_t(seed), C.uint64_t(base))
}

func cAddBias(y, b []float32, rows, cols int) {
	C.rr_add_bias(fp(y), fp(b), C.int64_t(rows), C.int64_t(cols))
}

func cColSums(acc []float64, x []float32, rows, cols int) {
	C.rr_col_sums(dp(acc), fp(x), C.int64_t(rows), C.int64_t(cols))
}

// cAddLayerNorm normalises rows of x + res into out, writing x + res to
// sum first; with res nil it normalises x and leaves sum alone.
func cAddLayerNorm(out, mean, rstd, sum, x, res, g, b []float32, rows, dim int, eps float32) {
	C.rr_add_layernorm(fp(out), fp(mean), fp(rstd), fp(sum), fp(x), fp(res), fp(g), fp(b), C.int64_t(rows), C.int64_t(dim), C.float(eps))
}

func cLayerNormBackward(dx []float32, ag, ab []float64, dy, x, mean, rstd, g []float32, rows, dim int) {
	C.rr_layernorm_backward(fp(dx), dp(ag), dp(ab), fp(dy), fp(x), fp(mean), fp(rstd), fp(g), C.int64_t(rows), C.int64_t(dim))
}

func cAdamW(p, g, m, v []float32, decay float32, useDecay bool, b1, b2, om1, om2, bc2sqrt, step, eps float32) {
	ud := C.int(0)
	if useDecay {
		ud = 1
	}
	C.rr_adamw(fp(p), fp(g), fp(m), fp(v), C.int64_t(len(p)), C.float(decay), ud, C.float(b1), C.float(b2),
		C.float(om1), C.float(om2), C.float(bc2sqrt), C.float(step), C.float(eps))
}

// The per-head attention products take the fastest blocked kernel the
// CPU runs (AVX-512, else AVX2), OpenBLAS where it runs neither.
func init() { cAttnUseBest() }

func cAttnUseBest() {
	if haveAVX512 {
		cAttnKernel(1)
	} else if haveC {
		cAttnKernel(2)
	} else {
		cAttnKernel(0)
	}
}

// cAttnUseAVX512 sends the attention products to the AVX-512 kernel, or
// to OpenBLAS.
func cAttnUseAVX512(on bool) {
	if on {
		cAttnKernel(1)
	} else {
		cAttnKernel(0)
	}
}

// cAttnKernel sends the attention products to OpenBLAS (0), the AVX-512
// kernel (1) or the AVX2 one (2).
func cAttnKernel(k int) { C.rr_attn_use_avx512(C.int(k)) }

// headArgs describes one (sequence, head) of attention for the C kernels;
// q, k, v, p, ctx and the gradients start at that head's first element.
type headArgs struct {
	S, L, d, ld, ldc int
	scale, pd        float32
	seed, base       uint64
}

func cAttnFwd(h *headArgs, q, k, v, p, ctx, madd, scratch []float32) {
	C.rr_attn_fwd(C.int(h.S), C.int(h.L), C.int(h.d), C.float(h.scale), fp(q), fp(k), fp(v), C.int(h.ld), fp(p),
		fp(ctx), C.int(h.ldc), fp(madd), C.float(h.pd), C.uint64_t(h.seed), C.uint64_t(h.base), fp(scratch))
}

func cAttnBwd(h *headArgs, q, k, v, p, g, dq, dk, dv, scratch []float32) {
	C.rr_attn_bwd(C.int(h.S), C.int(h.L), C.int(h.d), C.float(h.scale), fp(q), fp(k), fp(v), C.int(h.ld), fp(p),
		fp(g), C.int(h.ldc), fp(dq), fp(dk), fp(dv), C.float(h.pd), C.uint64_t(h.seed), C.uint64_t(h.base), fp(scratch))
}

// tileArgs describes one block of tiled attention for the C kernels:
// rows queries × cols keys, leading dimension ld, the dropout of its
// element (i, j) drawn at index base + i·S + j.
type tileArgs struct {
	ld, rows, cols, S int
	pd                float32
	seed, base        uint64
}

func cTileFwd(t *tileArgs, s, madd, m, l, acc []float32, ldacc, d int) {
	C.rr_attn_tile_fwd(fp(s), C.int(t.ld), C.int(t.rows), C.int(t.cols), fp(madd), fp(m), fp(l), fp(acc), C.int(ldacc),
		C.int(d), C.float(t.pd), C.uint64_t(t.seed), C.uint64_t(t.base), C.int(t.S))
}

func cTileP(t *tileArgs, s, pv, madd, lse []float32) {
	C.rr_attn_tile_p(fp(s), fp(pv), C.int(t.ld), C.int(t.rows), C.int(t.cols), fp(madd), fp(lse), C.float(t.pd),
		C.uint64_t(t.seed), C.uint64_t(t.base), C.int(t.S))
}

func cTileDS(t *tileArgs, dp, p, pv, D []float32) {
	C.rr_attn_tile_ds(fp(dp), fp(p), fp(pv), C.int(t.ld), C.int(t.rows), C.int(t.cols), fp(D))
}
