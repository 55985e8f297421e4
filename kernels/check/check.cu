// rerank_kernels_check: tests every kernel of librerank_kernels.a against a
// plain C++ reference (float64), then runs the benchmark. Built by CMake so
// that a GPU machine without Go can still verify and time the kernels:
//
//   build/rerank_kernels_check              # tests, then the full benchmark
//   build/rerank_kernels_check --no-bench   # tests only
//   build/rerank_kernels_check --quick      # tests, then a short benchmark
//   build/rerank_kernels_check --bench-only [--filter NAME] [--json FILE]
//
// Like the Go tests (cuda/backend_test.go): fresh random inputs per case,
// outputs poisoned with NaN before each call so every element must be
// written, norm-wise relative error under 1e-5 for fp32 kernels (bf16 GEMM:
// under 1e-4 against a reference on the same bf16-rounded inputs). Ends
// with "N passed, M failed" and exits non-zero on any failure.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../common.cuh"
#include "../rerank_kernels.h"

namespace {

int g_pass = 0, g_fail = 0;
std::mt19937_64 g_rng(20261127);

void die(const char *what, int rc) {
  fprintf(stderr, "FATAL %s: %s\n", what, cudaGetErrorString((cudaError_t)rc));
  exit(2);
}
#define CK(x)                   \
  do {                          \
    int rc_ = (int)(x);         \
    if (rc_) die(#x, rc_);      \
  } while (0)

template <typename T>
struct Dev {
  T *p = nullptr;
  size_t n = 0;
  explicit Dev(size_t n_) : n(n_) { CK(cudaMalloc(&p, (n ? n : 1) * sizeof(T))); }
  Dev(const std::vector<T> &h) : Dev(h.size()) { up(h); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev &) = delete;
  void up(const std::vector<T> &h) { CK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> down() const {
    CK(cudaDeviceSynchronize());
    std::vector<T> h(n);
    CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  void poison() { CK(cudaMemset(p, 0xff, n * sizeof(T))); }  // all-ones bits: NaN
};

std::vector<float> randn(size_t n, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto &x : v) x = d(g_rng);
  return v;
}

void check(const std::string &name, const std::vector<float> &got, const std::vector<double> &want,
           double tol) {
  double num = 0, den = 0;
  size_t nan_at = (size_t)-1;
  for (size_t i = 0; i < want.size(); i++) {
    if (!std::isfinite(got[i])) {
      nan_at = i;
      break;
    }
    double d = got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  double rel = den > 0 ? sqrt(num / den) : sqrt(num);
  bool ok = nan_at == (size_t)-1 && rel <= tol;
  if (ok) g_pass++; else g_fail++;
  if (nan_at != (size_t)-1)
    printf("FAIL %-58s element %zu of %zu not finite (unwritten?)\n", name.c_str(), nan_at, want.size());
  else
    printf("%s %-58s rel err %.2e (tol %.0e)\n", ok ? "ok  " : "FAIL", name.c_str(), rel, tol);
}

std::vector<double> widen(const std::vector<float> &v) { return std::vector<double>(v.begin(), v.end()); }

// backend.Uniform(seed, i) as float32 bits, printed by the Go code: the
// device and host RNG must match it bit for bit.
struct UniformCase {
  uint64_t seed, i;
  uint32_t bits;
};
const UniformCase kUniform[] = {
    {0x0000000000000000ull, 0ull, 0x3f6220a8u}, {0x0000000000000000ull, 1ull, 0x3edcf13cu},
    {0x0000000000000000ull, 12345ull, 0x3f2e3b8au}, {0x0000000000000000ull, 1099511627783ull, 0x3e85acd2u},
    {0x0000000000000001ull, 0ull, 0x3f110a2du}, {0x0000000000000001ull, 1ull, 0x3f3eeb8du},
    {0x0000000000000001ull, 12345ull, 0x3e8186c8u}, {0x0000000000000001ull, 1099511627783ull, 0x3f6d0825u},
    {0x000000000000feedull, 0ull, 0x3e4d979cu}, {0x000000000000feedull, 1ull, 0x3e31de90u},
    {0x000000000000feedull, 12345ull, 0x3f25a439u}, {0x000000000000feedull, 1099511627783ull, 0x3f242625u},
    {0x9e3779b97f4a7c15ull, 0ull, 0x3edcf13cu}, {0x9e3779b97f4a7c15ull, 1ull, 0x3cd88ba0u},
    {0x9e3779b97f4a7c15ull, 12345ull, 0x3dd6c848u}, {0x9e3779b97f4a7c15ull, 1099511627783ull, 0x3ede7df0u},
    {0x14c35b611e029bedull, 0ull, 0x3ea0f240u}, {0x14c35b611e029bedull, 1ull, 0x3e7176f8u},
    {0x14c35b611e029bedull, 12345ull, 0x3f6500b3u}, {0x14c35b611e029bedull, 1099511627783ull, 0x3f772030u},
};
constexpr int kUniformN = sizeof(kUniform) / sizeof(kUniform[0]);

__global__ void uniform_kernel(const UniformCase *c, uint32_t *out, int n) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t < n) out[t] = __float_as_uint(rk_uniform(c[t].seed, c[t].i));
}

// host_uniform_ok checks the host copy of the RNG (used by the references).
bool host_uniform_ok() {
  for (const auto &c : kUniform) {
    float u = rk_uniform(c.seed, c.i);
    uint32_t b;
    memcpy(&b, &u, 4);
    if (b != c.bits) return false;
  }
  return true;
}

void test_uniform() {
  if (host_uniform_ok()) g_pass++; else g_fail++;
  printf("%s %-58s\n", host_uniform_ok() ? "ok  " : "FAIL", "rng: host rk_uniform == backend.Uniform bits");
  UniformCase *dc;
  uint32_t *dout;
  CK(cudaMalloc(&dc, sizeof kUniform));
  CK(cudaMalloc(&dout, kUniformN * 4));
  CK(cudaMemcpy(dc, kUniform, sizeof kUniform, cudaMemcpyHostToDevice));
  uniform_kernel<<<1, 32>>>(dc, dout, kUniformN);
  CK(cudaGetLastError());
  uint32_t got[kUniformN];
  CK(cudaMemcpy(got, dout, sizeof got, cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int i = 0; i < kUniformN; i++) bad += got[i] != kUniform[i].bits;
  if (bad) g_fail++; else g_pass++;
  printf("%s %-58s %d of %d differ\n", bad ? "FAIL" : "ok  ", "rng: device rk_uniform == backend.Uniform bits", bad, kUniformN);
  cudaFree(dc);
  cudaFree(dout);
}

// ---- GEMM --------------------------------------------------------------------------
std::vector<double> ref_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const std::vector<float> &A,
                             int lda, const std::vector<float> &B, int ldb, double beta,
                             const std::vector<float> &C0, int ldc) {
  std::vector<double> C(C0.begin(), C0.end());
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int p = 0; p < k; p++) {
        double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
        double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
        s += a * b;
      }
      double c = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
      C[(size_t)i * ldc + j] = alpha * s + c;
    }
  return C;
}

