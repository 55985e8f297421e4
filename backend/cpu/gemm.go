package cpu

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/rerank-go/rerank/backend"
)

// The routes matrix products can take (Options.Gemm, GemmRoute).
const (
	// GemmAVX512 is the blocked kernel of sgemm_avx512.c, for CPUs with
	// AVX-512F (and VL, DQ).
	GemmAVX512 = "avx512"
	// GemmAVX2 is the blocked kernel of sgemm_avx2.c, for CPUs with AVX2
	// and FMA. It gives the same bits as GemmAVX512.
	GemmAVX2 = "avx2"
	// GemmOpenBLAS is Debian's OpenBLAS, single-threaded per call.
	GemmOpenBLAS = "openblas"
	// GemmGo is the pure-Go product: slow, the reference of the tests and
	// the route of a build without cgo (or with the tag noblas).
	GemmGo = "go"
)

// GemmEnv is the environment variable New reads to force a route.
const GemmEnv = "RERANK_CPU_GEMM"

// A kernel is one of the blocked SGEMMs in C: sgemm_avx512.c (AVX-512F)
// or sgemm_avx2.c (AVX2 and FMA). Both have the same interface and the
// same k-blocks, and sum every element of C in the same order, so they
// give the same bits; they differ in the micro-tile, mr×nr: row blocks
// are cut at multiples of mr, column blocks at multiples of nr (a panel).
type kernel struct {
	name        string
	avx512      bool
	mr, nr      int
	packASize   int // the A scratch each worker needs, in floats
	privateSize int // the scratch of a worker that packs B itself
}

// GemmRoutes lists the routes this build can take on this CPU, fastest
// first; the first is the one New takes unless told otherwise.
func GemmRoutes() []string {
	var r []string
	if kernAVX512 != nil {
		r = append(r, GemmAVX512)
	}
	if kernAVX2 != nil {
		r = append(r, GemmAVX2)
	}
	if baseRoute == GemmOpenBLAS {
		r = append(r, GemmOpenBLAS)
	}
	return append(r, GemmGo)
}

// GemmRoute is the route New takes now: the one $RERANK_CPU_GEMM names
// where this build and CPU can take it, else the first of GemmRoutes.
func GemmRoute() string {
	if r, err := checkRoute(os.Getenv(GemmEnv)); err == nil && r != "" {
		return r
	}
	return GemmRoutes()[0]
}

// checkRoute returns the route name r asks for ("" for none), or an
// error where this build or CPU cannot take it.
func checkRoute(r string) (string, error) {
	r = strings.ToLower(strings.TrimSpace(r))
	if r == "" {
		return "", nil
	}
	all := GemmRoutes()
	for _, x := range all {
		if x == r {
			return r, nil
		}
	}
	switch r {
	case GemmAVX512, GemmAVX2, GemmOpenBLAS:
		return "", fmt.Errorf("cpu: the %s GEMM route is not available in this build or on this CPU; it can take %s", r, strings.Join(all, ", "))
	}
	return "", fmt.Errorf("cpu: unknown GEMM route %q: want one of %s, %s, %s, %s", r, GemmAVX512, GemmAVX2, GemmOpenBLAS, GemmGo)
}

// Options configure a Backend (NewWithOptions).
type Options struct {
	// Workers is the number of goroutines ops use, and of lanes
	// (backend.Laner); 0 means GOMAXPROCS.
	Workers int
	// Gemm forces the route of matrix products (GemmAVX512, GemmAVX2,
	// GemmOpenBLAS, GemmGo); "" takes the fastest this CPU can run
	// (GemmRoutes). Attention's small per-head products take the fastest
	// kernel whatever the route.
	Gemm string
}

