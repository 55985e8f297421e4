//go:build cgo && !noblas && amd64

// int8 products for scoring, as ONNX Runtime's DynamicQuantizeMatMul
// computes them: C = A·Wᵀ + bias with W quantized once per output channel
// (symmetric int8, q8.go) and A per row at run time (asymmetric uint8,
// rr_q8_quantize_rows), the dot products summed exactly in int32:
//
//	C[i,j] = float(Σ_p aq[i,p]·wq[j,p] − zp_i·Σ_p wq[j,p]) · (sa_i·sw_j) + bias_j
//
// AVX2 multiplies uint8 by int8 and sums pairs into int16 with vpmaddubsw,
// then the pairs of those into int32 with vpmaddwd by ones, as ONNX
// Runtime's MLAS does; the weights are of 7 bits (|wq| ≤ 63, q8.go) so
// that a pair, at most 2·255·63 = 32130, never saturates int16. AVX-512
// VNNI sums groups of four uint8×int8 products into int32 with vpdpbusd.
// Both are exact, so they give the bits of the Go reference (q8Ref)
// whatever the path. With gelu, each block of C gets the GELU of Gelu
// (rr_gelu or rr_gelu512 of kernels_amd64.c) once computed, in cache.

#pragma GCC optimize("fp-contract=off")

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "q8.h"
#include "kernels.h"

int rr_has_vnni(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vnni");
}

// rr_q8_quantize_rows quantizes rows of A (m×k, leading dimension lda)
// into q (m rows of kp ≥ k bytes, the tail set to the zero point), each
// row's range, widened to hold 0, mapped onto 0..255: scale[i] =
// (max − min)/255, zp[i] = round(−min/scale), q = clamp(round(a/scale) +
// zp). Rounding is to nearest even, as q8.go's quantizeRow.
__attribute__((target("avx2,fma"))) void rr_q8_quantize_rows(uint8_t *q, int64_t kp, float *scale, int32_t *zp,
                                                             const float *a, int64_t lda, int64_t m, int64_t k) {
	const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255);
	for (int64_t i = 0; i < m; i++) {
		const float *r = a + i * lda;
		__m256 vlo = zero, vhi = zero;
		int64_t p = 0;
		for (; p + 8 <= k; p += 8) {
			__m256 x = _mm256_loadu_ps(r + p);
			vlo = _mm256_min_ps(vlo, x);
			vhi = _mm256_max_ps(vhi, x);
		}
		float l8[8], h8[8];
		_mm256_storeu_ps(l8, vlo);
		_mm256_storeu_ps(h8, vhi);
		float lo = 0, hi = 0;
		for (int t = 0; t < 8; t++) {
			lo = l8[t] < lo ? l8[t] : lo;
			hi = h8[t] > hi ? h8[t] : hi;
		}
		for (; p < k; p++) {
			lo = r[p] < lo ? r[p] : lo;
			hi = r[p] > hi ? r[p] : hi;
		}
		float s = (hi - lo) / 255.0f;
		int32_t z = 0;
		if (s == 0)
			s = 1;
		else {
			float zf = nearbyintf(-lo / s);
			z = zf < 0 ? 0 : zf > 255 ? 255 : (int32_t)zf;
		}
		scale[i] = s;
		zp[i] = z;
		uint8_t *d = q + i * kp;
		__m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps((float)z);
		for (p = 0; p + 8 <= k; p += 8) {
			__m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(r + p), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
			v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, vz), zero), top);
			__m256i w = _mm256_cvtps_epi32(v);
			__m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
			_mm_storel_epi64((__m128i *)(d + p), _mm_packus_epi16(w16, w16));
		}
		for (; p < k; p++) {
			float v = nearbyintf(r[p] / s) + (float)z;
			d[p] = v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
		}
		for (p = k; p < kp; p++) d[p] = (uint8_t)z;
	}
}

