//go:build cgo && !noblas && amd64

// Declarations of the AVX2/FMA SGEMM in sgemm_avx2.c: the same interface
// as sgemm_avx512.h, prefixed rr_sgemm2_.
#include <stdint.h>

// The micro-tile: RR_SGEMM2_MR rows by RR_SGEMM2_NR columns of C.
#define RR_SGEMM2_MR 6
#define RR_SGEMM2_NR 16

int64_t rr_sgemm2_packb_size(int64_t n, int64_t k);
void rr_sgemm2_packb(int transB, int64_t n, int64_t k, const float *b, int64_t ldb, float *pb, int64_t j0, int64_t j1);
void rr_sgemm2_compute(int transA, int64_t m0, int64_t m1, int64_t j0, int64_t j1, int64_t n, int64_t k, float alpha,
                       const float *a, int64_t lda, int transB, const float *b, int64_t ldb, const float *pb,
                       float beta, float *c, int64_t ldc, const float *bias, float *act, float *ap);
int64_t rr_sgemm2_private_size(void);
int64_t rr_sgemm2_packa_size(void);
void rr_sgemm2(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
               const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias, float *act, float *pb,
               float *ap);
int rr_sgemm2_auto(int transA, int transB, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
