package cpu

import (
	"math"
	"sync"
	"unsafe"

	"github.com/rerank-go/rerank/backend"
)

// int8 scoring (backend.Quantizer), as ONNX Runtime's dynamic
// quantization computes a MatMul: the weight quantized once per output
// channel to symmetric int8 of 7 bits (-63..63, ONNX Runtime's
// reduce_range), the activations per row at run time to asymmetric uint8,
// their dot products summed exactly in int32 (see q8_amd64.c). The 7-bit
// weights let the AVX2 kernel sum pairs of uint8×int8 products with
// vpmaddubsw, whose int16 sums would otherwise saturate (2·255·127 >
// 32767; 2·255·63 = 32130 is not); every route uses them, so that every
// route gives the same bits. The bit is taken from the weights rather
// than the activations: a weight's scale is its own output channel's,
// while an activation row's spans the whole hidden width, outlier
// features included. A quantized n×k weight takes, in float32 slots:
//
//	n scales | n row sums of the int8 weights (int32) | int8 panels
//
// with kp = k rounded up to q8Align, the tail of each row zero. The int8
// values are laid out for the kernels, as ONNX Runtime's MLAS packs them:
// in panels of q8Panel output columns (n rounded up to q8Panel, the
// missing columns zero), panel J holding columns q8Panel·J.. as kp/4
// groups of 4·q8Panel bytes, group g being the weights k = 4g..4g+3 of
// each column in turn (q8Index). A zmm of a group times four bytes of a
// row of A broadcast is 16 dot products at once, with vpdpbusd.

// q8Align is the multiple rows of int8 values are padded to: one zmm.
const q8Align = 64

func q8Pad(k int) int { return (k + q8Align - 1) / q8Align * q8Align }

// q8Panel is the number of output columns of a panel of int8 weights: the
// int32 lanes of a zmm.
const q8Panel = 16

// q8Index is the position of weight (j, p), output j's input p, in the
// panels of a weight of kp bytes a column.
func q8Index(j, p, kp int) int {
	return j/q8Panel*q8Panel*kp + p/4*4*q8Panel + j%q8Panel*4 + p%4
}

// q8Cols is n rounded up to whole panels.
func q8Cols(n int) int { return (n + q8Panel - 1) / q8Panel * q8Panel }

var _ backend.Quantizer = (*Backend)(nil)

// QuantizedSize implements backend.Quantizer.
func (bk *Backend) QuantizedSize(n, k int) int {
	if n <= 0 || k <= 0 {
		return 0
	}
	return 2*n + (q8Cols(n)*q8Pad(k)+3)/4
}

// q8Weight is a quantized weight's parts, views of its buffer.
type q8Weight struct {
	scale []float32
	sum   []int32
	q     []int8
	kp    int
}

func q8View(buf []float32, n, k int) q8Weight {
	kp := q8Pad(k)
	return q8Weight{
		scale: buf[:n:n],
		sum:   unsafe.Slice((*int32)(unsafe.Pointer(&buf[n])), n),
		q:     unsafe.Slice((*int8)(unsafe.Pointer(&buf[2*n])), q8Cols(n)*kp),
		kp:    kp,
	}
}

// q8WMax is the largest quantized weight magnitude: 7 bits (see above).
const q8WMax = 63

// QuantizeWeight implements backend.Quantizer: row j of w (output j's k
// inputs) becomes round(w/s_j), s_j = max|w_j|/63, to nearest even.
func (bk *Backend) QuantizeWeight(dst, w backend.Buf, ldw, n, k int) {
	if n <= 0 || k <= 0 {
		return
	}
	qw, ww := q8View(f(dst), n, k), f(w)
	clear(qw.q)
	for j := 0; j < n; j++ {
		row := ww[j*ldw : j*ldw+k]
		var mx float32
		for _, v := range row {
			mx = max(mx, float32(math.Abs(float64(v))))
		}
		s := mx / q8WMax
		if s == 0 {
			s = 1
		}
		var sum int32
		for p, v := range row {
			x := int32(math.RoundToEven(float64(v / s)))
			x = max(-q8WMax, min(q8WMax, x))
			qw.q[q8Index(j, p, qw.kp)], sum = int8(x), sum+x
		}
		qw.scale[j], qw.sum[j] = s, sum
	}
}

// quantizeRow quantizes a into q (len(q) ≥ len(a); the tail set to the
// zero point): the range of a, widened to hold 0, mapped onto 0..255. It
// is rr_q8_quantize_rows of q8_amd64.c, to the bit.
func quantizeRow(q []uint8, a []float32) (scale float32, zp int32) {
	var lo, hi float32
	for _, v := range a {
		lo, hi = min(lo, v), max(hi, v)
	}
	s := (hi - lo) / 255
	if s == 0 {
		s = 1
	} else {
		z := -lo / s
		zp = int32(max(0, min(255, math.RoundToEven(float64(z)))))
	}
	for p, v := range a {
		x := v / s
		y := float32(math.RoundToEven(float64(x))) + float32(zp)
		q[p] = uint8(max(0, min(255, y)))
	}
	for p := len(a); p < len(q); p++ {
		q[p] = uint8(zp)
	}
	return s, zp
}

// q8Finish is the float epilogue of one element, as q8_amd64.c's finish.
func q8Finish(acc, zp, wsum int32, sa, sw float32, bias []float32, j int) float32 {
	t := sa * sw
	v := float32(acc-zp*wsum) * t
	if bias != nil {
		v += bias[j]
	}
	return v
}

// q8Rows is the activations of a product, quantized.
type q8Rows struct {
	q     []uint8
	scale []float32
	zp    []int32
}

var q8Pool = sync.Pool{New: func() any { return new(q8Rows) }}

