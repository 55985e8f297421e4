//go:build cgo && !noblas && amd64

// A blocked single-precision GEMM for CPUs with AVX2 and FMA but no
// AVX-512 (AMD Zen 1-3, Intel Haswell to Comet Lake),
//
//	C = alpha·op(A)·op(B) + beta·C (+ bias on every row),
//
// and optionally gelu of that in the same epilogue (see sgemm_avx512.c),
//
// all row-major: sgemm_avx512.c with 256-bit registers. op(B) is packed
// into panels NR = 16 columns wide (two ymm registers per k), k-block by
// k-block, and a 6×16 micro-kernel keeps its tile of C in 12 ymm
// accumulators while it streams a panel of B and broadcasts 6 values of A
// per k (12 + 2 + 1 of the 16 registers). A row-major A is read in place
// unless its rows lie a multiple of 4 KiB apart; otherwise, and for a
// transposed A, MC rows at a time are copied into MR×kc micro-panels.
//
// The k-blocks are those of sgemm_avx512.c (kc_of, KC = 384) and each
// element of C is summed over p in the same order, with the same fused
// multiply-adds, then scaled, added to beta·C and to the bias in the same
// order: the two kernels give the same bits. Only this file is compiled
// for AVX2; Go calls it after rr_has_avx2_fma() says the CPU can run it.

#pragma GCC target("avx2,fma")
#pragma GCC optimize("fp-contract=off")

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sgemm_avx2.h"
#include "gelu_avx.h"

#define MR RR_SGEMM2_MR
#define NR RR_SGEMM2_NR
// KC must stay that of sgemm_avx512.c, for the same bits (see above). An
// MR×KC micro-panel of A is 9 KiB, a KC×NR panel of B 24 KiB.
#define KC 384
// NB is the widest column block: KC×NB floats of packed B (384 KiB) stay
// in a 512 KiB L2 (Zen 2/3) while the rows of C go past.
#define NB 256
// MC is the row block of a packed A (a multiple of MR).
#define MC 96

static inline int64_t kc_of(int64_t k) {
	int64_t nb = (k + KC - 1) / KC;
	return nb ? (k + nb - 1) / nb : 0;
}

// mask8 is the mask of the first n (clamped to 0..8) of 8 lanes.
static const int32_t mask_tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __m256i mask8(int64_t n) {
	if (n > 8) n = 8;
	if (n < 0) n = 0;
	return _mm256_loadu_si256((const __m256i *)(mask_tbl + 8 - n));
}

int64_t rr_sgemm2_packb_size(int64_t n, int64_t k) { return k * ((n + NR - 1) / NR * NR); }

