//go:build cgo && !noblas && amd64

// The vector exp and GELU of the CPU backend, shared by the kernels of
// kernels_amd64.c and the GEMM epilogues of sgemm_avx512.c and
// sgemm_avx2.c (bias + GELU), so that a fused GELU has the bits of the
// separate pass. Include it after the file's "#pragma GCC target" and
// "#pragma GCC optimize(\"fp-contract=off\")": the AVX2 functions take
// the including file's target (AVX2 and FMA at least), the AVX-512 ones
// carry their own (T512).

#ifndef RR_GELU_AVX_H
#define RR_GELU_AVX_H

#include <immintrin.h>
#include <stdint.h>

// ---------------------------------------------------------------- exp

// exp_fit holds Cephes' expf polynomial on the reduced argument, highest
// degree first.
static const float exp_fit[6] = {1.9875691500E-4f, 1.3981999507E-3f, 8.3334519073E-3f,
                                 4.1665795894E-2f, 1.6666665459E-1f, 5.0000001201E-1f};

// exp8 is Cephes' expf over 8 lanes (about 1 ulp on [-87, 88]); inputs
// below -87.3 (and -inf) give exactly 0.
static inline __m256 exp8(__m256 x) {
	const __m256 lo = _mm256_set1_ps(-87.3365478515625f);
	__m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
	x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.3762626647949f));
	__m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
	x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
	x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
	__m256 y = _mm256_set1_ps(exp_fit[0]);
	for (int i = 1; i < 6; i++) y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(exp_fit[i]));
	y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), x);
	y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
	y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
	return _mm256_andnot_ps(under, y);
}

// ---------------------------------------------------------------- GELU

// erfcx_fit holds Q(t), highest degree first, in
//
//	erfc(z) = t·exp(-z²)·Q(t),  t = 1/(1 + z/2),  z ≥ 0,
//
// a minimax fit (our own, by reweighted least squares) of relative error
// 4.4e-8 on z ∈ [0, 11.4]; Horner's rule in float32 keeps it below 1.3e-7.
// It replaces Numerical Recipes' erfcc, whose ten terms sit in the
// exponent: with the polynomial outside, exp(-z²) serves as the density in
// the backward pass too, and x²/2 can be split exactly (below) so that Φ
// keeps its relative accuracy deep into the left tail.
static const float erfcx_fit[9] = {-0.0593228079f, 0.285814971f, -0.489770204f, 0.281010151f, -0.0286540631f,
                                   0.203545123f,   0.242886990f, 0.282405049f,  0.282084733f};

// expneg_fit holds a minimax fit of exp(-s) on |s| ≤ ln2/2, highest degree
// first (relative error 3e-9, 6e-8 in float32).
static const float expneg_fit[7] = {0.0013814466f, -0.008368781f, 0.041668393f, -0.1666652f,
                                    0.49999994f,   -1.0f,         1.0f};

// The GELU kernels clamp |x| at gelu_clamp: beyond it Φ(-|x|) is below
// float32's smallest subnormal, and the clamp keeps ±Inf from turning the
// intermediate values into NaN (x itself still multiplies the result, so
// NaN stays NaN and gelu(+Inf) = +Inf).
#define GELU_CLAMP 16.0f

// phi8 returns Φ(x) = 0.5·erfc(-x/√2) and, in *pdf, φ(x) = exp(-x²/2)/√(2π),
// both with about 3e-7 relative error over the whole float range (|x| is
// clamped at GELU_CLAMP, where Φ(-|x|) is already 0). x²/2 is split into
// hi + lo exactly, and exp(-x²/2) = exp(-hi)·(1 - lo), so the left tail
// keeps its relative accuracy.
static inline __m256 phi8(__m256 x, __m256 *pdf) {
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 a = _mm256_min_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(GELU_CLAMP));
	__m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
	                         _mm256_fmadd_ps(a, _mm256_set1_ps(0.35355339059327376220f), _mm256_set1_ps(1.0f)));
	__m256 q = _mm256_set1_ps(0.5f * erfcx_fit[0]);
	for (int i = 1; i < 9; i++) q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5f * erfcx_fit[i]));
	__m256 ha = _mm256_mul_ps(a, _mm256_set1_ps(0.5f));
	__m256 hi = _mm256_mul_ps(ha, a);
	__m256 lo = _mm256_fmsub_ps(ha, a, hi);
	__m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), hi));
	e = _mm256_fnmadd_ps(e, lo, e);
	__m256 half_erfc = _mm256_mul_ps(_mm256_mul_ps(t, q), e);
	__m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
	__m256 cdf = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), half_erfc), half_erfc, neg);
	if (pdf) *pdf = _mm256_mul_ps(e, _mm256_set1_ps(0.39894228040143267794f));
	return cdf;
}

