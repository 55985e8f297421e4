/*
 * dynload.h: finding and opening the CUDA libraries that rerank loads at
 * run time (cuBLAS for the benchmark's reference; NCCL for multi-GPU
 * training), so that no binary links a CUDA-version-specific library and
 * one build runs next to any toolkit or PyTorch install.
 *
 * rk_dl_find tries, in order:
 *   1. the path in the environment variable `env` (e.g. RERANK_CUBLAS), if set;
 *   2. each soname through the dynamic loader (LD_LIBRARY_PATH, the
 *      ldconfig cache, /lib, /usr/lib);
 *   3. /usr/local/cuda/lib64, /usr/local/cuda/targets/x86_64-linux/lib
 *      and /usr/lib/x86_64-linux-gnu;
 *   4. the nvidia/<pkg>/lib folders of the Python packages that PyTorch's
 *      wheels install (asked of $RERANK_PYTHON, default python3).
 * It returns the dlopen handle, or NULL with a message in err naming what
 * was looked for and where, and how to point rerank at it.
 */
#ifndef RERANK_DYNLOAD_H
#define RERANK_DYNLOAD_H

#ifdef __cplusplus
extern "C" {
#endif

void *rk_dl_find(const char *what, const char *env, const char *const *sonames, int n,
                 char *path, int pathlen, char *err, int errlen);

/* 1 when the driver's libcuda.so.1 can be opened, else 0. */
int rk_dl_driver_present(void);

/* The search folders of step 4, newline-separated (may be empty). */
const char *rk_dl_python_dirs(void);

/* rk_cublas_load loads cuBLAS once; 0 on success, else -1 with the reason
 * in err. path (may be NULL) receives the file loaded. */
int rk_cublas_load(char *path, int pathlen, char *err, int errlen);

#ifdef __cplusplus
}
#endif

#endif