// tr8 transposes the 8×8 block in r.
static inline void tr8(__m256 r[8]) {
	__m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
	__m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
	__m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
	__m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
	__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
	__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
	__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
	__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
	r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
	r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
	r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
	r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
	r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
	r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
	r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
	r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// pack_block packs rows [pc, pc+kq) of panels [j0, j1) of op(B), panel J
// at dst + (J - j0)·kq·NR, each k a row of NR floats, zero past column n.
static void pack_block(int transB, int64_t n, int64_t pc, int64_t kq, const float *b, int64_t ldb, float *dst,
                       int64_t j0, int64_t j1) {
	for (int64_t J = j0; J < j1; J++, dst += kq * NR) {
		int64_t j = J * NR, nr = n - j < NR ? n - j : NR;
		if (!transB) {
			__m256i m0 = mask8(nr), m1 = mask8(nr - 8);
			const float *src = b + pc * ldb + j;
			float *d = dst;
			for (int64_t p = 0; p < kq; p++, src += ldb, d += NR) {
				_mm256_storeu_ps(d, _mm256_maskload_ps(src, m0));
				_mm256_storeu_ps(d + 8, _mm256_maskload_ps(src + 8, m1));
			}
			continue;
		}
		// op(B)[p][j] = b[j·ldb + p]: transpose 8×8 blocks.
		for (int h = 0; h < NR; h += 8) {
			for (int64_t pp = 0; pp < kq; pp += 8) {
				int64_t w = kq - pp < 8 ? kq - pp : 8;
				__m256i mk = mask8(w);
				__m256 r[8];
				for (int i = 0; i < 8; i++)
					r[i] = h + i < nr ? _mm256_maskload_ps(b + (j + h + i) * ldb + pc + pp, mk)
					                  : _mm256_setzero_ps();
				tr8(r);
				for (int q = 0; q < w; q++) _mm256_storeu_ps(dst + (pp + q) * NR + h, r[q]);
			}
		}
	}
}

void rr_sgemm2_packb(int transB, int64_t n, int64_t k, const float *b, int64_t ldb, float *pb, int64_t j0,
                     int64_t j1) {
	int64_t kc = kc_of(k), npad = (n + NR - 1) / NR * NR;
	for (int64_t pc = 0; pc < k; pc += kc) {
		int64_t kq = k - pc < kc ? k - pc : kc;
		pack_block(transB, n, pc, kq, b, ldb, pb + pc * npad + j0 * kq * NR, j0, j1);
	}
}

// kern computes the MR×NR tile C = alpha·A·B + beta·C (+ bias), A being
// MR×kc with element (r, p) at a[r·rsa + p·csa] and B a packed panel.
// Only the first mr rows and the columns in masks m0, m1 (all of them
// when full) are written; beta = 0 never reads C. R (at most MR, a
// constant once inlined) is the number of rows the loop computes. With
// act (the last k-block of a product with GELU), the tile of act (leading
// dimension ldc too) gets gelu of the result, as rr_gelu computes it, and
// C the result itself unless act is C.
static inline __attribute__((always_inline)) void kern(int64_t kc, const float *a, int64_t rsa, int64_t csa,
                                                       const float *b, float *c, int64_t ldc, const int R, int mr,
                                                       int full, __m256i m0, __m256i m1, float alpha,
                                                       float beta, const float *bias, float *act) {
	__m256 x[MR], y[MR];
#pragma GCC unroll 8
	for (int r = 0; r < R; r++) x[r] = y[r] = _mm256_setzero_ps();
#pragma GCC unroll 8
	for (int r = 0; r < R; r++) {
		if (r >= mr) break;
		_mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
		_mm_prefetch((const char *)(c + r * ldc + 15), _MM_HINT_T0);
	}
	for (int64_t p = 0; p < kc; p++) {
		__m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 8
		for (int r = 0; r < R; r++) {
			__m256 av = _mm256_broadcast_ss(a + r * rsa);
			x[r] = _mm256_fmadd_ps(av, b0, x[r]);
			y[r] = _mm256_fmadd_ps(av, b1, y[r]);
		}
		a += csa;
		b += NR;
	}
	__m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
	__m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
	if (bias) {
		bias0 = _mm256_maskload_ps(bias, m0);
		bias1 = _mm256_maskload_ps(bias + 8, m1);
	}
#pragma GCC unroll 8
	for (int r = 0; r < R; r++) {
		if (r >= mr) break;
		float *cr = c + r * ldc;
		__m256 u = _mm256_mul_ps(va, x[r]), v = _mm256_mul_ps(va, y[r]);
		if (beta != 0) {
			__m256 c0 = full ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, m0);
			__m256 c1 = full ? _mm256_loadu_ps(cr + 8) : _mm256_maskload_ps(cr + 8, m1);
			u = _mm256_fmadd_ps(vb, c0, u);
			v = _mm256_fmadd_ps(vb, c1, v);
		}
		if (bias) {
			u = _mm256_add_ps(u, bias0);
			v = _mm256_add_ps(v, bias1);
		}
		if (full) {
			_mm256_storeu_ps(cr, u);
			_mm256_storeu_ps(cr + 8, v);
		} else {
			_mm256_maskstore_ps(cr, m0, u);
			_mm256_maskstore_ps(cr + 8, m1, v);
		}
	}
	if (!act) return;
	// The GELU, from the tile just stored (in L1) rather than from the
	// accumulators: with 16 ymm registers, phi8 on all twelve at once
	// spills (measured 6 % slower than a separate pass).
	for (int r = 0; r < mr; r++) {
		float *cr = c + r * ldc, *ar = act + r * ldc;
		__m256 u = full ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, m0);
		__m256 v = full ? _mm256_loadu_ps(cr + 8) : _mm256_maskload_ps(cr + 8, m1);
		u = _mm256_mul_ps(u, phi8(u, NULL));
		v = _mm256_mul_ps(v, phi8(v, NULL));
		if (full) {
			_mm256_storeu_ps(ar, u);
			_mm256_storeu_ps(ar + 8, v);
		} else {
			_mm256_maskstore_ps(ar, m0, u);
			_mm256_maskstore_ps(ar + 8, m1, v);
		}
	}
}

// kern_rows reads MR full rows of A in place.
static void kern_rows(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc, int full,
                      __m256i m0, __m256i m1, float alpha, float beta, const float *bias, float *act) {
	if (full)
		kern(kc, a, lda, 1, b, c, ldc, MR, MR, 1, m0, m1, alpha, beta, bias, act);
	else
		kern(kc, a, lda, 1, b, c, ldc, MR, MR, 0, m0, m1, alpha, beta, bias, act);
}