// NewWithOptions returns a CPU backend configured by o, or an error where
// o.Gemm names a route this build or CPU cannot take.
func NewWithOptions(o Options) (*Backend, error) {
	r, err := checkRoute(o.Gemm)
	if err != nil {
		return nil, err
	}
	if r == "" {
		r = GemmRoutes()[0]
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	bk := &Backend{workers: o.Workers, route: r}
	switch r {
	case GemmAVX512:
		bk.kern = kernAVX512
	case GemmAVX2:
		bk.kern = kernAVX2
	}
	return bk, nil
}

// GemmRoute reports the route the backend's matrix products take.
func (bk *Backend) GemmRoute() string { return bk.route }

// bestKernel is the fastest blocked kernel this CPU runs, or nil.
func bestKernel() *kernel {
	if kernAVX512 != nil {
		return kernAVX512
	}
	return kernAVX2
}

// sgemm is one product on the calling goroutine by the fastest kernel
// (attention's per-head products).
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if kn := bestKernel(); kn != nil {
		kn.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, nil)
		return
	}
	baseSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// base is one product on the calling goroutine by the backend's route
// when it is not a blocked kernel: OpenBLAS, or pure Go.
func (bk *Backend) base(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if bk.route == GemmGo {
		if k == 0 {
			scaleC(m, n, beta, c, ldc)
			return
		}
		goGemm(transA, transB, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	baseSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Gemm implements backend.Backend.
func (bk *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a backend.Buf, lda int, b backend.Buf, ldb int, beta float32, c backend.Buf, ldc int) {
	bk.gemmPar(transA, transB, m, n, k, alpha, f(a), lda, f(b), ldb, beta, f(c), ldc)
}

// scaleC sets C = beta·C (C is not read when beta is 0).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			if beta == 0 {
				row[j] = 0
			} else {
				row[j] *= beta
			}
		}
	}
}

// goGemm computes rows [lo, hi) of C = alpha·op(A)·op(B) + beta·C in pure
// Go. It is the fallback when OpenBLAS is not linked, and the reference
// the tests hold OpenBLAS to.
func goGemm(transA, transB bool, lo, hi, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	// Columns go in tiles of goGemmTile, accumulated on the stack, so the
	// product allocates nothing; each element still sums over p in order.
	var tile [goGemmTile]float32
	for i := lo; i < hi; i++ {
		for j0 := 0; j0 < n; j0 += goGemmTile {
			acc := tile[:min(goGemmTile, n-j0)]
			clear(acc)
			for p := 0; p < k; p++ {
				var av float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if av == 0 {
					continue
				}
				if transB {
					for j := range acc {
						acc[j] += av * b[(j0+j)*ldb+p]
					}
				} else {
					row := b[p*ldb+j0 : p*ldb+j0+len(acc)]
					for j, bv := range row {
						acc[j] += av * bv
					}
				}
			}
			row := c[i*ldc+j0 : i*ldc+j0+len(acc)]
			for j := range row {
				if beta == 0 {
					row[j] = alpha * acc[j]
				} else {
					row[j] = alpha*acc[j] + beta*row[j]
				}
			}
		}
	}
}

// goGemmTile is the number of C's columns goGemm accumulates at once.
const goGemmTile = 256

// gemmSplitMin is the smallest product (m·n·k multiply-adds) worth
// splitting across workers.
const gemmSplitMin = 1 << 21

// GemmBias implements backend.BiasGemmer: each worker writes the bias
// into its block of C's rows and accumulates the product onto it (beta =
// 1), so C is swept once.
func (bk *Backend) GemmBias(m, n, k int, a backend.Buf, lda int, b backend.Buf, ldb int, bias backend.Buf, c backend.Buf, ldc int) {
	aa, bb, bs, cc := f(a), f(b), f(bias), f(c)
	if bk.kern != nil {
		bk.avxGemmPar(false, true, m, n, k, 1, aa, lda, bb, ldb, 0, cc, ldc, bs, nil, nil)
		return
	}
	p := bk.lock()
	defer p.unlock()
	g := &p.t.gemm
	g.n, g.k, g.a, g.lda, g.b, g.ldb, g.bias, g.c, g.ldc = n, k, aa, lda, bb, ldb, bs, cc, ldc
	g.goRoute = bk.route == GemmGo
	block := func(t *task, lo, hi int) {
		g := &t.gemm
		for r := lo; r < hi; r++ {
			copy(g.c[r*g.ldc:r*g.ldc+g.n], g.bias[:g.n])
		}
		g.base(false, true, hi-lo, g.n, g.k, 1, g.a[lo*g.lda:], g.lda, g.b, g.ldb, 1, g.c[lo*g.ldc:], g.ldc)
	}
	w := bk.workers
	if w <= 1 || m*n*k < gemmSplitMin || m < 2*w*32 {
		block(&p.t, 0, m)
		return
	}
	p.split(m, ((m+w-1)/w+31)/32*32, block)
}

