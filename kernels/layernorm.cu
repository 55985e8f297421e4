// layernorm.cu: LayerNorm forward/backward, bias add and the deterministic
// column sums behind every parameter gradient that sums over rows (dgamma,
// dbeta, bias grads).
//
// Rows are normalised one warp per row with float64 sums (the CPU backend
// sums in float64 too). Column sums run in two passes with fixed shapes so
// the result never depends on scheduling: pass 1 sums chunks of 256 rows
// into float64 partials, pass 2 adds the partials in order.
#include "common.cuh"

namespace {

constexpr int CHUNK = 256;  // rows per column-sum partial

__global__ void ln_fwd(float *__restrict__ out, float *__restrict__ mean, float *__restrict__ rstd,
                       const float *__restrict__ x, const float *__restrict__ gamma,
                       const float *__restrict__ beta, int rows, int dim, float eps) {
  const long long row = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const float *xr = x + row * dim;
  double s = 0.0;
  for (int c = lane; c < dim; c += 32) s += (double)xr[c];
  s = rk_warp_sum_d(s);
  const double m = s / dim;
  double ss = 0.0;
  for (int c = lane; c < dim; c += 32) {
    double d = (double)xr[c] - m;
    ss += d * d;
  }
  ss = rk_warp_sum_d(ss);
  const double inv = 1.0 / sqrt(ss / dim + (double)eps);
  float *o = out + row * dim;
  for (int c = lane; c < dim; c += 32)
    o[c] = (float)(((double)xr[c] - m) * inv) * gamma[c] + beta[c];
  if (lane == 0) {
    mean[row] = (float)m;
    rstd[row] = (float)inv;
  }
}

__global__ void ln_bwd_dx(float *dx, const float *dout, const float *__restrict__ x,
                          const float *__restrict__ mean, const float *__restrict__ rstd,
                          const float *__restrict__ gamma, int rows, int dim) {
  const long long row = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const float *xr = x + row * dim;
  const float *dr = dout + row * dim;
  const float m = mean[row], inv = rstd[row];
  double sdx = 0.0, sdxx = 0.0;
  for (int c = lane; c < dim; c += 32) {
    double dxhat = (double)(dr[c] * gamma[c]);
    double xhat = (double)((xr[c] - m) * inv);
    sdx += dxhat;
    sdxx += dxhat * xhat;
  }
  sdx = rk_warp_sum_d(sdx) / dim;
  sdxx = rk_warp_sum_d(sdxx) / dim;
  float *o = dx + row * dim;  // may alias dout: each element is read, then written, by one lane
  for (int c = lane; c < dim; c += 32) {
    double dxhat = (double)(dr[c] * gamma[c]);
    double xhat = (double)((xr[c] - m) * inv);
    o[c] = (float)((double)inv * (dxhat - sdx - xhat * sdxx));
  }
}

// Pass 1 of the column sums: block (32 columns x 8 row lanes) over one chunk
// of CHUNK rows. With x == NULL it sums dy (bias grads); with x it sums
// dy*xhat into part0 and dy into part1 (LayerNorm's dgamma, dbeta).
__global__ void colsum_partial(double *__restrict__ part0, double *__restrict__ part1,
                               const float *__restrict__ dy, const float *__restrict__ x,
                               const float *__restrict__ mean, const float *__restrict__ rstd,
                               int rows, int cols) {
  __shared__ double s0[8][33], s1[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  const int chunk = blockIdx.y;
  const int r0 = chunk * CHUNK, r1 = min(rows, r0 + CHUNK);
  float a0 = 0.f, a1 = 0.f;
  double d0 = 0.0, d1 = 0.0;
  int cnt = 0;
  if (c < cols) {
    for (int r = r0 + threadIdx.y; r < r1; r += 8) {
      float g = dy[(long long)r * cols + c];
      if (x) {
        a0 += g * (x[(long long)r * cols + c] - mean[r]) * rstd[r];
        a1 += g;
      } else {
        a0 += g;
      }
      if (++cnt == 8) {  // fold into float64 every 8 rows
        d0 += a0;
        d1 += a1;
        a0 = a1 = 0.f;
        cnt = 0;
      }
    }
  }
  s0[threadIdx.y][threadIdx.x] = d0 + a0;
  s1[threadIdx.y][threadIdx.x] = d1 + a1;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    double t0 = 0.0, t1 = 0.0;
    for (int k = 0; k < 8; k++) {
      t0 += s0[k][threadIdx.x];
      t1 += s1[k][threadIdx.x];
    }
    part0[(long long)chunk * cols + c] = t0;
    if (part1) part1[(long long)chunk * cols + c] = t1;
  }
}

__global__ void colsum_final(float *dst0, float *dst1, const double *__restrict__ part0,
                             const double *__restrict__ part1, int chunks, int cols) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  double t0 = 0.0, t1 = 0.0;
  for (int k = 0; k < chunks; k++) {
    t0 += part0[(long long)k * cols + c];
    if (part1) t1 += part1[(long long)k * cols + c];
  }
  if (dst0) dst0[c] += (float)t0;
  if (dst1) dst1[c] += (float)t1;
}

