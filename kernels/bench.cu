// bench.cu: the kernel benchmark behind `rerank bench-kernels` and
// rerank_kernels_check, in the manner of llm.c's dev/cuda harnesses.
//
// Every kernel runs at the shapes of real rerankers (MiniLM-L6, bge-base,
// bge-reranker-v2-m3) with CUDA-event timing: warm-up launches first, then
// the median of many timed launches, the inputs rotated among several
// copies (together larger than L2) so caches do not flatter. Each row gives
// TFLOP/s or GB/s and the percent of the peak measured at start (cuBLAS
// bf16 and fp32 GEMM at 8192^3 and 4096^3, a large device-to-device copy),
// next to its reference: cuBLAS for the GEMMs, a naive cuBLAS + softmax
// attention for the fused attention. PyTorch SDPA is added by the callers
// (scripts/sdpa_bench.py) when torch is importable.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common.cuh"
#include "cublas_dl.h"
#include "dynload.h"

namespace {

struct Model {
  const char *name;
  int hidden, heads, inter, layers;
  int n, s;  // benchmark batch: sequences x tokens
};

const Model kModels[] = {
    {"MiniLM-L6", 384, 12, 1536, 6, 64, 128},
    {"bge-base", 768, 12, 3072, 12, 32, 256},
    {"bge-reranker-v2-m3", 1024, 16, 4096, 24, 16, 512},
};

#define BCHECK(x)                                                        \
  do {                                                                   \
    cudaError_t e_ = (x);                                                \
    if (e_ != cudaSuccess) {                                             \
      fprintf(stderr, "bench: %s: %s\n", #x, cudaGetErrorString(e_));    \
      throw (int)e_;                                                     \
    }                                                                    \
  } while (0)
#define BRC(x)                                                           \
  do {                                                                   \
    int r_ = (x);                                                        \
    if (r_ != 0) {                                                       \
      fprintf(stderr, "bench: %s: %s\n", #x, cudaGetErrorString((cudaError_t)r_)); \
      throw r_;                                                          \
    }                                                                    \
  } while (0)
#define BLAS(x)                                                          \
  do {                                                                   \
    cublasStatus_t s_ = (x);                                             \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                   \
      fprintf(stderr, "bench: %s: cublas status %d\n", #x, (int)s_);     \
      throw 999;                                                         \
    }                                                                    \
  } while (0)

// Device buffer that frees itself.
struct DBuf {
  void *p = nullptr;
  size_t bytes = 0;
  DBuf() = default;
  explicit DBuf(size_t b) : bytes(b) { BCHECK(cudaMalloc(&p, b ? b : 16)); }
  DBuf(const DBuf &) = delete;
  DBuf &operator=(const DBuf &) = delete;
  DBuf(DBuf &&o) noexcept : p(o.p), bytes(o.bytes) { o.p = nullptr; }
  ~DBuf() {
    if (p) cudaFree(p);
  }
  template <typename T>
  T *as() const { return (T *)p; }
};

__global__ void fill_uniform(float *x, long long n, uint64_t seed, float lo, float hi) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    x[i] = lo + (hi - lo) * rk_uniform(seed, (uint64_t)i);
}
__global__ void fill_uniform_bf16(uint16_t *x, long long n, uint64_t seed, float lo, float hi) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    x[i] = rk_f2bf(lo + (hi - lo) * rk_uniform(seed, (uint64_t)i));
}
__global__ void fill_ids(int32_t *x, long long n, uint64_t seed, int vocab) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    x[i] = (int32_t)(rk_uniform(seed, (uint64_t)i) * vocab) % vocab;
}
// Sequence n has its last (n % 4) * S/8 tokens as padding.
__global__ void fill_mask(int32_t *m, int N, int S) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (long long)N * S;
       i += (long long)gridDim.x * blockDim.x) {
    int n = (int)(i / S), j = (int)(i % S);
    m[i] = j < S - (n % 4) * (S / 8);
  }
}

