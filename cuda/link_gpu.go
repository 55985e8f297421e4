//go:build cuda && !cudaemu

package cuda

// Links the kernel library that CMake builds (make kernels) with the CUDA
// runtime linked statically (libcudart_static), so that the binary needs
// only the driver's libcuda.so.1, which the runtime opens itself. cuBLAS
// (the benchmark's reference) is opened at run time: kernels/dynload.h.

/*
#cgo LDFLAGS: ${SRCDIR}/../build/librerank_kernels.a -L/usr/local/cuda/lib64 -L/usr/local/cuda/targets/x86_64-linux/lib -lcudart_static -lstdc++ -lm -ldl -lpthread -lrt
*/
import "C"

// emulated reports whether the kernels run on the CPU emulation.
const emulated = false
