//go:build cgo && !noblas && amd64

// Fused AVX2/FMA kernels of the CPU backend: attention per (sequence,
// head), GELU, LayerNorm, dropout, bias, AdamW. Only this file is compiled
// for AVX2; Go calls it after rr_has_avx2_fma() says the CPU has both, and
// falls back to the pure-Go code otherwise. Every function works on a
// range of rows or elements so that Go can split the work across cores.

#pragma GCC target("avx2,fma")
#pragma GCC optimize("fp-contract=off")

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <cblas.h>

#include "kernels.h"
#include "sgemm_avx512.h"
#include "sgemm_avx2.h"

int rr_has_avx2_fma(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// exp8, phi8, phi16 and the other vector exp and GELU functions.
#include "gelu_avx.h"

static inline float exp1(float x) {
	float in[8] = {x, 0, 0, 0, 0, 0, 0, 0}, out[8];
	_mm256_storeu_ps(out, exp8(_mm256_loadu_ps(in)));
	return out[0];
}

// ---------------------------------------------------------------- GELU

static inline __m256 loadn(const float *p, int n) {
	float buf[8] = {0};
	memcpy(buf, p, n * sizeof(float));
	return _mm256_loadu_ps(buf);
}

static inline void storen(float *p, __m256 v, int n) {
	float buf[8];
	_mm256_storeu_ps(buf, v);
	memcpy(p, buf, n * sizeof(float));
}

void rr_gelu(float *out, const float *x, int64_t n) {
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(x + i);
		__m256 c = phi8(v, NULL);
		_mm256_storeu_ps(out + i, _mm256_mul_ps(v, c));
	}
	if (i < n) {
		int r = (int)(n - i);
		__m256 v = loadn(x + i, r);
		storen(out + i, _mm256_mul_ps(v, phi8(v, NULL)), r);
	}
}

void rr_gelu_backward(float *dx, const float *dout, const float *x, int64_t n) {
	int64_t i = 0;
	for (; i < n; i += 8) {
		int r = n - i < 8 ? (int)(n - i) : 8;
		__m256 v = r == 8 ? _mm256_loadu_ps(x + i) : loadn(x + i, r);
		__m256 g = r == 8 ? _mm256_loadu_ps(dout + i) : loadn(dout + i, r);
		__m256 pdf;
		__m256 c = phi8(v, &pdf);
		__m256 d = _mm256_mul_ps(g, _mm256_fmadd_ps(v, pdf, c));
		if (r == 8) {
			_mm256_storeu_ps(dx + i, d);
		} else {
			storen(dx + i, d, r);
		}
	}
}

// ---------------------------------------------------------------- dropout

static inline uint64_t mix(uint64_t seed, uint64_t i) {
	uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return z >> 40;
}

// keepThreshold turns "Uniform(seed,i) >= p" into an integer compare:
// Uniform is (z>>40)·2⁻²⁴ exactly, so it is ≥ p iff z>>40 ≥ ceil(p·2²⁴).
static inline uint64_t keep_threshold(float p) {
	double t = ceil((double)p * 16777216.0);
	return t < 0 ? 0 : (uint64_t)t;
}

#define PHI 0x9E3779B97F4A7C15ULL

// mul64c multiplies four 64-bit lanes by a constant, modulo 2⁶⁴, from
// 32-bit products (AVX2 has no 64-bit multiply).
static inline __m256i mul64c(__m256i z, uint64_t c) {
	const __m256i clo = _mm256_set1_epi64x((long long)(c & 0xffffffffULL));
	const __m256i chi = _mm256_set1_epi64x((long long)(c >> 32));
	__m256i lo = _mm256_mul_epu32(z, clo);
	__m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(z, 32), clo), _mm256_mul_epu32(z, chi));
	return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

// mix4 is mix() on four lanes that already hold seed + (i+1)·φ.
static inline __m256i mix4(__m256i z) {
	z = mul64c(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), 0xBF58476D1CE4E5B9ULL);
	z = mul64c(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), 0x94D049BB133111EBULL);
	z = _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
	return _mm256_srli_epi64(z, 40);
}