std::vector<float> round_bf16(std::vector<float> v) {
  for (auto &x : v) x = rk_bf2f(rk_f2bf(x));
  return v;
}

void test_gemm() {
#ifdef RK_EMU
  const int shapes[][3] = {{37, 53, 29}, {128, 192, 96}, {300, 264, 72}};  // emulation: keep it small
#else
  const int shapes[][3] = {{37, 53, 29}, {128, 192, 96}, {300, 264, 72}, {256, 384, 512}};
#endif
  for (int bf = 0; bf < 2; bf++)
    for (int t = 0; t < 4; t++)
      for (auto &sh : shapes)
        for (float beta : {0.f, 0.75f}) {
          bool ta = t & 1, tb = t & 2;
          int m = sh[0], n = sh[1], k = sh[2];
          int lda = ta ? m : k, ldb = tb ? k : n;
          auto A = randn((size_t)m * k), B = randn((size_t)k * n), C0 = randn((size_t)m * n);
          if (bf) {
            A = round_bf16(A);
            B = round_bf16(B);
          }
          auto want = ref_gemm(ta, tb, m, n, k, 0.5, A, lda, B, ldb, beta, C0, n);
          Dev<float> dc(C0);
          if (beta == 0) dc.poison();
          char name[128];
          snprintf(name, sizeof name, "gemm_%s ta=%d tb=%d %dx%dx%d beta=%g", bf ? "bf16" : "f32", ta, tb, m, n,
                   k, beta);
          if (!bf) {
            Dev<float> da(A), db(B);
            CK(rk_gemm_f32(nullptr, ta, tb, m, n, k, 0.5f, da.p, lda, 0, db.p, ldb, 0, beta, dc.p, n, 0, 1));
          } else {
            std::vector<uint16_t> a16(A.size()), b16(B.size());
            for (size_t i = 0; i < A.size(); i++) a16[i] = rk_f2bf(A[i]);
            for (size_t i = 0; i < B.size(); i++) b16[i] = rk_f2bf(B[i]);
            Dev<uint16_t> da(a16), db(b16);
            CK(rk_gemm_bf16(nullptr, ta, tb, m, n, k, 0.5f, da.p, lda, 0, db.p, ldb, 0, beta, dc.p, n, 0, 1));
            if (beta == 0) {  // bf16 output too
              Dev<uint16_t> d16((size_t)m * n);
              d16.poison();
              CK(rk_gemm_bf16_out(nullptr, ta, tb, m, n, k, 0.5f, da.p, lda, 0, db.p, ldb, 0, d16.p, n, 0, 1));
              auto h16 = d16.down();
              std::vector<float> hf(h16.size());
              for (size_t i = 0; i < hf.size(); i++) hf[i] = rk_bf2f(h16[i]);
              check(std::string(name) + " out=bf16", hf, want, 1e-2);
            }
          }
          check(name, dc.down(), want, bf ? 1e-4 : 1e-5);
        }
  // strided batch: 3 matrices with gaps.
  for (int bf = 0; bf < 2; bf++) {
    const int batch = 3, m = 40, n = 48, k = 64, sA = m * k + 8, sB = k * n + 16, sC = m * n + 24;
    auto A = randn((size_t)batch * sA), B = randn((size_t)batch * sB);
    if (bf) {
      A = round_bf16(A);
      B = round_bf16(B);
    }
    std::vector<float> C0((size_t)batch * sC, 0.f);
    std::vector<double> want(C0.size(), 0.0);
    for (int i = 0; i < batch; i++) {
      std::vector<float> a(A.begin() + i * sA, A.begin() + i * sA + m * k), b(B.begin() + i * sB, B.begin() + i * sB + k * n),
          c((size_t)m * n, 0.f);
      auto r = ref_gemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n);
      for (int j = 0; j < m * n; j++) want[i * sC + j] = r[j];
    }
    Dev<float> dc(C0);
    if (!bf) {
      Dev<float> da(A), db(B);
      CK(rk_gemm_f32(nullptr, 0, 1, m, n, k, 1.f, da.p, k, sA, db.p, k, sB, 0.f, dc.p, n, sC, batch));
    } else {
      std::vector<uint16_t> a16(A.size()), b16(B.size());
      for (size_t i = 0; i < A.size(); i++) a16[i] = rk_f2bf(A[i]);
      for (size_t i = 0; i < B.size(); i++) b16[i] = rk_f2bf(B[i]);
      Dev<uint16_t> da(a16), db(b16);
      CK(rk_gemm_bf16(nullptr, 0, 1, m, n, k, 1.f, da.p, k, sA, db.p, k, sB, 0.f, dc.p, n, sC, batch));
    }
    check(bf ? "gemm_bf16 strided batch 3" : "gemm_f32 strided batch 3", dc.down(), want, bf ? 1e-4 : 1e-5);
  }
}

