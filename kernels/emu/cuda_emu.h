// cuda_emu.h: just enough of CUDA to run the SIMT kernels of kernels/ on
// the CPU, one OS thread per CUDA thread, so their indexing, masking,
// barriers and reductions are tested where no GPU exists (CI).
//
// kernels/emu/build.sh rewrites `k<<<grid, block, smem, stream>>>(args)`
// into RK_EMU_LAUNCH(k, grid, block, smem, stream)(args) and dynamic
// `extern __shared__` arrays into a per-block buffer, then compiles with
// -DRK_EMU. Blocks run one after another; the threads of a block run
// concurrently with real barriers (__syncthreads, __syncwarp) and warp
// shuffles through a per-warp exchange buffer. Static __shared__ arrays
// become function statics, shared by the threads of the running block.
// Inline PTX (mma.sync, ldmatrix, cp.async) is not emulated: the
// tensor-core GEMM path is switched off under RK_EMU.
#pragma once

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static

using std::max;
using std::min;

struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};
struct __attribute__((aligned(16))) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

typedef void *cudaStream_t;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorLaunchFailure = 719 };
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

inline float rk_emu_bf2f(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

namespace rk_emu {

struct Warp {
  std::barrier<> bar{32};
  uint64_t xchg[32];
  const void *addr[32];
  uint32_t frag[32][6];
};

struct Block {
  std::unique_ptr<std::barrier<>> bar;
  std::vector<std::unique_ptr<Warp>> warps;
  std::vector<unsigned char> smem;
  std::atomic<int> orflag{0};
};

inline thread_local uint3 tIdx, bIdx;
inline thread_local dim3 bDim, gDim;
inline thread_local Block *cur = nullptr;
inline std::atomic<int> launch_error{0};

inline void *dyn_smem() { return cur->smem.data(); }
inline Warp &warp() { return *cur->warps[(tIdx.x + tIdx.y * bDim.x + tIdx.z * bDim.x * bDim.y) / 32]; }
inline int lane() { return (int)((tIdx.x + tIdx.y * bDim.x + tIdx.z * bDim.x * bDim.y) % 32); }

template <typename... P>
struct Launch {
  void (*k)(P...);
  dim3 grid, block;
  size_t smem;
  template <typename... A>
  void operator()(A &&...args) const {
    const unsigned nt = block.x * block.y * block.z;
    if (nt == 0 || nt > 1024 || nt % 32 != 0) {  // the kernels here always use whole warps
      launch_error = (int)cudaErrorInvalidValue;
      return;
    }
    const unsigned long long total = (unsigned long long)grid.x * grid.y * grid.z;
    if (total == 0) return;
    auto fresh = [&]() {
      auto b = std::make_unique<Block>();
      b->bar = std::make_unique<std::barrier<>>((std::ptrdiff_t)nt);
      for (unsigned w = 0; w < nt / 32; w++) b->warps.push_back(std::make_unique<Warp>());
      b->smem.assign(smem + 16, 0xff);  // poisoned, as uninitialised GPU memory may be
      return b;
    };
    // One OS thread per CUDA thread for the whole launch; blocks run one
    // after another, separated by a launch-wide barrier that sets up the
    // next block's barriers and shared memory.
    std::unique_ptr<Block> blk = fresh();
    unsigned long long bi = 0;
    auto advance = [&]() noexcept {
      if (++bi < total) blk = fresh();
    };
    std::barrier<decltype(advance)> next((std::ptrdiff_t)nt, advance);
    std::vector<std::thread> ts;
    ts.reserve(nt);
    for (unsigned t = 0; t < nt; t++) {
      ts.emplace_back([&, t]() {
        bDim = block;
        gDim = grid;
        tIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
        while (bi < total) {
          cur = blk.get();
          bIdx = {(unsigned)(bi % grid.x), (unsigned)((bi / grid.x) % grid.y), (unsigned)(bi / ((unsigned long long)grid.x * grid.y))};
          k(args...);
          // An exited thread no longer takes part in the block's barriers, as on a GPU.
          warp().bar.arrive_and_drop();
          cur->bar->arrive_and_drop();
          next.arrive_and_wait();
        }
      });
    }
    for (auto &th : ts) th.join();
  }
};

template <typename... P>
Launch<P...> make_launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem = 0, cudaStream_t = nullptr) {
  return Launch<P...>{k, grid, block, smem};
}

}  // namespace rk_emu

#define RK_EMU_LAUNCH(k, ...) rk_emu::make_launch(k, __VA_ARGS__)
#define threadIdx (rk_emu::tIdx)
#define blockIdx (rk_emu::bIdx)
#define blockDim (rk_emu::bDim)
#define gridDim (rk_emu::gDim)

inline void __syncthreads() { rk_emu::cur->bar->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { rk_emu::warp().bar.arrive_and_wait(); }
inline int __syncthreads_or(int v) {
  auto *b = rk_emu::cur;
  b->bar->arrive_and_wait();  // everyone has read the previous result
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) b->orflag = 0;
  b->bar->arrive_and_wait();
  if (v) b->orflag = 1;
  b->bar->arrive_and_wait();
  return b->orflag.load();
}

template <typename T>
T __shfl_xor_sync(unsigned, T v, int o) {
  static_assert(sizeof(T) <= 8, "shuffle of a wide type");
  auto &w = rk_emu::warp();
  const int l = rk_emu::lane();
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  w.xchg[l] = bits;
  w.bar.arrive_and_wait();
  uint64_t got = w.xchg[l ^ o];
  w.bar.arrive_and_wait();
  T r;
  std::memcpy(&r, &got, sizeof(T));
  return r;
}

