// attention_bf16.cu: flash-style attention forward on tensor cores (sm_80+),
// bf16 Q/K/V, fp32 accumulation and softmax, fp32 output and log-sum-exp.
// Same semantics as attention.cu (key padding, all-padding sequences,
// dropout from the counter RNG); it is the fast path for scoring and the
// starting point of a bf16 training path (its backward is still fp32).
//
// A block of 4 warps owns 64 query rows of one (sequence, head); each warp
// 16 rows. Per 64-key tile: S = Q K^T with mma.sync (Q fragments stay in
// registers, K fragments by ldmatrix), online softmax on the accumulator
// fragments (rows g and g+8 of the warp's 16, reduced over the 4 lanes of a
// row), then O += P V where the fp32 S accumulators are repacked as the
// bf16 A fragments of P (the C layout of two n8 tiles is the A layout of one
// k16 step) and V fragments come from ldmatrix.trans.
#include <math.h>

#include "common.cuh"
#include "mma.cuh"

namespace {

constexpr int BQ = 64, BKV = 64, NW = 4, NT = NW * 32;

template <int D>
constexpr int bf16_fwd_smem() {
  return 3 * 64 * (D + 8) * 2 + BKV * 4;
}

// load_tile copies rows [r0, r0+64) of one head's D columns (bf16) into
// shared memory (row stride D+8); rows past S are zero. 16-byte accesses.
template <int D>
__device__ __forceinline__ void load_tile(uint16_t *dst, const uint16_t *src, long long ld, int r0,
                                          int S) {
  constexpr int CH = D / 8;  // 16-byte chunks per row
  for (int e = threadIdx.x; e < 64 * CH; e += NT) {
    int r = e / CH, c = (e % CH) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r0 + r < S) v = *reinterpret_cast<const uint4 *>(src + (long long)(r0 + r) * ld + c);
    *reinterpret_cast<uint4 *>(dst + r * (D + 8) + c) = v;
  }
}

template <int D>
__global__ void __launch_bounds__(NT)
    attn_fwd_bf16(const uint16_t *__restrict__ qkv, const int32_t *__restrict__ mask, int S,
                  int heads, float scale, float pdrop, float inv_keep, uint64_t seed,
                  float *__restrict__ ctx, float *__restrict__ lse) {
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800) || defined(RK_EMU)
  extern __shared__ __align__(16) uint16_t smem[];
  uint16_t *Qs = smem;                 // [64][D+8]
  uint16_t *Ks = Qs + 64 * (D + 8);    // [64][D+8]
  uint16_t *Vs = Ks + 64 * (D + 8);    // [64][D+8]
  int *Mk = (int *)(Vs + 64 * (D + 8));  // [64]

  const int n = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * BQ;
  const int H = heads * D;
  const long long ld = 3LL * H;
  const uint16_t *base = qkv + (long long)n * S * ld;
  const int32_t *msk = mask + (long long)n * S;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;

  int any = 0;
  for (int j = tid; j < S; j += NT) any |= msk[j] != 0;
  const bool none = !__syncthreads_or(any);

  load_tile<D>(Qs, base + h * D, ld, i0, S);
  __syncthreads();
  // Q fragments of this warp's 16 rows, all D/16 k-steps.
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    int r = warp * 16 + (lane & 15), c = kk * 16 + (lane >> 4) * 8;
    ldsm_x4(qf[kk], Qs + r * (D + 8) + c);
  }

  float oacc[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; j++) oacc[j][0] = oacc[j][1] = oacc[j][2] = oacc[j][3] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
  const int qrow[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};

  for (int j0 = 0; j0 < S; j0 += BKV) {
    __syncthreads();
    load_tile<D>(Ks, base + H + h * D, ld, j0, S);
    load_tile<D>(Vs, base + 2 * H + h * D, ld, j0, S);
    for (int c = tid; c < BKV; c += NT) Mk[c] = (j0 + c < S) && (none || msk[j0 + c] != 0);
    __syncthreads();

    // S = Q K^T for 16 rows x 64 keys: 8 n8 tiles.
    float sacc[BKV / 8][4];
#pragma unroll
    for (int j = 0; j < BKV / 8; j++) sacc[j][0] = sacc[j][1] = sacc[j][2] = sacc[j][3] = 0.f;
    if (!none) {
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
        for (int j = 0; j < BKV / 8; j += 2) {
          uint32_t kf[4];
          int r = j * 8 + (lane & 7) + (lane >> 4) * 8, c = kk * 16 + ((lane >> 3) & 1) * 8;
          ldsm_x4(kf, Ks + r * (D + 8) + c);
          mma_bf16(sacc[j], qf[kk], kf);
          mma_bf16(sacc[j + 1], qf[kk], kf + 2);
        }
      }
    }
    // Mask, scale and the running max of rows g (h=0) and g+8 (h=1).
    float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < BKV / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int c = j * 8 + 2 * t + (e & 1);
        float v = Mk[c] ? sacc[j][e] * scale : -INFINITY;
        sacc[j][e] = v;
        tmax[e >> 1] = fmaxf(tmax[e >> 1], v);
      }
    float corr[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
      float mnew = fmaxf(mrow[r], tmax[r]);
      corr[r] = mrow[r] == -INFINITY ? 0.f : expf(mrow[r] - mnew);
      mrow[r] = mnew;
      lrow[r] *= corr[r];  // per-lane partial sums, reduced at the end
    }
    // P = exp(S - m); dropout on the copy that multiplies V.
