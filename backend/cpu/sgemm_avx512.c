//go:build cgo && !noblas && amd64

// A blocked single-precision GEMM for CPUs with AVX-512F,
//
//	C = alpha·op(A)·op(B) + beta·C (+ bias on every row),
//
// and optionally, in the same epilogue, gelu of that (bias + GELU fused,
// as ONNX Runtime fuses them; see rr_sgemm_compute),
//
// all row-major, in the manner of GotoBLAS/BLIS: op(B) is packed once
// into panels NR = 32 columns wide (two zmm registers per k), k-block by
// k-block, and an MR×NR micro-kernel keeps the MR×32 tile of C in MR·2
// zmm accumulators while it streams a panel of B and broadcasts MR values
// of A per k. A row-major A (op = notrans) is read in place (MR row
// pointers, one float each per k) unless its rows lie a multiple of 4 KiB
// apart; otherwise, and for a transposed A (whose k-steps lie lda apart),
// MC rows at a time are copied into MR×kc micro-panels.
//
// The packed B is usually shared: Go packs disjoint ranges of panels on
// several workers (rr_sgemm_packb), then each worker runs rr_sgemm_compute
// on its own blocks of C's rows; or each worker packs the blocks of B it
// needs itself (pb NULL). Every element of C is summed in the same order
// whatever the row split, so the result does not depend on the number of
// workers. Only this file is compiled for AVX-512; Go calls it after
// rr_has_avx512f() says the CPU can run it.

#pragma GCC target("avx512f,avx512vl,avx512dq,fma")
#pragma GCC optimize("fp-contract=off")

#include <immintrin.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "sgemm_avx512.h"
#include "gelu_avx.h"

#define MR RR_SGEMM_MR
#define NR RR_SGEMM_NR
// KC is the largest k-block: an MR×KC micro-panel of A (18 KiB) stays in
// L1 while the micro-kernel sweeps the panels of B.
#ifndef KC
#define KC 384
#endif
// NB is the widest column block of packed B that the rows of C go past:
// KC×NB floats, 1.5 MiB, more than the 1 MiB L2 of a Zen 4 core, so each
// 48 KiB panel streams from L3 once per MR rows; the prefetchers keep up
// (the FMA loop runs at 96-99 % of peak), and 512 or 768, which fit L2,
// are no faster (bench/RESULTS.md, issue 17; 1-2 % slower in issue 8).
// Blocks are made as equal as whole panels allow.
#ifndef NB
#define NB 1024
#endif
// MC is the row block of a packed A (a multiple of MR): MC×KC floats
// (144 KiB) stay in L2 with B's block. 96 beats 192 and 48 by about 4% on
// the weight gradients (k = 2048, transposed A).
#ifndef MC
#define MC 96
#endif

int rr_has_avx512f(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
}

// kc_of splits k into equal blocks of at most KC.
static inline int64_t kc_of(int64_t k) {
	int64_t nb = (k + KC - 1) / KC;
	return nb ? (k + nb - 1) / nb : 0;
}

static inline __mmask16 mask16(int64_t n) {
	if (n >= 16) return 0xffff;
	if (n <= 0) return 0;
	return (__mmask16)((1u << n) - 1);
}

int64_t rr_sgemm_packb_size(int64_t n, int64_t k) { return k * ((n + NR - 1) / NR * NR); }

// tr16 transposes the 16×16 block in r.
static inline void tr16(__m512 r[16]) {
	__m512 t[16];
	for (int i = 0; i < 8; i++) {
		t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
	}
	for (int i = 0; i < 4; i++) {
		__m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
		__m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
		r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
		r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
		r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
		r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
	}
	// r[4i+c] now holds rows 4i..4i+3 of columns c, 4+c, 8+c, 12+c, one
	// per 128-bit lane.
	for (int c = 0; c < 4; c++) {
		__m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
		__m512 u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
		__m512 u2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
		__m512 u3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
		t[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
		t[4 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
		t[8 + c] = _mm512_shuffle_f32x4(u0, u2, 0xdd);
		t[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xdd);
	}
	for (int i = 0; i < 16; i++) r[i] = t[i];
}

// rr_sgemm_packb packs the panels [j0, j1) of op(B) (k×n) into pb, which
// holds rr_sgemm_packb_size(n, k) floats: k-block by k-block (starting at
// row pc, of height kq), panel J at pb + pc·npad + J·kq·NR, each k a row
// of NR floats, zero past column n.
// pack_block packs rows [pc, pc+kq) of panels [j0, j1) of op(B), panel J
// at dst + (J - j0)·kq·NR.
static void pack_block(int transB, int64_t n, int64_t pc, int64_t kq, const float *b, int64_t ldb, float *dst,
                       int64_t j0, int64_t j1) {
	for (int64_t J = j0; J < j1; J++, dst += kq * NR) {
		int64_t j = J * NR, nr = n - j < NR ? n - j : NR;
		if (!transB) {
			__mmask16 m0 = mask16(nr), m1 = mask16(nr - 16);
			const float *src = b + pc * ldb + j;
			float *d = dst;
			for (int64_t p = 0; p < kq; p++, src += ldb, d += NR) {
				_mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, src));
				_mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(m1, src + 16));
			}
			continue;
		}
		// op(B)[p][j] = b[j·ldb + p]: transpose 16×16 blocks.
		for (int h = 0; h < NR; h += 16) {
			for (int64_t pp = 0; pp < kq; pp += 16) {
				int64_t w = kq - pp < 16 ? kq - pp : 16;
				__mmask16 mk = mask16(w);
				__m512 r[16];
				for (int i = 0; i < 16; i++) {
					if (h + i < nr)
						r[i] = _mm512_maskz_loadu_ps(mk, b + (j + h + i) * ldb + pc + pp);
					else
						r[i] = _mm512_setzero_ps();
				}
				tr16(r);
				for (int q = 0; q < w; q++) _mm512_storeu_ps(dst + (pp + q) * NR + h, r[q]);
			}
		}
	}
}

