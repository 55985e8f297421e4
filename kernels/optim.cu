// optim.cu: fused AdamW (fp32 master weights, optional bf16 working copy)
// and the float64 sum of squares behind the global gradient norm.
#include <math.h>

#include "common.cuh"

namespace {

constexpr int SUMSQ_BLOCKS = 1024;

// torch.optim.AdamW's arithmetic in backend/cpu's order; the _rn
// intrinsics keep nvcc from contracting into FMAs the CPU does not do.
__global__ void adamw_kernel(float *__restrict__ p, const float *__restrict__ g,
                             float *__restrict__ m, float *__restrict__ v,
                             uint16_t *__restrict__ pb, rk_adamw s, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    float gi = g[i], x = p[i];
    if (s.apply_decay) x = __fmul_rn(x, s.decay);
    float mi = __fadd_rn(__fmul_rn(m[i], s.beta1), __fmul_rn(gi, s.one_minus_beta1));
    float vi = __fadd_rn(__fmul_rn(v[i], s.beta2), __fmul_rn(__fmul_rn(gi, gi), s.one_minus_beta2));
    m[i] = mi;
    v[i] = vi;
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
    x = __fsub_rn(x, __fmul_rn(s.step_size, __fdiv_rn(mi, denom)));
    p[i] = x;
    if (pb) pb[i] = rk_f2bf(x);
  }
}

__global__ void sumsq_partial(const float *__restrict__ x, long long n, double *partials) {
  __shared__ double ws[32];
  double s = 0.0;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    double v = x[i];
    s += v * v;
  }
  s = rk_warp_sum_d(s);
  if ((threadIdx.x & 31) == 0) ws[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x < 32) {
    double t = threadIdx.x < (blockDim.x >> 5) ? ws[threadIdx.x] : 0.0;
    t = rk_warp_sum_d(t);
    if (threadIdx.x == 0) partials[blockIdx.x] = t;
  }
}

__global__ void sumsq_final(const double *partials, int count, double *out) {
  double s = 0.0;
  for (int i = threadIdx.x; i < count; i += 32) s += partials[i];
  s = rk_warp_sum_d(s);
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

extern "C" int rk_adamw_step(void *stream, float *p, const float *g, float *m, float *v,
                             rk_bf16 *p_bf16, rk_adamw s, long long n) {
  if (n < 0) return RK_INVALID;
  if (n == 0) return 0;
  adamw_kernel<<<rk_blocks(n, 256), 256, 0, rk_stream(stream)>>>(p, g, m, v, p_bf16, s, n);
  return rk_launched();
}

extern "C" int rk_sumsq_partials(void) { return SUMSQ_BLOCKS; }

extern "C" int rk_sum_squares(void *stream, const float *x, long long n, double *partials,
                              double *out) {
  if (n < 0) return RK_INVALID;
  cudaStream_t st = rk_stream(stream);
  int blocks = (int)rk_blocks(n, 256);
  if (blocks > SUMSQ_BLOCKS) blocks = SUMSQ_BLOCKS;
  sumsq_partial<<<blocks, 256, 0, st>>>(x, n, partials);
  int rc = rk_launched();
  if (rc) return rc;
  sumsq_final<<<1, 32, 0, st>>>(partials, blocks, out);
  return rk_launched();
}
