// gemm_bf16.cu: bf16 x bf16 -> fp32-accumulate GEMM on tensor cores.
//
// sm_80+ path: block tile 128x128x32, 8 warps each owning a 64x32 warp
// tile, mma.sync.m16n8k16 (bf16, fp32 accumulators), fragments read with
// ldmatrix (.trans for the operand layouts whose contiguous dimension is
// not k), global -> shared with 16-byte cp.async in a 3-stage pipeline.
// Rows of shared tiles are padded by 16 bytes so ldmatrix is conflict-free.
//
// The tensor-core path needs the contiguous dimension of each operand, the
// leading dimensions and batch strides to be multiples of 8 and the base
// pointers 16-byte aligned (true for every BERT shape); anything else goes
// to a plain SIMT kernel with the same numerics (bf16 operands, fp32 sums).
//
// Hopper (sm_90a) would do better with wgmma + TMA; the same mma.sync code
// runs there (at roughly 60% of the wgmma rate), which is what bench-kernels
// measures against cuBLAS.
#include "common.cuh"
#include "mma.cuh"

namespace {

constexpr int BM = 128, BN = 128, BK = 32, STAGES = 3, NT = 256;
constexpr int PAD = 8;                         // bf16 elements of row padding
constexpr int TILE_ELEMS = 128 * (32 + PAD);   // >= 32 * (128 + PAD)
constexpr int SMEM_BYTES = STAGES * 2 * TILE_ELEMS * 2;

__device__ __forceinline__ void store_out(float *p, float v, float beta) {
  if (beta != 0.f) v += beta * *p;
  *p = v;
}
__device__ __forceinline__ void store_out(uint16_t *p, float v, float) { *p = rk_f2bf(v); }

// Shared-tile geometry: A tile is [m][k] (row stride BK+PAD) unless TA, then
// [k][m] (row stride BM+PAD); B tile is [k][n] (stride BN+PAD) unless TB,
// then [n][k] (stride BK+PAD).
template <bool TA, bool TB, typename OutT>
__global__ void __launch_bounds__(NT)
    gemm_bf16_tc(int m, int n, int k, float alpha, const uint16_t *__restrict__ A, int lda,
                 long long sA, const uint16_t *__restrict__ B, int ldb, long long sB, float beta,
                 OutT *__restrict__ C, int ldc, long long sC) {
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800) || defined(RK_EMU)
  extern __shared__ __align__(16) uint16_t smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 2, wn = warp & 3;  // 2 x 4 warps, 64 x 32 each
  A += blockIdx.z * sA;
  B += blockIdx.z * sB;
  C += blockIdx.z * sC;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int ktiles = (k + BK - 1) / BK;

  auto sa = [&](int s) { return smem + s * 2 * TILE_ELEMS; };
  auto sb = [&](int s) { return smem + s * 2 * TILE_ELEMS + TILE_ELEMS; };

  // 512 16-byte chunks per operand tile, two per thread.
  auto load_tile = [&](int kt, int s) {
    const int k0 = kt * BK;
    uint16_t *as = sa(s), *bs = sb(s);
#pragma unroll
    for (int q = 0; q < 2; q++) {
      int c = tid + q * NT;
      if (!TA) {
        int r = c >> 2, kc = (c & 3) * 8;
        bool ok = (m0 + r < m) && (k0 + kc < k);
        const uint16_t *src = ok ? A + (long long)(m0 + r) * lda + k0 + kc : A;
        cp_async16(as + r * (BK + PAD) + kc, src, ok);
      } else {
        int r = c >> 4, mc = (c & 15) * 8;
        bool ok = (k0 + r < k) && (m0 + mc < m);
        const uint16_t *src = ok ? A + (long long)(k0 + r) * lda + m0 + mc : A;
        cp_async16(as + r * (BM + PAD) + mc, src, ok);
      }
      if (!TB) {
        int r = c >> 4, nc = (c & 15) * 8;
        bool ok = (k0 + r < k) && (n0 + nc < n);
        const uint16_t *src = ok ? B + (long long)(k0 + r) * ldb + n0 + nc : B;
        cp_async16(bs + r * (BN + PAD) + nc, src, ok);
      } else {
        int r = c >> 2, kc = (c & 3) * 8;
        bool ok = (n0 + r < n) && (k0 + kc < k);
        const uint16_t *src = ok ? B + (long long)(n0 + r) * ldb + k0 + kc : B;
        cp_async16(bs + r * (BK + PAD) + kc, src, ok);
      }
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < ktiles) load_tile(s, s);
    cp_async_commit();
  }