// drop8 returns an 8-lane mask, all ones where dropout drops element
// idx..idx+7 (mix < th), bit-identical to the scalar mix().
static inline __m256 drop8(uint64_t seed, uint64_t idx, __m256i th) {
	__m256i z0 = _mm256_add_epi64(_mm256_set1_epi64x((long long)(seed + (idx + 1) * PHI)),
	                              _mm256_set_epi64x((long long)(3 * PHI), (long long)(2 * PHI), (long long)PHI, 0));
	__m256i z1 = _mm256_add_epi64(z0, _mm256_set1_epi64x((long long)(4 * PHI)));
	// The mixed values are below 2²⁴, so the signed compare is exact.
	__m256i d0 = _mm256_cmpgt_epi64(th, mix4(z0));
	__m256i d1 = _mm256_cmpgt_epi64(th, mix4(z1));
	__m256i ab = _mm256_blend_epi32(d0, _mm256_slli_epi64(d1, 32), 0xAA);
	ab = _mm256_permutevar8x32_epi32(ab, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
	return _mm256_castsi256_ps(ab);
}

// dropout_span sets out[j] = keep(seed, idx+j) ? x[j]·scale : 0 for j < n.
static inline void dropout_span(float *out, const float *x, int64_t n, float scale, uint64_t seed, uint64_t idx,
                                uint64_t th) {
	const __m256i vth = _mm256_set1_epi64x((long long)th);
	const __m256 vs = _mm256_set1_ps(scale);
	int64_t j = 0;
	for (; j + 8 <= n; j += 8) {
		__m256 d = drop8(seed, idx + (uint64_t)j, vth);
		_mm256_storeu_ps(out + j, _mm256_andnot_ps(d, _mm256_mul_ps(_mm256_loadu_ps(x + j), vs)));
	}
	for (; j < n; j++) out[j] = mix(seed, idx + (uint64_t)j) >= th ? x[j] * scale : 0.0f;
}

// rr_dropout sets out[i] = keep(seed, base+i) ? x[i]·scale : 0 for i < n.
void rr_dropout(float *out, const float *x, int64_t n, float p, float scale, uint64_t seed, uint64_t base) {
	dropout_span(out, x, n, scale, seed, base, keep_threshold(p));
}

// ---------------------------------------------------------------- rows

void rr_add_bias(float *restrict y, const float *restrict b, int64_t rows, int64_t cols) {
	for (int64_t r = 0; r < rows; r++) {
		float *row = y + r * cols;
		for (int64_t c = 0; c < cols; c++) row[c] += b[c];
	}
}

// rr_col_sums adds the column sums of rows [0,rows) of x (rows×cols) to
// acc, in double.
void rr_col_sums(double *restrict acc, const float *restrict x, int64_t rows, int64_t cols) {
	for (int64_t r = 0; r < rows; r++) {
		const float *row = x + r * cols;
		for (int64_t c = 0; c < cols; c++) acc[c] += row[c];
	}
}

static inline float hsum8(__m256 v) {
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline __m256d lo4(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
static inline __m256d hi4(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }
static inline double hsum4d(__m256d v) {
	__m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
	return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// rr_add_layernorm normalises rows [0,rows) of x + res (or of x alone
// when res is NULL); sums run in double. With res, it first writes
// sum = x + res (float32, as Backend.Add does), which LayerNorm's
// backward pass reads, and normalises that: the result is bit-identical
// to Add then rr_add_layernorm without res. sum may alias x or res.
void rr_add_layernorm(float *out, float *mean, float *rstd, float *sum, const float *x, const float *res,
                      const float *g, const float *b, int64_t rows, int64_t dim, float eps) {
	for (int64_t r = 0; r < rows; r++) {
		const float *row = x + r * dim;
		__m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
		int64_t c = 0;
		if (res) {
			float *srow = sum + r * dim;
			const float *rr = res + r * dim;
			for (; c + 8 <= dim; c += 8) {
				__m256 v = _mm256_add_ps(_mm256_loadu_ps(row + c), _mm256_loadu_ps(rr + c));
				_mm256_storeu_ps(srow + c, v);
				s0 = _mm256_add_pd(s0, lo4(v));
				s1 = _mm256_add_pd(s1, hi4(v));
			}
			for (int64_t k = c; k < dim; k++) srow[k] = row[k] + rr[k];
			row = srow;
		} else {
			for (; c + 8 <= dim; c += 8) {
				__m256 v = _mm256_loadu_ps(row + c);
				s0 = _mm256_add_pd(s0, lo4(v));
				s1 = _mm256_add_pd(s1, hi4(v));
			}
		}
		double s = hsum4d(_mm256_add_pd(s0, s1));
		for (; c < dim; c++) s += row[c];
		double m = s / (double)dim;
		__m256d vm = _mm256_set1_pd(m);
		s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
		for (c = 0; c + 8 <= dim; c += 8) {
			__m256 v = _mm256_loadu_ps(row + c);
			__m256d d0 = _mm256_sub_pd(lo4(v), vm), d1 = _mm256_sub_pd(hi4(v), vm);
			s0 = _mm256_fmadd_pd(d0, d0, s0);
			s1 = _mm256_fmadd_pd(d1, d1, s1);
		}
		double ss = hsum4d(_mm256_add_pd(s0, s1));
		for (; c < dim; c++) {
			double d = (double)row[c] - m;
			ss += d * d;
		}
		double inv = 1.0 / sqrt(ss / (double)dim + (double)eps);
		mean[r] = (float)m;
		rstd[r] = (float)inv;
		float fm = (float)m, fi = (float)inv;
		float *o = out + r * dim;
		for (c = 0; c < dim; c++) o[c] = (row[c] - fm) * fi * g[c] + b[c];
	}
}

// rr_layernorm_backward sets dx for rows [0,rows) and, when ag/ab are not
// NULL, adds this block's dgamma/dbeta sums (double) to them. dx may
// alias dy.
void rr_layernorm_backward(float *dx, double *ag, double *ab, const float *dy, const float *x, const float *mean,
                           const float *rstd, const float *g, int64_t rows, int64_t dim) {
	for (int64_t r = 0; r < rows; r++) {
		float m = mean[r], inv = rstd[r];
		const float *xr = x + r * dim, *dr = dy + r * dim;
		float *o = dx + r * dim;
		__m256 vm = _mm256_set1_ps(m), vi = _mm256_set1_ps(inv);
		__m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), b0 = _mm256_setzero_pd(), b1 = _mm256_setzero_pd();
		int64_t c = 0;
		for (; c + 8 <= dim; c += 8) {
			__m256 d = _mm256_loadu_ps(dr + c);
			__m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), vm), vi);
			__m256 dxhat = _mm256_mul_ps(d, _mm256_loadu_ps(g + c));
			a0 = _mm256_add_pd(a0, lo4(dxhat));
			a1 = _mm256_add_pd(a1, hi4(dxhat));
			__m256 t = _mm256_mul_ps(dxhat, xhat);
			b0 = _mm256_add_pd(b0, lo4(t));
			b1 = _mm256_add_pd(b1, hi4(t));
			if (ag) {
				__m256 u = _mm256_mul_ps(d, xhat);
				_mm256_storeu_pd(ag + c, _mm256_add_pd(_mm256_loadu_pd(ag + c), lo4(u)));
				_mm256_storeu_pd(ag + c + 4, _mm256_add_pd(_mm256_loadu_pd(ag + c + 4), hi4(u)));
			}
			if (ab) {
				_mm256_storeu_pd(ab + c, _mm256_add_pd(_mm256_loadu_pd(ab + c), lo4(d)));
				_mm256_storeu_pd(ab + c + 4, _mm256_add_pd(_mm256_loadu_pd(ab + c + 4), hi4(d)));
			}
		}
		double sdx = hsum4d(_mm256_add_pd(a0, a1)), sdxx = hsum4d(_mm256_add_pd(b0, b1));
		for (; c < dim; c++) {
			float xhat = (xr[c] - m) * inv;
			float dxhat = dr[c] * g[c];
			sdx += dxhat;
			sdxx += (double)(dxhat * xhat);
			if (ag) ag[c] += dr[c] * xhat;
			if (ab) ab[c] += dr[c];
		}
		float fsdx = (float)(sdx / (double)dim), fsdxx = (float)(sdxx / (double)dim);
		for (c = 0; c < dim; c++) {
			float xhat = (xr[c] - m) * inv;
			float dxhat = dr[c] * g[c];
			o[c] = inv * (dxhat - fsdx - xhat * fsdxx);
		}
	}
}

