// attention.cu: fused multi-head self-attention, forward and backward, in
// fp32 (so that it matches the CPU backend within 1e-5).
//
// Flash-style: the S x S score matrix never reaches device memory. The
// forward pass walks key tiles with an online softmax and keeps only the
// log-sum-exp of each score row; the backward pass recomputes the
// probabilities from it (P = exp(s - lse)) in two kernels, one per key tile
// (dK, dV) and one per query tile (dQ), so no atomics are needed and the
// result is deterministic. D_i = dO_i . O_i is computed first; it equals
// rowsum(dP * P) of the CPU backend also under dropout.
//
// Semantics of backend.Attention: padded keys get probability exactly 0; a
// sequence whose keys are all padding gets uniform probabilities over all S
// keys (what an additive float32-minimum mask gives). Dropout on the
// probabilities keeps element (n, h, i, j) when
// uniform(seed, ((n*heads+h)*S + i)*S + j) >= p, as in backend/rng.go.
//
// Layout: BR = BC = 32 rows per tile, 128 threads; thread t owns row t/4
// and the columns q4 + 4e (q4 = t%4) of the head dimension, so the four
// lanes of a row sit side by side in one warp and reduce with shuffles.
#include <math.h>

#include "common.cuh"

namespace {

constexpr int BR = 32, BC = 32, NT = 128;

struct AttnArgs {
  const float *qkv;
  const int32_t *mask;
  int S, heads, dh;
  float scale, pdrop, inv_keep;
  uint64_t seed;
};

// all_keys_masked reports, to every thread of the block, whether sequence n
// has no real key at all.
__device__ __forceinline__ bool all_keys_masked(const int32_t *msk, int S) {
  int any = 0;
  for (int j = threadIdx.x; j < S; j += blockDim.x) any |= msk[j] != 0;
  return !__syncthreads_or(any);
}

// load_rows copies rows [r0, r0+rows) of one head's cols columns into
// shared memory with row stride ld_s; rows past S are zero.
__device__ __forceinline__ void load_rows(int cols, float *dst, int ld_s, const float *src,
                                          long long ld_g, int r0, int rows, int S) {
  for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
    int r = e / cols, d = e % cols;
    dst[r * ld_s + d] = (r0 + r < S) ? src[(long long)(r0 + r) * ld_g + d] : 0.f;
  }
}

__device__ __forceinline__ float dot_s(int n, const float *a, const float *b) {
  float s = 0.f;
#pragma unroll 16
  for (int d = 0; d < n; d++) s = fmaf(a[d], b[d], s);
  return s;
}

template <int D>
constexpr int fwd_smem() {
  return (BR * (D + 1) + BC * (D + 1) + BC * D + BR * (BC + 1)) * 4 + BC * 4;
}

