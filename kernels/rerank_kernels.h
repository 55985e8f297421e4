/*
 * rerank_kernels.h: the C ABI of librerank_kernels.a, the hand-written CUDA
 * kernels behind the Go package github.com/rerank-go/rerank/cuda.
 *
 * Conventions (the same as backend/backend.go):
 *   - Matrices are row-major; ld is the distance in elements between the
 *     starts of two consecutive rows.
 *   - Every pointer is device memory unless its name says host.
 *   - Every function enqueues work on `stream` (a cudaStream_t; NULL is the
 *     legacy default stream) and returns 0 or the cudaError_t of the launch
 *     (argument errors return cudaErrorInvalidValue = 1). Faults inside a
 *     kernel surface at the next synchronisation, as CUDA reports them.
 *   - Gradient outputs of parameters accumulate (+=); everything else is
 *     overwritten. A NULL optional gradient is skipped.
 *   - Dropout masks use the counter RNG of backend/rng.go, bit for bit:
 *     keep(seed, i, p) = uniform(seed, i) >= p.
 *
 * The header is plain C with no CUDA types so that cgo can include it
 * without the CUDA headers.
 */
#ifndef RERANK_KERNELS_H
#define RERANK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* bf16 values travel as their 16 raw bits. */
typedef uint16_t rk_bf16;

/* ---- GEMM ---------------------------------------------------------------
 * C = alpha*op(A)*op(B) + beta*C, op(X) = X^T when trans is non-zero;
 * op(A) is m x k, op(B) is k x n, C is m x n. With beta == 0, C is not read.
 * The batched forms run `batch` products, matrix i of X starting at
 * i*strideX elements.
 */
int rk_gemm_f32(void *stream, int transA, int transB, int m, int n, int k,
                float alpha, const float *A, int lda, long long strideA,
                const float *B, int ldb, long long strideB, float beta,
                float *C, int ldc, long long strideC, int batch);

/* bf16 operands, fp32 accumulation on tensor cores (mma.sync m16n8k16 on
 * sm_80 and later), fp32 output. */
int rk_gemm_bf16(void *stream, int transA, int transB, int m, int n, int k,
                 float alpha, const rk_bf16 *A, int lda, long long strideA,
                 const rk_bf16 *B, int ldb, long long strideB, float beta,
                 float *C, int ldc, long long strideC, int batch);

/* As rk_gemm_bf16 with a bf16 output (beta must be 0). */
int rk_gemm_bf16_out(void *stream, int transA, int transB, int m, int n,
                     int k, float alpha, const rk_bf16 *A, int lda,
                     long long strideA, const rk_bf16 *B, int ldb,
                     long long strideB, rk_bf16 *C, int ldc,
                     long long strideC, int batch);

/* fp32 <-> bf16 conversion (round to nearest even), n values. */
int rk_f32_to_bf16(void *stream, rk_bf16 *dst, const float *src, long long n);
int rk_bf16_to_f32(void *stream, float *dst, const rk_bf16 *src, long long n);

/* ---- attention -----------------------------------------------------------
 * Fused (flash-style) multi-head self-attention over the fused projection
 * qkv [n*s, 3*heads*head_dim] (Q | K | V column blocks), key padding mask
 * [n*s] (1 real, 0 padding), dropout on the probabilities. The fp32
 * kernels take head_dim 1..128 (32, 64 and 128 have exact-size kernels);
 * the bf16 ones 32, 64 or 128. ctx is [n*s, heads*head_dim]. lse [n*heads*s] receives the
 * log-sum-exp of each score row, all the backward pass keeps.
 */
typedef struct rk_attn {
  int n, s, heads, head_dim;
  float dropout;
  uint64_t seed;
} rk_attn;

int rk_attention_forward(void *stream, rk_attn a, const float *qkv,
                         const int32_t *mask, float *ctx, float *lse);
/* Sets dqkv (all three column blocks). scratch holds n*heads*s floats. */
int rk_attention_backward(void *stream, rk_attn a, const float *qkv,
                          const int32_t *mask, const float *ctx,
                          const float *dctx, const float *lse, float *dqkv,
                          float *scratch);