// ---- attention ------------------------------------------------------------------------
struct AttnRef {
  std::vector<double> ctx, dqkv;
};

AttnRef ref_attention(const rk_attn &a, const std::vector<float> &qkv, const std::vector<int32_t> &mask,
                      const std::vector<float> &dctx) {
  const int N = a.n, S = a.s, Hh = a.heads, D = a.head_dim, H = Hh * D, ld = 3 * H;
  const double scale = 1.0 / sqrt((double)D), pk = a.dropout;
  AttnRef r;
  r.ctx.assign((size_t)N * S * H, 0);
  r.dqkv.assign((size_t)N * S * ld, 0);
  std::vector<double> P((size_t)S * S), Pd((size_t)S * S), dP((size_t)S * S);
  for (int n = 0; n < N; n++) {
    bool any = false;
    for (int j = 0; j < S; j++) any |= mask[n * S + j] != 0;
    for (int h = 0; h < Hh; h++) {
      auto q = [&](int i, int d) { return (double)qkv[((size_t)n * S + i) * ld + h * D + d]; };
      auto k = [&](int i, int d) { return (double)qkv[((size_t)n * S + i) * ld + H + h * D + d]; };
      auto v = [&](int i, int d) { return (double)qkv[((size_t)n * S + i) * ld + 2 * H + h * D + d]; };
      const uint64_t off = ((uint64_t)n * Hh + h) * S * S;
      for (int i = 0; i < S; i++) {
        double mx = -INFINITY;
        std::vector<double> s(S);
        for (int j = 0; j < S; j++) {
          bool valid = !any || mask[n * S + j];
          if (!valid) { s[j] = -INFINITY; continue; }
          double t = 0;
          if (any)
            for (int d = 0; d < D; d++) t += q(i, d) * k(j, d);
          s[j] = t * scale * (any ? 1 : 0);
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int j = 0; j < S; j++) sum += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
        for (int j = 0; j < S; j++) {
          double p = s[j] == -INFINITY ? 0 : exp(s[j] - mx) / sum;
          P[(size_t)i * S + j] = p;
          bool keep = pk <= 0 || rk_keep(a.seed, off + (uint64_t)i * S + j, a.dropout);
          Pd[(size_t)i * S + j] = keep ? p / (1 - pk) : 0;
        }
        for (int d = 0; d < D; d++) {
          double o = 0;
          for (int j = 0; j < S; j++) o += Pd[(size_t)i * S + j] * v(j, d);
          r.ctx[((size_t)n * S + i) * H + h * D + d] = o;
        }
      }
      auto g = [&](int i, int d) { return (double)dctx[((size_t)n * S + i) * H + h * D + d]; };
      for (int i = 0; i < S; i++) {
        double dot = 0;
        for (int j = 0; j < S; j++) {
          double t = 0;
          for (int d = 0; d < D; d++) t += g(i, d) * v(j, d);
          bool keep = pk <= 0 || rk_keep(a.seed, off + (uint64_t)i * S + j, a.dropout);
          t = keep ? t / (1 - pk) : 0;
          dP[(size_t)i * S + j] = t;
          dot += t * P[(size_t)i * S + j];
        }
        for (int j = 0; j < S; j++) dP[(size_t)i * S + j] = P[(size_t)i * S + j] * (dP[(size_t)i * S + j] - dot);
      }
      for (int i = 0; i < S; i++)
        for (int d = 0; d < D; d++) {
          double dq = 0, dk = 0, dv = 0;
          for (int j = 0; j < S; j++) {
            dq += dP[(size_t)i * S + j] * k(j, d);
            dk += dP[(size_t)j * S + i] * q(j, d);
            dv += Pd[(size_t)j * S + i] * g(j, d);
          }
          size_t row = ((size_t)n * S + i) * ld + h * D + d;
          r.dqkv[row] = scale * dq;
          r.dqkv[row + H] = scale * dk;
          r.dqkv[row + 2 * H] = dv;
        }
    }
  }
  return r;
}