// Naive attention's softmax over [rows, S] score rows with a key mask per
// sequence (rows_per_seq rows share one mask row).
__global__ void naive_softmax(float *p, const int32_t *mask, long long rows, int S,
                              long long rows_per_seq) {
  long long row = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (row >= rows) return;
  float *x = p + row * S;
  const int32_t *m = mask + (row / rows_per_seq) * S;
  float mx = -INFINITY;
  for (int j = lane; j < S; j += 32)
    if (m[j]) mx = fmaxf(mx, x[j]);
  mx = rk_warp_max(mx);
  float sum = 0.f;
  for (int j = lane; j < S; j += 32) {
    float e = m[j] ? expf(x[j] - mx) : 0.f;
    x[j] = e;
    sum += e;
  }
  sum = rk_warp_sum(sum);
  for (int j = lane; j < S; j += 32) x[j] /= sum;
}

void fill(float *x, long long n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  fill_uniform<<<rk_blocks(n, 256), 256>>>(x, n, seed, lo, hi);
  BCHECK(cudaGetLastError());
}
void fill(uint16_t *x, long long n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  fill_uniform_bf16<<<rk_blocks(n, 256), 256>>>(x, n, seed, lo, hi);
  BCHECK(cudaGetLastError());
}

struct Bench {
  int warmup = 5, repeats = 30;
  bool quiet = false;
  const char *filter = nullptr;
  cublasHandle_t blas = nullptr;
  cudaEvent_t e0, e1;
  rk_bench_peak peak{};
  std::vector<rk_bench_row> rows;

  bool want(const char *name) const { return !filter || !*filter || strstr(name, filter); }

  // time runs fn(i) warmup times, then repeats times, each between events;
  // i counts calls so fn can rotate its inputs. Returns the median in ms.
  template <typename F>
  double time(F fn) {
    int i = 0;
    for (int w = 0; w < warmup; w++) fn(i++);
    BCHECK(cudaDeviceSynchronize());
    std::vector<float> t(repeats);
    for (int r = 0; r < repeats; r++) {
      BCHECK(cudaEventRecord(e0));
      fn(i++);
      BCHECK(cudaEventRecord(e1));
      BCHECK(cudaEventSynchronize(e1));
      BCHECK(cudaEventElapsedTime(&t[r], e0, e1));
    }
    std::sort(t.begin(), t.end());
    return t[repeats / 2];
  }

  void add(const char *name, const std::string &shape, const char *impl, double ms, double flops,
           double bytes, double peak_tf, double err = -1) {
    rk_bench_row r{};
    snprintf(r.name, sizeof r.name, "%s", name);
    snprintf(r.shape, sizeof r.shape, "%s", shape.c_str());
    snprintf(r.impl, sizeof r.impl, "%s", impl);
    r.ms = ms;
    r.flops = flops;
    r.bytes = bytes;
    r.tflops = flops > 0 ? flops / (ms * 1e-3) / 1e12 : 0;
    r.gbps = bytes / (ms * 1e-3) / 1e9;
    r.pct_peak = flops > 0 ? 100.0 * r.tflops / peak_tf : 100.0 * r.gbps / peak.dram_gbps;
    r.max_rel_err = err;
    rows.push_back(r);
    if (quiet) return;
    printf("  %-22s %-34s %-14s %9.4f ms %8.2f %s %6.1f%%\n", r.name, r.shape, r.impl, ms,
           flops > 0 ? r.tflops : r.gbps, flops > 0 ? "TFLOP/s" : "GB/s   ", r.pct_peak);
    fflush(stdout);
  }

  // Row-major C = op(A) op(B) through cuBLAS's column-major API.
  void blas_gemm(bool ta, bool tb, int m, int n, int k, const void *A, int lda, const void *B,
                 int ldb, float *C, int ldc, rk_data_type ab, cublasComputeType_t ct) {
    float alpha = 1.f, beta = 0.f;
    BLAS(rk_cublas.gemm_ex(blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m,
                      k, &alpha, B, ab, ldb, A, ab, lda, &beta, C, RK_R_32F, ldc, ct,
                      CUBLAS_GEMM_DEFAULT));
  }