void rr_sgemm_packb(int transB, int64_t n, int64_t k, const float *b, int64_t ldb, float *pb, int64_t j0,
                    int64_t j1) {
	int64_t kc = kc_of(k), npad = (n + NR - 1) / NR * NR;
	for (int64_t pc = 0; pc < k; pc += kc) {
		int64_t kq = k - pc < kc ? k - pc : kc;
		pack_block(transB, n, pc, kq, b, ldb, pb + pc * npad + j0 * kq * NR, j0, j1);
	}
}

// kern computes the MR×NR tile C = alpha·A·B + beta·C (+ bias), A being
// MR×kc with element (r, p) at a[r·rsa + p·csa] and B a packed panel.
// Only the first mr rows and the columns in masks m0, m1 are written;
// beta = 0 never reads C. With act (the last k-block of a product with
// GELU), the tile of act (leading dimension ldc too) gets gelu of the
// result, as rr_gelu512 computes it, and C the result itself unless act
// is C.
// R (at most MR, a constant once inlined) is the number of rows the
// loop computes; rows past mr are computed but not written.
static inline __attribute__((always_inline)) void kern(int64_t kc, const float *a, int64_t rsa, int64_t csa,
                                                       const float *b, float *c, int64_t ldc, const int R, int mr,
                                                       __mmask16 m0, __mmask16 m1, float alpha, float beta,
                                                       const float *bias, float *act) {
	__m512 x[MR], y[MR];
#pragma GCC unroll 16
	for (int r = 0; r < R; r++) x[r] = y[r] = _mm512_setzero_ps();
	// Fetch the tile of C now so that it is in L1 when the sums are.
#pragma GCC unroll 16
	for (int r = 0; r < R; r++) {
		if (r >= mr) break;
		_mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
		_mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
	}
	for (int64_t p = 0; p < kc; p++) {
		__m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 16
		for (int r = 0; r < R; r++) {
			__m512 av = _mm512_set1_ps(a[r * rsa]);
			x[r] = _mm512_fmadd_ps(av, b0, x[r]);
			y[r] = _mm512_fmadd_ps(av, b1, y[r]);
		}
		a += csa;
		b += NR;
	}
	__m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
	__m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
	if (bias) {
		bias0 = _mm512_maskz_loadu_ps(m0, bias);
		bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
	}
#pragma GCC unroll 16
	for (int r = 0; r < R; r++) {
		if (r >= mr) break;
		float *cr = c + r * ldc;
		__m512 u = _mm512_mul_ps(va, x[r]), v = _mm512_mul_ps(va, y[r]);
		if (beta != 0) {
			u = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), u);
			v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v);
		}
		if (bias) {
			u = _mm512_add_ps(u, bias0);
			v = _mm512_add_ps(v, bias1);
		}
		if (act) {
			float *ar = act + r * ldc;
			if (ar != cr) {
				_mm512_mask_storeu_ps(cr, m0, u);
				_mm512_mask_storeu_ps(cr + 16, m1, v);
			}
			u = _mm512_mul_ps(u, phi16(u, NULL));
			v = _mm512_mul_ps(v, phi16(v, NULL));
			cr = ar;
		}
		_mm512_mask_storeu_ps(cr, m0, u);
		_mm512_mask_storeu_ps(cr + 16, m1, v);
	}
}

// The two instances: A read in place (MR full rows) or packed.
static void kern_rows(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc, __mmask16 m0,
                      __mmask16 m1, float alpha, float beta, const float *bias, float *act) {
	kern(kc, a, lda, 1, b, c, ldc, MR, MR, m0, m1, alpha, beta, bias, act);
}