void test_attention() {
  struct C { int n, s, h, d; float p; int maskkind; } cases[] = {
      {3, 77, 2, 32, 0, 1}, {3, 77, 2, 64, 0, 1}, {3, 77, 2, 128, 0, 1}, {2, 64, 4, 64, 0, 0},
      {3, 45, 2, 32, 0, 2}, {2, 96, 2, 64, 0.1f, 1}, {2, 33, 1, 128, 0.3f, 2},
      // head dims outside 32/64/128 (tiny test models, odd sizes): fp32 kernels only
      {3, 16, 4, 8, 0, 1}, {2, 40, 2, 48, 0.2f, 2}, {2, 20, 3, 100, 0, 1},
  };
  for (auto &c : cases) {
    rk_attn a{c.n, c.s, c.h, c.d, c.p, g_rng()};
    const int H = c.h * c.d;
    std::vector<int32_t> mask((size_t)c.n * c.s, 1);
    for (int i = 0; i < c.n; i++) {
      int valid = c.s;
      if (c.maskkind == 1) valid = c.s - (i * c.s) / (2 * c.n) - i % 3;
      if (c.maskkind == 2 && i == c.n - 1) valid = 0;
      for (int j = valid; j < c.s; j++) mask[(size_t)i * c.s + j] = 0;
    }
    auto qkv = randn((size_t)c.n * c.s * 3 * H), dctx = randn((size_t)c.n * c.s * H);
    auto want = ref_attention(a, qkv, mask, dctx);
    Dev<float> dq(qkv), dg(dctx), ctx((size_t)c.n * c.s * H), lse(rk_attention_save_len(a)),
        dqkv(qkv.size()), scr(rk_attention_save_len(a));
    Dev<int32_t> dm(mask);
    ctx.poison();
    dqkv.poison();
    char name[128];
    snprintf(name, sizeof name, "attention N%d S%d h%d d%d p%.1f mask%d", c.n, c.s, c.h, c.d, c.p, c.maskkind);
    CK(rk_attention_forward(nullptr, a, dq.p, dm.p, ctx.p, lse.p));
    check(std::string(name) + " fwd", ctx.down(), want.ctx, 1e-5);
    CK(rk_attention_backward(nullptr, a, dq.p, dm.p, ctx.p, dg.p, lse.p, dqkv.p, scr.p));
    check(std::string(name) + " bwd", dqkv.down(), want.dqkv, 1e-5);
    if (c.d != 32 && c.d != 64 && c.d != 128) continue;  // no tensor-core kernel for this head dim
    // Tensor-core forward on the same inputs rounded to bf16.
    auto q16 = round_bf16(qkv);
    auto want16 = ref_attention(a, q16, mask, dctx);
    std::vector<uint16_t> h16(q16.size());
    for (size_t i = 0; i < q16.size(); i++) h16[i] = rk_f2bf(q16[i]);
    Dev<uint16_t> dq16(h16);
    ctx.poison();
    lse.poison();
    CK(rk_attention_forward_bf16(nullptr, a, dq16.p, dm.p, ctx.p, lse.p));
    check(std::string(name) + " fwd bf16", ctx.down(), want16.ctx, 1e-2);
    auto lse_gpu = lse.down();
    std::vector<double> lse_want(lse_gpu.size());
    CK(rk_attention_forward(nullptr, a, dq.p, dm.p, ctx.p, lse.p));  // fp32 lse as the reference
    auto lse32 = lse.down();
    for (size_t i = 0; i < lse32.size(); i++) lse_want[i] = lse32[i];
    check(std::string(name) + " fwd bf16 lse", lse_gpu, lse_want, 1e-2);
    // Tensor-core backward: reference on bf16-rounded qkv and dctx.
    auto g16r = round_bf16(dctx);
    auto want16b = ref_attention(a, q16, mask, g16r);
    std::vector<uint16_t> hg16(g16r.size());
    for (size_t i = 0; i < g16r.size(); i++) hg16[i] = rk_f2bf(g16r[i]);
    Dev<uint16_t> dg16(hg16);
    Dev<float> dgr(g16r), ctx16(want16b.ctx.size());
    CK(rk_attention_forward_bf16(nullptr, a, dq16.p, dm.p, ctx16.p, lse.p));
    dqkv.poison();
    CK(rk_attention_backward_bf16(nullptr, a, dq16.p, dg16.p, dm.p, ctx16.p, dgr.p, lse.p, dqkv.p, scr.p));
    check(std::string(name) + " bwd bf16", dqkv.down(), want16b.dqkv, 1e-2);
  }
}