var _ backend.WeightPacker = (*Backend)(nil)

// PackedSize implements backend.WeightPacker. It is 0, for no packing,
// unless products take a blocked kernel (GemmRoute "avx512" or "avx2"),
// whose packed layout is panels of 32 (AVX-512) or 16 (AVX2) output
// columns, k-block by k-block.
func (bk *Backend) PackedSize(n, k int) int {
	if bk.kern == nil || n <= 0 || k <= 0 {
		return 0
	}
	return bk.kern.packedWeightSize(n, k)
}

// PackWeight implements backend.WeightPacker.
func (bk *Backend) PackWeight(dst, w backend.Buf, ldw, n, k int) {
	if bk.PackedSize(n, k) == 0 {
		panic("cpu: PackWeight where PackedSize is 0")
	}
	bk.kern.packWeight(f(dst), f(w), ldw, n, k)
}

// GemmBiasPacked implements backend.WeightPacker: GemmBias without
// packing the weight, which takes the same kernel in the same order, so
// the result has the same bits.
func (bk *Backend) GemmBiasPacked(m, n, k int, a backend.Buf, lda int, pw, bias, c backend.Buf, ldc int) {
	bk.gemmBiasPacked(m, n, k, f(a), lda, f(pw), f(bias), f(c), ldc, nil)
}

// gemmBiasPacked is GemmBiasPacked, with act = gelu(C) in the epilogue
// when act is not nil (geluFused).
func (bk *Backend) gemmBiasPacked(m, n, k int, a []float32, lda int, pw, bias, c []float32, ldc int, act []float32) {
	if bk.crew != nil && k > 0 && n > 0 && bk.crew.worth(m) {
		j := &bk.job
		j.m, j.n, j.k, j.a, j.lda, j.pw, j.bias, j.c, j.ldc, j.act = m, n, k, a, lda, pw, bias, c, ldc, act
		j.kern, j.align, j.q8 = bk.kern, bk.kern.mr, nil
		bk.crew.share(j)
		return
	}
	bk.avxGemmPar(false, true, m, n, k, 1, a, lda, nil, 0, 0, c, ldc, bias, pw, act)
}

var _ backend.BiasGeluGemmer = (*Backend)(nil)

// geluFused says whether a product of depth k takes its GELU in the
// blocked kernel's epilogue: where the kernel's GELU is the one Gelu
// takes on this backend (the AVX-512 kernel's where Gelu takes the
// AVX-512 one, the AVX2 kernel's where it takes the AVX2 one), so that the
// bits are those of the product and Gelu in two passes. The other routes
// (OpenBLAS, pure Go) take two passes.
func (bk *Backend) geluFused(k int) bool {
	return bk.kern != nil && k > 0 && bk.kern.avx512 == bk.geluWide()
}

// geluOut returns the buffer the product is written to: pre, or act when
// pre is nil or the same memory as act (then only act is written).
func geluOut(pre, act []float32) (c []float32, inPlace bool) {
	if len(pre) == 0 || len(act) == 0 || &pre[0] == &act[0] {
		return act, true
	}
	return pre, false
}

