//go:build cgo && !noblas && amd64

package cpu

/*
#cgo CFLAGS: -O3
#include "sgemm_avx512.h"
#include "sgemm_avx2.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// haveAVX512 reports whether the CPU can run sgemm_avx512.c.
var haveAVX512 = C.rr_has_avx512f() != 0

// The kernels this CPU can run; nil where it cannot.
var (
	kernAVX512 = newKernel(haveAVX512, true)
	kernAVX2   = newKernel(haveC, false)
)

func newKernel(ok, avx512 bool) *kernel {
	switch {
	case !ok:
		return nil
	case avx512:
		return &kernel{name: GemmAVX512, avx512: true, mr: int(C.RR_SGEMM_MR), nr: int(C.RR_SGEMM_NR),
			packASize: int(C.rr_sgemm_packa_size()), privateSize: int(C.rr_sgemm_private_size())}
	}
	return &kernel{name: GemmAVX2, mr: int(C.RR_SGEMM2_MR), nr: int(C.RR_SGEMM2_NR),
		packASize: int(C.rr_sgemm2_packa_size()), privateSize: int(C.rr_sgemm2_private_size())}
}

// packbSize is the number of floats op(B), k×n, takes packed.
func (kn *kernel) packbSize(n, k int) int {
	if kn.avx512 {
		return int(C.rr_sgemm_packb_size(C.int64_t(n), C.int64_t(k)))
	}
	return int(C.rr_sgemm2_packb_size(C.int64_t(n), C.int64_t(k)))
}

// packb packs panels [j0, j1) of op(B) into pb.
func (kn *kernel) packb(transB bool, n, k int, b []float32, ldb int, pb []float32, j0, j1 int) {
	if kn.avx512 {
		C.rr_sgemm_packb(bint(transB), C.int64_t(n), C.int64_t(k), fp(b), C.int64_t(ldb), fp(pb), C.int64_t(j0), C.int64_t(j1))
		return
	}
	C.rr_sgemm2_packb(bint(transB), C.int64_t(n), C.int64_t(k), fp(b), C.int64_t(ldb), fp(pb), C.int64_t(j0), C.int64_t(j1))
}

// compute computes rows [m0, m1) and panels [j0, j1) of C, and of act =
// gelu(C) when act is not nil (see rr_sgemm_compute).
func (kn *kernel) compute(transA bool, m0, m1, j0, j1, n, k int, alpha float32, a []float32, lda int, transB bool, b []float32, ldb int, pb []float32, beta float32, c []float32, ldc int, bias, act, ap []float32) {
	if kn.avx512 {
		C.rr_sgemm_compute(bint(transA), C.int64_t(m0), C.int64_t(m1), C.int64_t(j0), C.int64_t(j1),
			C.int64_t(n), C.int64_t(k), C.float(alpha), fp(a), C.int64_t(lda), bint(transB), fp(b), C.int64_t(ldb), fp(pb), C.float(beta),
			fp(c), C.int64_t(ldc), fp(bias), fp(act), fp(ap))
		return
	}
	C.rr_sgemm2_compute(bint(transA), C.int64_t(m0), C.int64_t(m1), C.int64_t(j0), C.int64_t(j1),
		C.int64_t(n), C.int64_t(k), C.float(alpha), fp(a), C.int64_t(lda), bint(transB), fp(b), C.int64_t(ldb), fp(pb), C.float(beta),
		fp(c), C.int64_t(ldc), fp(bias), fp(act), fp(ap))
}

// whole is the product on the calling thread (rr_sgemm).
func (kn *kernel) whole(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias, act, pb, ap []float32) {
	if kn.avx512 {
		C.rr_sgemm(bint(transA), bint(transB), C.int64_t(m), C.int64_t(n), C.int64_t(k), C.float(alpha),
			fp(a), C.int64_t(lda), fp(b), C.int64_t(ldb), C.float(beta), fp(c), C.int64_t(ldc), fp(bias), fp(act), fp(pb), fp(ap))
		return
	}
	C.rr_sgemm2(bint(transA), bint(transB), C.int64_t(m), C.int64_t(n), C.int64_t(k), C.float(alpha),
		fp(a), C.int64_t(lda), fp(b), C.int64_t(ldb), C.float(beta), fp(c), C.int64_t(ldc), fp(bias), fp(act), fp(pb), fp(ap))
}

// packPool holds the buffers B is packed into, so that a steady stream of
// products allocates nothing. Several goroutines may multiply at once
// (attention runs heads in parallel), each taking its own buffer.
var packPool packList

// packList is a free list of pack buffers. Unlike a sync.Pool, the garbage
// collector never empties it and a buffer put back on one P can be taken
// on any other. A request no free buffer fits gets a new buffer as large as
// the largest request so far, so that once the list holds one such buffer
// per product run at once, no product allocates.
type packList struct {
	mu   sync.Mutex
	free []*[]float32
	most int // the largest request so far
}

// Get takes a buffer of at least n floats off the list, the most recently
// put back of them, or returns a new one.
func (l *packList) Get(n int) *[]float32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.free) - 1; i >= 0; i-- {
		if p := l.free[i]; cap(*p) >= n {
			l.free = append(l.free[:i], l.free[i+1:]...)
			return p
		}
	}
	l.most = max(l.most, n)
	s := make([]float32, l.most)
	return &s
}

// Put hands a buffer back.
func (l *packList) Put(p *[]float32) {
	l.mu.Lock()
	l.free = append(l.free, p)
	l.mu.Unlock()
}

// getPack returns a pooled buffer and a 64-byte-aligned slice of at least
// n floats inside it; hand the buffer back with packPool.Put.
func getPack(n int) (*[]float32, []float32) {
	p := packPool.Get(n + 16)
	s := (*p)[:cap(*p)]
	off := int(uintptr(unsafe.Pointer(&s[0]))&63) / 4
	if off != 0 {
		off = 16 - off
	}
	return p, s[off : off+n]
}

func bint(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// privateB says whether each worker packs the blocks of B it needs into
// its own scratch, just before using them (as OpenBLAS does), instead of
// all workers packing B once into a shared buffer. Duplicated packing is
// cheap next to a weight gradient's deep k (transA: k = 2048 tokens),
// while the shared copy of B (k·n floats) goes out to L3 and back and
// costs a barrier; interleaved on two workers, the weight gradients gain
// 0-5% this way and the forward and input-gradient products lose 3-15%.
// On one worker the weight gradients gain 0-4%.
func privateB(transA bool) bool { return transA }

// Blocks of C that workers claim (see avxGemmPar): up to claimsPerWorker
// per worker, of at least claimMinRows rows, where B has up to claimBMax
// floats; a larger B (beyond L2, re-read from L3 or memory by every block)
// gets half as many blocks, twice as tall.
const (
	claimsPerWorker = 8
	claimMinRows    = 96
	claimBMax       = 1 << 20
)

// sgemm computes C = alpha·op(A)·op(B) + beta·C (+ bias on every row
// when bias is not nil; act = gelu(C) when act is not nil, k > 0) on the
// calling goroutine.
func (kn *kernel) sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias, act []float32) {
	if m <= 0 || n <= 0 {
		return
	}
	nb, apSize := kn.packbSize(n, k), kn.packASize
	if privateB(transA) {
		nb, apSize = 0, kn.privateSize
	}
	p, buf := getPack(nb + apSize)
	kn.whole(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, buf[:nb], buf[nb:])
	packPool.Put(p)
}

// avxGemmPar is bk.kern.sgemm on the backend's workers. Unless each packs its
// own blocks of B (privateB), they first pack B into one shared buffer,
// taking groups of panels from a common counter, and wait for one another
// (spinning: the wait is about one group long); then they take blocks of
// C's rows
// (or, when C has few rows, of its columns) from another counter and
// compute each against all of B. Which worker packs or computes what does
// not change any value: every element of C is summed in the same order
// whatever the blocks, so the result has the same bits for any number of
// workers and any timing. pre, when not nil, is B packed by packWeight
// (GemmBiasPacked: A not transposed, alpha 1, beta 0), and nothing is
// packed. act, when not nil (and k > 0), gets gelu(C) (leading dimension
// ldc too), in the product's epilogue; act may be C.
func (bk *Backend) avxGemmPar(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias, pre, act []float32) {
	w, kn := bk.workers, bk.kern
	if w <= 1 || m*n*k < gemmSplitMin || m <= 0 || n <= 0 || k <= 0 {
		if pre != nil {
			kn.prepackedRows(0, m, n, k, a, lda, pre, c, ldc, bias, act)
		} else {
			kn.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act)
		}
		return
	}
	nb, apSize := kn.packbSize(n, k), kn.packASize
	switch {
	case pre != nil:
		nb = 0 // B comes packed: the workers go straight to C's blocks
	case privateB(transA):
		nb, apSize = 0, kn.privateSize
	}
	pk, buf := getPack(nb + w*apSize)
	p := bk.lock()
	defer p.unlock()
	g := &p.t.gemm
	g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.beta = transA, transB, m, n, k, alpha, beta
	g.a, g.lda, g.b, g.ldb, g.c, g.ldc, g.bias, g.act = a, lda, b, ldb, c, ldc, bias, act
	g.kern = kn
	g.buf, g.pb, g.nb, g.apSize = buf, buf[:nb], nb, apSize
	if pre != nil {
		g.pb = pre
	}
	g.panels = (n + kn.nr - 1) / kn.nr
	// C is cut into blocks of rows (or, when it has few rows, of panels)
	// that the workers take in turn, so that a worker that starts late or
	// shares its core with another program simply takes fewer. Each block
	// reads all of B again, so blocks are not too small (claimMinRows), nor
	// too many where B is large. (Measured interleaved on two workers:
	// blocks of 256 rows left the workers finishing up to 1.7 ms apart on
	// 10 ms products; 96-128 rows gain 5-15% on the MiniLM shapes but cost
	// 2-6% where B is 1.8-2.4M floats.)
	g.byRows = m >= 2*w*kn.mr || g.panels < w
	claims := 1
	if g.byRows && len(g.pb) > 0 {
		per, rows := claimsPerWorker, claimMinRows
		if k*n > claimBMax {
			per, rows = per/2, rows*2
		}
		claims = max(1, min(per, m/(w*rows)))
	}
	if g.byRows {
		g.chunk = (m + w*claims - 1) / (w * claims)
		g.chunk = max(kn.mr, (g.chunk+kn.mr-1)/kn.mr*kn.mr)
		g.blocks = (m + g.chunk - 1) / g.chunk
	} else {
		g.chunk = max(1, (g.panels+w*claims-1)/(w*claims))
		g.blocks = (g.panels + g.chunk - 1) / g.chunk
	}
	g.next.Store(0)
	g.packed.Store(0)
	g.claim.Store(0)
	p.t.work = avxGemmWork
	p.fork(min(w, g.blocks))
	packPool.Put(pk)
}

// avxGemmWork is one worker's share of avxGemmPar's product p.t.gemm.
func avxGemmWork(t *task, slot int) {
	g := &t.gemm
	const group = 2 // panels packed per claim
	for g.nb > 0 {
		lo := int(g.next.Add(group)) - group
		if lo >= g.panels {
			break
		}
		hi := min(lo+group, g.panels)
		g.kern.packb(g.transB, g.n, g.k, g.b, g.ldb, g.pb, lo, hi)
		g.packed.Add(int64(hi - lo))
	}
	for g.nb > 0 && g.packed.Load() < int64(g.panels) {
		runtime.Gosched()
	}
	ap := g.buf[g.nb+slot*g.apSize : g.nb+(slot+1)*g.apSize]
	for {
		i := int(g.claim.Add(1)) - 1
		if i >= g.blocks {
			return
		}
		m0, m1, j0, j1 := i*g.chunk, min(g.m, i*g.chunk+g.chunk), 0, g.panels
		if !g.byRows {
			m0, m1, j0, j1 = 0, g.m, i*g.chunk, min(g.panels, i*g.chunk+g.chunk)
		}
		g.kern.compute(g.transA, m0, m1, j0, j1, g.n, g.k, g.alpha, g.a, g.lda, g.transB, g.b, g.ldb, g.pb, g.beta, g.c, g.ldc, g.bias, g.act, ap)
	}
}

// prepackedRows computes rows [m0, m1) of C = A·Wᵀ + bias, W packed by
// packWeight, and of act = gelu(C) when act is not nil, on the calling
// goroutine.
func (kn *kernel) prepackedRows(m0, m1, n, k int, a []float32, lda int, pw, c []float32, ldc int, bias, act []float32) {
	p, ap := getPack(kn.packASize)
	panels := (n + kn.nr - 1) / kn.nr
	kn.compute(false, m0, m1, 0, panels, n, k, 1, a, lda, true, nil, 0, pw, 0, c, ldc, bias, act, ap)
	packPool.Put(p)
}

// packedWeightSize is the number of floats packWeight writes for an n×k
// weight.
func (kn *kernel) packedWeightSize(n, k int) int { return kn.packbSize(n, k) }

// packWeight packs the n×k weight w (row j holds output j's k inputs,
// leading dimension ldw) as op(B) = wᵀ, the B of a linear layer's forward
// product, into dst (packedWeightSize(n, k) floats).
func (kn *kernel) packWeight(dst, w []float32, ldw, n, k int) {
	if n <= 0 || k <= 0 {
		return
	}
	kn.packb(true, n, k, w, ldw, dst, 0, (n+kn.nr-1)/kn.nr)
}
