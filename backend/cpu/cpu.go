// Package cpu is the CPU implementation of backend.Backend and the
// reference every other backend is tested against.
//
// Buffers are ordinary Go slices. Matrix products go, through cgo, to our
// own blocked SGEMM on amd64 CPUs with AVX-512F (sgemm_avx512.c) or with
// AVX2 and FMA (sgemm_avx2.c, the same bits), and to OpenBLAS (Debian's
// libopenblas-dev) elsewhere; a build without cgo, or with the tag
// "noblas", uses a pure-Go GEMM instead. Options.Gemm, or the environment
// variable RERANK_CPU_GEMM read by New, forces a route; GemmRoute reports
// which a backend takes. Elementwise and row-wise
// operations are split across GOMAXPROCS goroutines.
package cpu

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"

	"github.com/rerank-go/rerank/backend"
)

// F32 is the CPU buffer type: a view of host memory.
type F32 []float32

// Len implements backend.Buf.
func (b F32) Len() int { return len(b) }

// Slice implements backend.Buf.
func (b F32) Slice(off, n int) backend.Buf { return b[off : off+n : off+n] }

// I32 is the CPU integer buffer type.
type I32 []int32

// Len implements backend.IntBuf.
func (b I32) Len() int { return len(b) }

// Slice implements backend.IntBuf.
func (b I32) Slice(off, n int) backend.IntBuf { return b[off : off+n : off+n] }

// Backend is the CPU backend. The zero value is not usable; call New.
//
// A Backend may be used from several goroutines: their ops take turns on
// its workers (see pool.go).
type Backend struct {
	workers  int
	route    string  // GemmRoute
	kern     *kernel // the blocked kernel products take, nil for none
	q8Go     bool    // int8 products take the Go reference (tests)
	q8NoVNNI bool    // int8 products do not take the VNNI kernel (tests)
	crew     *crew   // the lanes this one belongs to, nil outside Lanes
	job      crewJob // this lane's products that the crew shares

	once sync.Once
	p    *pool // started on first use
}

// New returns a CPU backend that uses up to GOMAXPROCS goroutines.
func New() *Backend { return NewWorkers(runtime.GOMAXPROCS(0)) }

// NewWorkers returns a CPU backend that uses up to n goroutines (at least
// one), and as many lanes (backend.Laner). Its matrix products take the
// route that the environment variable RERANK_CPU_GEMM names (avx512,
// avx2, openblas, go) where this build and CPU can take it, else the
// fastest they can (GemmRoutes); NewWithOptions reports a route it
// cannot take instead.
func NewWorkers(n int) *Backend {
	bk, err := NewWithOptions(Options{Workers: max(1, n), Gemm: os.Getenv(GemmEnv)})
	if err != nil {
		bk, _ = NewWithOptions(Options{Workers: max(1, n)})
	}
	return bk
}

var (
	_ backend.Backend      = (*Backend)(nil)
	_ backend.OffsetCopier = (*Backend)(nil)
)

// Lanes implements backend.Laner: one single-worker backend per worker.
func (b *Backend) Lanes() []backend.Backend {
	if b.workers <= 1 {
		return nil
	}
	out, c := make([]backend.Backend, b.workers), newCrew()
	for i := range out {
		out[i] = &Backend{workers: 1, route: b.route, kern: b.kern, crew: c}
	}
	return out
}

// Name implements backend.Backend.
func (*Backend) Name() string { return "cpu" }

// f returns the slice behind a Buf; nil stays nil.
func f(b backend.Buf) []float32 {
	if b == nil {
		return nil
	}
	return b.(F32)
}

func ints(b backend.IntBuf) []int32 { return b.(I32) }

// Alloc implements backend.Backend.
func (*Backend) Alloc(n int) (backend.Buf, error) {
	if n < 0 {
		return nil, fmt.Errorf("cpu: alloc of %d values", n)
	}
	if n >= freshValues {
		return F32(allocFresh(n)), nil
	}
	return F32(make([]float32, n)), nil
}

// freshValues is the size from which Alloc places a buffer in memory the
// process has not used before (allocFresh): a model's weights (all of
// MiniLM-L6's are 22.7 M values), not activations.
const freshValues = 16 << 20