// ---------------------------------------------------------------- AVX-512 GELU

// The functions below run only where the CPU has AVX-512F (Go checks
// haveAVX512 first). On 16 lanes, with
// the division replaced by a refined reciprocal, GELU takes about 60 % of
// the AVX2 version's time.
#define T512 __attribute__((target("avx512f,fma")))

// exp16 is exp8 on 16 lanes.
T512 static inline __m512 exp16(__m512 x) {
	const __m512 lo = _mm512_set1_ps(-87.3365478515625f);
	__mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
	x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.3762626647949f));
	__m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
	                                 _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
	x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
	x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
	__m512 y = _mm512_set1_ps(exp_fit[0]);
	for (int i = 1; i < 6; i++) y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(exp_fit[i]));
	y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), x);
	y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
	return _mm512_maskz_mov_ps((__mmask16)~under, _mm512_scalef_ps(y, fx));
}

// expneg16 returns exp(-h) for 0 ≤ h ≤ 128 (GELU's x²/2 after the
// clamp): h = k·ln2 + s with |s| ≤ ln2/2, then 2^-k·exp(-s) by scalef,
// which takes the result through the subnormals to 0 without a mask.
T512 static inline __m512 expneg16(__m512 h) {
	__m512 k = _mm512_roundscale_ps(_mm512_mul_ps(h, _mm512_set1_ps(1.44269504088896341f)),
	                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 s = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), h);
	s = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), s);
	__m512 y = _mm512_set1_ps(expneg_fit[0]);
	for (int i = 1; i < 7; i++) y = _mm512_fmadd_ps(y, s, _mm512_set1_ps(expneg_fit[i]));
	return _mm512_scalef_ps(y, _mm512_sub_ps(_mm512_setzero_ps(), k));
}

// phi16 is phi8 on 16 lanes; 1/(1+z/2) is rcp14 and one Newton step, and
// exp(-hi) is expneg16.
T512 static inline __m512 phi16(__m512 x, __m512 *pdf) {
	__m512 a = _mm512_min_ps(_mm512_abs_ps(x), _mm512_set1_ps(GELU_CLAMP));
	__m512 d = _mm512_fmadd_ps(a, _mm512_set1_ps(0.35355339059327376220f), _mm512_set1_ps(1.0f));
	__m512 r = _mm512_rcp14_ps(d);
	__m512 t = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
	__m512 q = _mm512_set1_ps(0.5f * erfcx_fit[0]);
	for (int i = 1; i < 9; i++) q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f * erfcx_fit[i]));
	__m512 ha = _mm512_mul_ps(a, _mm512_set1_ps(0.5f));
	__m512 hi = _mm512_mul_ps(ha, a);
	__m512 lo = _mm512_fmsub_ps(ha, a, hi);
	__m512 e = expneg16(hi);
	e = _mm512_fnmadd_ps(e, lo, e);
	__m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(t, q), e);
	if (pdf) *pdf = _mm512_mul_ps(e, _mm512_set1_ps(0.39894228040143267794f));
	// 1 - half_erfc where x ≥ 0 (or NaN), half_erfc where x < 0.
	__mmask16 nonneg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLT_UQ);
	return _mm512_mask_sub_ps(half_erfc, nonneg, _mm512_set1_ps(1.0f), half_erfc);
}

T512 static inline __mmask16 first_lanes(int64_t n) {
	return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

#endif
