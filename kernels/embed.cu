// embed.cu: embedding gather (forward) and scatter-add (backward).
#include <math.h>

#include "common.cuh"

namespace {

__global__ void embed_fwd(float *__restrict__ out, const float *__restrict__ table,
                          const int32_t *__restrict__ ids, long long total, int dim, int vocab,
                          int accumulate) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    long long i = e / dim;
    int c = (int)(e % dim);
    int id = ids[i];
    float v = (id >= 0 && id < vocab) ? table[(long long)id * dim + c] : NAN;
    out[e] = accumulate ? out[e] + v : v;
  }
}

// One thread per (row, column): rows sharing an id meet in float atomics.
__global__ void embed_bwd(float *dtable, const float *__restrict__ dout,
                          const int32_t *__restrict__ ids, long long total, int dim, int vocab,
                          int32_t skip) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    long long i = e / dim;
    int c = (int)(e % dim);
    int id = ids[i];
    if (id == skip || id < 0 || id >= vocab) continue;
    atomicAdd(dtable + (long long)id * dim + c, dout[e]);
  }
}

}  // namespace

extern "C" int rk_embed_forward(void *stream, float *out, const float *table, const int32_t *ids,
                                int count, int dim, int vocab, int accumulate) {
  if (count < 0 || dim <= 0 || vocab < 0) return RK_INVALID;
  long long total = (long long)count * dim;
  if (total == 0) return 0;
  embed_fwd<<<rk_blocks(total, 256), 256, 0, rk_stream(stream)>>>(out, table, ids, total, dim,
                                                                   vocab, accumulate);
  return rk_launched();
}

extern "C" int rk_embed_backward(void *stream, float *dtable, const float *dout,
                                 const int32_t *ids, int count, int dim, int vocab, int32_t skip) {
  if (count < 0 || dim <= 0 || vocab < 0) return RK_INVALID;
  long long total = (long long)count * dim;
  if (total == 0) return 0;
  embed_bwd<<<rk_blocks(total, 256), 256, 0, rk_stream(stream)>>>(dtable, dout, ids, total, dim,
                                                                   vocab, skip);
  return rk_launched();
}
