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

static inline int32_t load4(const uint8_t *p) {
	int32_t x;
	__builtin_memcpy(&x, p, 4);
	return x;
}

// The weights come in panels of 16 output columns (q8.go): panel J holds
// columns 16J..16J+15 as kp/4 groups of 64 bytes, group g being the four
// weights k = 4g..4g+3 of each of the 16 columns in turn. One zmm (two
// ymm) of a group times the four bytes of a row of A, broadcast, gives 16
// (8) int32 dot products over those four k at once, each in its own lane:
// the sums need no horizontal reduction, and the float epilogue is done on
// 16 (8) columns at a time, with the operations (and so the bits) of
// finish.

// VNNI_ROW(r) adds row r's four bytes at p, broadcast, times the V weight
// vectors y0..y3 into the named accumulators sr0..sr3; AVX2_ROW(r) the
// same for the two ymm panels of tile_avx2_t. Macros rather than a loop
// over an array, which GCC would not keep in registers.
#define VNNI_ROW(r)                                                                                                  \
	if (R > r) {                                                                                                 \
		__m512i x = _mm512_set1_epi32(load4(a + r * kp + p));                                                \
		if (V > 0) s##r##0 = _mm512_dpbusd_epi32(s##r##0, x, y0);                                            \
		if (V > 1) s##r##1 = _mm512_dpbusd_epi32(s##r##1, x, y1);                                            \
		if (V > 2) s##r##2 = _mm512_dpbusd_epi32(s##r##2, x, y2);                                            \
		if (V > 3) s##r##3 = _mm512_dpbusd_epi32(s##r##3, x, y3);                                            \
	}
#define AVX2_ROW(r)                                                                                                  \
	if (R > r) {                                                                                                 \
		__m256i x = _mm256_set1_epi32(load4(a + r * kp + p));                                                \
		if (V > 0) s##r##0 = _mm256_add_epi32(s##r##0, _mm256_madd_epi16(_mm256_maddubs_epi16(x, y0), ones)); \
		if (V > 1) s##r##1 = _mm256_add_epi32(s##r##1, _mm256_madd_epi16(_mm256_maddubs_epi16(x, y1), ones)); \
	}

// tile_vnni_t computes rows i..i+R-1 (R ≤ 6) of C at columns j..j+nc-1
// (V = ceil(nc/16) ≤ 4 panels, w the first): 24 accumulators at most, one
// vpdpbusd per row and panel for each 4 bytes of k.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static inline __attribute__((always_inline)) void
tile_vnni_t(const uint8_t *a, int64_t kp, const int8_t *w, const int R, const int V, int64_t nc,
            const float *ascale, const int32_t *azp, const float *wscale, const int32_t *wsum, const float *bias,
            float *c, int64_t ldc) {
	const int64_t ps = 16 * kp;
	// Named accumulators rather than an array: GCC copies an array's
	// registers around the loop (67 moves per 24 vpdpbusd).
	__m512i s00 = _mm512_setzero_si512(), s01 = _mm512_setzero_si512(), s02 = _mm512_setzero_si512(), s03 = _mm512_setzero_si512();
	__m512i s10 = _mm512_setzero_si512(), s11 = _mm512_setzero_si512(), s12 = _mm512_setzero_si512(), s13 = _mm512_setzero_si512();
	__m512i s20 = _mm512_setzero_si512(), s21 = _mm512_setzero_si512(), s22 = _mm512_setzero_si512(), s23 = _mm512_setzero_si512();
	__m512i s30 = _mm512_setzero_si512(), s31 = _mm512_setzero_si512(), s32 = _mm512_setzero_si512(), s33 = _mm512_setzero_si512();
	__m512i s40 = _mm512_setzero_si512(), s41 = _mm512_setzero_si512(), s42 = _mm512_setzero_si512(), s43 = _mm512_setzero_si512();
	__m512i s50 = _mm512_setzero_si512(), s51 = _mm512_setzero_si512(), s52 = _mm512_setzero_si512(), s53 = _mm512_setzero_si512();
	for (int64_t p = 0; p < kp; p += 4) {
		__m512i y0 = V > 0 ? _mm512_loadu_si512(w + 0 * ps + p * 16) : _mm512_setzero_si512();
		__m512i y1 = V > 1 ? _mm512_loadu_si512(w + 1 * ps + p * 16) : _mm512_setzero_si512();
		__m512i y2 = V > 2 ? _mm512_loadu_si512(w + 2 * ps + p * 16) : _mm512_setzero_si512();
		__m512i y3 = V > 3 ? _mm512_loadu_si512(w + 3 * ps + p * 16) : _mm512_setzero_si512();
		VNNI_ROW(0) VNNI_ROW(1) VNNI_ROW(2) VNNI_ROW(3) VNNI_ROW(4) VNNI_ROW(5)
	}
	__m512i s[6][4] = {{s00, s01, s02, s03}, {s10, s11, s12, s13}, {s20, s21, s22, s23}, {s30, s31, s32, s33}, {s40, s41, s42, s43}, {s50, s51, s52, s53}};
	for (int v = 0; v < V; v++) {
		int64_t left = nc - 16 * v;
		__mmask16 mk = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
		__m512i ws = _mm512_maskz_loadu_epi32(mk, wsum + 16 * v);
		__m512 sw = _mm512_maskz_loadu_ps(mk, wscale + 16 * v);
		__m512 b = bias ? _mm512_maskz_loadu_ps(mk, bias + 16 * v) : _mm512_setzero_ps();
		for (int r = 0; r < R; r++) {
			__m512i x = _mm512_sub_epi32(s[r][v], _mm512_mullo_epi32(_mm512_set1_epi32(azp[r]), ws));
			__m512 t = _mm512_mul_ps(_mm512_set1_ps(ascale[r]), sw);
			__m512 o = _mm512_mul_ps(_mm512_cvtepi32_ps(x), t);
			if (bias) o = _mm512_add_ps(o, b);
			_mm512_mask_storeu_ps(c + r * ldc + 16 * v, mk, o);
		}
	}
}