static inline float finish(int32_t acc, int32_t zp, int32_t ws, float sa, float sw, const float *bias, int64_t j) {
	float t = sa * sw;
	float v = (float)(acc - zp * ws) * t;
	return bias ? v + bias[j] : v;
}

__attribute__((target("avx2"))) static inline int32_t hsum8i(__m256i v) {
	__m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4e));
	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xb1));
	return _mm_cvtsi128_si32(x);
}

// dots_avx2 sums R (1 or 2) rows of aq against C (1 to 4) rows of wq, kp
// bytes each (a multiple of 64), into acc[r][c]: 32 bytes at a time,
// vpmaddubsw (uint8·int8 pairs into int16, exact for |wq| ≤ 63) then
// vpmaddwd by ones (pairs of those into int32).
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
dots_avx2(const uint8_t *a0, const uint8_t *a1, const int8_t *w0, const int8_t *w1, const int8_t *w2,
          const int8_t *w3, int64_t kp, const int R, const int C, int32_t acc[2][4]) {
	__m256i s[2][4];
	for (int r = 0; r < 2; r++)
		for (int c = 0; c < 4; c++) s[r][c] = _mm256_setzero_si256();
	const int8_t *w[4] = {w0, w1, w2, w3};
	const __m256i ones = _mm256_set1_epi16(1);
	for (int64_t p = 0; p < kp; p += 32) {
		__m256i x0 = _mm256_loadu_si256((const __m256i *)(a0 + p));
		__m256i x1 = R > 1 ? _mm256_loadu_si256((const __m256i *)(a1 + p)) : x0;
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			__m256i y = _mm256_loadu_si256((const __m256i *)(w[c] + p));
			s[0][c] = _mm256_add_epi32(s[0][c], _mm256_madd_epi16(_mm256_maddubs_epi16(x0, y), ones));
			if (R > 1)
				s[1][c] = _mm256_add_epi32(s[1][c], _mm256_madd_epi16(_mm256_maddubs_epi16(x1, y), ones));
		}
	}
	for (int r = 0; r < R; r++)
		for (int c = 0; c < C; c++) acc[r][c] = hsum8i(s[r][c]);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static inline int32_t hsum16i(__m512i v) {
	return _mm512_reduce_add_epi32(v);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static inline __attribute__((always_inline)) void
dots_vnni(const uint8_t *a0, const uint8_t *a1, const int8_t *w0, const int8_t *w1, const int8_t *w2,
          const int8_t *w3, int64_t kp, const int R, const int C, int32_t acc[2][4]) {
	__m512i s[2][4];
	for (int r = 0; r < 2; r++)
		for (int c = 0; c < 4; c++) s[r][c] = _mm512_setzero_si512();
	const int8_t *w[4] = {w0, w1, w2, w3};
	for (int64_t p = 0; p < kp; p += 64) {
		__m512i x0 = _mm512_loadu_si512(a0 + p);
		__m512i x1 = R > 1 ? _mm512_loadu_si512(a1 + p) : x0;
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			__m512i y = _mm512_loadu_si512(w[c] + p);
			s[0][c] = _mm512_dpbusd_epi32(s[0][c], x0, y);
			if (R > 1) s[1][c] = _mm512_dpbusd_epi32(s[1][c], x1, y);
		}
	}
	for (int r = 0; r < R; r++)
		for (int c = 0; c < C; c++) acc[r][c] = hsum16i(s[r][c]);
}