// ---------------------------------------------------------------- AdamW

void rr_adamw(float *p, const float *g, float *m, float *v, int64_t n, float decay, int use_decay, float b1,
              float b2, float om1, float om2, float bc2sqrt, float step, float eps) {
	int64_t i = 0;
	__m256 vdec = _mm256_set1_ps(decay), vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2);
	__m256 vom1 = _mm256_set1_ps(om1), vom2 = _mm256_set1_ps(om2), vbc = _mm256_set1_ps(bc2sqrt);
	__m256 vstep = _mm256_set1_ps(step), veps = _mm256_set1_ps(eps);
	// Same operations in the same order, and this file is compiled with
	// -ffp-contract=off: the result is bit-identical to the Go loop.
	for (; i + 8 <= n; i += 8) {
		__m256 gi = _mm256_loadu_ps(g + i);
		__m256 x = _mm256_loadu_ps(p + i);
		if (use_decay) x = _mm256_mul_ps(x, vdec);
		__m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), vb1), _mm256_mul_ps(gi, vom1));
		__m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), vb2), _mm256_mul_ps(_mm256_mul_ps(gi, gi), vom2));
		_mm256_storeu_ps(m + i, mi);
		_mm256_storeu_ps(v + i, vi);
		__m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc), veps);
		_mm256_storeu_ps(p + i, _mm256_sub_ps(x, _mm256_mul_ps(vstep, _mm256_div_ps(mi, denom))));
	}
	for (; i < n; i++) {
		float gi = g[i], x = p[i];
		if (use_decay) x *= decay;
		float mi = m[i] * b1 + gi * om1;
		float vi = v[i] * b2 + gi * gi * om2;
		m[i] = mi;
		v[i] = vi;
		float denom = sqrtf(vi) / bc2sqrt + eps;
		p[i] = x - step * (mi / denom);
	}
}