// AllocInt implements backend.Backend.
func (*Backend) AllocInt(n int) (backend.IntBuf, error) {
	if n < 0 {
		return nil, fmt.Errorf("cpu: alloc of %d values", n)
	}
	return I32(make([]int32, n)), nil
}

// Free implements backend.Backend; the garbage collector owns CPU memory.
func (*Backend) Free(any) {}

// Upload implements backend.Backend.
func (*Backend) Upload(dst backend.Buf, src []float32) { copy(f(dst)[:len(src)], src) }

// Download implements backend.Backend.
func (*Backend) Download(dst []float32, src backend.Buf) { copy(dst, f(src)[:len(dst)]) }

// UploadInt implements backend.Backend.
func (*Backend) UploadInt(dst backend.IntBuf, src []int32) { copy(ints(dst)[:len(src)], src) }

// Fill implements backend.Backend.
func (b *Backend) Fill(dst backend.Buf, v float32) { b.fill(f(dst), v) }

// FillAt implements backend.OffsetCopier.
func (b *Backend) FillAt(dst backend.Buf, off, n int, v float32) { b.fill(f(dst)[off:off+n], v) }

func (b *Backend) fill(d []float32, v float32) {
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.x[0] = d, v
	p.parallel(len(d), 1<<16, func(t *task, lo, hi int) {
		d, v := t.f[0], t.x[0]
		if v == 0 {
			clear(d[lo:hi])
			return
		}
		for i := lo; i < hi; i++ {
			d[i] = v
		}
	})
}

// Copy2D implements backend.Backend.
func (b *Backend) Copy2D(dst backend.Buf, ldd int, src backend.Buf, lds int, rows, cols int) {
	b.copy2D(f(dst), ldd, f(src), lds, rows, cols)
}

// Copy2DAt implements backend.OffsetCopier.
func (b *Backend) Copy2DAt(dst backend.Buf, dstOff, ldd int, src backend.Buf, srcOff, lds int, rows, cols int) {
	b.copy2D(f(dst)[dstOff:], ldd, f(src)[srcOff:], lds, rows, cols)
}

func (b *Backend) copy2D(d []float32, ldd int, s []float32, lds int, rows, cols int) {
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.f[1], p.t.i = d, s, [4]int{ldd, lds, cols}
	p.parallel(rows, max(1, (1<<16)/max(cols, 1)), func(t *task, lo, hi int) {
		d, s, ldd, lds, cols := t.f[0], t.f[1], t.i[0], t.i[1], t.i[2]
		for r := lo; r < hi; r++ {
			copy(d[r*ldd:r*ldd+cols], s[r*lds:r*lds+cols])
		}
	})
}

// Sync implements backend.Backend; CPU work is synchronous and cannot fail.
func (*Backend) Sync() error { return nil }

// AddBias implements backend.Backend.
func (b *Backend) AddBias(y, bias backend.Buf, rows, cols int) {
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.f[1], p.t.i[0] = f(y), f(bias), cols
	p.parallel(rows, 64, func(t *task, lo, hi int) {
		yy, bb, cols := t.f[0], t.f[1], t.i[0]
		if haveC {
			cAddBias(yy[lo*cols:hi*cols], bb, hi-lo, cols)
			return
		}
		for r := lo; r < hi; r++ {
			row := yy[r*cols : r*cols+cols]
			for c := range row {
				row[c] += bb[c]
			}
		}
	})
}

// BiasGrad implements backend.Backend.
func (b *Backend) BiasGrad(db, dy backend.Buf, rows, cols int) {
	p := b.lock()
	defer p.unlock()
	d := f(db)
	p.t.f[0] = f(dy)
	sums, _ := p.colReduce(rows, cols, 1, func(t *task, a, _ []float64, lo, hi int) {
		g, cols := t.f[0], t.cols
		if haveC {
			cColSums(a, g[lo*cols:hi*cols], hi-lo, cols)
			return
		}
		for r := lo; r < hi; r++ {
			for c, v := range g[r*cols : r*cols+cols] {
				a[c] += float64(v)
			}
		}
	})
	for c, v := range sums {
		d[c] += float32(v)
	}
}

// redRows is the block of rows whose column sums one task computes; the
// blocks' partial sums are then added in block order, so that a reduction
// gives the same bits whatever the number of workers.
const redRows = 128