inline float atomicAdd(float *p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
[[noreturn]] inline void __trap() { std::abort(); }
inline size_t __cvta_generic_to_shared(const void *p) { return (size_t)p; }

inline cudaError_t cudaGetLastError() { return (cudaError_t)rk_emu::launch_error.exchange(0); }
inline const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
template <typename K>
cudaError_t cudaFuncSetAttribute(K, cudaFuncAttribute, int) { return cudaSuccess; }
inline cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                                     size_t height, cudaMemcpyKind, cudaStream_t) {
  for (size_t r = 0; r < height; r++) std::memcpy((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
  return cudaSuccess;
}

// Host-side runtime used by the check program.
inline cudaError_t cudaMalloc(void **p, size_t n) {
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorInvalidValue;
}
template <typename T>
cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
inline cudaError_t cudaFree(void *p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
  std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemset(void *d, int v, size_t n) {
  std::memset(d, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int *n) {
  *n = 1;
  return cudaSuccess;
}
struct cudaDeviceProp {
  char name[256];
  int major, minor, multiProcessorCount;
};
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
  std::strcpy(p->name, "CPU emulator (kernels/emu)");
  p->major = 8;  // passes the bindings' sm_80 check
  p->minor = 0;
  p->multiProcessorCount = 1;
  return cudaSuccess;
}

// Models of the warp-wide matrix instructions the bf16 GEMM uses, written
// from the PTX ISA's fragment layouts (g = lane/4, t = lane%4).
namespace rk_emu {

inline void cp_async16(void *smem, const void *gmem, bool pred) {
  if (pred) std::memcpy(smem, gmem, 16);
  else std::memset(smem, 0, 16);
}

// ldmatrix.m8n8.x4(.trans).b16: lanes 8i..8i+7 give the row addresses of
// matrix i; register i of lane l holds row g, columns 2t and 2t+1 (low half
// first), or with .trans rows 2t and 2t+1 of column g.
inline void ldmatrix_x4(uint32_t *r, const void *p, bool trans) {
  Warp &w = warp();
  const int l = lane(), g = l / 4, t = l % 4;
  w.addr[l] = p;
  w.bar.arrive_and_wait();
  for (int i = 0; i < 4; i++) {
    uint16_t lo, hi;
    if (!trans) {
      const uint16_t *row = (const uint16_t *)w.addr[8 * i + g];
      lo = row[2 * t];
      hi = row[2 * t + 1];
    } else {
      lo = ((const uint16_t *)w.addr[8 * i + 2 * t])[g];
      hi = ((const uint16_t *)w.addr[8 * i + 2 * t + 1])[g];
    }
    r[i] = (uint32_t)lo | ((uint32_t)hi << 16);
  }
  w.bar.arrive_and_wait();
}

inline float bf_lo(uint32_t v) { return rk_emu_bf2f((uint16_t)(v & 0xffff)); }
inline float bf_hi(uint32_t v) { return rk_emu_bf2f((uint16_t)(v >> 16)); }

// mma.sync.m16n8k16.row.col.f32.bf16.bf16.f32: a0 (g, 2t..2t+1), a1 (g+8,
// 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..); b0 (k 2t..2t+1, n g), b1 (k
// 2t+8.., n g); c0 c1 (g, 2t..2t+1), c2 c3 (g+8, 2t..2t+1).
inline void mma_m16n8k16_bf16(float *c, const uint32_t *a, const uint32_t *b) {
  Warp &w = warp();
  const int l = lane();
  for (int i = 0; i < 4; i++) w.frag[l][i] = a[i];
  w.frag[l][4] = b[0];
  w.frag[l][5] = b[1];
  w.bar.arrive_and_wait();
  float A[16][16], B[16][8];
  for (int L = 0; L < 32; L++) {
    const int g = L / 4, t = L % 4;
    const uint32_t *f = w.frag[L];
    A[g][2 * t] = bf_lo(f[0]), A[g][2 * t + 1] = bf_hi(f[0]);
    A[g + 8][2 * t] = bf_lo(f[1]), A[g + 8][2 * t + 1] = bf_hi(f[1]);
    A[g][2 * t + 8] = bf_lo(f[2]), A[g][2 * t + 9] = bf_hi(f[2]);
    A[g + 8][2 * t + 8] = bf_lo(f[3]), A[g + 8][2 * t + 9] = bf_hi(f[3]);
    B[2 * t][g] = bf_lo(f[4]), B[2 * t + 1][g] = bf_hi(f[4]);
    B[2 * t + 8][g] = bf_lo(f[5]), B[2 * t + 9][g] = bf_hi(f[5]);
  }
  w.bar.arrive_and_wait();
  const int g = l / 4, t = l % 4;
  for (int k = 0; k < 16; k++) {
    c[0] += A[g][k] * B[k][2 * t];
    c[1] += A[g][k] * B[k][2 * t + 1];
    c[2] += A[g + 8][k] * B[k][2 * t];
    c[3] += A[g + 8][k] * B[k][2 * t + 1];
  }
}

}  // namespace rk_emu

// Stream and memory API behind kernels/device.cu (the Go bindings' runtime):
// everything is synchronous host memory.
enum { cudaStreamNonBlocking = 1, cudaHostAllocDefault = 0 };
inline cudaError_t cudaRuntimeGetVersion(int *v) { *v = 0; return cudaSuccess; }
inline cudaError_t cudaDriverGetVersion(int *v) { *v = 0; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
  *s = (cudaStream_t)0x5eed;
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return (cudaError_t)rk_emu::launch_error.exchange(0); }
inline cudaError_t cudaHostAlloc(void **p, size_t n, unsigned) { return cudaMalloc(p, n); }
inline cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
inline cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { return cudaMemset(d, v, n); }
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(d, s, n, k);
}
inline cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  *free_bytes = *total_bytes = (size_t)1 << 34;
  return cudaSuccess;
}
