// loss.cu: group softmax cross-entropy, the listwise loss of reranker
// training (one positive and size-1 negatives per group). One warp per group.
#include <math.h>

#include "common.cuh"

namespace {

__global__ void group_ce_kernel(const float *__restrict__ logits, const int32_t *__restrict__ label,
                                int groups, int size, float *__restrict__ loss,
                                float *__restrict__ dlogits, float dscale) {
  const long long g = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (g >= groups) return;
  const float *x = logits + g * size;
  const int y = label ? label[g] : 0;
  float mx = -INFINITY;
  for (int j = lane; j < size; j += 32) mx = fmaxf(mx, x[j]);
  mx = rk_warp_max(mx);
  double sum = 0.0;
  for (int j = lane; j < size; j += 32) sum += exp((double)(x[j] - mx));
  sum = rk_warp_sum_d(sum);
  const bool ok = y >= 0 && y < size;
  if (lane == 0) loss[g] = ok ? (float)(log(sum) + (double)mx - (double)x[y]) : NAN;
  if (dlogits) {
    float *d = dlogits + g * size;
    for (int j = lane; j < size; j += 32) {
      double p = exp((double)(x[j] - mx)) / sum;
      d[j] = ok ? (float)((p - (j == y ? 1.0 : 0.0)) * dscale) : NAN;
    }
  }
}

}  // namespace

extern "C" int rk_group_ce(void *stream, const float *logits, const int32_t *label, int groups,
                           int size, float *loss, float *dlogits, float dscale) {
  if (groups < 0 || size <= 0) return RK_INVALID;
  if (groups == 0) return 0;
  group_ce_kernel<<<rk_blocks((long long)groups * 32, 256), 256, 0, rk_stream(stream)>>>(
      logits, label, groups, size, loss, dlogits, dscale);
  return rk_launched();
}