  void measure_peaks() {
    cudaDeviceProp prop;
    int dev = 0;
    BCHECK(cudaGetDevice(&dev));
    BCHECK(cudaGetDeviceProperties(&prop, dev));
    snprintf(peak.device, sizeof peak.device, "%s (sm_%d%d, %d SMs, %.0f MB L2)", prop.name,
             prop.major, prop.minor, prop.multiProcessorCount, prop.l2CacheSize / 1048576.0);
    const int M = 8192;
    {
      DBuf a((size_t)M * M * 2), b((size_t)M * M * 2), c((size_t)M * M * 4);
      fill(a.as<uint16_t>(), (long long)M * M, 1);
      fill(b.as<uint16_t>(), (long long)M * M, 2);
      double ms = time([&](int) {
        blas_gemm(false, false, M, M, M, a.p, M, b.p, M, c.as<float>(), M, RK_R_16BF,
                  CUBLAS_COMPUTE_32F);
      });
      peak.bf16_tflops = 2.0 * M * M * M / (ms * 1e-3) / 1e12;
    }
    {
      const int K = 4096;
      DBuf a((size_t)K * K * 4), b((size_t)K * K * 4), c((size_t)K * K * 4);
      fill(a.as<float>(), (long long)K * K, 3);
      fill(b.as<float>(), (long long)K * K, 4);
      double ms = time([&](int) {
        blas_gemm(false, false, K, K, K, a.p, K, b.p, K, c.as<float>(), K, RK_R_32F,
                  CUBLAS_COMPUTE_32F_PEDANTIC);
      });
      peak.fp32_tflops = 2.0 * K * K * K / (ms * 1e-3) / 1e12;
    }
    {
      size_t bytes = (size_t)1 << 30;
      DBuf a(bytes), b(bytes);
      BCHECK(cudaMemset(a.p, 1, bytes));
      double ms = time([&](int) { BCHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); });
      peak.dram_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
    }
    peak.measured = 1;
    if (!quiet)
      printf("device %s\npeaks (measured): bf16 %.0f TFLOP/s (cuBLAS 8192^3), fp32 %.1f TFLOP/s "
           "(cuBLAS SGEMM 4096^3, no TF32), DRAM %.0f GB/s (1 GiB copy, read+write)\n",
           peak.device, peak.bf16_tflops, peak.fp32_tflops, peak.dram_gbps);
  }

  // sets rotates among enough input copies to exceed twice the L2.
  static int sets_for(size_t bytes_per_set) {
    size_t want = (size_t)128 << 20;
    int n = (int)((want + bytes_per_set - 1) / std::max<size_t>(bytes_per_set, 1));
    return std::max(2, std::min(n, 8));
  }

  static double max_rel(const std::vector<float> &a, const std::vector<float> &b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) {
      double d = (double)a[i] - b[i];
      if (std::isnan(a[i])) return INFINITY;
      num += d * d;
      den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
  }

  static std::vector<float> download(const float *d, size_t n) {
    std::vector<float> h(n);
    BCHECK(cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost));
    return h;
  }

  void gemm_rows(const Model &md) {
    const int T = md.n * md.s, H = md.hidden, I = md.inter;
    struct G {
      const char *what;
      bool ta, tb;
      int m, n, k;
    } gs[] = {
        {"qkv x.W^T", false, true, T, 3 * H, H},  {"out x.W^T", false, true, T, H, H},
        {"up x.W^T", false, true, T, I, H},       {"down x.W^T", false, true, T, H, I},
        {"up dX=dY.W", false, false, T, H, I},    {"up dW=dY^T.X", true, false, I, H, T},
    };
    for (const G &g : gs) {
      std::string shape = std::string(md.name) + " " + g.what + " " + std::to_string(g.m) + "x" +
                          std::to_string(g.n) + "x" + std::to_string(g.k);
      const double flops = 2.0 * g.m * g.n * g.k;
      const int lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
      const size_t na = (size_t)g.m * g.k, nb = (size_t)g.k * g.n, nc = (size_t)g.m * g.n;
      if (want("gemm_bf16")) {
        int sets = sets_for((na + nb) * 2 + nc * 4);
        std::vector<DBuf> A, B;
        for (int s = 0; s < sets; s++) {
          A.emplace_back(na * 2);
          B.emplace_back(nb * 2);
          fill(A.back().as<uint16_t>(), na, 10 + s);
          fill(B.back().as<uint16_t>(), nb, 20 + s);
        }
        DBuf C(nc * 4), R(nc * 4);
        double bytes = (na + nb) * 2.0 + nc * 4.0;
        double ms = time([&](int i) {
          int s = i % sets;
          BRC(rk_gemm_bf16(nullptr, g.ta, g.tb, g.m, g.n, g.k, 1.f, A[s].as<uint16_t>(), lda, 0,
                           B[s].as<uint16_t>(), ldb, 0, 0.f, C.as<float>(), g.n, 0, 1));
        });
        double msr = time([&](int i) {
          int s = i % sets;
          blas_gemm(g.ta, g.tb, g.m, g.n, g.k, A[s].p, lda, B[s].p, ldb, R.as<float>(), g.n,
                    RK_R_16BF, CUBLAS_COMPUTE_32F);
        });
        BRC(rk_gemm_bf16(nullptr, g.ta, g.tb, g.m, g.n, g.k, 1.f, A[0].as<uint16_t>(), lda, 0,
                         B[0].as<uint16_t>(), ldb, 0, 0.f, C.as<float>(), g.n, 0, 1));
        blas_gemm(g.ta, g.tb, g.m, g.n, g.k, A[0].p, lda, B[0].p, ldb, R.as<float>(), g.n,
                  RK_R_16BF, CUBLAS_COMPUTE_32F);
        double err = max_rel(download(C.as<float>(), nc), download(R.as<float>(), nc));
        add("gemm_bf16", shape, "rerank", ms, flops, bytes, peak.bf16_tflops, err);
        add("gemm_bf16", shape, "cublas", msr, flops, bytes, peak.bf16_tflops);
      }
      if (want("gemm_f32") && (&g == &gs[0] || &g == &gs[5])) {
        int sets = sets_for((na + nb + nc) * 4);
        std::vector<DBuf> A, B;
        for (int s = 0; s < sets; s++) {
          A.emplace_back(na * 4);
          B.emplace_back(nb * 4);
          fill(A.back().as<float>(), na, 30 + s);
          fill(B.back().as<float>(), nb, 40 + s);
        }
        DBuf C(nc * 4), R(nc * 4);
        double bytes = (na + nb + nc) * 4.0;
        double ms = time([&](int i) {
          int s = i % sets;
          BRC(rk_gemm_f32(nullptr, g.ta, g.tb, g.m, g.n, g.k, 1.f, A[s].as<float>(), lda, 0,
                          B[s].as<float>(), ldb, 0, 0.f, C.as<float>(), g.n, 0, 1));
        });
        double msr = time([&](int i) {
          int s = i % sets;
          blas_gemm(g.ta, g.tb, g.m, g.n, g.k, A[s].p, lda, B[s].p, ldb, R.as<float>(), g.n,
                    RK_R_32F, CUBLAS_COMPUTE_32F_PEDANTIC);
        });
        BRC(rk_gemm_f32(nullptr, g.ta, g.tb, g.m, g.n, g.k, 1.f, A[0].as<float>(), lda, 0,
                        B[0].as<float>(), ldb, 0, 0.f, C.as<float>(), g.n, 0, 1));
        blas_gemm(g.ta, g.tb, g.m, g.n, g.k, A[0].p, lda, B[0].p, ldb, R.as<float>(), g.n,
                  RK_R_32F, CUBLAS_COMPUTE_32F_PEDANTIC);
        double err = max_rel(download(C.as<float>(), nc), download(R.as<float>(), nc));
        add("gemm_f32", shape, "rerank", ms, flops, bytes, peak.fp32_tflops, err);
        add("gemm_f32", shape, "cublas", msr, flops, bytes, peak.fp32_tflops);
      }
    }
  }

  void attention_rows(const Model &md, int N, int S) {
    if (!want("attention")) return;
    const int heads = md.heads, D = md.hidden / md.heads, H = md.hidden;
    std::string shape = std::string(md.name) + " N" + std::to_string(N) + " S" +
                        std::to_string(S) + " h" + std::to_string(heads) + " d" +
                        std::to_string(D);
    rk_attn a{N, S, heads, D, 0.f, 1234};
    const size_t nq = (size_t)N * S * 3 * H, nc = (size_t)N * S * H;
    int sets = sets_for(nq * 4 * 2);
    std::vector<DBuf> Q, G;
    for (int s = 0; s < sets; s++) {
      Q.emplace_back(nq * 4);
      G.emplace_back(nc * 4);
      fill(Q.back().as<float>(), nq, 50 + s);
      fill(G.back().as<float>(), nc, 60 + s);
    }
    DBuf mask((size_t)N * S * 4), ctx(nc * 4), lse(rk_attention_save_len(a) * 4),
        dq(nq * 4), scratch(rk_attention_save_len(a) * 4);
    fill_mask<<<rk_blocks((long long)N * S, 256), 256>>>(mask.as<int32_t>(), N, S);
    BCHECK(cudaGetLastError());
    const double fwd_flops = 4.0 * N * heads * (double)S * S * D;
    const double bytes = (nq + nc) * 4.0;
    double ms = time([&](int i) {
      BRC(rk_attention_forward(nullptr, a, Q[i % sets].as<float>(), mask.as<int32_t>(),
                               ctx.as<float>(), lse.as<float>()));
    });
    // naive reference: per head, batched over sequences, with the S x S matrix.
    DBuf P((size_t)N * heads * S * S * 4), R(nc * 4);
    const float scale = 1.f / sqrtf((float)D);
    auto naive = [&](const float *qkv) {
      for (int h = 0; h < heads; h++) {
        float alpha = scale, beta = 0.f;
        float *Ph = P.as<float>() + (size_t)h * S * S;
        // P = Q K^T: row-major (S x D)(S x D)^T, batched over n.
        BLAS(rk_cublas.sgemm_strided_batched(blas, CUBLAS_OP_T, CUBLAS_OP_N, S, S, D, &alpha,
                                       qkv + H + h * D, 3 * H, (long long)S * 3 * H,
                                       qkv + h * D, 3 * H, (long long)S * 3 * H, &beta, Ph, S,
                                       (long long)heads * S * S, N));
      }
      long long rows = (long long)N * heads * S;
      naive_softmax<<<rk_blocks(rows * 32, 256), 256>>>(P.as<float>(), mask.as<int32_t>(), rows, S,
                                                      (long long)heads * S);
      for (int h = 0; h < heads; h++) {
        float alpha = 1.f, beta = 0.f;
        float *Ph = P.as<float>() + (size_t)h * S * S;
        // ctx_h = P V: row-major (S x S)(S x D).
        BLAS(rk_cublas.sgemm_strided_batched(blas, CUBLAS_OP_N, CUBLAS_OP_N, D, S, S, &alpha,
                                       qkv + 2 * H + h * D, 3 * H, (long long)S * 3 * H, Ph, S,
                                       (long long)heads * S * S, &beta, R.as<float>() + h * D, H,
                                       (long long)S * H, N));
      }
    };
    BLAS(rk_cublas.set_math_mode(blas, CUBLAS_PEDANTIC_MATH));
    double msr = time([&](int i) { naive(Q[i % sets].as<float>()); });
    BRC(rk_attention_forward(nullptr, a, Q[0].as<float>(), mask.as<int32_t>(), ctx.as<float>(),
                             lse.as<float>()));
    naive(Q[0].as<float>());
    BLAS(rk_cublas.set_math_mode(blas, CUBLAS_DEFAULT_MATH));
    double err = max_rel(download(ctx.as<float>(), nc), download(R.as<float>(), nc));
    add("attention_fwd_f32", shape, "rerank", ms, fwd_flops, bytes, peak.fp32_tflops, err);
    add("attention_fwd_f32", shape, "cublas+softmax", msr, fwd_flops, bytes + N * heads * (double)S * S * 8,
        peak.fp32_tflops);
    {  // the tensor-core forward on bf16 copies of the same inputs
      std::vector<DBuf> Q16;
      for (int s = 0; s < sets; s++) {
        Q16.emplace_back(nq * 2);
        BRC(rk_f32_to_bf16(nullptr, Q16.back().as<uint16_t>(), Q[s].as<float>(), (long long)nq));
      }
      double ms16 = time([&](int i) {
        BRC(rk_attention_forward_bf16(nullptr, a, Q16[i % sets].as<uint16_t>(), mask.as<int32_t>(),
                                      ctx.as<float>(), lse.as<float>()));
      });
      BRC(rk_attention_forward_bf16(nullptr, a, Q16[0].as<uint16_t>(), mask.as<int32_t>(), ctx.as<float>(),
                                    lse.as<float>()));
      double err16 = max_rel(download(ctx.as<float>(), nc), download(R.as<float>(), nc));
      add("attention_fwd_bf16", shape, "rerank", ms16, fwd_flops, nq * 2.0 + nc * 4.0, peak.bf16_tflops, err16);
      std::vector<DBuf> G16;
      for (int s = 0; s < sets; s++) {
        G16.emplace_back(nc * 2);
        BRC(rk_f32_to_bf16(nullptr, G16.back().as<uint16_t>(), G[s].as<float>(), (long long)nc));
      }
      double msb16 = time([&](int i) {
        int s = i % sets;
        BRC(rk_attention_forward_bf16(nullptr, a, Q16[s].as<uint16_t>(), mask.as<int32_t>(), ctx.as<float>(),
                                      lse.as<float>()));
        BRC(rk_attention_backward_bf16(nullptr, a, Q16[s].as<uint16_t>(), G16[s].as<uint16_t>(),
                                       mask.as<int32_t>(), ctx.as<float>(), G[s].as<float>(), lse.as<float>(),
                                       dq.as<float>(), scratch.as<float>()));
      });
      add("attention_fwdbwd_bf16", shape, "rerank", msb16, 3.5 * fwd_flops, 2 * (nq * 2.0 + nc * 4.0) + nq * 4.0,
          peak.bf16_tflops);
    }
    double msb = time([&](int i) {
      int s = i % sets;
      BRC(rk_attention_forward(nullptr, a, Q[s].as<float>(), mask.as<int32_t>(), ctx.as<float>(),
                               lse.as<float>()));
      BRC(rk_attention_backward(nullptr, a, Q[s].as<float>(), mask.as<int32_t>(), ctx.as<float>(),
                                G[s].as<float>(), lse.as<float>(), dq.as<float>(),
                                scratch.as<float>()));
    });
    add("attention_fwdbwd_f32", shape, "rerank", msb, 3.5 * fwd_flops, 2 * bytes + nq * 4.0,
        peak.fp32_tflops);
  }

  void memory_rows(const Model &md) {
    const int T = md.n * md.s, H = md.hidden, I = md.inter;
    const std::string sh = std::string(md.name) + " " + std::to_string(T) + "x";
    auto ew = [&](const char *name, long long n, int reads, int writes, auto fn) {
      if (!want(name)) return;
      int sets = sets_for((size_t)n * 4 * (reads + writes));
      std::vector<DBuf> X, Y;
      for (int s = 0; s < sets; s++) {
        X.emplace_back((size_t)n * 4);
        Y.emplace_back((size_t)n * 4);
        fill(X.back().as<float>(), n, 70 + s, -3.f, 3.f);
        fill(Y.back().as<float>(), n, 80 + s, -3.f, 3.f);
      }
      DBuf O((size_t)n * 4);
      fill(O.as<float>(), n, 99);
      double ms = time([&](int i) { fn(O.as<float>(), X[i % sets].as<float>(), Y[i % sets].as<float>()); });
      add(name, sh + std::to_string(n / T), "rerank", ms, 0, (double)n * 4 * (reads + writes), 0);
    };
    const long long nI = (long long)T * I, nH = (long long)T * H;
    ew("gelu_fwd", nI, 1, 1, [&](float *o, float *x, float *) { BRC(rk_gelu_forward(nullptr, o, x, nI)); });
    ew("gelu_bwd", nI, 2, 1, [&](float *o, float *x, float *y) { BRC(rk_gelu_backward(nullptr, o, y, x, nI)); });
    ew("dropout", nH, 1, 1, [&](float *o, float *x, float *) { BRC(rk_dropout(nullptr, o, x, 0.1f, 7, nH)); });
    ew("add", nH, 2, 1, [&](float *o, float *x, float *y) { BRC(rk_add(nullptr, o, x, y, nH)); });
    ew("tanh_fwd", nH, 1, 1, [&](float *o, float *x, float *) { BRC(rk_tanh_forward(nullptr, o, x, nH)); });
    {
      DBuf bias((size_t)I * 4), db((size_t)I * 4), scr((size_t)rk_colsum_scratch_len(T, I) * 4);
      fill(bias.as<float>(), I, 5);
      ew("add_bias", nI, 1, 1, [&](float *o, float *, float *) { BRC(rk_add_bias(nullptr, o, bias.as<float>(), T, I)); });
      ew("bias_grad", nI, 1, 0, [&](float *, float *x, float *) { BRC(rk_bias_grad(nullptr, db.as<float>(), x, T, I, scr.as<float>())); });
    }
    {
      DBuf g((size_t)H * 4), b((size_t)H * 4), mu((size_t)T * 4), rs((size_t)T * 4),
          dg((size_t)H * 4), dbb((size_t)H * 4), scr((size_t)rk_colsum_scratch_len(T, H) * 4);
      fill(g.as<float>(), H, 8, 0.5f, 1.5f);
      fill(b.as<float>(), H, 9);
      ew("layernorm_fwd", nH, 1, 1, [&](float *o, float *x, float *) {
        BRC(rk_layernorm_forward(nullptr, o, mu.as<float>(), rs.as<float>(), x, g.as<float>(), b.as<float>(), T, H, 1e-12f));
      });
      ew("layernorm_bwd", nH, 2, 1, [&](float *o, float *x, float *y) {
        BRC(rk_layernorm_backward(nullptr, o, dg.as<float>(), dbb.as<float>(), y, x, mu.as<float>(), rs.as<float>(), g.as<float>(), T, H, scr.as<float>()));
      });
    }
    if (want("embed")) {
      const int vocab = 30522;
      DBuf table((size_t)vocab * H * 4), ids((size_t)T * 4), out((size_t)nH * 4);
      fill(table.as<float>(), (long long)vocab * H, 11);
      fill_ids<<<rk_blocks(T, 256), 256>>>(ids.as<int32_t>(), T, 12, vocab);
      BCHECK(cudaGetLastError());
      double ms = time([&](int) { BRC(rk_embed_forward(nullptr, out.as<float>(), table.as<float>(), ids.as<int32_t>(), T, H, vocab, 0)); });
      add("embed_fwd", sh + std::to_string(H), "rerank", ms, 0, 2.0 * nH * 4, 0);
      ms = time([&](int) { BRC(rk_embed_backward(nullptr, table.as<float>(), out.as<float>(), ids.as<int32_t>(), T, H, vocab, 0)); });
      add("embed_bwd", sh + std::to_string(H), "rerank", ms, 0, 3.0 * nH * 4, 0);
    }
  }

  void model_rows(const Model &md) {
    const int H = md.hidden, I = md.inter;
    // AdamW and grad norm over all encoder-layer parameters of the model.
    const long long np = (long long)md.layers * (4LL * H * H + 2LL * H * I + 9LL * H + I);
    const std::string sh = std::string(md.name) + " " + std::to_string(np / 1000000) + "M params";
    if (want("adamw")) {
      DBuf p(np * 4), g(np * 4), m(np * 4), v(np * 4), pb(np * 2);
      fill(p.as<float>(), np, 13);
      fill(g.as<float>(), np, 14);
      BCHECK(cudaMemset(m.p, 0, np * 4));
      BCHECK(cudaMemset(v.p, 0, np * 4));
      rk_adamw s{0.9f, 0.999f, 0.1f, 0.001f, 1e-8f, 1.f - 1e-5f * 0.01f, 1e-5f, 0.03f, 1};
      double ms = time([&](int) { BRC(rk_adamw_step(nullptr, p.as<float>(), g.as<float>(), m.as<float>(), v.as<float>(), nullptr, s, np)); });
      add("adamw", sh, "rerank", ms, 0, np * 28.0, 0);
      ms = time([&](int) { BRC(rk_adamw_step(nullptr, p.as<float>(), g.as<float>(), m.as<float>(), v.as<float>(), pb.as<uint16_t>(), s, np)); });
      add("adamw+bf16", sh, "rerank", ms, 0, np * 30.0, 0);
    }
    if (want("sum_squares")) {
      DBuf g(np * 4), part((size_t)rk_sumsq_partials() * 8), out(8);
      fill(g.as<float>(), np, 14);
      double ms = time([&](int) { BRC(rk_sum_squares(nullptr, g.as<float>(), np, part.as<double>(), out.as<double>())); });
      add("sum_squares", sh, "rerank", ms, 0, np * 4.0, 0);
    }
    if (want("lora")) {
      for (int r : {16, 64}) {
        const int out = I, in = H;
        int sets = sets_for((size_t)out * in * 4);
        std::vector<DBuf> W;
        for (int s = 0; s < sets; s++) {
          W.emplace_back((size_t)out * in * 4);
          fill(W.back().as<float>(), (long long)out * in, 90 + s);
        }
        DBuf A((size_t)r * in * 4), B((size_t)out * r * 4);
        fill(A.as<float>(), (long long)r * in, 15);
        fill(B.as<float>(), (long long)out * r, 16);
        double ms = time([&](int i) { BRC(rk_lora_merge(nullptr, W[i % sets].as<float>(), A.as<float>(), B.as<float>(), out, in, r, 0.5f)); });
        add("lora_merge", std::string(md.name) + " up " + std::to_string(out) + "x" + std::to_string(in) + " r" + std::to_string(r),
            "rerank", ms, 0, 8.0 * out * in + 4.0 * r * (out + in), 0);
      }
    }
  }
};

}  // namespace