// kern_packed computes the first mr rows of a packed micro-panel of A, in
// a loop over those rows only (rounded up to even): a last tile of 4 rows
// (1024 = 85·12 + 4) or the one row per sequence of the last layer do not
// pay for 12.
static void kern_packed(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, __mmask16 m0,
                        __mmask16 m1, float alpha, float beta, const float *bias, float *act) {
#define KP(R) kern(kc, a, 1, MR, b, c, ldc, (R) < MR ? (R) : MR, mr, m0, m1, alpha, beta, bias, act)
	switch ((mr + 1) / 2) {
	case 1: KP(2); break;
	case 2: KP(4); break;
	case 3: KP(6); break;
	case 4: KP(8); break;
	case 5: KP(10); break;
	default: KP(MR); break;
	}
#undef KP
}


// scale_rows sets C[m0:m1, n0:n1] to beta·C + bias (k = 0).
static void scale_rows(int64_t m0, int64_t m1, int64_t n0, int64_t n1, float beta, float *c, int64_t ldc,
                       const float *bias) {
	for (int64_t i = m0; i < m1; i++) {
		float *cr = c + i * ldc;
		for (int64_t j = n0; j < n1; j++) {
			float v = beta == 0 ? 0.0f : beta * cr[j];
			cr[j] = bias ? v + bias[j] : v;
		}
	}
}

// pack_at copies the mc×kq block of op(A) = Aᵀ whose element (i, p) is
// at a[p·lda + i] into micro-panels of MR rows, panel t at ap + t·kq·MR,
// zero past row mc. Rows of a are read whole, for the prefetchers.
static void pack_at(const float *a, int64_t lda, int64_t kq, int64_t mc, float *ap) {
	int64_t tiles = (mc + MR - 1) / MR;
	for (int64_t p = 0; p < kq; p++) {
		const float *src = a + p * lda;
		float *dst = ap + p * MR;
		for (int64_t t = 0; t < tiles; t++, src += MR, dst += kq * MR)
			_mm512_mask_storeu_ps(dst, mask16(MR), _mm512_maskz_loadu_ps(mask16(mc - t * MR), src));
	}
}

// pack_an copies the mc×kq block of a row-major A (element (i, p) at
// a[i·lda + p]) into micro-panels of MR rows like pack_at, transposing
// 16×16 blocks.
static void pack_an(const float *a, int64_t lda, int64_t kq, int64_t mc, float *ap) {
	for (int64_t t = 0; t * MR < mc; t++) {
		int64_t mr = mc - t * MR < MR ? mc - t * MR : MR;
		const float *src = a + t * MR * lda;
		float *dst = ap + t * kq * MR;
		for (int64_t pp = 0; pp < kq; pp += 16) {
			int64_t w = kq - pp < 16 ? kq - pp : 16;
			__mmask16 mk = mask16(w);
			__m512 r[16];
			for (int i = 0; i < 16; i++)
				r[i] = i < mr ? _mm512_maskz_loadu_ps(mk, src + i * lda + pp) : _mm512_setzero_ps();
			tr16(r);
			for (int q = 0; q < w; q++) _mm512_mask_storeu_ps(dst + (pp + q) * MR, mask16(MR), r[q]);
		}
	}
}

// rr_sgemm_packa_size is the scratch rr_sgemm_compute needs, in floats.
int64_t rr_sgemm_packa_size(void) { return MC * KC; }

// rr_sgemm_private_size is the scratch rr_sgemm_compute needs when it
// packs B itself (pb NULL), in floats.
int64_t rr_sgemm_private_size(void) { return MC * KC + KC * NB; }