template <int D, bool EXACT>
__global__ void __launch_bounds__(NT) attn_fwd(AttnArgs a, float *__restrict__ ctx,
                                               float *__restrict__ lse) {
  extern __shared__ __align__(16) float sm[];
  float *Qs = sm;                    // [BR][D+1]
  float *Ks = Qs + BR * (D + 1);     // [BC][D+1]
  float *Vs = Ks + BC * (D + 1);     // [BC][D]
  float *Ps = Vs + BC * D;           // [BR][BC+1]
  int *Mk = (int *)(Ps + BR * (BC + 1));  // [BC]: key usable

  const int n = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * BR, S = a.S;
  const int dh = EXACT ? D : a.dh;  // head dim; D is its upper bound
  const int H = a.heads * dh;
  const long long ld = 3LL * H;
  const float *base = a.qkv + (long long)n * S * ld;
  const int32_t *msk = a.mask + (long long)n * S;
  const int tid = threadIdx.x, r = tid >> 2, q4 = tid & 3;
  const bool none = all_keys_masked(msk, S);

  load_rows(dh, Qs, D + 1, base + h * dh, ld, i0, BR, S);
  const uint64_t rowbase = ((uint64_t)(n * a.heads + h) * S + (uint64_t)(i0 + r)) * (uint64_t)S;

  float o[D / 4];
#pragma unroll
  for (int e = 0; e < D / 4; e++) o[e] = 0.f;
  float mrow = -INFINITY, lrow = 0.f;

  for (int j0 = 0; j0 < S; j0 += BC) {
    __syncthreads();
    load_rows(dh, Ks, D + 1, base + H + h * dh, ld, j0, BC, S);
    load_rows(dh, Vs, D, base + 2 * H + h * dh, ld, j0, BC, S);
    for (int c = tid; c < BC; c += NT) Mk[c] = (j0 + c < S) && (none || msk[j0 + c] != 0);
    __syncthreads();

    float s[BC / 4];
    float tmax = -INFINITY;
#pragma unroll
    for (int jj = 0; jj < BC / 4; jj++) {
      int c = q4 + 4 * jj;
      float v = -INFINITY;
      if (Mk[c]) v = none ? 0.f : a.scale * dot_s(dh, Qs + r * (D + 1), Ks + c * (D + 1));
      s[jj] = v;
      tmax = fmaxf(tmax, v);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
    const float mnew = fmaxf(mrow, tmax);
    const float corr = (mrow == -INFINITY) ? 0.f : expf(mrow - mnew);
    float psum = 0.f;
#pragma unroll
    for (int jj = 0; jj < BC / 4; jj++) {
      int c = q4 + 4 * jj;
      float p = (s[jj] == -INFINITY) ? 0.f : expf(s[jj] - mnew);
      psum += p;
      if (a.pdrop > 0.f)
        p = rk_keep(a.seed, rowbase + (uint64_t)(j0 + c), a.pdrop) ? p * a.inv_keep : 0.f;
      Ps[r * (BC + 1) + c] = p;
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    psum += __shfl_xor_sync(0xffffffffu, psum, 2);
    lrow = lrow * corr + psum;
    mrow = mnew;
    __syncwarp();
#pragma unroll
    for (int e = 0; e < D / 4; e++) o[e] *= corr;
    for (int c = 0; c < BC; c++) {
      float p = Ps[r * (BC + 1) + c];
#pragma unroll
      for (int e = 0; e < D / 4; e++) o[e] = fmaf(p, Vs[c * D + q4 + 4 * e], o[e]);
    }
  }

  const int i = i0 + r;
  if (i < S) {
    const float inv = 1.f / lrow;
    float *out = ctx + ((long long)n * S + i) * H + h * dh;
#pragma unroll
    for (int e = 0; e < D / 4; e++)
      if (EXACT || q4 + 4 * e < dh) out[q4 + 4 * e] = o[e] * inv;
    if (q4 == 0) lse[((long long)n * a.heads + h) * S + i] = mrow + logf(lrow);
  }
}

// dsum[(n*heads+h)*S + i] = dctx_i . ctx_i over the head's columns; one warp
// per (row, head).
__global__ void attn_bwd_dsum(const float *__restrict__ ctx, const float *__restrict__ dctx,
                              float *__restrict__ dsum, int N, int S, int heads, int D) {
  const long long w = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= (long long)N * S * heads) return;
  const int h = (int)(w % heads);
  const long long row = w / heads;  // n*S + i
  const int H = heads * D;
  const float *o = ctx + row * H + h * D, *g = dctx + row * H + h * D;
  float s = 0.f;
  for (int d = lane; d < D; d += 32) s = fmaf(o[d], g[d], s);
  s = rk_warp_sum(s);
  if (lane == 0) {
    long long n = row / S, i = row % S;
    dsum[(n * heads + h) * S + i] = s;
  }
}

template <int D>
constexpr int dkv_smem() {
  return (4 * 32 * (D + 1) + 2 * BC * (BR + 1)) * 4 + (2 * BR + BC) * 4;
}

// One block per key tile: dV_j = sum_i Pdrop_ij dO_i, dK_j = scale sum_i dS_ij Q_i.
template <int D, bool EXACT>
__global__ void __launch_bounds__(NT) attn_bwd_dkv(AttnArgs a, const float *__restrict__ dctx,
                                                   const float *__restrict__ lse,
                                                   const float *__restrict__ dsum,
                                                   float *__restrict__ dqkv) {
  extern __shared__ __align__(16) float sm[];
  float *Ks = sm;                      // [BC][D+1]
  float *Vs = Ks + BC * (D + 1);       // [BC][D+1]
  float *Qs = Vs + BC * (D + 1);       // [BR][D+1]
  float *Gs = Qs + BR * (D + 1);       // [BR][D+1]  dO
  float *Pt = Gs + BR * (D + 1);       // [BC][BR+1]
  float *Dt = Pt + BC * (BR + 1);      // [BC][BR+1] dS
  float *Ls = Dt + BC * (BR + 1);      // [BR]
  float *Ds = Ls + BR;                 // [BR]
  int *Mk = (int *)(Ds + BR);          // [BC]

  const int n = blockIdx.z, h = blockIdx.y, j0 = blockIdx.x * BC, S = a.S;
  const int dh = EXACT ? D : a.dh;  // head dim; D is its upper bound
  const int H = a.heads * dh;
  const long long ld = 3LL * H;
  const float *base = a.qkv + (long long)n * S * ld;
  const float *gbase = dctx + (long long)n * S * H + h * dh;
  const int32_t *msk = a.mask + (long long)n * S;
  const long long lbase = ((long long)n * a.heads + h) * S;
  const int tid = threadIdx.x, c = tid >> 2, q4 = tid & 3;
  const bool none = all_keys_masked(msk, S);

  load_rows(dh, Ks, D + 1, base + H + h * dh, ld, j0, BC, S);
  load_rows(dh, Vs, D + 1, base + 2 * H + h * dh, ld, j0, BC, S);
  for (int t = tid; t < BC; t += NT) Mk[t] = (j0 + t < S) && (none || msk[j0 + t] != 0);

  float dk[D / 4], dv[D / 4];
#pragma unroll
  for (int e = 0; e < D / 4; e++) dk[e] = dv[e] = 0.f;

  for (int i0 = 0; i0 < S; i0 += BR) {
    __syncthreads();
    load_rows(dh, Qs, D + 1, base + h * dh, ld, i0, BR, S);
    load_rows(dh, Gs, D + 1, gbase, H, i0, BR, S);
    for (int t = tid; t < BR; t += NT) {
      bool ok = i0 + t < S;
      Ls[t] = ok ? lse[lbase + i0 + t] : 0.f;
      Ds[t] = ok ? dsum[lbase + i0 + t] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int ii = 0; ii < BR / 4; ii++) {
      int i = q4 + 4 * ii;
      float pd = 0.f, ds = 0.f;
      if (i0 + i < S && Mk[c]) {
        float s = none ? 0.f : a.scale * dot_s(dh, Qs + i * (D + 1), Ks + c * (D + 1));
        float p = expf(s - Ls[i]);
        float dp = dot_s(dh, Gs + i * (D + 1), Vs + c * (D + 1));
        pd = p;
        if (a.pdrop > 0.f) {
          uint64_t idx = (lbase + i0 + i) * (uint64_t)S + (uint64_t)(j0 + c);
          bool keep = rk_keep(a.seed, idx, a.pdrop);
          pd = keep ? p * a.inv_keep : 0.f;
          dp = keep ? dp * a.inv_keep : 0.f;
        }
        ds = p * (dp - Ds[i]);
      }
      Pt[c * (BR + 1) + i] = pd;
      Dt[c * (BR + 1) + i] = ds;
    }
    __syncwarp();
    for (int i = 0; i < BR; i++) {
      float pd = Pt[c * (BR + 1) + i], ds = Dt[c * (BR + 1) + i];
#pragma unroll
      for (int e = 0; e < D / 4; e++) {
        dv[e] = fmaf(pd, Gs[i * (D + 1) + q4 + 4 * e], dv[e]);
        dk[e] = fmaf(ds, Qs[i * (D + 1) + q4 + 4 * e], dk[e]);
      }
    }
  }

  const int j = j0 + c;
  if (j < S) {
    float *row = dqkv + ((long long)n * S + j) * ld + h * dh;
#pragma unroll
    for (int e = 0; e < D / 4; e++) {
      if (!EXACT && q4 + 4 * e >= dh) continue;
      row[H + q4 + 4 * e] = a.scale * dk[e];
      row[2 * H + q4 + 4 * e] = dv[e];
    }
  }
}

template <int D>
constexpr int dq_smem() {
  return (4 * 32 * (D + 1) + BR * (BC + 1)) * 4 + BC * 4;
}

// One block per query tile: dQ_i = scale sum_j dS_ij K_j.
template <int D, bool EXACT>
__global__ void __launch_bounds__(NT) attn_bwd_dq(AttnArgs a, const float *__restrict__ dctx,
                                                  const float *__restrict__ lse,
                                                  const float *__restrict__ dsum,
                                                  float *__restrict__ dqkv) {
  extern __shared__ __align__(16) float sm[];
  float *Qs = sm;                    // [BR][D+1]
  float *Gs = Qs + BR * (D + 1);     // [BR][D+1]
  float *Ks = Gs + BR * (D + 1);     // [BC][D+1]
  float *Vs = Ks + BC * (D + 1);     // [BC][D+1]
  float *Ss = Vs + BC * (D + 1);     // [BR][BC+1] dS
  int *Mk = (int *)(Ss + BR * (BC + 1));

  const int n = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * BR, S = a.S;
  const int dh = EXACT ? D : a.dh;  // head dim; D is its upper bound
  const int H = a.heads * dh;
  const long long ld = 3LL * H;
  const float *base = a.qkv + (long long)n * S * ld;
  const int32_t *msk = a.mask + (long long)n * S;
  const long long lbase = ((long long)n * a.heads + h) * S;
  const int tid = threadIdx.x, r = tid >> 2, q4 = tid & 3;
  const bool none = all_keys_masked(msk, S);
  const int i = i0 + r;

  load_rows(dh, Qs, D + 1, base + h * dh, ld, i0, BR, S);
  load_rows(dh, Gs, D + 1, dctx + (long long)n * S * H + h * dh, H, i0, BR, S);
  const float Li = i < S ? lse[lbase + i] : 0.f;
  const float Di = i < S ? dsum[lbase + i] : 0.f;

  float dq[D / 4];
#pragma unroll
  for (int e = 0; e < D / 4; e++) dq[e] = 0.f;

  for (int j0 = 0; j0 < S; j0 += BC) {
    __syncthreads();
    load_rows(dh, Ks, D + 1, base + H + h * dh, ld, j0, BC, S);
    load_rows(dh, Vs, D + 1, base + 2 * H + h * dh, ld, j0, BC, S);
    for (int t = tid; t < BC; t += NT) Mk[t] = (j0 + t < S) && (none || msk[j0 + t] != 0);
    __syncthreads();
#pragma unroll
    for (int jj = 0; jj < BC / 4; jj++) {
      int c = q4 + 4 * jj;
      float ds = 0.f;
      if (i < S && Mk[c]) {
        float s = none ? 0.f : a.scale * dot_s(dh, Qs + r * (D + 1), Ks + c * (D + 1));
        float p = expf(s - Li);
        float dp = dot_s(dh, Gs + r * (D + 1), Vs + c * (D + 1));
        if (a.pdrop > 0.f) {
          uint64_t idx = (lbase + i) * (uint64_t)S + (uint64_t)(j0 + c);
          dp = rk_keep(a.seed, idx, a.pdrop) ? dp * a.inv_keep : 0.f;
        }
        ds = p * (dp - Di);
      }
      Ss[r * (BC + 1) + c] = ds;
    }
    __syncwarp();
    for (int c = 0; c < BC; c++) {
      float ds = Ss[r * (BC + 1) + c];
#pragma unroll
      for (int e = 0; e < D / 4; e++) dq[e] = fmaf(ds, Ks[c * (D + 1) + q4 + 4 * e], dq[e]);
    }
  }
  if (i < S) {
    float *row = dqkv + ((long long)n * S + i) * ld + h * dh;
#pragma unroll
    for (int e = 0; e < D / 4; e++)
      if (EXACT || q4 + 4 * e < dh) row[q4 + 4 * e] = a.scale * dq[e];
  }
}

template <typename K>
int set_smem(K kernel, int bytes, bool *done) {
  if (*done) return 0;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (e != cudaSuccess) return (int)e;
  *done = true;
  return 0;
}

AttnArgs make_args(const rk_attn &a, const float *qkv, const int32_t *mask) {
  AttnArgs r;
  r.qkv = qkv;
  r.mask = mask;
  r.S = a.s;
  r.heads = a.heads;
  r.dh = a.head_dim;
  r.scale = (float)(1.0 / sqrt((double)a.head_dim));
  r.pdrop = a.dropout > 0.f ? a.dropout : 0.f;
  r.inv_keep = r.pdrop > 0.f ? 1.f / (1.f - r.pdrop) : 1.f;
  r.seed = a.seed;
  return r;
}

template <int D, bool EXACT>
int fwd(cudaStream_t st, const rk_attn &a, const float *qkv, const int32_t *mask, float *ctx,
        float *lse) {
  static bool done = false;
  int rc = set_smem(attn_fwd<D, EXACT>, fwd_smem<D>(), &done);
  if (rc) return rc;
  dim3 grid((a.s + BR - 1) / BR, a.heads, a.n);
  attn_fwd<D, EXACT><<<grid, NT, fwd_smem<D>(), st>>>(make_args(a, qkv, mask), ctx, lse);
  return rk_launched();
}

template <int D, bool EXACT>
int bwd(cudaStream_t st, const rk_attn &a, const float *qkv, const int32_t *mask,
        const float *dctx, const float *lse, const float *dsum, float *dqkv) {
  static bool d1 = false, d2 = false;
  int rc = set_smem(attn_bwd_dkv<D, EXACT>, dkv_smem<D>(), &d1);
  if (rc) return rc;
  if ((rc = set_smem(attn_bwd_dq<D, EXACT>, dq_smem<D>(), &d2))) return rc;
  AttnArgs args = make_args(a, qkv, mask);
  dim3 gk((a.s + BC - 1) / BC, a.heads, a.n);
  attn_bwd_dkv<D, EXACT><<<gk, NT, dkv_smem<D>(), st>>>(args, dctx, lse, dsum, dqkv);
  if ((rc = rk_launched())) return rc;
  dim3 gq((a.s + BR - 1) / BR, a.heads, a.n);
  attn_bwd_dq<D, EXACT><<<gq, NT, dq_smem<D>(), st>>>(args, dctx, lse, dsum, dqkv);
  return rk_launched();
}

bool valid(const rk_attn &a) {
  return a.n > 0 && a.s > 0 && a.heads > 0 && a.n <= 65535 && a.heads <= 65535 && a.head_dim >= 1 &&
         a.head_dim <= 128 && a.dropout < 1.f;
}

}  // namespace