__global__ void add_bias_kernel(float *y, const float *__restrict__ bias, long long total,
                                int cols) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x)
    y[e] += bias[e % cols];
}

int chunks_of(int rows) { return (rows + CHUNK - 1) / CHUNK; }

}  // namespace

extern "C" long long rk_colsum_scratch_len(int rows, int dim) {
  // two float64 partial planes = four float32 per (chunk, column)
  return 4LL * chunks_of(rows > 0 ? rows : 1) * (dim > 0 ? dim : 1);
}

extern "C" int rk_layernorm_forward(void *stream, float *out, float *mean, float *rstd,
                                    const float *x, const float *gamma, const float *beta,
                                    int rows, int dim, float eps) {
  if (rows < 0 || dim <= 0) return RK_INVALID;
  if (rows == 0) return 0;
  ln_fwd<<<rk_blocks((long long)rows * 32, 256), 256, 0, rk_stream(stream)>>>(
      out, mean, rstd, x, gamma, beta, rows, dim, eps);
  return rk_launched();
}

extern "C" int rk_layernorm_backward(void *stream, float *dx, float *dgamma, float *dbeta,
                                     const float *dout, const float *x, const float *mean,
                                     const float *rstd, const float *gamma, int rows, int dim,
                                     float *scratch) {
  if (rows < 0 || dim <= 0) return RK_INVALID;
  if (rows == 0) return 0;
  cudaStream_t st = rk_stream(stream);
  if (dgamma || dbeta) {
    if (!scratch) return RK_INVALID;
    const int chunks = chunks_of(rows);
    double *p0 = (double *)scratch, *p1 = p0 + (long long)chunks * dim;
    dim3 grid((dim + 31) / 32, chunks);
    colsum_partial<<<grid, dim3(32, 8), 0, st>>>(p0, p1, dout, x, mean, rstd, rows, dim);
    int rc = rk_launched();
    if (rc) return rc;
    colsum_final<<<(dim + 255) / 256, 256, 0, st>>>(dgamma, dbeta, p0, p1, chunks, dim);
    if ((rc = rk_launched())) return rc;
  }
  ln_bwd_dx<<<rk_blocks((long long)rows * 32, 256), 256, 0, st>>>(dx, dout, x, mean, rstd, gamma,
                                                                  rows, dim);
  return rk_launched();
}

extern "C" int rk_add_bias(void *stream, float *y, const float *bias, int rows, int cols) {
  if (rows < 0 || cols <= 0) return RK_INVALID;
  long long total = (long long)rows * cols;
  if (total == 0) return 0;
  add_bias_kernel<<<rk_blocks(total, 256), 256, 0, rk_stream(stream)>>>(y, bias, total, cols);
  return rk_launched();
}

extern "C" int rk_bias_grad(void *stream, float *db, const float *dy, int rows, int cols,
                            float *scratch) {
  if (rows < 0 || cols <= 0 || !scratch) return RK_INVALID;
  if (rows == 0) return 0;
  cudaStream_t st = rk_stream(stream);
  const int chunks = chunks_of(rows);
  double *p0 = (double *)scratch;
  dim3 grid((cols + 31) / 32, chunks);
  colsum_partial<<<grid, dim3(32, 8), 0, st>>>(p0, nullptr, dy, nullptr, nullptr, nullptr, rows,
                                              cols);
  int rc = rk_launched();
  if (rc) return rc;
  colsum_final<<<(cols + 255) / 256, 256, 0, st>>>(db, nullptr, p0, nullptr, chunks, cols);
  return rk_launched();
}
