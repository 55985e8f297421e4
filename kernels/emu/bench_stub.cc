// bench_stub.cc: the emulated library has no benchmark (kernels/bench.cu
// needs cuBLAS and a GPU); rk_bench_run says so.
#include <cstdio>

#include "rerank_kernels.h"

extern "C" int rk_bench_run(const rk_bench_opts *, rk_bench_peak *, rk_bench_row *, int) {
  fprintf(stderr, "rk_bench_run: the CPU emulation of the kernels cannot be benchmarked\n");
  return -1;
}