// tile_avx2_t is tile_vnni_t for AVX2: rows i..i+R-1 (R ≤ 4) by the 8 or
// 16 columns (V ymm) of one panel, vpmaddubsw then vpmaddwd by ones for
// each 4 bytes of k (exact for |wq| ≤ 63). A partial ymm of columns takes
// the scalar finish.
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
tile_avx2_t(const uint8_t *a, int64_t kp, const int8_t *w, const int R, const int V, int64_t nc, const float *ascale,
            const int32_t *azp, const float *wscale, const int32_t *wsum, const float *bias, float *c, int64_t ldc) {
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i s00 = _mm256_setzero_si256(), s01 = _mm256_setzero_si256();
	__m256i s10 = _mm256_setzero_si256(), s11 = _mm256_setzero_si256();
	__m256i s20 = _mm256_setzero_si256(), s21 = _mm256_setzero_si256();
	__m256i s30 = _mm256_setzero_si256(), s31 = _mm256_setzero_si256();
	for (int64_t p = 0; p < kp; p += 4) {
		__m256i y0 = V > 0 ? _mm256_loadu_si256((const __m256i *)(w + p * 16 + 0 * 32)) : _mm256_setzero_si256();
		__m256i y1 = V > 1 ? _mm256_loadu_si256((const __m256i *)(w + p * 16 + 1 * 32)) : _mm256_setzero_si256();
		AVX2_ROW(0) AVX2_ROW(1) AVX2_ROW(2) AVX2_ROW(3)
	}
	__m256i s[4][2] = {{s00, s01}, {s10, s11}, {s20, s21}, {s30, s31}};
	for (int v = 0; v < V; v++) {
		int64_t left = nc - 8 * v;
		if (left < 8) {
			for (int r = 0; r < R; r++) {
				int32_t acc[8];
				_mm256_storeu_si256((__m256i *)acc, s[r][v]);
				for (int64_t q = 0; q < left; q++)
					c[r * ldc + 8 * v + q] =
					    finish(acc[q], azp[r], wsum[8 * v + q], ascale[r], wscale[8 * v + q], bias, 8 * v + q);
			}
			continue;
		}
		__m256i ws = _mm256_loadu_si256((const __m256i *)(wsum + 8 * v));
		__m256 sw = _mm256_loadu_ps(wscale + 8 * v);
		__m256 b = bias ? _mm256_loadu_ps(bias + 8 * v) : _mm256_setzero_ps();
		for (int r = 0; r < R; r++) {
			__m256i x = _mm256_sub_epi32(s[r][v], _mm256_mullo_epi32(_mm256_set1_epi32(azp[r]), ws));
			__m256 t = _mm256_mul_ps(_mm256_set1_ps(ascale[r]), sw);
			__m256 o = _mm256_mul_ps(_mm256_cvtepi32_ps(x), t);
			if (bias) o = _mm256_add_ps(o, b);
			_mm256_storeu_ps(c + r * ldc + 8 * v, o);
		}
	}
}