// ---- rows and elementwise -----------------------------------------------------------------
void test_rows() {
  const int rows = 67, dim = 384;
  auto x = randn((size_t)rows * dim, 3), g = randn(dim), b = randn(dim), dout = randn((size_t)rows * dim);
  auto dg0 = randn(dim), db0 = randn(dim);
  std::vector<double> out((size_t)rows * dim), mean(rows), rstd(rows), dx((size_t)rows * dim);
  std::vector<double> dgw(dg0.begin(), dg0.end()), dbw(db0.begin(), db0.end());
  for (int r = 0; r < rows; r++) {
    double s = 0, ss = 0;
    for (int c = 0; c < dim; c++) s += x[r * dim + c];
    double m = s / dim;
    for (int c = 0; c < dim; c++) ss += (x[r * dim + c] - m) * (x[r * dim + c] - m);
    double inv = 1 / sqrt(ss / dim + 1e-12);
    mean[r] = m;
    rstd[r] = inv;
    double sdx = 0, sdxx = 0;
    for (int c = 0; c < dim; c++) {
      double xh = (x[r * dim + c] - m) * inv;
      out[r * dim + c] = xh * g[c] + b[c];
      dgw[c] += dout[r * dim + c] * xh;
      dbw[c] += dout[r * dim + c];
      sdx += dout[r * dim + c] * g[c];
      sdxx += dout[r * dim + c] * g[c] * xh;
    }
    for (int c = 0; c < dim; c++) {
      double xh = (x[r * dim + c] - m) * inv;
      dx[r * dim + c] = inv * (dout[r * dim + c] * g[c] - sdx / dim - xh * sdxx / dim);
    }
  }
  Dev<float> dxx(x), dgam(g), dbet(b), o(x.size()), mu(rows), rs(rows), ddo(dout), ddx(x.size()), ddg(dg0),
      ddb(db0), scr(rk_colsum_scratch_len(rows, dim));
  o.poison(); mu.poison(); rs.poison(); ddx.poison();
  CK(rk_layernorm_forward(nullptr, o.p, mu.p, rs.p, dxx.p, dgam.p, dbet.p, rows, dim, 1e-12f));
  check("layernorm_forward out", o.down(), out, 1e-5);
  check("layernorm_forward mean", mu.down(), mean, 1e-5);
  check("layernorm_forward rstd", rs.down(), rstd, 1e-5);
  CK(rk_layernorm_backward(nullptr, ddx.p, ddg.p, ddb.p, ddo.p, dxx.p, mu.p, rs.p, dgam.p, rows, dim, scr.p));
  check("layernorm_backward dx", ddx.down(), dx, 1e-5);
  check("layernorm_backward dgamma (+=)", ddg.down(), dgw, 1e-5);
  check("layernorm_backward dbeta (+=)", ddb.down(), dbw, 1e-5);
  CK(rk_layernorm_backward(nullptr, ddo.p, nullptr, nullptr, ddo.p, dxx.p, mu.p, rs.p, dgam.p, rows, dim, nullptr));
  check("layernorm_backward dx aliasing dout", ddo.down(), dx, 1e-5);

  // bias
  const int br = 1000, bc = 77;
  auto y = randn((size_t)br * bc), bias = randn(bc), db = randn(bc);
  std::vector<double> yw((size_t)br * bc), dbw2(db.begin(), db.end());
  for (int r = 0; r < br; r++)
    for (int c = 0; c < bc; c++) {
      yw[r * bc + c] = (double)y[r * bc + c] + bias[c];
      dbw2[c] += y[r * bc + c];
    }
  Dev<float> dy(y), dbias(bias), ddb2(db), scr2(rk_colsum_scratch_len(br, bc));
  CK(rk_bias_grad(nullptr, ddb2.p, dy.p, br, bc, scr2.p));
  check("bias_grad (+=)", ddb2.down(), dbw2, 1e-5);
  CK(rk_add_bias(nullptr, dy.p, dbias.p, br, bc));
  check("add_bias", dy.down(), yw, 1e-5);
}

