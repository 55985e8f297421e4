//go:build cgo && !noblas && amd64

// Declarations of the int8 kernels in q8_amd64.c.
#include <stdint.h>

int rr_has_vnni(void);
void rr_q8_quantize_rows(uint8_t *q, int64_t kp, float *scale, int32_t *zp, const float *a, int64_t lda, int64_t m,
                         int64_t k);
void rr_q8_gemm(int vnni, int64_t m, int64_t n, int64_t kp, const uint8_t *aq, const float *ascale,
                const int32_t *azp, const int8_t *wq, const float *wscale, const int32_t *wsum, const float *bias,
                float *c, int64_t ldc, int gelu);