// ---------------------------------------------------------------- attention

// softmax_rows applies the key mask and a softmax to rows [0,rows) of the
// rows×L block p (leading dimension ld), where madd[j] is 0 for a real
// key and -inf for padding, then zeroes columns [L, S).
static void softmax_rows(float *p, int ld, int rows, int L, int S, const float *madd) {
	for (int i = 0; i < rows; i++) {
		float *row = p + (int64_t)i * ld;
		__m256 vmx = _mm256_set1_ps(-INFINITY);
		int j = 0;
		for (; j + 8 <= L; j += 8) {
			__m256 s = _mm256_add_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(madd + j));
			_mm256_storeu_ps(row + j, s);
			vmx = _mm256_max_ps(vmx, s);
		}
		float mx;
		{
			float buf[8];
			_mm256_storeu_ps(buf, vmx);
			mx = buf[0];
			for (int k = 1; k < 8; k++) mx = buf[k] > mx ? buf[k] : mx;
		}
		for (; j < L; j++) {
			row[j] += madd[j];
			if (row[j] > mx) mx = row[j];
		}
		__m256 vm = _mm256_set1_ps(mx), vs = _mm256_setzero_ps();
		for (j = 0; j + 8 <= L; j += 8) {
			__m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm));
			_mm256_storeu_ps(row + j, e);
			vs = _mm256_add_ps(vs, e);
		}
		float sum = hsum8(vs);
		for (; j < L; j++) {
			float e = exp1(row[j] - mx);
			row[j] = e;
			sum += e;
		}
		float inv = 1.0f / sum;
		__m256 vi = _mm256_set1_ps(inv);
		for (j = 0; j + 8 <= L; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), vi));
		for (; j < L; j++) row[j] *= inv;
		for (j = L; j < S; j++) row[j] = 0;
	}
}

// dropped writes pv = keep ? p·scale : 0 for the first L columns of an S×S
// block of probabilities whose element (i,j) has dropout index
// base + i·S + j.
static void dropped(float *pv, const float *p, int S, int L, float pd, float scale, uint64_t seed, uint64_t base) {
	uint64_t th = keep_threshold(pd);
	for (int i = 0; i < S; i++) {
		dropout_span(pv + (int64_t)i * S, p + (int64_t)i * S, L, scale, seed, base + (uint64_t)i * S, th);
	}
}

static void zero_rows(float *x, int ld, int from, int to, int d) {
	for (int i = from; i < to; i++) memset(x + (int64_t)i * ld, 0, d * sizeof(float));
}

// softmax512 sends softmax_rows to its AVX-512 twin, softmax_rows512 (set
// from Go where the CPU has AVX-512F).
static int softmax512;

void rr_softmax_use_avx512(int on) { softmax512 = on; }

static void softmax_rows512(float *p, int ld, int rows, int L, int S, const float *madd);