extern "C" long long rk_attention_save_len(rk_attn a) { return (long long)a.n * a.heads * a.s; }

extern "C" int rk_attention_forward(void *stream, rk_attn a, const float *qkv,
                                    const int32_t *mask, float *ctx, float *lse) {
  if (!valid(a)) return RK_INVALID;
  cudaStream_t st = rk_stream(stream);
  switch (a.head_dim) {  // exact kernels for the usual sizes, bounded ones for the rest
    case 32: return fwd<32, true>(st, a, qkv, mask, ctx, lse);
    case 64: return fwd<64, true>(st, a, qkv, mask, ctx, lse);
    case 128: return fwd<128, true>(st, a, qkv, mask, ctx, lse);
  }
  if (a.head_dim < 32) return fwd<32, false>(st, a, qkv, mask, ctx, lse);
  if (a.head_dim < 64) return fwd<64, false>(st, a, qkv, mask, ctx, lse);
  return fwd<128, false>(st, a, qkv, mask, ctx, lse);
}

extern "C" int rk_attention_backward(void *stream, rk_attn a, const float *qkv,
                                     const int32_t *mask, const float *ctx, const float *dctx,
                                     const float *lse, float *dqkv, float *scratch) {
  if (!valid(a)) return RK_INVALID;
  cudaStream_t st = rk_stream(stream);
  long long warps = (long long)a.n * a.s * a.heads;
  attn_bwd_dsum<<<rk_blocks(warps * 32, 256), 256, 0, st>>>(ctx, dctx, scratch, a.n, a.s, a.heads,
                                                            a.head_dim);
  int rc = rk_launched();
  if (rc) return rc;
  switch (a.head_dim) {
    case 32: return bwd<32, true>(st, a, qkv, mask, dctx, lse, scratch, dqkv);
    case 64: return bwd<64, true>(st, a, qkv, mask, dctx, lse, scratch, dqkv);
    case 128: return bwd<128, true>(st, a, qkv, mask, dctx, lse, scratch, dqkv);
  }
  if (a.head_dim < 32) return bwd<32, false>(st, a, qkv, mask, dctx, lse, scratch, dqkv);
  if (a.head_dim < 64) return bwd<64, false>(st, a, qkv, mask, dctx, lse, scratch, dqkv);
  return bwd<128, false>(st, a, qkv, mask, dctx, lse, scratch, dqkv);
}
