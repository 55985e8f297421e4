//go:build cgo && amd64

// rr_fma_loop runs iters iterations of 12 independent 8-wide FMA chains
// (enough to cover the FMA latency on both FMA ports) and returns a value
// that depends on every chain, so nothing is optimised away. One
// iteration is 12·8·2 = 192 float32 FLOPs.
#pragma GCC target("avx2,fma")
#include <immintrin.h>

float rr_fma_loop(long iters, float seed) {
	__m256 a[12];
	for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(seed + (float)i);
	const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
	for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
		for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
	}
	__m256 s = a[0];
	for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
	float out[8];
	_mm256_storeu_ps(out, s);
	return out[0] + out[7];
}

int rr_bench_has_fma(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