// attn_avx512 sends the attention products to rr_sgemm_auto (1) or
// rr_sgemm2_auto (2), set from Go by what the CPU can run; otherwise (0)
// they go to OpenBLAS.
static int attn_avx512;

void rr_attn_use_avx512(int on) { attn_avx512 = on; }

static void attn_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                      int ldb, float *c, int ldc) {
	if (attn_avx512 == 1 && rr_sgemm_auto(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc)) return;
	if (attn_avx512 == 2 && rr_sgemm2_auto(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc)) return;
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a,
	            lda, b, ldb, 0.0f, c, ldc);
}

// rr_attn_fwd runs one (sequence, head): p = softmax(q·kᵀ·scale + mask)
// (S×S, kept for the backward pass), ctx = dropout(p)·v. Keys at and past
// L are padding (the caller passes L = 1 + the last real key), so the
// products stop there. madd holds the additive mask of the first L keys.
void rr_attn_fwd(int S, int L, int d, float scale, const float *q, const float *k, const float *v, int ld, float *p,
                 float *ctx, int ldc, const float *madd, float pd, uint64_t seed, uint64_t base, float *scratch) {
	if (L == 0) {
		// Every key is padding: Hugging Face's additive mask makes each row
		// uniform over all S keys.
		for (int64_t i = 0; i < (int64_t)S * S; i++) p[i] = 1.0f / (float)S;
		L = S;
	} else {
		attn_gemm(0, 1, S, L, d, scale, q, ld, k, ld, p, S);
		if (softmax512) {
			softmax_rows512(p, S, S, L, S, madd);
		} else {
			softmax_rows(p, S, S, L, S, madd);
		}
	}
	const float *pv = p;
	if (pd > 0) {
		dropped(scratch, p, S, L, pd, 1.0f / (1.0f - pd), seed, base);
		pv = scratch;
	}
	attn_gemm(0, 0, S, d, L, 1.0f, pv, S, v, ld, ctx, ldc);
}

// rr_attn_bwd is the backward pass of rr_attn_fwd for one (sequence,
// head). It overwrites dq, dk, dv (leading dimension ld). scratch holds
// 2·S·S floats.
void rr_attn_bwd(int S, int L, int d, float scale, const float *q, const float *k, const float *v, int ld,
                 const float *p, const float *g, int ldg, float *dq, float *dk, float *dv, float pd, uint64_t seed,
                 uint64_t base, float *scratch) {
	// All keys padding: the forward pass made P uniform over all S keys,
	// and the gradient flows through it like through any softmax.
	if (L == 0) L = S;
	const float *pv = p;
	float *dp = scratch;
	if (pd > 0) {
		dropped(scratch + (int64_t)S * S, p, S, L, pd, 1.0f / (1.0f - pd), seed, base);
		pv = scratch + (int64_t)S * S;
	}
	// dV = P'ᵀ·g over the first L keys; the rest get nothing.
	attn_gemm(1, 0, L, d, S, 1.0f, pv, S, g, ldg, dv, ld);
	zero_rows(dv, ld, L, S, d);
	// dP' = g·Vᵀ; with dropout, P⊙dP = P'⊙dP' (a dropped element has P' = 0).
	attn_gemm(0, 1, S, L, d, 1.0f, g, ldg, v, ld, dp, S);
	for (int i = 0; i < S; i++) {
		const float *pr = p + (int64_t)i * S, *pvr = pv + (int64_t)i * S;
		float *dr = dp + (int64_t)i * S;
		__m256 acc = _mm256_setzero_ps();
		int j = 0;
		for (; j + 8 <= L; j += 8) {
			__m256 t = _mm256_mul_ps(_mm256_loadu_ps(pvr + j), _mm256_loadu_ps(dr + j));
			_mm256_storeu_ps(dr + j, t);
			acc = _mm256_add_ps(acc, t);
		}
		float dot = hsum8(acc);
		for (; j < L; j++) {
			dr[j] *= pvr[j];
			dot += dr[j];
		}
		__m256 vd = _mm256_set1_ps(dot);
		for (j = 0; j + 8 <= L; j += 8) {
			__m256 t = _mm256_fnmadd_ps(_mm256_loadu_ps(pr + j), vd, _mm256_loadu_ps(dr + j));
			_mm256_storeu_ps(dr + j, t);
		}
		for (; j < L; j++) dr[j] -= pr[j] * dot;
	}
	attn_gemm(0, 0, S, d, L, scale, dp, S, k, ld, dq, ld);
	attn_gemm(1, 0, L, d, S, scale, dp, S, q, ld, dk, ld);
	zero_rows(dk, ld, L, S, d);
}