void test_elementwise() {
  const long long n = 3 * 4096 + 17;
  auto x = randn(n, 2), y = randn(n, 2);
  std::vector<double> w(n);
  Dev<float> dx(x), dy(y), o(n);
  auto run = [&](const char *name, auto launch, auto ref) {
    o.poison();
    CK(launch());
    for (long long i = 0; i < n; i++) w[i] = ref(i);
    check(name, o.down(), w, 1e-5);
  };
  const double is2 = 0.70710678118654752440;
  run("fill", [&] { return rk_fill(nullptr, o.p, 0.125f, n); }, [&](long long) { return 0.125; });
  run("add", [&] { return rk_add(nullptr, o.p, dx.p, dy.p, n); }, [&](long long i) { return (double)x[i] + y[i]; });
  run("gelu_forward", [&] { return rk_gelu_forward(nullptr, o.p, dx.p, n); },
      [&](long long i) { double v = x[i]; return 0.5 * v * (1 + erf(v * is2)); });
  run("gelu_backward", [&] { return rk_gelu_backward(nullptr, o.p, dy.p, dx.p, n); }, [&](long long i) {
    double v = x[i];
    return y[i] * (0.5 * (1 + erf(v * is2)) + v * 0.39894228040143267794 * exp(-0.5 * v * v));
  });
  run("tanh_forward", [&] { return rk_tanh_forward(nullptr, o.p, dx.p, n); }, [&](long long i) { return tanh((double)x[i]); });
  run("tanh_backward", [&] { return rk_tanh_backward(nullptr, o.p, dy.p, dx.p, n); },
      [&](long long i) { return y[i] * (1 - (double)x[i] * x[i]); });
  for (float p : {0.f, 0.1f, 0.5f}) {
    char name[64];
    snprintf(name, sizeof name, "dropout p=%.1f", p);
    run(name, [&] { return rk_dropout(nullptr, o.p, dx.p, p, 0xfeedull, n); },
        [&](long long i) { return rk_keep(0xfeedull, (uint64_t)i, p) ? x[i] / (1.0 - p) : 0.0; });
  }
  // in-place ops
  std::vector<double> ax(n), sc(n);
  for (long long i = 0; i < n; i++) ax[i] = (double)y[i] - 0.3 * x[i];
  CK(rk_axpy(nullptr, -0.3f, dx.p, dy.p, n));
  check("axpy", dy.down(), ax, 1e-5);
  for (long long i = 0; i < n; i++) sc[i] = 1.7 * x[i];
  CK(rk_scale(nullptr, dx.p, 1.7f, n));
  check("scale", dx.down(), sc, 1e-5);
  // copy2d: 60 x 50 block between leading dimensions 60 and 70.
  std::vector<float> src = randn(60 * 60), dst0(60 * 70, 0.f);
  std::vector<double> cw(dst0.begin(), dst0.end());
  for (int r = 0; r < 60; r++)
    for (int c = 0; c < 50; c++) cw[r * 70 + c] = src[r * 60 + c];
  Dev<float> ds(src), dd(dst0);
  CK(rk_copy2d(nullptr, dd.p, 70, ds.p, 60, 60, 50));
  check("copy2d", dd.down(), cw, 0);
}