#pragma unroll
    for (int j = 0; j < BKV / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int r = e >> 1;
        float p = sacc[j][e] == -INFINITY ? 0.f : expf(sacc[j][e] - mrow[r]);
        lrow[r] += p;
        if (pdrop > 0.f && p != 0.f) {
          uint64_t idx = ((uint64_t)(n * heads + h) * S + (uint64_t)qrow[r]) * (uint64_t)S +
                         (uint64_t)(j0 + j * 8 + 2 * t + (e & 1));
          p = rk_keep(seed, idx, pdrop) ? p * inv_keep : 0.f;
        }
        sacc[j][e] = p;
      }
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
      oacc[j][0] *= corr[0];
      oacc[j][1] *= corr[0];
      oacc[j][2] *= corr[1];
      oacc[j][3] *= corr[1];
    }
    // O += P V: k = keys (4 k16 steps), n = head dim (D/8 n8 tiles).
#pragma unroll
    for (int kc = 0; kc < BKV / 16; kc++) {
      uint32_t pf[4] = {pack_bf16(sacc[2 * kc][0], sacc[2 * kc][1]), pack_bf16(sacc[2 * kc][2], sacc[2 * kc][3]),
                        pack_bf16(sacc[2 * kc + 1][0], sacc[2 * kc + 1][1]),
                        pack_bf16(sacc[2 * kc + 1][2], sacc[2 * kc + 1][3])};
#pragma unroll
      for (int j = 0; j < D / 8; j += 2) {
        uint32_t vf[4];
        int kr = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = j * 8 + (lane >> 4) * 8;
        ldsm_x4_t(vf, Vs + kr * (D + 8) + c);
        mma_bf16(oacc[j], pf, vf);
        mma_bf16(oacc[j + 1], pf, vf + 2);
      }
    }
  }

  const int H_ = H;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    float l = lrow[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int i = qrow[r];
    if (i >= S) continue;
    const float inv = 1.f / l;
    float *out = ctx + ((long long)n * S + i) * H_ + h * D;
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
      out[j * 8 + 2 * t] = oacc[j][2 * r] * inv;
      out[j * 8 + 2 * t + 1] = oacc[j][2 * r + 1] * inv;
    }
    if (t == 0) lse[((long long)n * heads + h) * S + i] = mrow[r] + logf(l);
  }
#else
  __trap();  // built only for sm_80+; never reached
#endif
}

template <int D>
int fwd_bf16(cudaStream_t st, const rk_attn &a, const uint16_t *qkv, const int32_t *mask,
             float *ctx, float *lse) {
  static bool done = false;
  if (!done) {
    cudaError_t e = cudaFuncSetAttribute(attn_fwd_bf16<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         bf16_fwd_smem<D>());
    if (e != cudaSuccess) return (int)e;
    done = true;
  }
  const float pdrop = a.dropout > 0.f ? a.dropout : 0.f;
  dim3 grid((a.s + BQ - 1) / BQ, a.heads, a.n);
  attn_fwd_bf16<D><<<grid, NT, bf16_fwd_smem<D>(), st>>>(
      qkv, mask, a.s, a.heads, (float)(1.0 / sqrt((double)a.head_dim)), pdrop,
      pdrop > 0.f ? 1.f / (1.f - pdrop) : 1.f, a.seed, ctx, lse);
  return rk_launched();
}

}  // namespace