// colReduce runs block(t, acc0, acc1, lo, hi) over fixed blocks of redRows
// rows in parallel, each block adding into its own zeroed cols-long
// float64 accumulators (acc1 is nil when nAcc is 1), and returns the
// block-ordered totals (sum1 nil when nAcc is 1), valid while the caller
// holds p.mu.
func (p *pool) colReduce(rows, cols, nAcc int, block func(t *task, acc0, acc1 []float64, lo, hi int)) (sum0, sum1 []float64) {
	t := &p.t
	nb := max(1, (rows+redRows-1)/redRows)
	mem := grow(&t.f64, (nb+1)*nAcc*cols)
	clear(mem)
	t.block, t.nAcc, t.cols, t.i[3] = block, nAcc, cols, rows
	p.parallel(nb, 1, func(t *task, lo, hi int) {
		rows := t.i[3]
		for blk := lo; blk < hi; blk++ {
			t.block(t, t.part(blk, 0), t.part(blk, 1), blk*redRows, min(rows, blk*redRows+redRows))
		}
	})
	for i := 0; i < nAcc; i++ {
		tot := t.part(nb, i)
		for blk := 0; blk < nb; blk++ {
			for c, v := range t.part(blk, i) {
				tot[c] += v
			}
		}
	}
	return t.part(nb, 0), t.part(nb, 1)
}

// part returns accumulator i of colReduce's block blk (nil when i ≥ nAcc).
func (t *task) part(blk, i int) []float64 {
	if i >= t.nAcc {
		return nil
	}
	off := (blk*t.nAcc + i) * t.cols
	return t.f64[off : off+t.cols]
}

// Add implements backend.Backend.
func (b *Backend) Add(dst, x, y backend.Buf) {
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.f[1], p.t.f[2] = f(dst), f(x), f(y)
	p.parallel(len(p.t.f[0]), 1<<14, func(t *task, lo, hi int) {
		d, xx, yy := t.f[0], t.f[1], t.f[2]
		for i := lo; i < hi; i++ {
			d[i] = xx[i] + yy[i]
		}
	})
}

// Axpy implements backend.Backend.
func (b *Backend) Axpy(alpha float32, x, y backend.Buf) {
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.f[1], p.t.x[0] = f(x), f(y), alpha
	p.parallel(len(p.t.f[0]), 1<<14, func(t *task, lo, hi int) {
		xx, yy, alpha := t.f[0], t.f[1], t.x[0]
		for i := lo; i < hi; i++ {
			yy[i] += alpha * xx[i]
		}
	})
}

// Scale implements backend.Backend.
func (b *Backend) Scale(x backend.Buf, alpha float32) {
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.x[0] = f(x), alpha
	p.parallel(len(p.t.f[0]), 1<<14, func(t *task, lo, hi int) {
		xx, alpha := t.f[0], t.x[0]
		for i := lo; i < hi; i++ {
			xx[i] *= alpha
		}
	})
}

// Embed implements backend.Backend.
func (b *Backend) Embed(out, table backend.Buf, ids backend.IntBuf, dim int, accumulate bool) {
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.f[1], p.t.ids, p.t.i[0], p.t.flag = f(out), f(table), ints(ids), dim, accumulate
	p.parallel(len(p.t.ids), 64, func(t *task, lo, hi int) {
		o, tb, id, dim, accumulate := t.f[0], t.f[1], t.ids, t.i[0], t.flag
		for i := lo; i < hi; i++ {
			src := tb[int(id[i])*dim : int(id[i])*dim+dim]
			dst := o[i*dim : i*dim+dim]
			if accumulate {
				for c, v := range src {
					dst[c] += v
				}
			} else {
				copy(dst, src)
			}
		}
	})
}

// EmbedBackward implements backend.Backend. It runs serially: rows of
// the same id must be summed in a fixed order for reproducible results.
func (b *Backend) EmbedBackward(dtable, dout backend.Buf, ids backend.IntBuf, dim int, skip int32) {
	dt, g, id := f(dtable), f(dout), ints(ids)
	for i, v := range id {
		if v == skip {
			continue
		}
		dst := dt[int(v)*dim : int(v)*dim+dim]
		for c, x := range g[i*dim : i*dim+dim] {
			dst[c] += x
		}
	}
}

