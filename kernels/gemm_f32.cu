// gemm_f32.cu: fp32 GEMM (true fp32 FFMA, no TF32, so results stay within
// 1e-5 of the CPU backend), row-major, both transposes, strided batches.
//
// Block tile BM x BN x 8, each thread an TM x TN register tile. Tiles of A
// and B are staged in shared memory k-major (As[k][m], Bs[k][n]) so the
// inner product reads contiguous float4s whatever the transposes. The next
// tile is fetched into registers while the current one is multiplied.
#include "common.cuh"

namespace {

constexpr int BK = 8;

template <int BM, int BN, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    gemm_f32_kernel(int transA, int transB, int m, int n, int k, float alpha,
                    const float *__restrict__ A, int lda, long long sA,
                    const float *__restrict__ B, int ldb, long long sB,
                    float beta, float *__restrict__ C, int ldc, long long sC) {
  constexpr int NT = (BM / TM) * (BN / TN);
  constexpr int LA = BM * BK / NT;  // A values each thread loads per tile
  constexpr int LB = BN * BK / NT;
  static_assert(LA >= 1 && LB >= 1, "tile too small for the block");
  __shared__ __align__(16) float As[BK][BM];
  __shared__ __align__(16) float Bs[BK][BN];

  const int tid = threadIdx.x;
  const int bz = blockIdx.z;
  A += bz * sA;
  B += bz * sB;
  C += bz * sC;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int tx = tid % (BN / TN), ty = tid / (BN / TN);

  float ra[LA], rb[LB];
  auto load = [&](int k0) {
#pragma unroll
    for (int q = 0; q < LA; q++) {
      int e = tid + q * NT, i, kk;
      if (transA) { i = e % BM; kk = e / BM; } else { kk = e % BK; i = e / BK; }
      int gi = m0 + i, gk = k0 + kk;
      float v = 0.f;
      if (gi < m && gk < k) v = transA ? A[(long long)gk * lda + gi] : A[(long long)gi * lda + gk];
      ra[q] = v;
    }
#pragma unroll
    for (int q = 0; q < LB; q++) {
      int e = tid + q * NT, j, kk;
      if (transB) { kk = e % BK; j = e / BK; } else { j = e % BN; kk = e / BN; }
      int gj = n0 + j, gk = k0 + kk;
      float v = 0.f;
      if (gj < n && gk < k) v = transB ? B[(long long)gj * ldb + gk] : B[(long long)gk * ldb + gj];
      rb[q] = v;
    }
  };
  auto store = [&]() {
#pragma unroll
    for (int q = 0; q < LA; q++) {
      int e = tid + q * NT, i, kk;
      if (transA) { i = e % BM; kk = e / BM; } else { kk = e % BK; i = e / BK; }
      As[kk][i] = ra[q];
    }
#pragma unroll
    for (int q = 0; q < LB; q++) {
      int e = tid + q * NT, j, kk;
      if (transB) { kk = e % BK; j = e / BK; } else { j = e % BN; kk = e / BN; }
      Bs[kk][j] = rb[q];
    }
  };

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) acc[i][j] = 0.f;

  load(0);
  for (int k0 = 0; k0 < k; k0 += BK) {
    __syncthreads();
    store();
    __syncthreads();
    if (k0 + BK < k) load(k0 + BK);
#pragma unroll
    for (int kk = 0; kk < BK; kk++) {
      float a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; i += 4) {
        float4 t = *reinterpret_cast<const float4 *>(&As[kk][ty * TM + i]);
        a[i] = t.x; a[i + 1] = t.y; a[i + 2] = t.z; a[i + 3] = t.w;
      }
#pragma unroll
      for (int j = 0; j < TN; j += 4) {
        float4 t = *reinterpret_cast<const float4 *>(&Bs[kk][tx * TN + j]);
        b[j] = t.x; b[j + 1] = t.y; b[j + 2] = t.z; b[j + 3] = t.w;
      }
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  }

#pragma unroll
  for (int i = 0; i < TM; i++) {
    int r = m0 + ty * TM + i;
    if (r >= m) continue;
#pragma unroll
    for (int j = 0; j < TN; j++) {
      int c = n0 + tx * TN + j;
      if (c >= n) continue;
      float *p = C + (long long)r * ldc + c;
      float v = alpha * acc[i][j];
      if (beta != 0.f) v += beta * *p;
      *p = v;
    }
  }
}

// C = beta*C when k == 0 (or alpha == 0): the product contributes nothing.
__global__ void scale_c_kernel(int m, int n, float beta, float *C, int ldc, long long sC) {
  C += blockIdx.z * sC;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < (long long)m * n;
       e += (long long)gridDim.x * blockDim.x) {
    long long r = e / n, c = e % n;
    float *p = C + r * ldc + c;
    *p = beta == 0.f ? 0.f : beta * *p;
  }
}

}  // namespace

int rk_scale_c(cudaStream_t st, int m, int n, float beta, float *C, int ldc, long long sC, int batch) {
  dim3 grid(rk_blocks((long long)m * n, 256), 1, batch);
  scale_c_kernel<<<grid, 256, 0, st>>>(m, n, beta, C, ldc, sC);
  return rk_launched();
}

extern "C" int rk_gemm_f32(void *stream, int transA, int transB, int m, int n, int k,
                           float alpha, const float *A, int lda, long long strideA,
                           const float *B, int ldb, long long strideB, float beta,
                           float *C, int ldc, long long strideC, int batch) {
  if (m < 0 || n < 0 || k < 0 || batch < 0 || batch > 65535) return RK_INVALID;
  if (m == 0 || n == 0 || batch == 0) return 0;
  cudaStream_t st = rk_stream(stream);
  if (k == 0 || alpha == 0.f) return rk_scale_c(st, m, n, beta, C, ldc, strideC, batch);
  long long big = (long long)((m + 127) / 128) * ((n + 127) / 128) * batch;
  if (big >= 132) {  // enough 128x128 tiles to fill an H100
    dim3 grid((n + 127) / 128, (m + 127) / 128, batch);
    gemm_f32_kernel<128, 128, 8, 8><<<grid, 256, 0, st>>>(transA, transB, m, n, k, alpha, A, lda,
                                                          strideA, B, ldb, strideB, beta, C, ldc,
                                                          strideC);
  } else {
    dim3 grid((n + 63) / 64, (m + 63) / 64, batch);
    gemm_f32_kernel<64, 64, 4, 4><<<grid, 256, 0, st>>>(transA, transB, m, n, k, alpha, A, lda,
                                                        strideA, B, ldb, strideB, beta, C, ldc,
                                                        strideC);
  }
  return rk_launched();
}
