//go:build cgo && !noblas && amd64

// Declarations of the AVX2/FMA kernels in kernels_amd64.c.
#include <stdint.h>

int rr_has_avx2_fma(void);
void rr_gelu(float *out, const float *x, int64_t n);
void rr_gelu_backward(float *dx, const float *dout, const float *x, int64_t n);
void rr_dropout(float *out, const float *x, int64_t n, float p, float scale, uint64_t seed, uint64_t base);
void rr_add_bias(float *y, const float *b, int64_t rows, int64_t cols);
void rr_col_sums(double *acc, const float *x, int64_t rows, int64_t cols);
void rr_add_layernorm(float *out, float *mean, float *rstd, float *sum, const float *x, const float *res,
                      const float *g, const float *b, int64_t rows, int64_t dim, float eps);
void rr_layernorm_backward(float *dx, double *ag, double *ab, const float *dy, const float *x, const float *mean,
                           const float *rstd, const float *g, int64_t rows, int64_t dim);
void rr_adamw(float *p, const float *g, float *m, float *v, int64_t n, float decay, int use_decay, float b1,
              float b2, float om1, float om2, float bc2sqrt, float step, float eps);
void rr_attn_fwd(int S, int L, int d, float scale, const float *q, const float *k, const float *v, int ld, float *p,
                 float *ctx, int ldc, const float *madd, float pd, uint64_t seed, uint64_t base, float *scratch);
void rr_attn_bwd(int S, int L, int d, float scale, const float *q, const float *k, const float *v, int ld,
                 const float *p, const float *g, int ldg, float *dq, float *dk, float *dv, float pd, uint64_t seed,
                 uint64_t base, float *scratch);
void rr_attn_tile_fwd(float *s, int ld, int rows, int cols, const float *madd, float *m, float *l, float *acc,
                      int ldacc, int d, float pd, uint64_t seed, uint64_t base, int S);
void rr_attn_tile_p(float *s, float *pv, int ld, int rows, int cols, const float *madd, const float *lse, float pd,
                    uint64_t seed, uint64_t base, int S);
void rr_attn_tile_ds(float *dp, const float *p, const float *pv, int ld, int rows, int cols, const float *D);
void rr_attn_use_avx512(int on);
void rr_softmax_use_avx512(int on);
void rr_gelu512(float *out, const float *x, int64_t n);
void rr_gelu_backward512(float *dx, const float *dout, const float *x, int64_t n);