  for (int kt = 0; kt < ktiles; kt++) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      int nk = kt + STAGES - 1;
      if (nk < ktiles) load_tile(nk, nk % STAGES);
      cp_async_commit();
    }
    const uint16_t *as = sa(kt % STAGES), *bs = sb(kt % STAGES);
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[4][4], bf[4][2];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        int mb = wm * 64 + i * 16;
        if (!TA) {
          int r = mb + (lane & 15), kc = kk + (lane >> 4) * 8;
          ldsm_x4(af[i], as + r * (BK + PAD) + kc);
        } else {
          int kr = kk + (lane & 7) + (lane >> 4) * 8, mc = mb + ((lane >> 3) & 1) * 8;
          ldsm_x4_t(af[i], as + kr * (BM + PAD) + mc);
        }
      }
#pragma unroll
      for (int j = 0; j < 4; j += 2) {
        int nb = wn * 32 + j * 8;
        uint32_t t[4];
        if (TB) {
          int r = nb + (lane & 7) + (lane >> 4) * 8, kc = kk + ((lane >> 3) & 1) * 8;
          ldsm_x4(t, bs + r * (BK + PAD) + kc);
        } else {
          int kr = kk + (lane & 7) + ((lane >> 3) & 1) * 8, nc = nb + (lane >> 4) * 8;
          ldsm_x4_t(t, bs + kr * (BN + PAD) + nc);
        }
        bf[j][0] = t[0];
        bf[j][1] = t[1];
        bf[j + 1][0] = t[2];
        bf[j + 1][1] = t[3];
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) mma_bf16(acc[i][j], af[i], bf[j]);
    }
  }
  cp_async_wait<0>();

  const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int i = 0; i < 4; i++) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int r = m0 + wm * 64 + i * 16 + g;
      int c = n0 + wn * 32 + j * 8 + t4 * 2;
#pragma unroll
      for (int h = 0; h < 2; h++) {
        int rr = r + h * 8;
        if (rr >= m) continue;
        OutT *p = C + (long long)rr * ldc + c;
        if (c < n) store_out(p, alpha * acc[i][j][h * 2], beta);
        if (c + 1 < n) store_out(p + 1, alpha * acc[i][j][h * 2 + 1], beta);
      }
    }
  }
#else
  __trap();  // built only for sm_80+; never reached
#endif
}

// SIMT fallback for shapes the tensor-core path does not take: 16x16
// threads, 64x64 tile, 4x4 per thread, bf16 operands widened to fp32.
template <typename OutT>
__global__ void __launch_bounds__(256)
    gemm_bf16_simt(int transA, int transB, int m, int n, int k, float alpha,
                   const uint16_t *__restrict__ A, int lda, long long sA,
                   const uint16_t *__restrict__ B, int ldb, long long sB, float beta,
                   OutT *__restrict__ C, int ldc, long long sC) {
  __shared__ float As[16][64 + 4];
  __shared__ float Bs[16][64 + 4];
  A += blockIdx.z * sA;
  B += blockIdx.z * sB;
  C += blockIdx.z * sC;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < k; k0 += 16) {
    for (int e = tid; e < 64 * 16; e += 256) {
      int i, kk;
      if (transA) { i = e & 63; kk = e >> 6; } else { kk = e & 15; i = e >> 4; }
      int gi = m0 + i, gk = k0 + kk;
      float v = 0.f;
      if (gi < m && gk < k) v = rk_bf2f(transA ? A[(long long)gk * lda + gi] : A[(long long)gi * lda + gk]);
      As[kk][i] = v;
      int j;
      if (transB) { kk = e & 15; j = e >> 4; } else { j = e & 63; kk = e >> 6; }
      int gj = n0 + j;
      gk = k0 + kk;
      v = 0.f;
      if (gj < n && gk < k) v = rk_bf2f(transB ? B[(long long)gj * ldb + gk] : B[(long long)gk * ldb + gj]);
      Bs[kk][j] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 16; kk++)
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(As[kk][ty * 4 + i], Bs[kk][tx * 4 + j], acc[i][j]);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int r = m0 + ty * 4 + i;
    if (r >= m) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int c = n0 + tx * 4 + j;
      if (c < n) store_out(C + (long long)r * ldc + c, alpha * acc[i][j], beta);
    }
  }
}

