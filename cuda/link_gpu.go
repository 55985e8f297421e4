//go:build cuda && !cudaemu

package cuda

// Links the kernel library that CMake builds (make kernels) with the CUDA
// runtime; cuBLAS is there for the benchmark's reference only.

/*
#cgo LDFLAGS: ${SRCDIR}/../build/librerank_kernels.a -L/usr/local/cuda/lib64 -lcudart -lcublas -lstdc++ -lm
*/
import "C"

// emulated reports whether the kernels run on the CPU emulation.
const emulated = false