#define TILE_PARAMS                                                                                                  \
	const uint8_t *a, int64_t kp, const int8_t *w, int R, int V, int64_t nc, const float *ascale,                \
	    const int32_t *azp, const float *wscale, const int32_t *wsum, const float *bias, float *c, int64_t ldc
#define T1(F, r, v)                                                                                                  \
	case v: F(a, kp, w, r, v, nc, ascale, azp, wscale, wsum, bias, c, ldc); break;
#define ROW4(F, r)                                                                                                   \
	case r:                                                                                                      \
		switch (V) { T1(F, r, 1) T1(F, r, 2) T1(F, r, 3) default : F(a, kp, w, r, 4, nc, ascale, azp, wscale, wsum, bias, c, ldc); } \
		break;
#define ROW2(F, r)                                                                                                   \
	case r:                                                                                                      \
		switch (V) { T1(F, r, 1) default : F(a, kp, w, r, 2, nc, ascale, azp, wscale, wsum, bias, c, ldc); } \
		break;

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void tile_vnni(TILE_PARAMS) {
	switch (R) {
		ROW4(tile_vnni_t, 1)
		ROW4(tile_vnni_t, 2)
		ROW4(tile_vnni_t, 3)
		ROW4(tile_vnni_t, 4)
		ROW4(tile_vnni_t, 5)
		ROW4(tile_vnni_t, 6)
	}
}

__attribute__((target("avx2"))) static void tile_avx2(TILE_PARAMS) {
	switch (R) {
		ROW2(tile_avx2_t, 1)
		ROW2(tile_avx2_t, 2)
		ROW2(tile_avx2_t, 3)
		ROW2(tile_avx2_t, 4)
	}
}

// QB is the column block, whose GELU is taken while it is in cache; QM
// the row block: QM rows of A (QM·kp bytes) stay in L1/L2 while the
// panels of the column block go past, each panel (16·kp bytes) in L1/L2
// while the rows of the block go past.
#define QB 256
#define QM 48

// rr_q8_gemm computes C (m×n, leading dimension ldc) from m rows of aq
// (rr_q8_quantize_rows) and the panels of wq (kp bytes a column), by
// AVX-512 VNNI (6 rows by 64 columns at a time) when vnni is set, else
// AVX2 (4 rows by 16 columns); then C = gelu(C) block by block with gelu
// 1 (rr_gelu) or 2 (rr_gelu512).
void rr_q8_gemm(int vnni, int64_t m, int64_t n, int64_t kp, const uint8_t *aq, const float *ascale,
                const int32_t *azp, const int8_t *wq, const float *wscale, const int32_t *wsum, const float *bias,
                float *c, int64_t ldc, int gelu) {
	const int64_t NR = vnni ? 64 : 16, MR = vnni ? 6 : 4, lane = vnni ? 16 : 8;
	for (int64_t jb = 0; jb < n; jb += QB) {
		int64_t je = jb + QB < n ? jb + QB : n;
		for (int64_t ib = 0; ib < m; ib += QM) {
			int64_t ie = ib + QM < m ? ib + QM : m;
			for (int64_t j = jb; j < je; j += NR) {
				int64_t nc = je - j < NR ? je - j : NR;
				int V = (int)((nc + lane - 1) / lane);
				const int8_t *w = wq + j * kp; // panel j/16, 16·kp bytes each
				for (int64_t i = ib; i < ie; i += MR) {
					int R = ie - i < MR ? (int)(ie - i) : (int)MR;
					const float *bj = bias ? bias + j : NULL;
					if (vnni)
						tile_vnni(aq + i * kp, kp, w, R, V, nc, ascale + i, azp + i, wscale + j, wsum + j,
						          bj, c + i * ldc + j, ldc);
					else
						tile_avx2(aq + i * kp, kp, w, R, V, nc, ascale + i, azp + i, wscale + j, wsum + j,
						          bj, c + i * ldc + j, ldc);
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