func (r *q8Rows) ensure(m, kp int) {
	if cap(r.q) < m*kp {
		r.q = make([]uint8, m*kp)
	}
	if cap(r.scale) < m {
		r.scale, r.zp = make([]float32, m), make([]int32, m)
	}
	r.q, r.scale, r.zp = r.q[:m*kp], r.scale[:m], r.zp[:m]
}

// q8Ref is the pure-Go int8 product of rows [lo, hi): the reference the
// kernels are held to, and the path without them.
func q8Ref(lo, hi, n, k int, a []float32, lda int, qw q8Weight, bias, c []float32, ldc int) {
	q := make([]uint8, qw.kp)
	for i := lo; i < hi; i++ {
		sa, zp := quantizeRow(q, a[i*lda:i*lda+k])
		for j0 := 0; j0 < n; j0 += q8Panel {
			// One panel: its groups of four weights for 16 columns in turn.
			panel := qw.q[j0*qw.kp : (j0+q8Panel)*qw.kp]
			var acc [q8Panel]int32
			for p := 0; p < qw.kp; p += 4 {
				g := panel[p*q8Panel : (p+4)*q8Panel]
				for col := range acc {
					w := g[col*4 : col*4+4]
					acc[col] += int32(q[p])*int32(w[0]) + int32(q[p+1])*int32(w[1]) +
						int32(q[p+2])*int32(w[2]) + int32(q[p+3])*int32(w[3])
				}
			}
			for j := j0; j < min(n, j0+q8Panel); j++ {
				c[i*ldc+j] = q8Finish(acc[j-j0], zp, qw.sum[j], sa, qw.scale[j], bias, j)
			}
		}
	}
}

// GemmBiasQuantized implements backend.Quantizer: each worker quantizes
// its block of A's rows and computes those rows of C. The GEMM route
// picks the kernel too: AVX-512 VNNI where the CPU has it, except on the
// avx2 route, which takes the AVX2 kernel, and the go route, which takes
// the Go reference; all give the same bits.
func (bk *Backend) GemmBiasQuantized(m, n, k int, a backend.Buf, lda int, qw, bias, c backend.Buf, ldc int) {
	bk.gemmBiasQuantized(m, n, k, f(a), lda, f(qw), f(bias), f(c), ldc, false)
}

// GemmBiasQuantizedGelu implements backend.BiasGeluGemmer: the GELU is
// applied to each block of C (32 rows by 256 columns) as soon as it is
// computed, while it is in cache, with the function Gelu takes.
func (bk *Backend) GemmBiasQuantizedGelu(m, n, k int, a backend.Buf, lda int, qw, bias, pre, act backend.Buf, ldc int) {
	ac := f(act)
	c, inPlace := geluOut(f(pre), ac)
	bk.gemmBiasQuantized(m, n, k, f(a), lda, f(qw), f(bias), c, ldc, inPlace)
	if !inPlace {
		bk.geluRows(ac, c, m, n, ldc)
	}
}

// gemmBiasQuantized is GemmBiasQuantized, with C = gelu(C) in the
// epilogue when gelu is set.
func (bk *Backend) gemmBiasQuantized(m, n, k int, aa []float32, lda int, qw, bs, cc []float32, ldc int, gelu bool) {
	if m <= 0 || n <= 0 {
		return
	}
	w := q8View(qw, n, k)
	if bk.crew != nil && k > 0 && bk.crew.worth(m) {
		// A lane: the others, once done with their share, take blocks.
		j := &bk.job
		j.m, j.n, j.k, j.a, j.lda, j.bias, j.c, j.ldc = m, n, k, aa, lda, bs, cc, ldc
		j.q8, j.qw, j.gelu, j.align = bk, w, gelu, 16
		j.pw, j.act, j.kern = nil, nil, nil
		bk.crew.share(j)
		return
	}
	workers := bk.workers
	if workers <= 1 || m*n*k < gemmSplitMin || m < 2*workers*16 {
		bk.q8Rows(0, m, n, k, aa, lda, w, bs, cc, ldc, gelu)
		return
	}
	p := bk.lock()
	defer p.unlock()
	p.split(m, ((m+workers-1)/workers+15)/16*16, func(_ *task, lo, hi int) {
		bk.q8Rows(lo, hi, n, k, aa, lda, w, bs, cc, ldc, gelu)
	})
}

// q8Rows quantizes rows [lo, hi) of A and computes those rows of C (and
// then gelu of them, in place, with gelu).
func (bk *Backend) q8Rows(lo, hi, n, k int, a []float32, lda int, w q8Weight, bias, c []float32, ldc int, gelu bool) {
	if !q8Kernels(bk.q8Go || bk.route == GemmGo) {
		q8Ref(lo, hi, n, k, a, lda, w, bias, c, ldc)
		if gelu {
			for i := lo; i < hi; i++ {
				row := c[i*ldc : i*ldc+n]
				geluSpan(row, row, bk.geluWide())
			}
		}
		return
	}
	g := q8GeluNone
	if gelu {
		g = q8GeluAVX2
		if bk.geluWide() {
			g = q8GeluAVX512
		}
	}
	r := q8Pool.Get().(*q8Rows)
	r.ensure(hi-lo, w.kp)
	q8Quantize(r, a[lo*lda:], lda, hi-lo, k, w.kp)
	q8Gemm(haveVNNI && !bk.q8NoVNNI && bk.route != GemmAVX2, hi-lo, n, w, r, bias, c[lo*ldc:], ldc, g)
	q8Pool.Put(r)
}

// The GELU the int8 kernel applies to C (rr_q8_gemm's gelu): none, that
// of rr_gelu, or that of rr_gelu512.
const (
	q8GeluNone = iota
	q8GeluAVX2
	q8GeluAVX512
)