/* The forward pass on tensor cores (sm_80+): qkv in bf16 (16-byte aligned),
 * fp32 softmax and accumulation, ctx and lse in fp32 as above. About 1e-2
 * relative to the fp32 kernel (P is rounded to bf16 before P*V). */
int rk_attention_forward_bf16(void *stream, rk_attn a, const rk_bf16 *qkv,
                              const int32_t *mask, float *ctx, float *lse);
/* The backward pass on tensor cores: qkv and dctx16 in bf16 (16-byte
 * aligned), ctx, dctx (fp32, for D = rowsum(dO*O)) and lse from the forward
 * pass. Sets dqkv; dQ is summed over key tiles with float atomics.
 * scratch holds n*heads*s floats. */
int rk_attention_backward_bf16(void *stream, rk_attn a, const rk_bf16 *qkv,
                               const rk_bf16 *dctx16, const int32_t *mask,
                               const float *ctx, const float *dctx,
                               const float *lse, float *dqkv, float *scratch);
/* Number of floats rk_attention_forward keeps for the backward pass. */
long long rk_attention_save_len(rk_attn a);

/* ---- rows: LayerNorm, bias -------------------------------------------------*/
int rk_layernorm_forward(void *stream, float *out, float *mean, float *rstd,
                         const float *x, const float *gamma,
                         const float *beta, int rows, int dim, float eps);
/* dx may alias dout; dgamma, dbeta accumulate and may be NULL. scratch holds
 * rk_colsum_scratch_len(rows, dim) floats when either is non-NULL. */
int rk_layernorm_backward(void *stream, float *dx, float *dgamma,
                          float *dbeta, const float *dout, const float *x,
                          const float *mean, const float *rstd,
                          const float *gamma, int rows, int dim,
                          float *scratch);
long long rk_colsum_scratch_len(int rows, int dim);

int rk_add_bias(void *stream, float *y, const float *bias, int rows, int cols);
/* db[c] += sum_r dy[r*cols+c], deterministic; scratch as above. */
int rk_bias_grad(void *stream, float *db, const float *dy, int rows, int cols,
                 float *scratch);

/* ---- elementwise ------------------------------------------------------------*/
int rk_fill(void *stream, float *dst, float v, long long n);
int rk_copy2d(void *stream, float *dst, int ldd, const float *src, int lds,
              int rows, int cols);
int rk_add(void *stream, float *dst, const float *a, const float *b,
           long long n);
int rk_axpy(void *stream, float alpha, const float *x, float *y, long long n);
int rk_scale(void *stream, float *x, float alpha, long long n);
int rk_gelu_forward(void *stream, float *out, const float *x, long long n);
int rk_gelu_backward(void *stream, float *dx, const float *dout,
                     const float *x, long long n);
int rk_tanh_forward(void *stream, float *out, const float *x, long long n);
int rk_tanh_backward(void *stream, float *dx, const float *dout,
                     const float *y, long long n);
/* out = x*keep/(1-p) with keep drawn from (seed, i); p <= 0 copies. The
 * backward pass is the same call on (dx, dout). */
int rk_dropout(void *stream, float *out, const float *x, float p,
               uint64_t seed, long long n);

/* ---- embeddings -----------------------------------------------------------*/
/* out[i] = table[ids[i]] (or += with accumulate) for i < count; table has
 * vocab rows of dim values. An id outside [0, vocab) yields a NaN row. */
int rk_embed_forward(void *stream, float *out, const float *table,
                     const int32_t *ids, int count, int dim, int vocab,
                     int accumulate);
/* dtable[ids[i]] += dout[i] except ids equal to skip (-1: none) and ids
 * outside [0, vocab). Float atomics: the summation order of rows sharing
 * an id varies, within fp32 rounding of the serial CPU sum. */
int rk_embed_backward(void *stream, float *dtable, const float *dout,
                      const int32_t *ids, int count, int dim, int vocab,
                      int32_t skip);

/* ---- optimiser and norms -------------------------------------------------------*/
/* One torch.optim.AdamW step; the host-side scalars are those of
 * backend/cpu (computed in float64, applied in float32):
 *   decay = 1 - lr*wd, step_size = lr/(1-beta1^t),
 *   bc2_sqrt = sqrt(1-beta2^t). p_bf16 (may be NULL) receives a bf16 copy
 * of the updated weights. */