// LayerNorm implements backend.Backend.
func (b *Backend) LayerNorm(out, mean, rstd, x, gamma, beta backend.Buf, rows, dim int, eps float32) {
	b.addLayerNorm(f(out), f(mean), f(rstd), nil, f(x), nil, f(gamma), f(beta), rows, dim, eps)
}

// AddLayerNorm implements backend.AddLayerNormer: one pass per row writes
// sum = x + res and normalises it, bit-identical to Add then LayerNorm.
func (b *Backend) AddLayerNorm(out, mean, rstd, sum, x, res, gamma, beta backend.Buf, rows, dim int, eps float32) {
	b.addLayerNorm(f(out), f(mean), f(rstd), f(sum), f(x), f(res), f(gamma), f(beta), rows, dim, eps)
}

var _ backend.AddLayerNormer = (*Backend)(nil)

// addLayerNorm is LayerNorm of x + res, which it stores in sum, or of x
// alone when res is nil.
func (b *Backend) addLayerNorm(out, mean, rstd, sum, x, res, gamma, beta []float32, rows, dim int, eps float32) {
	p := b.lock()
	defer p.unlock()
	p.t.f = [8][]float32{out, mean, rstd, sum, x, res, gamma, beta}
	p.t.i[0], p.t.x[0] = dim, eps
	p.parallel(rows, 16, func(t *task, lo, hi int) {
		o, mu, rs, sum, xx, res, g, be := t.f[0], t.f[1], t.f[2], t.f[3], t.f[4], t.f[5], t.f[6], t.f[7]
		dim, eps := t.i[0], t.x[0]
		if haveC {
			var s, r []float32
			if res != nil {
				s, r = sum[lo*dim:hi*dim], res[lo*dim:hi*dim]
			}
			cAddLayerNorm(o[lo*dim:hi*dim], mu[lo:hi], rs[lo:hi], s, xx[lo*dim:hi*dim], r, g, be, hi-lo, dim, eps)
			return
		}
		for r := lo; r < hi; r++ {
			row := xx[r*dim : r*dim+dim]
			if res != nil {
				srow := sum[r*dim : r*dim+dim]
				for c, v := range res[r*dim : r*dim+dim] {
					srow[c] = row[c] + v
				}
				row = srow
			}
			var s float64
			for _, v := range row {
				s += float64(v)
			}
			m := s / float64(dim)
			var ss float64
			for _, v := range row {
				d := float64(v) - m
				ss += d * d
			}
			inv := 1 / math.Sqrt(ss/float64(dim)+float64(eps))
			mu[r], rs[r] = float32(m), float32(inv)
			dst := o[r*dim : r*dim+dim]
			for c, v := range row {
				dst[c] = float32((float64(v)-m)*inv)*g[c] + be[c]
			}
		}
	})
}