extern "C" int rk_attention_forward_bf16(void *stream, rk_attn a, const rk_bf16 *qkv,
                                         const int32_t *mask, float *ctx, float *lse) {
  if (a.n <= 0 || a.s <= 0 || a.heads <= 0 || a.n > 65535 || a.heads > 65535 || a.dropout >= 1.f ||
      (a.head_dim != 32 && a.head_dim != 64 && a.head_dim != 128) || ((uintptr_t)qkv & 15) != 0)
    return RK_INVALID;
  cudaStream_t st = rk_stream(stream);
  switch (a.head_dim) {
    case 32: return fwd_bf16<32>(st, a, qkv, mask, ctx, lse);
    case 64: return fwd_bf16<64>(st, a, qkv, mask, ctx, lse);
    default: return fwd_bf16<128>(st, a, qkv, mask, ctx, lse);
  }
}

// ---- backward ---------------------------------------------------------------------------
//
// One block of 4 warps per 64-key tile of one (sequence, head); warp w owns
// keys 16w..16w+15 and loops over all 64-query tiles:
//   S^T = K Q^T and dP^T = V dO^T      (mma, A = K or V rows, B = Q or dO rows)
//   P^T = exp(scale*S^T - lse), dropout, dS^T = P^T (dP^T - D)
//   dV += Pdrop^T dO, dK += dS^T Q     (A repacked from the accumulators)
//   dQ += dS K for the tile's queries  (dS^T through shared memory, atomics
//                                       across key tiles)
// D_i = dO_i . O_i comes from the fp32 ctx and dctx first.

namespace {

__global__ void dsum_rows(const float *__restrict__ ctx, const float *__restrict__ dctx,
                          float *__restrict__ dsum, int N, int S, int heads, int D) {
  const long long w = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= (long long)N * S * heads) return;
  const int h = (int)(w % heads);
  const long long row = w / heads;
  const float *o = ctx + row * heads * D + h * D, *g = dctx + row * heads * D + h * D;
  float s = 0.f;
  for (int d = lane; d < D; d += 32) s = fmaf(o[d], g[d], s);
  s = rk_warp_sum(s);
  if (lane == 0) dsum[((row / S) * heads + h) * S + row % S] = s;
}

// zero_q clears the Q column block of dqkv, which the backward accumulates.
__global__ void zero_q(float *dqkv, long long rows, int H) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < rows * H;
       e += (long long)gridDim.x * blockDim.x)
    dqkv[(e / H) * 3 * H + e % H] = 0.f;
}

template <int D>
constexpr int bf16_bwd_smem() {
  return 4 * 64 * (D + 8) * 2 + 64 * (64 + 8) * 2 + 3 * 64 * 4;
}