void test_embed() {
  const int vocab = 40, dim = 32, count = 500;
  std::vector<int32_t> ids(count);
  for (auto &v : ids) v = (int32_t)(g_rng() % vocab);
  auto table = randn((size_t)vocab * dim), dout = randn((size_t)count * dim), acc = randn((size_t)count * dim);
  std::vector<double> fw((size_t)count * dim), aw((size_t)count * dim), bw(table.begin(), table.end());
  for (int i = 0; i < count; i++)
    for (int c = 0; c < dim; c++) {
      fw[i * dim + c] = table[ids[i] * dim + c];
      aw[i * dim + c] = (double)acc[i * dim + c] + table[ids[i] * dim + c];
      if (ids[i] != 1) bw[ids[i] * dim + c] += dout[i * dim + c];
    }
  Dev<int32_t> di(ids);
  Dev<float> dt(table), o((size_t)count * dim), da(acc), dd(dout);
  o.poison();
  CK(rk_embed_forward(nullptr, o.p, dt.p, di.p, count, dim, vocab, 0));
  check("embed_forward", o.down(), fw, 1e-5);
  CK(rk_embed_forward(nullptr, da.p, dt.p, di.p, count, dim, vocab, 1));
  check("embed_forward accumulate", da.down(), aw, 1e-5);
  CK(rk_embed_backward(nullptr, dt.p, dd.p, di.p, count, dim, vocab, 1));
  check("embed_backward skip=1", dt.down(), bw, 1e-5);
}

void test_optim() {
  const long long n = 10007;
  auto p = randn(n), m = randn(n, 0.1f), v = randn(n, 0.1f);
  for (auto &x : v) x *= x;
  std::vector<double> pw(p.begin(), p.end()), mw(m.begin(), m.end()), vw(v.begin(), v.end());
  Dev<float> dp(p), dm(m), dv(v);
  Dev<uint16_t> pb(n);
  pb.poison();
  const double lr = 2e-5, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  for (int step = 1; step <= 3; step++) {
    auto g = randn(n, 0.5f);
    Dev<float> dg(g);
    rk_adamw s{(float)b1, (float)b2, (float)(1 - b1), (float)(1 - b2), (float)eps, (float)(1 - lr * wd),
               (float)(lr / (1 - pow(b1, step))), (float)sqrt(1 - pow(b2, step)), 1};
    CK(rk_adamw_step(nullptr, dp.p, dg.p, dm.p, dv.p, step == 3 ? pb.p : nullptr, s, n));
    for (long long i = 0; i < n; i++) {
      double x = pw[i] * (1 - lr * wd);
      mw[i] = b1 * mw[i] + (1 - b1) * g[i];
      vw[i] = b2 * vw[i] + (1 - b2) * (double)g[i] * g[i];
      double denom = sqrt(vw[i]) / sqrt(1 - pow(b2, step)) + eps;
      pw[i] = x - lr / (1 - pow(b1, step)) * mw[i] / denom;
    }
  }
  check("adamw p", dp.down(), pw, 1e-5);
  check("adamw m", dm.down(), mw, 1e-5);
  check("adamw v", dv.down(), vw, 1e-5);
  auto h16 = pb.down();
  std::vector<float> pf(n);
  for (long long i = 0; i < n; i++) pf[i] = rk_bf2f(h16[i]);
  check("adamw bf16 copy", pf, pw, 1e-2);

#ifdef RK_EMU
  const long long ns = (1 << 14) + 3;
#else
  const long long ns = (1 << 20) + 3;
#endif
  auto x = randn(ns);
  double want = 0;
  for (auto e : x) want += (double)e * e;
  Dev<float> dx(x);
  Dev<double> parts(rk_sumsq_partials()), out(1);
  CK(rk_sum_squares(nullptr, dx.p, ns, parts.p, out.p));
  double got = out.down()[0];
  check("sum_squares", {(float)got}, {want}, 1e-6);
}