extern "C" int rk_bench_run(const rk_bench_opts *opts, rk_bench_peak *peak, rk_bench_row *rows,
                            int max) {
  Bench b;
  const bool quick = opts && opts->quick;
  if (opts) {
    if (opts->warmup > 0) b.warmup = opts->warmup;
    if (opts->repeats > 0) b.repeats = opts->repeats;
    else if (quick) b.repeats = 10;
    b.filter = opts->filter;
    b.quiet = opts->quiet != 0;
  }
  char blas_err[2048];
  if (rk_cublas_load(nullptr, 0, blas_err, sizeof blas_err) != 0) {
    fprintf(stderr, "bench: the reference needs cuBLAS: %s\n", blas_err);
    return -RK_BENCH_NO_CUBLAS;
  }
  try {
    BLAS(rk_cublas.create(&b.blas));
    BCHECK(cudaEventCreate(&b.e0));
    BCHECK(cudaEventCreate(&b.e1));
  } catch (int e) {
    if (b.blas) rk_cublas.destroy(b.blas);
    return e > 0 ? -e : -1;
  }
  // Each section runs on its own: a failure is reported and counted, and
  // the rest still runs unless the CUDA context itself is broken.
  int failed = 0;
  bool broken = false;
  auto section = [&](const char *what, auto fn) {
    if (broken) return;
    try {
      fn();
    } catch (int e) {
      failed++;
      fprintf(stderr, "bench: section %s failed (%d)\n", what, e);
      cudaError_t sticky = cudaDeviceSynchronize();
      if (sticky != cudaSuccess) {
        fprintf(stderr, "bench: the CUDA context is broken (%s); stopping\n", cudaGetErrorString(sticky));
        broken = true;
      }
    }
  };
  section("peaks", [&] { b.measure_peaks(); });
  if (!b.peak.measured) {  // datasheet figures of an H100 SXM, dense
    b.peak.bf16_tflops = 989;
    b.peak.fp32_tflops = 67;
    b.peak.dram_gbps = 3350;
    if (!b.quiet) printf("peaks: not measured; using the H100 SXM datasheet (bf16 989, fp32 67 TFLOP/s, 3350 GB/s)\n");
  }
  for (const Model &md : kModels) {
    if (!b.quiet && !broken)
      printf("%s: %d x %d, %d heads, I=%d; batch %d x %d tokens\n", md.name, md.layers, md.hidden, md.heads,
             md.inter, md.n, md.s);
    section("gemm", [&] { b.gemm_rows(md); });
    section("attention", [&] { b.attention_rows(md, md.n, md.s); });
    if (!quick) section("memory", [&] { b.memory_rows(md); });
    section("model", [&] { b.model_rows(md); });
  }
  // The SDPA comparison point of the acceptance criteria: seq 512, head dim 64.
  if (!quick) section("attention-512", [&] { b.attention_rows(Model{"bge-base", 768, 12, 3072, 12, 16, 512}, 16, 512); });
  rk_cublas.destroy(b.blas);
  cudaEventDestroy(b.e0);
  cudaEventDestroy(b.e1);
  b.peak.failed_sections = failed;
  if (peak) *peak = b.peak;
  int n = std::min<int>(max, (int)b.rows.size());
  for (int i = 0; i < n && rows; i++) rows[i] = b.rows[i];
  return n;
}
