//go:build cgo && !noblas && amd64

// Declarations of the AVX-512 SGEMM in sgemm_avx512.c.
#include <stdint.h>

// The micro-tile: RR_SGEMM_MR rows by RR_SGEMM_NR columns of C.
#ifndef RR_SGEMM_MR
#define RR_SGEMM_MR 12
#endif
#define RR_SGEMM_NR 32

int rr_has_avx512f(void);
int64_t rr_sgemm_packb_size(int64_t n, int64_t k);
void rr_sgemm_packb(int transB, int64_t n, int64_t k, const float *b, int64_t ldb, float *pb, int64_t j0, int64_t j1);
void rr_sgemm_compute(int transA, int64_t m0, int64_t m1, int64_t j0, int64_t j1, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, int transB, const float *b, int64_t ldb, const float *pb,
                      float beta, float *c, int64_t ldc, const float *bias, float *act, float *ap);
int64_t rr_sgemm_private_size(void);
int64_t rr_sgemm_packa_size(void);
void rr_sgemm(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias, float *act, float *pb,
              float *ap);
int rr_sgemm_auto(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
