// cublas_dl.h: the few cuBLAS entry points and constants the benchmark
// uses, declared here so nothing links libcublas: rk_cublas_load (dynload.h)
// fills rk_cublas from whichever cuBLAS 11, 12 or 13 it finds. The values
// are those of cublas_api.h and library_types.h, unchanged since CUDA 11.
#ifndef RERANK_CUBLAS_DL_H
#define RERANK_CUBLAS_DL_H

typedef struct rk_cublas_context *cublasHandle_t;
typedef int cublasStatus_t;
typedef int cublasOperation_t;
typedef int cublasComputeType_t;
typedef int cublasMath_t;
typedef int rk_data_type;  // cudaDataType

enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
  CUBLAS_GEMM_DEFAULT = -1,
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_PEDANTIC = 69,
  RK_R_32F = 0,   // CUDA_R_32F
  RK_R_16BF = 14, // CUDA_R_16BF
};

struct rk_cublas_api {
  cublasStatus_t (*create)(cublasHandle_t *);
  cublasStatus_t (*destroy)(cublasHandle_t);
  cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void *, const void *, rk_data_type, int, const void *, rk_data_type,
                            int, const void *, void *, rk_data_type, int, cublasComputeType_t, int);
  cublasStatus_t (*sgemm_strided_batched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                          int, int, const float *, const float *, int, long long,
                                          const float *, int, long long, const float *, float *, int,
                                          long long, int);
};

extern rk_cublas_api rk_cublas;

#endif
