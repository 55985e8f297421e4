// elementwise.cu: fill, copy, add, axpy, scale, GELU (erf), tanh, dropout.
// Grid-stride loops; memory-bound, one read and one write per operand.
#include <math.h>

#include "common.cuh"

namespace {

#define RK_LOOP(i, n)                                                         \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
       i += (long long)gridDim.x * blockDim.x)

__global__ void fill_kernel(float *d, float v, long long n) { RK_LOOP(i, n) d[i] = v; }

__global__ void add_kernel(float *d, const float *a, const float *b, long long n) {
  RK_LOOP(i, n) d[i] = a[i] + b[i];
}

__global__ void axpy_kernel(float alpha, const float *__restrict__ x, float *__restrict__ y,
                            long long n) {
  RK_LOOP(i, n) y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i]));
}

__global__ void scale_kernel(float *x, float alpha, long long n) { RK_LOOP(i, n) x[i] *= alpha; }

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

__global__ void gelu_kernel(float *o, const float *x, long long n) {
  RK_LOOP(i, n) {
    float v = x[i];
    o[i] = 0.5f * v * (1.f + erff(v * kInvSqrt2));
  }
}

__global__ void gelu_bwd_kernel(float *dx, const float *g, const float *x, long long n) {
  RK_LOOP(i, n) {
    float v = x[i];
    float cdf = 0.5f * (1.f + erff(v * kInvSqrt2));
    float pdf = kInvSqrt2Pi * expf(-0.5f * v * v);
    dx[i] = g[i] * (cdf + v * pdf);
  }
}

__global__ void tanh_kernel(float *o, const float *x, long long n) { RK_LOOP(i, n) o[i] = tanhf(x[i]); }

__global__ void tanh_bwd_kernel(float *dx, const float *g, const float *y, long long n) {
  RK_LOOP(i, n) {
    float v = y[i];
    dx[i] = g[i] * (1.f - v * v);
  }
}

__global__ void dropout_kernel(float *o, const float *x, float p, float scale, uint64_t seed,
                               long long n) {
  RK_LOOP(i, n) o[i] = rk_keep(seed, (uint64_t)i, p) ? x[i] * scale : 0.f;
}

__global__ void copy_kernel(float *o, const float *x, long long n) { RK_LOOP(i, n) o[i] = x[i]; }

}  // namespace

#define RK_GUARD(n)          \
  if ((n) < 0) return RK_INVALID; \
  if ((n) == 0) return 0;

#define RK_LAUNCH(kernel, n, ...)                                                       \
  kernel<<<rk_blocks((n), 256), 256, 0, rk_stream(stream)>>>(__VA_ARGS__);            \
  return rk_launched();

extern "C" int rk_fill(void *stream, float *dst, float v, long long n) {
  RK_GUARD(n);
  RK_LAUNCH(fill_kernel, n, dst, v, n);
}

extern "C" int rk_copy2d(void *stream, float *dst, int ldd, const float *src, int lds, int rows,
                         int cols) {
  if (rows < 0 || cols < 0 || ldd < cols || lds < cols) return RK_INVALID;
  if (rows == 0 || cols == 0) return 0;
  return (int)cudaMemcpy2DAsync(dst, (size_t)ldd * 4, src, (size_t)lds * 4, (size_t)cols * 4,
                                (size_t)rows, cudaMemcpyDeviceToDevice, rk_stream(stream));
}

extern "C" int rk_add(void *stream, float *dst, const float *a, const float *b, long long n) {
  RK_GUARD(n);
  RK_LAUNCH(add_kernel, n, dst, a, b, n);
}

extern "C" int rk_axpy(void *stream, float alpha, const float *x, float *y, long long n) {
  RK_GUARD(n);
  RK_LAUNCH(axpy_kernel, n, alpha, x, y, n);
}

extern "C" int rk_scale(void *stream, float *x, float alpha, long long n) {
  RK_GUARD(n);
  RK_LAUNCH(scale_kernel, n, x, alpha, n);
}

extern "C" int rk_gelu_forward(void *stream, float *out, const float *x, long long n) {
  RK_GUARD(n);
  RK_LAUNCH(gelu_kernel, n, out, x, n);
}

extern "C" int rk_gelu_backward(void *stream, float *dx, const float *dout, const float *x,
                                long long n) {
  RK_GUARD(n);
  RK_LAUNCH(gelu_bwd_kernel, n, dx, dout, x, n);
}

extern "C" int rk_tanh_forward(void *stream, float *out, const float *x, long long n) {
  RK_GUARD(n);
  RK_LAUNCH(tanh_kernel, n, out, x, n);
}

extern "C" int rk_tanh_backward(void *stream, float *dx, const float *dout, const float *y,
                                long long n) {
  RK_GUARD(n);
  RK_LAUNCH(tanh_bwd_kernel, n, dx, dout, y, n);
}

extern "C" int rk_dropout(void *stream, float *out, const float *x, float p, uint64_t seed,
                          long long n) {
  RK_GUARD(n);
  if (p >= 1.f) return RK_INVALID;
  if (p <= 0.f) {
    if (out == x) return 0;
    RK_LAUNCH(copy_kernel, n, out, x, n);
  }
  RK_LAUNCH(dropout_kernel, n, out, x, p, 1.f / (1.f - p), seed, n);
}
