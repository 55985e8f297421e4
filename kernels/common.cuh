// common.cuh: helpers shared by every kernel file (launch checks, the
// counter RNG of backend/rng.go, warp reductions, bf16 conversion).
#pragma once

#ifdef RK_EMU
#include "emu/cuda_emu.h"  // CPU emulation for tests without a GPU (kernels/emu)
#else
#include <cuda_runtime.h>
#endif
#include <stdint.h>

#include "rerank_kernels.h"

#define RK_INVALID ((int)cudaErrorInvalidValue)

// RK_LAUNCHED returns the launch error of the kernel just enqueued.
static inline int rk_launched(void) { return (int)cudaGetLastError(); }

static inline cudaStream_t rk_stream(void *s) { return (cudaStream_t)s; }

static inline unsigned rk_blocks(long long n, int threads) {
  long long b = (n + threads - 1) / threads;
  if (b > 1048576) b = 1048576;  // grid-stride loops cover the rest
  if (b < 1) b = 1;
  return (unsigned)b;
}

// rk_uniform is backend.Uniform: SplitMix64's finaliser over seed + (i+1)*phi,
// the top 24 bits scaled to [0, 1). Bit-identical to the Go code.
__host__ __device__ __forceinline__ float rk_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1ull) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)(uint32_t)(z >> 40) * (1.0f / 16777216.0f);
}

__host__ __device__ __forceinline__ bool rk_keep(uint64_t seed, uint64_t i, float p) {
  return rk_uniform(seed, i) >= p;
}

__device__ __forceinline__ float rk_warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ double rk_warp_sum_d(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float rk_warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Round-to-nearest-even fp32 -> bf16 bits, NaN kept quiet; the same rule
// as the Go side uses for bf16 weights.
__host__ __device__ __forceinline__ uint16_t rk_f2bf(float f) {
  uint32_t u;
#ifdef __CUDA_ARCH__
  u = __float_as_uint(f);
#else
  __builtin_memcpy(&u, &f, 4);
#endif
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

__host__ __device__ __forceinline__ float rk_bf2f(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
#endif
}