__global__ void f2bf_kernel(uint16_t *dst, const float *src, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    dst[i] = rk_f2bf(src[i]);
}
__global__ void bf2f_kernel(float *dst, const uint16_t *src, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    dst[i] = rk_bf2f(src[i]);
}

bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

template <bool TA, bool TB, typename OutT>
int launch_tc(cudaStream_t st, int m, int n, int k, float alpha, const uint16_t *A, int lda,
              long long sA, const uint16_t *B, int ldb, long long sB, float beta, OutT *C,
              int ldc, long long sC, int batch) {
  static bool attr_set = false;  // per instantiation; racing setters set the same value
  if (!attr_set) {
    cudaError_t e = cudaFuncSetAttribute(gemm_bf16_tc<TA, TB, OutT>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_BYTES);
    if (e != cudaSuccess) return (int)e;
    attr_set = true;
  }
  dim3 grid((n + BN - 1) / BN, (m + BM - 1) / BM, batch);
  gemm_bf16_tc<TA, TB, OutT><<<grid, NT, SMEM_BYTES, st>>>(m, n, k, alpha, A, lda, sA, B, ldb, sB,
                                                          beta, C, ldc, sC);
  return rk_launched();
}

template <typename OutT>
int gemm_bf16(cudaStream_t st, int transA, int transB, int m, int n, int k, float alpha,
              const uint16_t *A, int lda, long long sA, const uint16_t *B, int ldb, long long sB,
              float beta, OutT *C, int ldc, long long sC, int batch) {
  if (m < 0 || n < 0 || k < 0 || batch < 0 || batch > 65535) return RK_INVALID;
  if (m == 0 || n == 0 || batch == 0) return 0;
  int contigA = transA ? m : k, contigB = transB ? k : n;
  bool tc = contigA % 8 == 0 && contigB % 8 == 0 && lda % 8 == 0 && ldb % 8 == 0 &&
            (batch == 1 || (sA % 8 == 0 && sB % 8 == 0)) && aligned16(A) && aligned16(B) && k > 0;
#ifdef RK_EMU
  // The CPU emulation runs the tensor-core path through its models of
  // ldmatrix, mma.sync and cp.async; RK_EMU_NO_TC tests the fallback.
  if (getenv("RK_EMU_NO_TC")) tc = false;
#endif
  if (tc) {
    if (!transA && !transB) return launch_tc<false, false>(st, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
    if (!transA && transB) return launch_tc<false, true>(st, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
    if (transA && !transB) return launch_tc<true, false>(st, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
    return launch_tc<true, true>(st, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
  }
  dim3 grid((n + 63) / 64, (m + 63) / 64, batch);
  gemm_bf16_simt<OutT><<<grid, 256, 0, st>>>(transA, transB, m, n, k, alpha, A, lda, sA, B, ldb,
                                             sB, beta, C, ldc, sC);
  return rk_launched();
}

}  // namespace

extern "C" int rk_gemm_bf16(void *stream, int transA, int transB, int m, int n, int k,
                            float alpha, const rk_bf16 *A, int lda, long long strideA,
                            const rk_bf16 *B, int ldb, long long strideB, float beta, float *C,
                            int ldc, long long strideC, int batch) {
  return gemm_bf16<float>(rk_stream(stream), transA, transB, m, n, k, alpha, A, lda, strideA, B,
                          ldb, strideB, beta, C, ldc, strideC, batch);
}

extern "C" int rk_gemm_bf16_out(void *stream, int transA, int transB, int m, int n, int k,
                                float alpha, const rk_bf16 *A, int lda, long long strideA,
                                const rk_bf16 *B, int ldb, long long strideB, rk_bf16 *C, int ldc,
                                long long strideC, int batch) {
  return gemm_bf16<uint16_t>(rk_stream(stream), transA, transB, m, n, k, alpha, A, lda, strideA,
                             B, ldb, strideB, 0.f, C, ldc, strideC, batch);
}

extern "C" int rk_f32_to_bf16(void *stream, rk_bf16 *dst, const float *src, long long n) {
  if (n < 0) return RK_INVALID;
  if (n == 0) return 0;
  f2bf_kernel<<<rk_blocks(n, 256), 256, 0, rk_stream(stream)>>>(dst, src, n);
  return rk_launched();
}

extern "C" int rk_bf16_to_f32(void *stream, float *dst, const rk_bf16 *src, long long n) {
  if (n < 0) return RK_INVALID;
  if (n == 0) return 0;
  bf2f_kernel<<<rk_blocks(n, 256), 256, 0, rk_stream(stream)>>>(dst, src, n);
  return rk_launched();
}
