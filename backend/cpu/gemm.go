package cpu

import "github.com/rerank-go/rerank/backend"

// GemmRoute names the route matrix products take: "avx512" (the blocked
// AVX-512 kernel of sgemm_avx512.c, chosen where the CPU has AVX-512F),
// "openblas" (otherwise, or when the environment variable
// RERANK_CPU_GEMM=openblas is set at start-up) or "go" (a build without
// cgo, or with the tag noblas).
func GemmRoute() string { return gemmRoute }

// sgemm is one product on the calling goroutine, by the package's route.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if gemmRoute == "avx512" {
		avxSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
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

// GemmBatched implements backend.Backend.
func (bk *Backend) GemmBatched(transA, transB bool, m, n, k int, alpha float32, a backend.Buf, lda, strideA int, b backend.Buf, ldb, strideB int, beta float32, c backend.Buf, ldc, strideC int, batch int) {
	aa, bb, cc := f(a), f(b), f(c)
	for i := 0; i < batch; i++ {
		bk.gemm1(transA, transB, m, n, k, alpha, aa[i*strideA:], lda, bb[i*strideB:], ldb, beta, cc[i*strideC:], ldc)
	}
}

// gemm1 is one product on the calling goroutine, by the backend's route.
func (bk *Backend) gemm1(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if bk.avx512 {
		avxSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
		return
	}
	baseSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmSplitMin is the smallest product (m·n·k multiply-adds) worth
// splitting across workers.
const gemmSplitMin = 1 << 21

// GemmBias implements backend.BiasGemmer: each worker writes the bias
// into its block of C's rows and accumulates the product onto it (beta =
// 1), so C is swept once.
func (bk *Backend) GemmBias(m, n, k int, a backend.Buf, lda int, b backend.Buf, ldb int, bias backend.Buf, c backend.Buf, ldc int) {
	aa, bb, bs, cc := f(a), f(b), f(bias), f(c)
	if bk.avx512 {
		bk.avxGemmPar(false, true, m, n, k, 1, aa, lda, bb, ldb, 0, cc, ldc, bs, nil)
		return
	}
	p := bk.lock()
	defer p.unlock()
	g := &p.t.gemm
	g.n, g.k, g.a, g.lda, g.b, g.ldb, g.bias, g.c, g.ldc = n, k, aa, lda, bb, ldb, bs, cc, ldc
	block := func(t *task, lo, hi int) {
		g := &t.gemm
		for r := lo; r < hi; r++ {
			copy(g.c[r*g.ldc:r*g.ldc+g.n], g.bias[:g.n])
		}
		baseSgemm(false, true, hi-lo, g.n, g.k, 1, g.a[lo*g.lda:], g.lda, g.b, g.ldb, 1, g.c[lo*g.ldc:], g.ldc)
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
// unless products take the AVX-512 kernel (GemmRoute "avx512"), whose
// packed layout is panels of 32 output columns, k-block by k-block.
func (bk *Backend) PackedSize(n, k int) int {
	if !bk.avx512 || n <= 0 || k <= 0 {
		return 0
	}
	return packedWeightSize(n, k)
}

// PackWeight implements backend.WeightPacker.
func (bk *Backend) PackWeight(dst, w backend.Buf, ldw, n, k int) {
	if bk.PackedSize(n, k) == 0 {
		panic("cpu: PackWeight where PackedSize is 0")
	}
	packWeight(f(dst), f(w), ldw, n, k)
}

// GemmBiasPacked implements backend.WeightPacker: GemmBias without
// packing the weight, which takes the same kernel in the same order, so
// the result has the same bits.
func (bk *Backend) GemmBiasPacked(m, n, k int, a backend.Buf, lda int, pw, bias, c backend.Buf, ldc int) {
	if bk.crew != nil && k > 0 && n > 0 && bk.crew.worth(m) {
		j := &bk.job
		j.m, j.n, j.k, j.a, j.lda, j.pw, j.bias, j.c, j.ldc = m, n, k, f(a), lda, f(pw), f(bias), f(c), ldc
		bk.crew.share(j)
		return
	}
	bk.avxGemmPar(false, true, m, n, k, 1, f(a), lda, nil, 0, 0, f(c), ldc, f(bias), f(pw))
}

// gemmPar computes one product, split into one block of C's rows (or,
// when C has few rows, of its columns) per worker, each block a
// single-threaded sgemm. The split depends only on the shape and the
// worker count, so results are reproducible.
func (bk *Backend) gemmPar(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if bk.avx512 {
		bk.avxGemmPar(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, nil)
		return
	}
	w := bk.workers
	if w <= 1 || m*n*k < gemmSplitMin || m == 0 || n == 0 {
		baseSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	p := bk.lock()
	defer p.unlock()
	g := &p.t.gemm
	g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.beta = transA, transB, m, n, k, alpha, beta
	g.a, g.lda, g.b, g.ldb, g.c, g.ldc = a, lda, b, ldb, c, ldc
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
			baseSgemm(g.transA, g.transB, hi-lo, g.n, g.k, g.alpha, aa, g.lda, g.b, g.ldb, g.beta, g.c[lo*g.ldc:], g.ldc)
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
		baseSgemm(g.transA, g.transB, g.m, hi-lo, g.k, g.alpha, g.a, g.lda, bb, g.ldb, g.beta, g.c[lo:], g.ldc)
	})
}
