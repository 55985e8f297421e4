// lora.cu: LoRA merge/unmerge, W[out x in] += scale * B[out x r] * A[r x in].
//
// Memory-bound for the ranks LoRA uses (r <= 64): W is read and written
// once (8 bytes per element) while A and B stay in shared memory. A block
// owns a 32 x 128 tile of W; each of its 256 threads a 4 x 4 sub-tile with
// 16-byte accesses along `in` when the row length allows.
#include "common.cuh"

namespace {

constexpr int TR = 32, TC = 128, RC = 32;  // tile rows, tile cols, rank chunk

template <bool VEC>
__global__ void __launch_bounds__(256)
    lora_merge_kernel(float *__restrict__ w, const float *__restrict__ a,
                      const float *__restrict__ b, int out, int in, int r, float scale) {
  __shared__ __align__(16) float As[RC][TC];
  __shared__ float Bs[TR][RC + 1];
  const int tid = threadIdx.x, tx = tid & 31, ty = tid >> 5;  // 32 col groups x 8 row groups
  const int o0 = blockIdx.y * TR, i0 = blockIdx.x * TC;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < r; k0 += RC) {
    __syncthreads();
    for (int e = tid; e < RC * TC; e += 256) {
      int kk = e / TC, c = e % TC;
      As[kk][c] = (k0 + kk < r && i0 + c < in) ? a[(long long)(k0 + kk) * in + i0 + c] : 0.f;
    }
    for (int e = tid; e < TR * RC; e += 256) {
      int rr = e / RC, kk = e % RC;
      Bs[rr][kk] = (k0 + kk < r && o0 + rr < out) ? b[(long long)(o0 + rr) * r + k0 + kk] : 0.f;
    }
    __syncthreads();
    const int kn = min(RC, r - k0);
    for (int kk = 0; kk < kn; kk++) {
      float4 av = *reinterpret_cast<const float4 *>(&As[kk][tx * 4]);
#pragma unroll
      for (int i = 0; i < 4; i++) {
        float bv = Bs[ty * 4 + i][kk];
        acc[i][0] = fmaf(bv, av.x, acc[i][0]);
        acc[i][1] = fmaf(bv, av.y, acc[i][1]);
        acc[i][2] = fmaf(bv, av.z, acc[i][2]);
        acc[i][3] = fmaf(bv, av.w, acc[i][3]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int o = o0 + ty * 4 + i;
    if (o >= out) continue;
    int c = i0 + tx * 4;
    float *row = w + (long long)o * in;
    if (VEC && c + 3 < in) {
      float4 v = *reinterpret_cast<float4 *>(row + c);
      v.x += scale * acc[i][0];
      v.y += scale * acc[i][1];
      v.z += scale * acc[i][2];
      v.w += scale * acc[i][3];
      *reinterpret_cast<float4 *>(row + c) = v;
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++)
        if (c + j < in) row[c + j] += scale * acc[i][j];
    }
  }
}

}  // namespace

extern "C" int rk_lora_merge(void *stream, float *w, const float *a, const float *b, int out,
                             int in, int r, float scale) {
  if (out < 0 || in < 0 || r < 0 || out > 65535 * TR) return RK_INVALID;
  if (out == 0 || in == 0 || r == 0 || scale == 0.f) return 0;
  dim3 grid((in + TC - 1) / TC, (out + TR - 1) / TR);
  bool vec = in % 4 == 0 && ((uintptr_t)w & 15) == 0;
  if (vec)
    lora_merge_kernel<true><<<grid, 256, 0, rk_stream(stream)>>>(w, a, b, out, in, r, scale);
  else
    lora_merge_kernel<false><<<grid, 256, 0, rk_stream(stream)>>>(w, a, b, out, in, r, scale);
  return rk_launched();
}