// rr_sgemm_compute computes rows [m0, m1) and panels [j0, j1) (columns
// [j0·NR, min(j1·NR, n))) of C = alpha·op(A)·op(B) + beta·C (+ bias), op(B)
// packed in pb by rr_sgemm_packb and ap holding rr_sgemm_packa_size()
// floats of scratch; or, with pb NULL, packing each k×NB block of op(B)
// (b, ldb, transB as for rr_sgemm_packb) just before its use into the end
// of ap, which then holds rr_sgemm_private_size() floats. op(A) is m×k: A itself (element (i, p) at
// a[i·lda + p]) or, with transA, the transpose of the k×m matrix a
// (element (i, p) at a[p·lda + i]). With act not NULL (k > 0), act
// (leading dimension ldc too) gets gelu of those elements of C, computed as
// rr_gelu512 does, in the epilogue of the last k-block; C then holds the
// result before GELU, unless act is C.
void rr_sgemm_compute(int transA, int64_t m0, int64_t m1, int64_t j0, int64_t j1, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, int transB, const float *b, int64_t ldb, const float *pb,
                      float beta, float *c, int64_t ldc, const float *bias, float *act, float *ap) {
	int64_t n0 = j0 * NR, n1 = j1 * NR < n ? j1 * NR : n;
	if (m1 <= m0 || n1 <= n0) return;
	if (k <= 0) {
		scale_rows(m0, m1, n0, n1, beta, c, ldc, bias);
		return;
	}
	int64_t kc = kc_of(k), npad = (n + NR - 1) / NR * NR;
	// A row-major A is read in place (packing costs 1-3%) unless its rows
	// lie a multiple of 4 KiB apart, so that the MR rows of a micro-panel
	// fall in the same L1 set (that costs 10-15%: k = 2048, 3072).
	int direct = !transA && lda % 1024 != 0;
	// Column blocks of at most NB, as equal as whole panels allow (1152
	// columns: 576 + 576 rather than 512 + 512 + 128).
	int64_t nblk = (n1 - n0 + NB - 1) / NB;
	int64_t nbw = ((n1 - n0 + nblk - 1) / nblk + NR - 1) / NR * NR;
	for (int64_t jc = n0; jc < n1; jc += nbw) {
		int64_t nb = n1 - jc < nbw ? n1 - jc : nbw;
		for (int64_t pc = 0; pc < k; pc += kc) {
			int64_t kq = k - pc < kc ? k - pc : kc;
			float be = pc == 0 ? beta : 1.0f;
			const float *bs = pc == 0 && bias ? bias + jc : NULL;
			int last = pc + kq >= k;
			const float *pbk;
			if (pb) {
				pbk = pb + pc * npad + jc * kq;
			} else {
				// This worker's own copy of B's block, after A's scratch.
				float *bp = ap + MC * KC;
				pack_block(transB, n, pc, kq, b, ldb, bp, jc / NR, (jc + nb + NR - 1) / NR);
				pbk = bp;
			}
			for (int64_t i0 = m0; i0 < m1; i0 += MC) {
				int64_t mc = m1 - i0 < MC ? m1 - i0 : MC;
				if (transA)
					pack_at(a + pc * lda + i0, lda, kq, mc, ap);
				else if (!direct)
					pack_an(a + i0 * lda + pc, lda, kq, mc, ap);
				for (int64_t i = i0; i < i0 + mc; i += MR) {
					int mr = i0 + mc - i < MR ? (int)(i0 + mc - i) : MR;
					const float *at = ap + (i - i0) * kq;
					int rows = direct && mr == MR;
					if (direct && !rows) {
						// The last rows of a row-major A, zero-padded.
						pack_an(a + i * lda + pc, lda, kq, mr, ap);
						at = ap;
					}
					float *ci = c + i * ldc + jc;
					float *ai = act && last ? act + i * ldc + jc : NULL;
					for (int64_t jr = 0; jr < nb; jr += NR) {
						int64_t nr = nb - jr < NR ? nb - jr : NR;
						__mmask16 k0 = mask16(nr), k1 = mask16(nr - 16);
						const float *bj = bs ? bs + jr : NULL;
						const float *bp = pbk + jr * kq;
						float *aj = ai ? ai + jr : NULL;
						if (rows)
							kern_rows(kq, a + i * lda + pc, lda, bp, ci + jr, ldc, k0, k1, alpha,
							          be, bj, aj);
						else
							kern_packed(kq, at, bp, ci + jr, ldc, mr, k0, k1, alpha, be, bj, aj);
					}
				}
			}
		}
	}
}

// rr_sgemm is the whole product (with GELU into act, when not NULL) on
// the calling thread, pb holding
// rr_sgemm_packb_size(n, k) and ap rr_sgemm_packa_size() floats of scratch,
// or pb NULL and ap rr_sgemm_private_size() floats (see rr_sgemm_compute).
void rr_sgemm(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias, float *act,
              float *pb, float *ap) {
	if (m <= 0 || n <= 0) return;
	if (pb && k > 0) rr_sgemm_packb(transB, n, k, b, ldb, pb, 0, (n + NR - 1) / NR);
	rr_sgemm_compute(transA, 0, m, 0, (n + NR - 1) / NR, n, k, alpha, a, lda, transB, b, ldb, pb, beta, c, ldc,
	                 bias, act, ap);
}

// rr_sgemm_auto is rr_sgemm (without bias) with scratch of the calling
// thread's own, kept for its next call. It returns 0, having done nothing,
// when it cannot allocate the scratch.
int rr_sgemm_auto(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
	static __thread float *buf;
	static __thread int64_t cap;
	int64_t nb = rr_sgemm_packb_size(n, k), need = nb + MC * KC;
	if (need > cap) {
		free(buf);
		cap = 0;
		buf = aligned_alloc(64, (size_t)need * sizeof(float));
		if (!buf) return 0;
		cap = need;
	}
	rr_sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, NULL, buf, buf + nb);
	return 1;
}
