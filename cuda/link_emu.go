//go:build cuda && cudaemu

package cuda

// With the extra tag cudaemu the package links the CPU emulation of the
// kernels (bash kernels/emu/build.sh), so the bindings and their tests run
// without a GPU: go test -tags cuda,cudaemu ./cuda/. Slow; for tests only.

/*
#cgo LDFLAGS: ${SRCDIR}/../build/emu/librerank_kernels_emu.a -lstdc++ -lm -lpthread -ldl
*/
import "C"

// emulated reports whether the kernels run on the CPU emulation.
const emulated = true