// LayerNormBackward implements backend.Backend.
func (b *Backend) LayerNormBackward(dx, dgamma, dbeta, dout, x, mean, rstd, gamma backend.Buf, rows, dim int) {
	p := b.lock()
	defer p.unlock()
	p.t.f = [8][]float32{f(dx), f(dgamma), f(dbeta), f(dout), f(x), f(mean), f(rstd), f(gamma)}
	dg, db := p.t.f[1], p.t.f[2]
	if haveC {
		// One pass per row: dx and this block's dgamma/dbeta sums.
		sg, sb := p.colReduce(rows, dim, 2, func(t *task, ag, ab []float64, lo, hi int) {
			ddx, dg, db, dy, xx, mu, rs, g := t.f[0], t.f[1], t.f[2], t.f[3], t.f[4], t.f[5], t.f[6], t.f[7]
			dim := t.cols
			if dg == nil {
				ag = nil
			}
			if db == nil {
				ab = nil
			}
			cLayerNormBackward(ddx[lo*dim:hi*dim], ag, ab, dy[lo*dim:hi*dim], xx[lo*dim:hi*dim], mu[lo:hi], rs[lo:hi], g, hi-lo, dim)
		})
		for c := 0; c < dim; c++ {
			if dg != nil {
				dg[c] += float32(sg[c])
			}
			if db != nil {
				db[c] += float32(sb[c])
			}
		}
		return
	}
	// Parameter gradients: column sums over rows, in float64, serial
	// over rows so the result does not depend on the worker count.
	if dg != nil || db != nil {
		dy, xx, mu, rs := p.t.f[3], p.t.f[4], p.t.f[5], p.t.f[6]
		acc := grow(&p.t.f64, 2*dim)
		clear(acc)
		ag, ab := acc[:dim], acc[dim:]
		for r := 0; r < rows; r++ {
			m, inv := mu[r], rs[r]
			xr, dr := xx[r*dim:r*dim+dim], dy[r*dim:r*dim+dim]
			for c := range xr {
				ag[c] += float64(dr[c] * (xr[c] - m) * inv)
				ab[c] += float64(dr[c])
			}
		}
		for c := 0; c < dim; c++ {
			if dg != nil {
				dg[c] += float32(ag[c])
			}
			if db != nil {
				db[c] += float32(ab[c])
			}
		}
	}
	p.t.i[0] = dim
	p.parallel(rows, 16, func(t *task, lo, hi int) {
		ddx, dy, xx, mu, rs, g := t.f[0], t.f[3], t.f[4], t.f[5], t.f[6], t.f[7]
		dim := t.i[0]
		for r := lo; r < hi; r++ {
			m, inv := mu[r], rs[r]
			xr, dr, out := xx[r*dim:r*dim+dim], dy[r*dim:r*dim+dim], ddx[r*dim:r*dim+dim]
			var sdx, sdxx float64
			for c := range xr {
				dxhat := float64(dr[c] * g[c])
				xhat := float64((xr[c] - m) * inv)
				sdx += dxhat
				sdxx += dxhat * xhat
			}
			sdx /= float64(dim)
			sdxx /= float64(dim)
			for c := range xr {
				dxhat := float64(dr[c] * g[c])
				xhat := float64((xr[c] - m) * inv)
				out[c] = float32(float64(inv) * (dxhat - sdx - xhat*sdxx))
			}
		}
	})
}

const invSqrt2 = 0.70710678118654752440

// Gelu implements backend.Backend. It takes the AVX-512 kernel where the
// CPU has AVX-512F, except on the avx2 GEMM route, which stands in for a
// CPU without it (geluWide); the AVX2 kernel elsewhere the CPU has AVX2,
// and pure Go without either.
func (b *Backend) Gelu(out, x backend.Buf) {
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.f[1], p.t.flag = f(out), f(x), b.geluWide()
	p.parallel(len(p.t.f[1]), 4096, func(t *task, lo, hi int) {
		geluSpan(t.f[0][lo:hi], t.f[1][lo:hi], t.flag)
	})
}

// geluSpan sets o = gelu(x) on one worker: the AVX-512 kernel with wide,
// else the AVX2 one, or pure Go without the C kernels.
func geluSpan(o, x []float32, wide bool) {
	if haveC {
		cGelu(o, x, wide)
		return
	}
	for i, xv := range x {
		// Φ(v) as erfc keeps its relative accuracy for v < 0, where 1 +
		// erf(v/√2) cancels.
		v := float64(xv)
		o[i] = float32(0.5 * v * math.Erfc(-v*invSqrt2))
	}
}

// GeluBackward implements backend.Backend.
func (b *Backend) GeluBackward(dx, dout, x backend.Buf) {
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.f[1], p.t.f[2], p.t.flag = f(dx), f(dout), f(x), b.geluWide()
	p.parallel(len(p.t.f[2]), 4096, func(t *task, lo, hi int) {
		const invSqrt2Pi = 0.39894228040143267794
		d, g, xx := t.f[0], t.f[1], t.f[2]
		if haveC {
			cGeluBackward(d[lo:hi], g[lo:hi], xx[lo:hi], t.flag)
			return
		}
		for i := lo; i < hi; i++ {
			v := float64(xx[i])
			cdf := 0.5 * math.Erfc(-v*invSqrt2)
			pdf := invSqrt2Pi * math.Exp(-0.5*v*v)
			d[i] = float32(float64(g[i]) * (cdf + v*pdf))
		}
	})
}

// Tanh implements backend.Backend.
func (b *Backend) Tanh(out, x backend.Buf) {
	o, xx := f(out), f(x)
	for i, v := range xx {
		o[i] = float32(math.Tanh(float64(v)))
	}
}

