// Package cuda implements backend.Backend on an NVIDIA GPU, over the
// hand-written kernels of librerank_kernels.a (kernels/, C ABI in
// kernels/rerank_kernels.h).
//
// The implementation is behind the build tag "cuda", so the default build
// needs no CUDA toolkit. Build it in this order:
//
//	make kernels              # cmake -S . -B build && cmake --build build
//	go build -tags cuda ./... # links build/librerank_kernels.a and libcudart_static
//
// Nothing CUDA-version-specific is linked: the runtime is static, and
// cuBLAS (the benchmark's reference) and NVML (cuda/nvmon) are opened at
// run time, found as kernels/dynload.h and cuda/libpath say. Probe and
// `rerank cuda-info` report what was found; without a usable GPU, New's
// error wraps ErrNoDevice ("no CUDA device"). make gpu-bundle packs the
// cuda-tagged binaries for GPU machines without Go (scripts/gpu-check.sh).
//
// Semantics are those of backend.Backend, checked against backend/cpu by
// the cuda-tagged tests (go test -tags cuda ./cuda/). Operations are queued
// on one stream; the first failure (a launch error, an out-of-memory, a bad
// argument) is recorded, the work after it is skipped, and Sync reports it
// naming the operation. A fault inside a kernel surfaces at the next Sync;
// RERANK_CUDA_SYNC=1 synchronises after every operation so the error names
// the kernel that faulted.
//
// With the extra tag "cudaemu" the package links the CPU emulation of the
// kernels instead (bash kernels/emu/build.sh; make kernels-emu), so the
// bindings and their tests run without a GPU or nvcc.
//
// Without the tag this package is empty apart from this comment; the
// GPU memory monitor lives in cuda/nvmon and builds either way.
package cuda