// geluRows is the second pass of an unfused product with GELU: act =
// gelu(c) on the m×n matrices of leading dimension ldc.
func (bk *Backend) geluRows(act, c []float32, m, n, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	if ldc == n {
		bk.Gelu(F32(act[:m*n]), F32(c[:m*n]))
		return
	}
	for i := 0; i < m; i++ {
		bk.Gelu(F32(act[i*ldc:i*ldc+n]), F32(c[i*ldc:i*ldc+n]))
	}
}

// GemmBiasGelu implements backend.BiasGeluGemmer: on the blocked kernels
// the GELU is applied to each tile of the result while it is in registers,
// instead of a second pass over C (geluFused).
func (bk *Backend) GemmBiasGelu(m, n, k int, a backend.Buf, lda int, b backend.Buf, ldb int, bias, pre, act backend.Buf, ldc int) {
	ac := f(act)
	c, _ := geluOut(f(pre), ac)
	if !bk.geluFused(k) {
		bk.GemmBias(m, n, k, a, lda, b, ldb, bias, F32(c), ldc)
		bk.geluRows(ac, c, m, n, ldc)
		return
	}
	bk.avxGemmPar(false, true, m, n, k, 1, f(a), lda, f(b), ldb, 0, c, ldc, f(bias), nil, ac)
}

// GemmBiasPackedGelu implements backend.BiasGeluGemmer; the lanes' crew
// shares it as it shares GemmBiasPacked.
func (bk *Backend) GemmBiasPackedGelu(m, n, k int, a backend.Buf, lda int, pw, bias, pre, act backend.Buf, ldc int) {
	ac := f(act)
	c, _ := geluOut(f(pre), ac)
	if !bk.geluFused(k) {
		bk.gemmBiasPacked(m, n, k, f(a), lda, f(pw), f(bias), c, ldc, nil)
		bk.geluRows(ac, c, m, n, ldc)
		return
	}
	bk.gemmBiasPacked(m, n, k, f(a), lda, f(pw), f(bias), c, ldc, ac)
}

// gemmPar computes one product, split into one block of C's rows (or,
// when C has few rows, of its columns) per worker, each block a
// single-threaded sgemm. The split depends only on the shape and the
// worker count, so results are reproducible.
func (bk *Backend) gemmPar(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if bk.kern != nil {
		bk.avxGemmPar(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, nil, nil)
		return
	}
	w := bk.workers
	if w <= 1 || m*n*k < gemmSplitMin || m == 0 || n == 0 {
		bk.base(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	p := bk.lock()
	defer p.unlock()
	g := &p.t.gemm
	g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.beta = transA, transB, m, n, k, alpha, beta
	g.a, g.lda, g.b, g.ldb, g.c, g.ldc = a, lda, b, ldb, c, ldc
	g.goRoute = bk.route == GemmGo
	const align = 32
	if m >= n || m >= w*align*2 {
		chunk := ((m+w-1)/w + align - 1) / align * align
		p.split(m, chunk, func(t *task, lo, hi int) {
			g := &t.gemm
			var aa []float32
			if g.transA {
				aa = g.a[lo:]
			} else {
				aa = g.a[lo*g.lda:]
			}
			g.base(g.transA, g.transB, hi-lo, g.n, g.k, g.alpha, aa, g.lda, g.b, g.ldb, g.beta, g.c[lo*g.ldc:], g.ldc)
		})
		return
	}
	chunk := ((n+w-1)/w + align - 1) / align * align
	p.split(n, chunk, func(t *task, lo, hi int) {
		g := &t.gemm
		var bb []float32
		if g.transB {
			bb = g.b[lo*g.ldb:]
		} else {
			bb = g.b[lo:]
		}
		g.base(g.transA, g.transB, g.m, hi-lo, g.k, g.alpha, g.a, g.lda, bb, g.ldb, g.beta, g.c[lo:], g.ldc)
	})
}

// base is one block of a split product on the route it was split for
// (gemmPar, GemmBias: OpenBLAS or pure Go).
func (g *gemmOp) base(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	bk := Backend{route: GemmOpenBLAS}
	if g.goRoute {
		bk.route = GemmGo
	}
	bk.base(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