// TanhBackward implements backend.Backend.
func (b *Backend) TanhBackward(dx, dout, y backend.Buf) {
	d, g, yy := f(dx), f(dout), f(y)
	for i, v := range yy {
		d[i] = g[i] * (1 - v*v)
	}
}

// Dropout implements backend.Backend.
func (b *Backend) Dropout(out, x backend.Buf, p float32, seed uint64) {
	b.dropout(f(out), f(x), p, seed)
}

// DropoutBackward implements backend.Backend.
func (b *Backend) DropoutBackward(dx, dout backend.Buf, p float32, seed uint64) {
	b.dropout(f(dx), f(dout), p, seed)
}

func (b *Backend) dropout(o, x []float32, pd float32, seed uint64) {
	if pd <= 0 {
		copy(o, x)
		return
	}
	p := b.lock()
	defer p.unlock()
	p.t.f[0], p.t.f[1], p.t.x[0], p.t.x[1], p.t.seed = o, x, pd, 1/(1-pd), seed
	p.parallel(len(x), 4096, func(t *task, lo, hi int) {
		o, x, p, scale, seed := t.f[0], t.f[1], t.x[0], t.x[1], t.seed
		if haveC {
			cDropout(o[lo:hi], x[lo:hi], p, scale, seed, uint64(lo))
			return
		}
		for i := lo; i < hi; i++ {
			if backend.Keep(seed, uint64(i), p) {
				o[i] = x[i] * scale
			} else {
				o[i] = 0
			}
		}
	})
}

// AdamW implements backend.Backend with torch.optim.AdamW's arithmetic:
// scalars are computed in float64 and applied in float32, in torch's order.
func (b *Backend) AdamW(p, g, m, v backend.Buf, s backend.AdamWStep) {
	lr, b1, b2 := float64(s.LR), float64(s.Beta1), float64(s.Beta2)
	decay := float32(1 - lr*float64(s.WeightDecay))
	bc1 := 1 - math.Pow(b1, float64(s.Step))
	bc2sqrt := float32(math.Sqrt(1 - math.Pow(b2, float64(s.Step))))
	stepSize := float32(lr / bc1)
	pl := b.lock()
	defer pl.unlock()
	pl.t.f[0], pl.t.f[1], pl.t.f[2], pl.t.f[3] = f(p), f(g), f(m), f(v)
	pl.t.x = [9]float32{decay, float32(b1), float32(b2), float32(1 - b1), float32(1 - b2), bc2sqrt, stepSize, s.Eps}
	pl.t.flag = s.WeightDecay != 0
	pl.parallel(len(pl.t.f[0]), 1<<14, func(t *task, lo, hi int) {
		pp, gg, mm, vv := t.f[0], t.f[1], t.f[2], t.f[3]
		decay, fb1, fb2, om1, om2, bc2sqrt, stepSize, eps := t.x[0], t.x[1], t.x[2], t.x[3], t.x[4], t.x[5], t.x[6], t.x[7]
		useDecay := t.flag
		if haveC {
			cAdamW(pp[lo:hi], gg[lo:hi], mm[lo:hi], vv[lo:hi], decay, useDecay, fb1, fb2, om1, om2, bc2sqrt, stepSize, eps)
			return
		}
		for i := lo; i < hi; i++ {
			gi := gg[i]
			x := pp[i]
			if useDecay {
				x *= decay
			}
			mi := mm[i]*fb1 + gi*om1
			vi := vv[i]*fb2 + gi*gi*om2
			mm[i], vv[i] = mi, vi
			denom := float32(math.Sqrt(float64(vi)))/bc2sqrt + eps
			pp[i] = x - stepSize*(mi/denom)
		}
	})
}

// SumSquares implements backend.Backend.
func (b *Backend) SumSquares(x backend.Buf) float64 {
	var s float64
	for _, v := range f(x) {
		s += float64(v) * float64(v)
	}
	return s
}

// LoraMerge implements backend.Backend.
func (b *Backend) LoraMerge(w, a, bb backend.Buf, out, in, r int, scale float32) {
	b.Gemm(false, false, out, in, r, scale, bb, r, a, in, 1, w, in)
}