typedef struct rk_adamw {
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float eps, decay, step_size, bc2_sqrt;
  int apply_decay;
} rk_adamw;
int rk_adamw_step(void *stream, float *p, const float *g, float *m, float *v,
                  rk_bf16 *p_bf16, rk_adamw s, long long n);

/* Sum of squares in float64: partials[rk_sumsq_partials()] is scratch,
 * *out (device) receives the total. */
int rk_sumsq_partials(void);
int rk_sum_squares(void *stream, const float *x, long long n,
                   double *partials, double *out);

/* ---- LoRA -------------------------------------------------------------------
 * w[out x in] += scale * b[out x r] * a[r x in]; a negative scale unmerges.
 */
int rk_lora_merge(void *stream, float *w, const float *a, const float *b,
                  int out, int in, int r, float scale);

/* ---- runtime ------------------------------------------------------------------
 * Thin wrappers over the CUDA runtime, so that the Go bindings need no CUDA
 * headers. Each returns 0 or a cudaError_t.
 */
/* Copies the CUDA error string for code into buf (NUL-terminated). */
void rk_error_string(int code, char *buf, int len);
int rk_device_count(int *count);
/* The CUDA runtime version linked in and the newest the driver supports,
 * as 1000*major + 10*minor (driver 0: no driver). */
int rk_versions(int *runtime, int *driver);
int rk_set_device(int dev);
/* name (NUL-terminated), compute capability, multiprocessors. */
int rk_device_info(int dev, char *name, int len, int *major, int *minor,
                   int *sms);
int rk_mem_info(size_t *free_bytes, size_t *total_bytes);
int rk_stream_create(void **stream);
int rk_stream_destroy(void *stream);
int rk_stream_sync(void *stream);
/* The error a kernel left behind (cudaGetLastError), cleared. */
int rk_last_error(void);
int rk_malloc(void **ptr, size_t bytes);
int rk_free(void *ptr);
int rk_host_alloc(void **ptr, size_t bytes); /* pinned */
int rk_host_free(void *ptr);
int rk_memset(void *stream, void *ptr, int value, size_t bytes);
int rk_memcpy_h2d(void *stream, void *dst, const void *src, size_t bytes);
int rk_memcpy_d2h(void *stream, void *dst, const void *src, size_t bytes);
int rk_memcpy_d2d(void *stream, void *dst, const void *src, size_t bytes);

/* ---- benchmark ----------------------------------------------------------------*/

/* One benchmark row. */
typedef struct rk_bench_row {
  char name[48];     /* kernel */
  char shape[64];    /* model and shape */
  char impl[24];     /* "rerank" or the reference's name */
  double ms;         /* median time */
  double flops;      /* floating-point operations per call (0: memory op) */
  double bytes;      /* fewest bytes moved per call */
  double tflops;     /* achieved TFLOP/s (0 when flops == 0) */
  double gbps;       /* achieved GB/s */
  double pct_peak;   /* percent of the stated peak */
  double max_rel_err;/* against the reference, when one was compared */
} rk_bench_row;

typedef struct rk_bench_opts {
  int quick;          /* fewer shapes and repeats */
  int warmup, repeats;/* 0: defaults */
  const char *filter; /* substring of kernel names to run; NULL: all */
  int quiet;          /* no progress lines on stdout */
} rk_bench_opts;

typedef struct rk_bench_peak {
  char device[96];
  double bf16_tflops; /* measured with cuBLAS, or the datasheet */
  double fp32_tflops;
  double dram_gbps;   /* measured device-to-device copy, read + write */
  int measured;       /* 0: the H100 SXM datasheet figures */
  int failed_sections;/* benchmark sections that failed (see stderr) */
} rk_bench_peak;

/* Runs the benchmark; fills at most max rows and returns the number
 * written, or a negative cudaError_t, or -RK_BENCH_NO_CUBLAS when cuBLAS
 * (loaded at run time, see dynload.h) cannot be found. */
#define RK_BENCH_NO_CUBLAS 10000
int rk_bench_run(const rk_bench_opts *opts, rk_bench_peak *peak,
                 rk_bench_row *rows, int max);

#ifdef __cplusplus
}
#endif

#endif
