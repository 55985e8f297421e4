// mma.cuh: the warp-level tensor-core building blocks shared by the bf16
// GEMM and the bf16 attention (sm_80+): cp.async, ldmatrix and
// mma.sync.m16n8k16 with bf16 inputs and fp32 accumulators. Under RK_EMU
// they call the CPU models of kernels/emu/cuda_emu.h.
//
// Fragment layouts (PTX ISA; g = lane/4, t = lane%4): A 16x16 row-major,
// a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..); B 16x8
// "col", b0 (k 2t..2t+1, n g), b1 (k 2t+8.., n g); C 16x8, c0 c1 (g,
// 2t..2t+1), c2 c3 (g+8, 2t..2t+1).
#pragma once

#include "common.cuh"

namespace {

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool pred) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  int n = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)),
               "l"(gmem), "r"(n));
#elif defined(RK_EMU)
  rk_emu::cp_async16(smem, gmem, pred);
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

__device__ __forceinline__ void ldsm_x4(uint32_t *r, const void *p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
#elif defined(RK_EMU)
  rk_emu::ldmatrix_x4(r, p, false);
#endif
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t *r, const void *p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
#elif defined(RK_EMU)
  rk_emu::ldmatrix_x4(r, p, true);
#endif
}

__device__ __forceinline__ void mma_bf16(float *c, const uint32_t *a, const uint32_t *b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(RK_EMU)
  rk_emu::mma_m16n8k16_bf16(c, a, b);
#endif
}


// pack_bf16 rounds two floats to bf16 and packs them, lo in the low half.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  return (uint32_t)rk_f2bf(lo) | ((uint32_t)rk_f2bf(hi) << 16);
}

}  // namespace
