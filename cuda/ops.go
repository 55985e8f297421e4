//go:build cuda

package cuda

/*
#include "rerank_kernels.h"
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/rerank-go/rerank/backend"
)

func cbool(v bool) C.int {
	if v {
		return 1
	}
	return 0
}

// span is the number of values a row-major rows×cols matrix with leading
// dimension ld reaches from its first value.
func span(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

// Fill implements backend.Backend.
func (b *Backend) Fill(dst backend.Buf, v float32) {
	if !b.ok() || !b.own("Fill", dst) || dst.Len() == 0 {
		return
	}
	b.check("Fill", C.rk_fill(b.stream, f(dst), C.float(v), C.longlong(dst.Len())))
}

// Copy2D implements backend.Backend.
func (b *Backend) Copy2D(dst backend.Buf, ldd int, src backend.Buf, lds int, rows, cols int) {
	const op = "Copy2D"
	if !b.ok() || !b.own(op, dst, src) || rows == 0 || cols == 0 {
		return
	}
	if !b.need(op, "dst", dst, span(rows, cols, ldd)) || !b.need(op, "src", src, span(rows, cols, lds)) {
		return
	}
	b.check(op, C.rk_copy2d(b.stream, f(dst), C.int(ldd), f(src), C.int(lds), C.int(rows), C.int(cols)))
}

// gemmSpans checks the operand sizes of a (batched) GEMM.
func (b *Backend) gemmSpans(op string, transA, transB bool, m, n, k int, a backend.Buf, lda, sA int, bb backend.Buf, ldb, sB int, c backend.Buf, ldc, sC, batch int) bool {
	if m < 0 || n < 0 || k < 0 || batch < 0 {
		b.badArg(op, "negative size m=%d n=%d k=%d batch=%d", m, n, k, batch)
		return false
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if ac > lda && ar > 0 || bc > ldb && br > 0 || n > ldc && m > 0 {
		b.badArg(op, "leading dimension too small (lda=%d ldb=%d ldc=%d for m=%d n=%d k=%d)", lda, ldb, ldc, m, n, k)
		return false
	}
	last := max(batch-1, 0)
	if k > 0 && (!b.need(op, "A", a, last*sA+span(ar, ac, lda)) || !b.need(op, "B", bb, last*sB+span(br, bc, ldb))) {
		return false
	}
	return b.need(op, "C", c, last*sC+span(m, n, ldc))
}

// Gemm implements backend.Backend.
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a backend.Buf, lda int, bb backend.Buf, ldb int, beta float32, c backend.Buf, ldc int) {
	b.gemmBatched(transA, transB, m, n, k, alpha, a, lda, 0, bb, ldb, 0, beta, c, ldc, 0, 1)
}

// gemmBatched runs batch independent Gemms; matrix i of A starts at
// i*strideA, and likewise for B and C. With Options.BF16 the operands are
// rounded to bf16 in scratch memory and multiplied on tensor cores.
func (b *Backend) gemmBatched(transA, transB bool, m, n, k int, alpha float32, a backend.Buf, lda, strideA int, bb backend.Buf, ldb, strideB int, beta float32, c backend.Buf, ldc, strideC int, batch int) {
	const op = "Gemm"
	if !b.ok() || !b.own(op, a, bb, c) {
		return
	}
	if !b.gemmSpans(op, transA, transB, m, n, k, a, lda, strideA, bb, ldb, strideB, c, ldc, strideC, batch) {
		return
	}
	if m == 0 || n == 0 || batch == 0 {
		return
	}
	for lo := 0; lo < batch; lo += 65535 { // grid.z limit
		nb := min(batch-lo, 65535)
		var aa, bv unsafe.Pointer
		if k > 0 {
			aa, bv = unsafe.Add(a.(*Buf).ptr, 4*lo*strideA), unsafe.Add(bb.(*Buf).ptr, 4*lo*strideB)
		}
		cc := unsafe.Add(c.(*Buf).ptr, 4*lo*strideC)
		if b.opt.BF16 && k > 0 {
			b.gemmBF16(transA, transB, m, n, k, alpha, aa, lda, strideA, bv, ldb, strideB, beta, cc, ldc, strideC, nb)
		} else {
			b.check("gemm_f32", C.rk_gemm_f32(b.stream, cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k),
				C.float(alpha), (*C.float)(aa), C.int(lda), C.longlong(strideA), (*C.float)(bv), C.int(ldb), C.longlong(strideB),
				C.float(beta), (*C.float)(cc), C.int(ldc), C.longlong(strideC), C.int(nb)))
		}
		if !b.ok() {
			return
		}
	}
}

func (b *Backend) gemmBF16(transA, transB bool, m, n, k int, alpha float32, a unsafe.Pointer, lda, sA int, bv unsafe.Pointer, ldb, sB int, beta float32, c unsafe.Pointer, ldc, sC, batch int) {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	na := (batch-1)*sA + span(ar, ac, lda)
	nb := (batch-1)*sB + span(br, bc, ldb)
	blk, err := b.alloc(2*na + 16 + 2*nb)
	if err != nil {
		b.fail(fmt.Errorf("gemm_bf16: scratch: %w", err))
		return
	}
	defer b.release(blk)
	a16 := blk.ptr
	b16 := unsafe.Add(blk.ptr, (2*na+15)&^15) // 16-byte aligned for the tensor-core loads
	b.check("f32_to_bf16", C.rk_f32_to_bf16(b.stream, (*C.rk_bf16)(a16), (*C.float)(a), C.longlong(na)))
	b.check("f32_to_bf16", C.rk_f32_to_bf16(b.stream, (*C.rk_bf16)(b16), (*C.float)(bv), C.longlong(nb)))
	if !b.ok() {
		return
	}
	b.check("gemm_bf16", C.rk_gemm_bf16(b.stream, cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k),
		C.float(alpha), (*C.rk_bf16)(a16), C.int(lda), C.longlong(sA), (*C.rk_bf16)(b16), C.int(ldb), C.longlong(sB),
		C.float(beta), (*C.float)(c), C.int(ldc), C.longlong(sC), C.int(batch)))
}

// AddBias implements backend.Backend.
func (b *Backend) AddBias(y, bias backend.Buf, rows, cols int) {
	const op = "AddBias"
	if !b.ok() || !b.own(op, y, bias) || rows*cols == 0 {
		return
	}
	if !b.need(op, "y", y, rows*cols) || !b.need(op, "bias", bias, cols) {
		return
	}
	b.check("add_bias", C.rk_add_bias(b.stream, f(y), f(bias), C.int(rows), C.int(cols)))
}

// BiasGrad implements backend.Backend.
func (b *Backend) BiasGrad(db, dy backend.Buf, rows, cols int) {
	const op = "BiasGrad"
	if !b.ok() || db == nil || !b.own(op, db, dy) || rows*cols == 0 {
		return
	}
	if !b.need(op, "dy", dy, rows*cols) || !b.need(op, "db", db, cols) {
		return
	}
	blk, ok := b.scratch(op, int(C.rk_colsum_scratch_len(C.int(rows), C.int(cols))))
	if !ok {
		return
	}
	defer b.release(blk)
	b.check("bias_grad", C.rk_bias_grad(b.stream, f(db), f(dy), C.int(rows), C.int(cols), (*C.float)(blk.ptr)))
}

// same checks elementwise operands: every buffer holds at least n values.
func (b *Backend) same(op string, n int, bufs ...backend.Buf) bool {
	if !b.own(op, bufs...) {
		return false
	}
	for _, x := range bufs {
		if !b.need(op, "operand", x, n) {
			return false
		}
	}
	return true
}

// Add implements backend.Backend.
func (b *Backend) Add(dst, x, y backend.Buf) {
	if !b.ok() || dst == nil || !b.same("Add", dst.Len(), dst, x, y) || dst.Len() == 0 {
		return
	}
	b.check("add", C.rk_add(b.stream, f(dst), f(x), f(y), C.longlong(dst.Len())))
}

// Axpy implements backend.Backend.
func (b *Backend) Axpy(alpha float32, x, y backend.Buf) {
	if !b.ok() || x == nil || !b.same("Axpy", x.Len(), x, y) || x.Len() == 0 {
		return
	}
	b.check("axpy", C.rk_axpy(b.stream, C.float(alpha), f(x), f(y), C.longlong(x.Len())))
}

// Scale implements backend.Backend.
func (b *Backend) Scale(x backend.Buf, alpha float32) {
	if !b.ok() || x == nil || !b.own("Scale", x) || x.Len() == 0 {
		return
	}
	b.check("scale", C.rk_scale(b.stream, f(x), C.float(alpha), C.longlong(x.Len())))
}

// Embed implements backend.Backend. An id outside the table gives a NaN row.
func (b *Backend) Embed(out, table backend.Buf, ids backend.IntBuf, dim int, accumulate bool) {
	const op = "Embed"
	if !b.ok() || !b.own(op, out, table) || ids == nil || ids.Len() == 0 {
		return
	}
	if dim <= 0 {
		b.badArg(op, "dim %d", dim)
		return
	}
	if !b.need(op, "out", out, ids.Len()*dim) || !b.need(op, "table", table, dim) {
		return
	}
	b.check("embed_forward", C.rk_embed_forward(b.stream, f(out), f(table), ip(ids), C.int(ids.Len()), C.int(dim),
		C.int(table.Len()/dim), cbool(accumulate)))
}

// EmbedBackward implements backend.Backend.
func (b *Backend) EmbedBackward(dtable, dout backend.Buf, ids backend.IntBuf, dim int, skip int32) {
	const op = "EmbedBackward"
	if !b.ok() || dtable == nil || !b.own(op, dtable, dout) || ids == nil || ids.Len() == 0 {
		return
	}
	if dim <= 0 {
		b.badArg(op, "dim %d", dim)
		return
	}
	if !b.need(op, "dout", dout, ids.Len()*dim) {
		return
	}
	b.check("embed_backward", C.rk_embed_backward(b.stream, f(dtable), f(dout), ip(ids), C.int(ids.Len()), C.int(dim),
		C.int(dtable.Len()/dim), C.int32_t(skip)))
}

// LayerNorm implements backend.Backend.
func (b *Backend) LayerNorm(out, mean, rstd, x, gamma, beta backend.Buf, rows, dim int, eps float32) {
	const op = "LayerNorm"
	if !b.ok() || !b.own(op, out, mean, rstd, x, gamma, beta) || rows == 0 {
		return
	}
	if !b.need(op, "x", x, rows*dim) || !b.need(op, "out", out, rows*dim) || !b.need(op, "mean", mean, rows) ||
		!b.need(op, "rstd", rstd, rows) || !b.need(op, "gamma", gamma, dim) || !b.need(op, "beta", beta, dim) {
		return
	}
	b.check("layernorm_forward", C.rk_layernorm_forward(b.stream, f(out), f(mean), f(rstd), f(x), f(gamma), f(beta),
		C.int(rows), C.int(dim), C.float(eps)))
}

// LayerNormBackward implements backend.Backend.
func (b *Backend) LayerNormBackward(dx, dgamma, dbeta, dout, x, mean, rstd, gamma backend.Buf, rows, dim int) {
	const op = "LayerNormBackward"
	if !b.ok() || !b.own(op, dx, dgamma, dbeta, dout, x, mean, rstd, gamma) || rows == 0 {
		return
	}
	if !b.need(op, "dx", dx, rows*dim) || !b.need(op, "dout", dout, rows*dim) || !b.need(op, "x", x, rows*dim) ||
		!b.need(op, "mean", mean, rows) || !b.need(op, "rstd", rstd, rows) || !b.need(op, "gamma", gamma, dim) {
		return
	}
	var scratch *C.float
	if dgamma != nil || dbeta != nil {
		blk, ok := b.scratch(op, int(C.rk_colsum_scratch_len(C.int(rows), C.int(dim))))
		if !ok {
			return
		}
		defer b.release(blk)
		scratch = (*C.float)(blk.ptr)
	}
	b.check("layernorm_backward", C.rk_layernorm_backward(b.stream, f(dx), f(dgamma), f(dbeta), f(dout), f(x), f(mean),
		f(rstd), f(gamma), C.int(rows), C.int(dim), scratch))
}

// Gelu implements backend.Backend.
func (b *Backend) Gelu(out, x backend.Buf) {
	if !b.ok() || x == nil || !b.same("Gelu", x.Len(), out, x) || x.Len() == 0 {
		return
	}
	b.check("gelu_forward", C.rk_gelu_forward(b.stream, f(out), f(x), C.longlong(x.Len())))
}

// GeluBackward implements backend.Backend.
func (b *Backend) GeluBackward(dx, dout, x backend.Buf) {
	if !b.ok() || x == nil || !b.same("GeluBackward", x.Len(), dx, dout, x) || x.Len() == 0 {
		return
	}
	b.check("gelu_backward", C.rk_gelu_backward(b.stream, f(dx), f(dout), f(x), C.longlong(x.Len())))
}

// Tanh implements backend.Backend.
func (b *Backend) Tanh(out, x backend.Buf) {
	if !b.ok() || x == nil || !b.same("Tanh", x.Len(), out, x) || x.Len() == 0 {
		return
	}
	b.check("tanh_forward", C.rk_tanh_forward(b.stream, f(out), f(x), C.longlong(x.Len())))
}

// TanhBackward implements backend.Backend.
func (b *Backend) TanhBackward(dx, dout, y backend.Buf) {
	if !b.ok() || y == nil || !b.same("TanhBackward", y.Len(), dx, dout, y) || y.Len() == 0 {
		return
	}
	b.check("tanh_backward", C.rk_tanh_backward(b.stream, f(dx), f(dout), f(y), C.longlong(y.Len())))
}

// Dropout implements backend.Backend.
func (b *Backend) Dropout(out, x backend.Buf, p float32, seed uint64) {
	b.dropout("dropout", out, x, p, seed)
}

// DropoutBackward implements backend.Backend.
func (b *Backend) DropoutBackward(dx, dout backend.Buf, p float32, seed uint64) {
	b.dropout("dropout_backward", dx, dout, p, seed)
}

func (b *Backend) dropout(op string, out, x backend.Buf, p float32, seed uint64) {
	if !b.ok() || x == nil || !b.same(op, x.Len(), out, x) || x.Len() == 0 {
		return
	}
	if p >= 1 {
		b.badArg(op, "probability %g must be below 1", p)
		return
	}
	b.check(op, C.rk_dropout(b.stream, f(out), f(x), C.float(p), C.uint64_t(seed), C.longlong(x.Len())))
}

func attnC(a backend.Attn) C.rk_attn {
	return C.rk_attn{n: C.int(a.N), s: C.int(a.S), heads: C.int(a.Heads), head_dim: C.int(a.HeadDim),
		dropout: C.float(a.Dropout), seed: C.uint64_t(a.Seed)}
}

// AttentionSaveLen implements backend.Backend: one log-sum-exp per score
// row, [N, Heads, S].
func (*Backend) AttentionSaveLen(a backend.Attn) int { return a.N * a.Heads * a.S }

func (b *Backend) attnArgs(op string, a backend.Attn, qkv backend.Buf, mask backend.IntBuf) bool {
	if a.N <= 0 || a.S <= 0 || a.Heads <= 0 || a.HeadDim < 1 || a.HeadDim > 128 {
		b.badArg(op, "unsupported shape N=%d S=%d heads=%d head dim=%d (head dims 1 to 128)", a.N, a.S, a.Heads, a.HeadDim)
		return false
	}
	if a.Dropout < 0 || a.Dropout >= 1 {
		b.badArg(op, "dropout %g outside [0, 1)", a.Dropout)
		return false
	}
	if mask == nil || mask.Len() < a.N*a.S {
		b.badArg(op, "mask must hold N*S = %d values", a.N*a.S)
		return false
	}
	return b.need(op, "qkv", qkv, a.N*a.S*3*a.H())
}

// Attention implements backend.Backend with the fused kernel (on tensor
// cores with bf16 inputs when Options.BF16 is set; AttentionBackward
// likewise).
func (b *Backend) Attention(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, save backend.Buf) {
	const op = "Attention"
	if !b.ok() || !b.own(op, qkv, ctx, save) || !b.attnArgs(op, a, qkv, mask) {
		return
	}
	if !b.need(op, "ctx", ctx, a.N*a.S*a.H()) || !b.need(op, "save", save, b.AttentionSaveLen(a)) {
		return
	}
	if b.opt.BF16 && tensorCoreHeadDim(a.HeadDim) {
		// Tensor-core forward on a bf16 copy of qkv.
		n := a.N * a.S * 3 * a.H()
		blk, err := b.alloc(2 * n)
		if err != nil {
			b.fail(fmt.Errorf("attention_forward_bf16: scratch: %w", err))
			return
		}
		defer b.release(blk)
		b.check("f32_to_bf16", C.rk_f32_to_bf16(b.stream, (*C.rk_bf16)(blk.ptr), f(qkv), C.longlong(n)))
		if b.ok() {
			b.check("attention_forward_bf16", C.rk_attention_forward_bf16(b.stream, attnC(a), (*C.rk_bf16)(blk.ptr), ip(mask), f(ctx), f(save)))
		}
		return
	}
	b.check("attention_forward", C.rk_attention_forward(b.stream, attnC(a), f(qkv), ip(mask), f(ctx), f(save)))
}

// AttentionBackward implements backend.Backend.
func (b *Backend) AttentionBackward(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, dctx, save, dqkv backend.Buf) {
	const op = "AttentionBackward"
	if !b.ok() || !b.own(op, qkv, ctx, dctx, save, dqkv) || !b.attnArgs(op, a, qkv, mask) {
		return
	}
	nc := a.N * a.S * a.H()
	if !b.need(op, "ctx", ctx, nc) || !b.need(op, "dctx", dctx, nc) || !b.need(op, "save", save, b.AttentionSaveLen(a)) ||
		!b.need(op, "dqkv", dqkv, 3*nc) {
		return
	}
	blk, ok := b.scratch(op, a.N*a.Heads*a.S)
	if !ok {
		return
	}
	defer b.release(blk)
	if b.opt.BF16 && tensorCoreHeadDim(a.HeadDim) {
		b.attentionBackwardBF16(a, qkv, mask, ctx, dctx, save, dqkv, blk)
		return
	}
	b.check("attention_backward", C.rk_attention_backward(b.stream, attnC(a), f(qkv), ip(mask), f(ctx), f(dctx), f(save),
		f(dqkv), (*C.float)(blk.ptr)))
}

// adamwC computes the step's scalars exactly as backend/cpu does.
func adamwC(s backend.AdamWStep) C.rk_adamw {
	lr, b1, b2 := float64(s.LR), float64(s.Beta1), float64(s.Beta2)
	bc1 := 1 - math.Pow(b1, float64(s.Step))
	return C.rk_adamw{
		beta1: C.float(float32(b1)), beta2: C.float(float32(b2)),
		one_minus_beta1: C.float(float32(1 - b1)), one_minus_beta2: C.float(float32(1 - b2)),
		eps:         C.float(s.Eps),
		decay:       C.float(float32(1 - lr*float64(s.WeightDecay))),
		step_size:   C.float(float32(lr / bc1)),
		bc2_sqrt:    C.float(float32(math.Sqrt(1 - math.Pow(b2, float64(s.Step))))),
		apply_decay: cbool(s.WeightDecay != 0),
	}
}

// AdamW implements backend.Backend.
func (b *Backend) AdamW(p, g, m, v backend.Buf, s backend.AdamWStep) {
	if !b.ok() || p == nil || !b.same("AdamW", p.Len(), p, g, m, v) || p.Len() == 0 {
		return
	}
	if s.Step < 1 {
		b.badArg("AdamW", "step %d: steps count from 1", s.Step)
		return
	}
	b.check("adamw", C.rk_adamw_step(b.stream, f(p), f(g), f(m), f(v), nil, adamwC(s), C.longlong(p.Len())))
}

// SumSquares implements backend.Backend. It synchronises to return the
// value; after an error it returns NaN (and Sync reports the error).
func (b *Backend) SumSquares(x backend.Buf) float64 {
	const op = "SumSquares"
	if !b.ok() || x == nil || !b.own(op, x) {
		return math.NaN()
	}
	parts := int(C.rk_sumsq_partials())
	blk, ok := b.scratch(op, 2*parts+2)
	if !ok {
		return math.NaN()
	}
	defer b.release(blk)
	out := unsafe.Add(blk.ptr, 8*parts)
	b.check("sum_squares", C.rk_sum_squares(b.stream, (*C.float)(f(x)), C.longlong(x.Len()), (*C.double)(blk.ptr), (*C.double)(out)))
	var v float64
	if b.ok() {
		b.download(op, unsafe.Pointer(&v), out, 8)
	}
	if !b.ok() {
		return math.NaN()
	}
	return v
}

// LoraMerge implements backend.Backend.
func (b *Backend) LoraMerge(w, a, bb backend.Buf, out, in, r int, scale float32) {
	const op = "LoraMerge"
	if !b.ok() || !b.own(op, w, a, bb) || out*in*r == 0 {
		return
	}
	if !b.need(op, "w", w, out*in) || !b.need(op, "a", a, r*in) || !b.need(op, "b", bb, out*r) {
		return
	}
	b.check("lora_merge", C.rk_lora_merge(b.stream, f(w), f(a), f(bb), C.int(out), C.int(in), C.int(r), C.float(scale)))
}

// attentionBackwardBF16 runs the tensor-core backward pass on bf16 copies of
// qkv and dctx.
func (b *Backend) attentionBackwardBF16(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, dctx, save, dqkv backend.Buf, dsum *block) {
	nq, nc := a.N*a.S*3*a.H(), a.N*a.S*a.H()
	blk, err := b.alloc(2*nq + 16 + 2*nc)
	if err != nil {
		b.fail(fmt.Errorf("attention_backward_bf16: scratch: %w", err))
		return
	}
	defer b.release(blk)
	q16 := blk.ptr
	g16 := unsafe.Add(blk.ptr, (2*nq+15)&^15)
	b.check("f32_to_bf16", C.rk_f32_to_bf16(b.stream, (*C.rk_bf16)(q16), f(qkv), C.longlong(nq)))
	b.check("f32_to_bf16", C.rk_f32_to_bf16(b.stream, (*C.rk_bf16)(g16), f(dctx), C.longlong(nc)))
	if !b.ok() {
		return
	}
	b.check("attention_backward_bf16", C.rk_attention_backward_bf16(b.stream, attnC(a), (*C.rk_bf16)(q16), (*C.rk_bf16)(g16),
		ip(mask), f(ctx), f(dctx), f(save), f(dqkv), (*C.float)(dsum.ptr)))
}

// tensorCoreHeadDim reports whether the bf16 attention kernels take head
// dimension d; other sizes run the fp32 kernels also in BF16 mode.
func tensorCoreHeadDim(d int) bool { return d == 32 || d == 64 || d == 128 }