void test_lora() {
#ifdef RK_EMU
  const int shapes[][3] = {{96, 128, 8}, {77, 130, 40}, {64, 512, 16}};  // emulation: keep it small
#else
  const int shapes[][3] = {{96, 128, 8}, {77, 130, 40}, {1024, 4096, 16}};
#endif
  for (auto &sh : shapes) {
    int out = sh[0], in = sh[1], r = sh[2];
    auto w = randn((size_t)out * in), a = randn((size_t)r * in), b = randn((size_t)out * r);
    std::vector<double> ww(w.begin(), w.end());
    for (int o = 0; o < out; o++)
      for (int i = 0; i < in; i++) {
        double s = 0;
        for (int k = 0; k < r; k++) s += (double)b[o * r + k] * a[(size_t)k * in + i];
        ww[(size_t)o * in + i] += 0.5 * s;
      }
    Dev<float> dw(w), da(a), db(b);
    CK(rk_lora_merge(nullptr, dw.p, da.p, db.p, out, in, r, 0.5f));
    char name[96];
    snprintf(name, sizeof name, "lora_merge %dx%d r%d", out, in, r);
    check(name, dw.down(), ww, 1e-5);
    CK(rk_lora_merge(nullptr, dw.p, da.p, db.p, out, in, r, -0.5f));
    check(std::string(name) + " unmerge", dw.down(), widen(w), 1e-5);
  }
}

}  // namespace

int main(int argc, char **argv) {
  bool bench = true, tests = true, quick = false;
  const char *filter = nullptr, *json = nullptr;
  if (argc == 2 && std::string(argv[1]) == "--host-rng") {  // needs no GPU
    bool ok = host_uniform_ok();
    printf("host rk_uniform matches backend.Uniform: %s\n", ok ? "yes" : "NO");
    return ok ? 0 : 1;
  }
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--no-bench") bench = false;
    else if (a == "--bench-only") tests = false;
    else if (a == "--quick") quick = true;
    else if (a == "--filter" && i + 1 < argc) filter = argv[++i];
    else if (a == "--json" && i + 1 < argc) json = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--no-bench | --bench-only] [--quick] [--filter NAME] [--json FILE] | --host-rng\n", argv[0]);
      return 2;
    }
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    fprintf(stderr, "rerank_kernels_check: no CUDA device visible\n");
    return 2;
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  if (tests) {
    test_uniform();
    test_gemm();
    test_attention();
    test_rows();
    test_elementwise();
    test_embed();
    test_optim();
    test_lora();
    printf("kernel tests: %d passed, %d failed\n", g_pass, g_fail);
  }
#ifdef RK_EMU
  bench = false;  // no timing on the emulator
#endif
#ifndef RK_EMU
  if (bench) {
    rk_bench_opts o{};
    o.quick = quick;
    o.filter = filter;
    std::vector<rk_bench_row> rows(512);
    rk_bench_peak peak{};
    int n = rk_bench_run(&o, &peak, rows.data(), (int)rows.size());
    if (n < 0) {
      fprintf(stderr, "benchmark failed: %s\n", cudaGetErrorString((cudaError_t)-n));
      return 1;
    }
    if (json) {
      FILE *f = fopen(json, "w");
      if (!f) {
        perror(json);
        return 1;
      }
      fprintf(f, "{\"device\": \"%s\", \"bf16_tflops\": %.1f, \"fp32_tflops\": %.2f, \"dram_gbps\": %.0f, \"rows\": [\n",
              peak.device, peak.bf16_tflops, peak.fp32_tflops, peak.dram_gbps);
      for (int i = 0; i < n; i++) {
        const rk_bench_row &r = rows[i];
        fprintf(f, "  {\"name\": \"%s\", \"shape\": \"%s\", \"impl\": \"%s\", \"ms\": %.5f, \"tflops\": %.3f, "
                   "\"gbps\": %.1f, \"pct_peak\": %.1f, \"rel_err\": %.3g}%s\n",
                r.name, r.shape, r.impl, r.ms, r.tflops, r.gbps, r.pct_peak, r.max_rel_err, i + 1 < n ? "," : "");
      }
      fprintf(f, "]}\n");
      fclose(f);
    }
  }
#endif
  if (tests) printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