#define DISPATCH(F)                                                                                                  \
	do {                                                                                                         \
		if (R == 2) {                                                                                        \
			switch (C) {                                                                                 \
			case 4: F(a0, a1, w0, w1, w2, w3, kp, 2, 4, acc); break;                                     \
			case 3: F(a0, a1, w0, w1, w2, w0, kp, 2, 3, acc); break;                                     \
			case 2: F(a0, a1, w0, w1, w0, w0, kp, 2, 2, acc); break;                                     \
			default: F(a0, a1, w0, w0, w0, w0, kp, 2, 1, acc); break;                                    \
			}                                                                                            \
		} else {                                                                                             \
			switch (C) {                                                                                 \
			case 4: F(a0, a0, w0, w1, w2, w3, kp, 1, 4, acc); break;                                     \
			case 3: F(a0, a0, w0, w1, w2, w0, kp, 1, 3, acc); break;                                     \
			case 2: F(a0, a0, w0, w1, w0, w0, kp, 1, 2, acc); break;                                     \
			default: F(a0, a0, w0, w0, w0, w0, kp, 1, 1, acc); break;                                    \
			}                                                                                            \
		}                                                                                                    \
	} while (0)

__attribute__((target("avx2"))) static void tile_avx2(const uint8_t *a0, const uint8_t *a1, const int8_t *w0,
                                                      const int8_t *w1, const int8_t *w2, const int8_t *w3,
                                                      int64_t kp, int R, int C, int32_t acc[2][4]) {
	DISPATCH(dots_avx2);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void tile_vnni(const uint8_t *a0, const uint8_t *a1,
                                                                             const int8_t *w0, const int8_t *w1,
                                                                             const int8_t *w2, const int8_t *w3,
                                                                             int64_t kp, int R, int C,
                                                                             int32_t acc[2][4]) {
	DISPATCH(dots_vnni);
}

// QB is the column block: QB rows of W (QB·kp bytes, 96-384 KiB) stay in
// L2 while the row blocks of A go past; QM rows of A (QM·kp bytes) stay in
// L1/L2 while the columns of the block go past.
#define QB 256
#define QM 32

// rr_q8_gemm computes C (m×n, leading dimension ldc) from m rows of aq
// (rr_q8_quantize_rows) and n rows of wq (kp bytes each), by AVX-512 VNNI
// when vnni is set, else AVX2; then C = gelu(C) block by block with gelu
// 1 (rr_gelu) or 2 (rr_gelu512).
void rr_q8_gemm(int vnni, int64_t m, int64_t n, int64_t kp, const uint8_t *aq, const float *ascale,
                const int32_t *azp, const int8_t *wq, const float *wscale, const int32_t *wsum, const float *bias,
                float *c, int64_t ldc, int gelu) {
	for (int64_t jb = 0; jb < n; jb += QB) {
		int64_t je = jb + QB < n ? jb + QB : n;
		for (int64_t ib = 0; ib < m; ib += QM) {
			int64_t ie = ib + QM < m ? ib + QM : m;
			for (int64_t j = jb; j < je; j += 4) {
				int C = je - j < 4 ? (int)(je - j) : 4;
				const int8_t *w0 = wq + j * kp;
				const int8_t *w1 = C > 1 ? w0 + kp : w0, *w2 = C > 2 ? w0 + 2 * kp : w0,
				             *w3 = C > 3 ? w0 + 3 * kp : w0;
				for (int64_t i = ib; i < ie; i += 2) {
					int R = ie - i < 2 ? 1 : 2;
					const uint8_t *a0 = aq + i * kp, *a1 = a0 + (R > 1 ? kp : 0);
					int32_t acc[2][4];
					if (vnni)
						tile_vnni(a0, a1, w0, w1, w2, w3, kp, R, C, acc);
					else
						tile_avx2(a0, a1, w0, w1, w2, w3, kp, R, C, acc);
					for (int r = 0; r < R; r++)
						for (int q = 0; q < C; q++)
							c[(i + r) * ldc + j + q] =
							    finish(acc[r][q], azp[i + r], wsum[j + q], ascale[i + r], wscale[j + q], bias, j + q);
				}
			}
			for (int64_t i = ib; gelu && i < ie; i++) {
				float *cr = c + i * ldc + jb;
				if (gelu == 2)
					rr_gelu512(cr, cr, je - jb);
				else
					rr_gelu(cr, cr, je - jb);
			}
		}
	}
}