// ---------------------------------------------------------------- tiled attention

// The three functions below are the elementwise steps of tiled attention
// (attention_tiled.go): blocks of rows queries × cols keys whose scores
// the caller computes with matrix products, never a whole S×S matrix.
// Dropout element (i, j) of a block has index base + i·S + j, as in the
// untiled kernels.

static inline float hmax8(__m256 v) {
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_movehdup_ps(m));
	return _mm_cvtss_f32(m);
}

// rr_attn_tile_fwd folds a block of scores s (leading dimension ld) into
// the running row maxima m and sums l of an online softmax: it adds the
// keys' mask madd, sets s = exp(s − m') with m' the new row maximum,
// l = l·exp(m − m') + Σ s (before dropout), m = m', and scales the
// accumulator rows acc (d values each, leading dimension ldacc) by
// exp(m − m'), so that the caller's acc += s·V completes the update. With
// dropout, s is dropped (times 1/(1−pd)) after its sum is taken.
void rr_attn_tile_fwd(float *s, int ld, int rows, int cols, const float *madd, float *m, float *l, float *acc,
                      int ldacc, int d, float pd, uint64_t seed, uint64_t base, int S) {
	uint64_t th = pd > 0 ? keep_threshold(pd) : 0;
	float dscale = pd > 0 ? 1.0f / (1.0f - pd) : 1.0f;
	for (int i = 0; i < rows; i++) {
		float *row = s + (int64_t)i * ld;
		__m256 vmx = _mm256_set1_ps(-INFINITY);
		int j = 0;
		for (; j + 8 <= cols; j += 8) {
			__m256 x = _mm256_add_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(madd + j));
			_mm256_storeu_ps(row + j, x);
			vmx = _mm256_max_ps(vmx, x);
		}
		float mx = hmax8(vmx);
		for (; j < cols; j++) {
			row[j] += madd[j];
			if (row[j] > mx) mx = row[j];
		}
		float mo = m[i], mn = mo > mx ? mo : mx;
		if (mn == -INFINITY) {
			// Every key so far is padding: this block adds nothing.
			memset(row, 0, (size_t)cols * sizeof(float));
			continue;
		}
		float alpha = mo == -INFINITY ? 0.0f : exp1(mo - mn);
		__m256 vm = _mm256_set1_ps(mn), vs = _mm256_setzero_ps();
		for (j = 0; j + 8 <= cols; j += 8) {
			__m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm));
			_mm256_storeu_ps(row + j, e);
			vs = _mm256_add_ps(vs, e);
		}
		float sum = hsum8(vs);
		for (; j < cols; j++) {
			float e = exp1(row[j] - mn);
			row[j] = e;
			sum += e;
		}
		l[i] = l[i] * alpha + sum;
		m[i] = mn;
		if (alpha != 1.0f) {
			float *a = acc + (int64_t)i * ldacc;
			__m256 va = _mm256_set1_ps(alpha);
			int c = 0;
			for (; c + 8 <= d; c += 8) _mm256_storeu_ps(a + c, _mm256_mul_ps(_mm256_loadu_ps(a + c), va));
			for (; c < d; c++) a[c] *= alpha;
		}
		if (pd > 0) dropout_span(row, row, cols, dscale, seed, base + (uint64_t)i * S, th);
	}
}

// rr_attn_tile_p recomputes a block of probabilities from its scores s
// (leading dimension ld) and each row's log-sum-exp: s = exp(s + madd −
// lse). With dropout it also writes the dropped copy to pv.
void rr_attn_tile_p(float *s, float *pv, int ld, int rows, int cols, const float *madd, const float *lse, float pd,
                    uint64_t seed, uint64_t base, int S) {
	uint64_t th = pd > 0 ? keep_threshold(pd) : 0;
	float dscale = pd > 0 ? 1.0f / (1.0f - pd) : 1.0f;
	for (int i = 0; i < rows; i++) {
		float *row = s + (int64_t)i * ld;
		__m256 vl = _mm256_set1_ps(lse[i]);
		int j = 0;
		for (; j + 8 <= cols; j += 8) {
			__m256 x = _mm256_add_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(madd + j));
			_mm256_storeu_ps(row + j, exp8(_mm256_sub_ps(x, vl)));
		}
		for (; j < cols; j++) row[j] = exp1(row[j] + madd[j] - lse[i]);
		if (pd > 0) dropout_span(pv + (int64_t)i * ld, row, cols, dscale, seed, base + (uint64_t)i * S, th);
	}
}