template <int D>
__global__ void __launch_bounds__(NT)
    attn_bwd_bf16(const uint16_t *__restrict__ qkv, const uint16_t *__restrict__ dctx,
                  const int32_t *__restrict__ mask, const float *__restrict__ lse,
                  const float *__restrict__ dsum, int S, int heads, float scale, float pdrop,
                  float inv_keep, uint64_t seed, float *__restrict__ dqkv) {
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800) || defined(RK_EMU)
  constexpr int LD = D + 8, LDS = 64 + 8;
  extern __shared__ __align__(16) uint16_t smem[];
  uint16_t *Ks = smem, *Vs = Ks + 64 * LD, *Qs = Vs + 64 * LD, *Gs = Qs + 64 * LD;
  uint16_t *dSt = Gs + 64 * LD;                 // [64 keys][64 queries + 8]
  float *Ls = (float *)(dSt + 64 * LDS), *Ds = Ls + 64;
  int *Mk = (int *)(Ds + 64);

  const int n = blockIdx.z, h = blockIdx.y, j0 = blockIdx.x * 64;
  const int H = heads * D;
  const long long ld = 3LL * H;
  const uint16_t *base = qkv + (long long)n * S * ld;
  const uint16_t *gbase = dctx + (long long)n * S * H + h * D;
  const int32_t *msk = mask + (long long)n * S;
  const long long lbase = ((long long)n * heads + h) * S;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;

  int any = 0;
  for (int j = tid; j < S; j += NT) any |= msk[j] != 0;
  const bool none = !__syncthreads_or(any);

  load_tile<D>(Ks, base + H + h * D, ld, j0, S);
  load_tile<D>(Vs, base + 2 * H + h * D, ld, j0, S);
  for (int c = tid; c < 64; c += NT) Mk[c] = (j0 + c < S) && (none || msk[j0 + c] != 0);

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[j][e] = dv[j][e] = 0.f;

  for (int i0 = 0; i0 < S; i0 += 64) {
    __syncthreads();
    load_tile<D>(Qs, base + h * D, ld, i0, S);
    load_tile<D>(Gs, gbase, H, i0, S);
    for (int c = tid; c < 64; c += NT) {
      bool ok = i0 + c < S;
      Ls[c] = ok ? lse[lbase + i0 + c] : 0.f;
      Ds[c] = ok ? dsum[lbase + i0 + c] : 0.f;
    }
    __syncthreads();

    float sacc[8][4], pacc[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) sacc[j][e] = pacc[j][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
      uint32_t ka[4], va[4];
      int r = warp * 16 + (lane & 15), c = kk * 16 + (lane >> 4) * 8;
      ldsm_x4(ka, Ks + r * LD + c);
      ldsm_x4(va, Vs + r * LD + c);
#pragma unroll
      for (int j = 0; j < 8; j += 2) {
        uint32_t qb[4], gb[4];
        int rr = j * 8 + (lane & 7) + (lane >> 4) * 8, cc = kk * 16 + ((lane >> 3) & 1) * 8;
        ldsm_x4(qb, Qs + rr * LD + cc);
        ldsm_x4(gb, Gs + rr * LD + cc);
        if (!none) {
          mma_bf16(sacc[j], ka, qb);
          mma_bf16(sacc[j + 1], ka, qb + 2);
        }
        mma_bf16(pacc[j], va, gb);
        mma_bf16(pacc[j + 1], va, gb + 2);
      }
    }
    // Element (j, e): key row warp*16 + g + 8*(e>>1), query column j*8 + 2t + (e&1).
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int kl = warp * 16 + g + 8 * (e >> 1), ql = j * 8 + 2 * t + (e & 1);
        float pd = 0.f, ds = 0.f;
        if (Mk[kl] && i0 + ql < S) {
          float p = expf(sacc[j][e] * scale - Ls[ql]);
          float dp = pacc[j][e];
          pd = p;
          if (pdrop > 0.f) {
            uint64_t idx = (uint64_t)(lbase + i0 + ql) * (uint64_t)S + (uint64_t)(j0 + kl);
            bool keep = rk_keep(seed, idx, pdrop);
            pd = keep ? p * inv_keep : 0.f;
            dp = keep ? dp * inv_keep : 0.f;
          }
          ds = p * (dp - Ds[ql]);
        }
        sacc[j][e] = pd;
        pacc[j][e] = ds;
        dSt[kl * LDS + ql] = rk_f2bf(ds);
      }
    // dV += Pdrop^T dO, dK += dS^T Q: k = queries (4 k16 chunks), n = head dim.