// kern_packed computes the first mr rows of a packed micro-panel of A in
// a loop over those rows only (rounded up to even).
static void kern_packed(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int full,
                        __m256i m0, __m256i m1, float alpha, float beta, const float *bias, float *act) {
#define KP(R, F) kern(kc, a, 1, MR, b, c, ldc, (R), mr, (F), m0, m1, alpha, beta, bias, act)
	if (!full) {
		switch ((mr + 1) / 2) {
		case 1: KP(2, 0); break;
		case 2: KP(4, 0); break;
		default: KP(MR, 0); break;
		}
		return;
	}
	switch ((mr + 1) / 2) {
	case 1: KP(2, 1); break;
	case 2: KP(4, 1); break;
	default: KP(MR, 1); break;
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
// zero past row mc.
static void pack_at(const float *a, int64_t lda, int64_t kq, int64_t mc, float *ap) {
	int64_t tiles = (mc + MR - 1) / MR;
	__m256i all = mask8(MR);
	for (int64_t p = 0; p < kq; p++) {
		const float *src = a + p * lda;
		float *dst = ap + p * MR;
		for (int64_t t = 0; t < tiles; t++, src += MR, dst += kq * MR)
			_mm256_maskstore_ps(dst, all, _mm256_maskload_ps(src, mask8(mc - t * MR)));
	}
}

// pack_an copies the mc×kq block of a row-major A (element (i, p) at
// a[i·lda + p]) into micro-panels of MR rows like pack_at, transposing
// 8×8 blocks.
static void pack_an(const float *a, int64_t lda, int64_t kq, int64_t mc, float *ap) {
	__m256i all = mask8(MR);
	for (int64_t t = 0; t * MR < mc; t++) {
		int64_t mr = mc - t * MR < MR ? mc - t * MR : MR;
		const float *src = a + t * MR * lda;
		float *dst = ap + t * kq * MR;
		for (int64_t pp = 0; pp < kq; pp += 8) {
			int64_t w = kq - pp < 8 ? kq - pp : 8;
			__m256i mk = mask8(w);
			__m256 r[8];
			for (int i = 0; i < 8; i++)
				r[i] = i < mr ? _mm256_maskload_ps(src + i * lda + pp, mk) : _mm256_setzero_ps();
			tr8(r);
			for (int q = 0; q < w; q++) _mm256_maskstore_ps(dst + (pp + q) * MR, all, r[q]);
		}
	}
}

int64_t rr_sgemm2_packa_size(void) { return MC * KC + 8; }

int64_t rr_sgemm2_private_size(void) { return MC * KC + 8 + KC * NB; }

// rr_sgemm2_compute is rr_sgemm_compute of sgemm_avx512.c (see there) on
// panels of NR = 16 columns, its GELU (act) that of rr_gelu.
void rr_sgemm2_compute(int transA, int64_t m0, int64_t m1, int64_t j0, int64_t j1, int64_t n, int64_t k, float alpha,
                       const float *a, int64_t lda, int transB, const float *b, int64_t ldb, const float *pb,
                       float beta, float *c, int64_t ldc, const float *bias, float *act, float *ap) {
	int64_t n0 = j0 * NR, n1 = j1 * NR < n ? j1 * NR : n;
	if (m1 <= m0 || n1 <= n0) return;
	if (k <= 0) {
		scale_rows(m0, m1, n0, n1, beta, c, ldc, bias);
		return;
	}
	int64_t kc = kc_of(k), npad = (n + NR - 1) / NR * NR;
	int direct = !transA && lda % 1024 != 0;
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
				float *bp = ap + MC * KC + 8;
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
						pack_an(a + i * lda + pc, lda, kq, mr, ap);
						at = ap;
					}
					float *ci = c + i * ldc + jc;
					float *ai = act && last ? act + i * ldc + jc : NULL;
					for (int64_t jr = 0; jr < nb; jr += NR) {
						int64_t nr = nb - jr < NR ? nb - jr : NR;
						__m256i k0 = mask8(nr), k1 = mask8(nr - 8);
						const float *bj = bs ? bs + jr : NULL;
						const float *bp = pbk + jr * kq;
						float *aj = ai ? ai + jr : NULL;
						if (rows)
							kern_rows(kq, a + i * lda + pc, lda, bp, ci + jr, ldc, nr == NR, k0, k1,
							          alpha, be, bj, aj);
						else
							kern_packed(kq, at, bp, ci + jr, ldc, mr, nr == NR, k0, k1, alpha, be, bj,
							            aj);
					}
				}
			}
		}
	}
}

void rr_sgemm2(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
               const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias, float *act,
               float *pb, float *ap) {
	if (m <= 0 || n <= 0) return;
	if (pb && k > 0) rr_sgemm2_packb(transB, n, k, b, ldb, pb, 0, (n + NR - 1) / NR);
	rr_sgemm2_compute(transA, 0, m, 0, (n + NR - 1) / NR, n, k, alpha, a, lda, transB, b, ldb, pb, beta, c, ldc,
	                  bias, act, ap);
}

// rr_sgemm2_auto is rr_sgemm2 (without bias) with scratch of the calling
// thread's own, kept for its next call. It returns 0, having done nothing,
// when it cannot allocate the scratch.
int rr_sgemm2_auto(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
	static __thread float *buf;
	static __thread int64_t cap;
	int64_t nb = rr_sgemm2_packb_size(n, k), need = nb + rr_sgemm2_packa_size();
	if (need > cap) {
		free(buf);
		cap = 0;
		buf = aligned_alloc(32, (size_t)need * sizeof(float));
		if (!buf) return 0;
		cap = need;
	}
	rr_sgemm2(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, NULL, buf, buf + nb);
	return 1;
}