// rr_attn_tile_ds sets dp = pv⊙dp − p·D (D per row: the dot product of
// the row's output gradient and output), the softmax backward of a block;
// pv is the dropped p (p itself without dropout).
void rr_attn_tile_ds(float *dp, const float *p, const float *pv, int ld, int rows, int cols, const float *D) {
	for (int i = 0; i < rows; i++) {
		float *dr = dp + (int64_t)i * ld;
		const float *pr = p + (int64_t)i * ld, *pvr = pv + (int64_t)i * ld;
		__m256 vd = _mm256_set1_ps(D[i]);
		int j = 0;
		for (; j + 8 <= cols; j += 8) {
			__m256 t = _mm256_mul_ps(_mm256_loadu_ps(pvr + j), _mm256_loadu_ps(dr + j));
			_mm256_storeu_ps(dr + j, _mm256_fnmadd_ps(_mm256_loadu_ps(pr + j), vd, t));
		}
		for (; j < cols; j++) dr[j] = pvr[j] * dr[j] - pr[j] * D[i];
	}
}

// ---------------------------------------------------------------- AVX-512 GELU

// The functions below run only where the CPU has AVX-512F (Go checks
// haveAVX512 first); the rest of this file stays AVX2. phi16 and the rest
// of the AVX-512 GELU are in gelu_avx.h.

T512 void rr_gelu512(float *out, const float *x, int64_t n) {
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 m = first_lanes(n - i);
		__m512 v = _mm512_maskz_loadu_ps(m, x + i);
		_mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, phi16(v, NULL)));
	}
}

T512 void rr_gelu_backward512(float *dx, const float *dout, const float *x, int64_t n) {
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 m = first_lanes(n - i);
		__m512 v = _mm512_maskz_loadu_ps(m, x + i), g = _mm512_maskz_loadu_ps(m, dout + i);
		__m512 pdf;
		__m512 c = phi16(v, &pdf);
		_mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(g, _mm512_fmadd_ps(v, pdf, c)));
	}
}

// ---------------------------------------------------------------- AVX-512 softmax

// softmax_rows512 is softmax_rows on 16 lanes, the last vector of a row
// masked: max of the masked scores, exp(s - max) by expneg16 (whose
// argument mx - s is clamped at 120, so a -Inf score, a padded key, gives
// exactly 0 while NaN stays NaN), sum, scale.
T512 static void softmax_rows512(float *p, int ld, int rows, int L, int S, const float *madd) {
	const __m512 clamp = _mm512_set1_ps(120.0f);
	for (int i = 0; i < rows; i++) {
		float *row = p + (int64_t)i * ld;
		__m512 vmx = _mm512_set1_ps(-INFINITY);
		for (int j = 0; j < L; j += 16) {
			__mmask16 m = first_lanes(L - j);
			__m512 s = _mm512_add_ps(_mm512_maskz_loadu_ps(m, row + j), _mm512_maskz_loadu_ps(m, madd + j));
			vmx = _mm512_mask_max_ps(vmx, m, vmx, s);
		}
		__m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmx)), vs = _mm512_setzero_ps();
		for (int j = 0; j < L; j += 16) {
			__mmask16 m = first_lanes(L - j);
			__m512 s = _mm512_add_ps(_mm512_maskz_loadu_ps(m, row + j), _mm512_maskz_loadu_ps(m, madd + j));
			__m512 e = expneg16(_mm512_min_ps(clamp, _mm512_sub_ps(vm, s)));
			_mm512_mask_storeu_ps(row + j, m, e);
			vs = _mm512_mask_add_ps(vs, m, vs, e);
		}
		__m512 vi = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vs));
		for (int j = 0; j < L; j += 16) {
			__mmask16 m = first_lanes(L - j);
			_mm512_mask_storeu_ps(row + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), vi));
		}
		if (L < S) memset(row + L, 0, (size_t)(S - L) * sizeof(float));
	}
}