#pragma unroll
    for (int kc = 0; kc < 4; kc++) {
      uint32_t pa[4] = {pack_bf16(sacc[2 * kc][0], sacc[2 * kc][1]), pack_bf16(sacc[2 * kc][2], sacc[2 * kc][3]),
                        pack_bf16(sacc[2 * kc + 1][0], sacc[2 * kc + 1][1]),
                        pack_bf16(sacc[2 * kc + 1][2], sacc[2 * kc + 1][3])};
      uint32_t sa[4] = {pack_bf16(pacc[2 * kc][0], pacc[2 * kc][1]), pack_bf16(pacc[2 * kc][2], pacc[2 * kc][3]),
                        pack_bf16(pacc[2 * kc + 1][0], pacc[2 * kc + 1][1]),
                        pack_bf16(pacc[2 * kc + 1][2], pacc[2 * kc + 1][3])};
#pragma unroll
      for (int j = 0; j < D / 8; j += 2) {
        uint32_t gb[4], qb[4];
        int kr = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = j * 8 + (lane >> 4) * 8;
        ldsm_x4_t(gb, Gs + kr * LD + c);
        ldsm_x4_t(qb, Qs + kr * LD + c);
        mma_bf16(dv[j], pa, gb);
        mma_bf16(dv[j + 1], pa, gb + 2);
        mma_bf16(dk[j], sa, qb);
        mma_bf16(dk[j + 1], sa, qb + 2);
      }
    }
    __syncthreads();  // dS^T complete
    // dQ for queries 16*warp..: A = dS (from dS^T, transposed load), B = K.
    float dq[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.f;
#pragma unroll
    for (int kc = 0; kc < 4; kc++) {
      uint32_t a[4];
      int kr = kc * 16 + (lane & 7) + (lane >> 4) * 8, mc = warp * 16 + ((lane >> 3) & 1) * 8;
      ldsm_x4_t(a, dSt + kr * LDS + mc);
#pragma unroll
      for (int j = 0; j < D / 8; j += 2) {
        uint32_t kb[4];
        int kr2 = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = j * 8 + (lane >> 4) * 8;
        ldsm_x4_t(kb, Ks + kr2 * LD + c);
        mma_bf16(dq[j], a, kb);
        mma_bf16(dq[j + 1], a, kb + 2);
      }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int q = i0 + warp * 16 + g + 8 * r;
      if (q >= S) continue;
      float *row = dqkv + ((long long)n * S + q) * ld + h * D;
#pragma unroll
      for (int j = 0; j < D / 8; j++) {
        atomicAdd(row + j * 8 + 2 * t, scale * dq[j][2 * r]);
        atomicAdd(row + j * 8 + 2 * t + 1, scale * dq[j][2 * r + 1]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int key = j0 + warp * 16 + g + 8 * r;
    if (key >= S) continue;
    float *row = dqkv + ((long long)n * S + key) * ld + h * D;
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
      row[H + j * 8 + 2 * t] = scale * dk[j][2 * r];
      row[H + j * 8 + 2 * t + 1] = scale * dk[j][2 * r + 1];
      row[2 * H + j * 8 + 2 * t] = dv[j][2 * r];
      row[2 * H + j * 8 + 2 * t + 1] = dv[j][2 * r + 1];
    }
  }
#else
  __trap();
#endif
}

template <int D>
int bwd_bf16(cudaStream_t st, const rk_attn &a, const uint16_t *qkv, const uint16_t *dctx16,
             const int32_t *mask, const float *lse, const float *dsum, float *dqkv) {
  static bool done = false;
  if (!done) {
    cudaError_t e = cudaFuncSetAttribute(attn_bwd_bf16<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         bf16_bwd_smem<D>());
    if (e != cudaSuccess) return (int)e;
    done = true;
  }
  const float pdrop = a.dropout > 0.f ? a.dropout : 0.f;
  dim3 grid((a.s + 63) / 64, a.heads, a.n);
  attn_bwd_bf16<D><<<grid, NT, bf16_bwd_smem<D>(), st>>>(
      qkv, dctx16, mask, lse, dsum, a.s, a.heads, (float)(1.0 / sqrt((double)a.head_dim)), pdrop,
      pdrop > 0.f ? 1.f / (1.f - pdrop) : 1.f, a.seed, dqkv);
  return rk_launched();
}

}  // namespace

extern "C" int rk_attention_backward_bf16(void *stream, rk_attn a, const rk_bf16 *qkv,
                                          const rk_bf16 *dctx16, const int32_t *mask,
                                          const float *ctx, const float *dctx, const float *lse,
                                          float *dqkv, float *scratch) {
  if (a.n <= 0 || a.s <= 0 || a.heads <= 0 || a.n > 65535 || a.heads > 65535 || a.dropout >= 1.f ||
      (a.head_dim != 32 && a.head_dim != 64 && a.head_dim != 128) || ((uintptr_t)qkv & 15) != 0 ||
      ((uintptr_t)dctx16 & 15) != 0)
    return RK_INVALID;
  cudaStream_t st = rk_stream(stream);
  const long long rows = (long long)a.n * a.s;
  const int H = a.heads * a.head_dim;
  dsum_rows<<<rk_blocks(rows * a.heads * 32, 256), 256, 0, st>>>(ctx, dctx, scratch, a.n, a.s, a.heads,
                                                                  a.head_dim);
  int rc = rk_launched();
  if (rc) return rc;
  zero_q<<<rk_blocks(rows * H, 256), 256, 0, st>>>(dqkv, rows, H);
  if ((rc = rk_launched())) return rc;
  switch (a.head_dim) {
    case 32: return bwd_bf16<32>(st, a, qkv, dctx16, mask, lse, scratch, dqkv);
    case 64: return bwd_bf16<64>(st, a, qkv, dctx16, mask, lse, scratch, dqkv);
    default: return bwd_bf16<128>(st, a, qkv, dctx16, mask, lse, scratch, dqkv);
  }
}
