package cpu

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// freshProbe is the size of allocFresh's probes, in bytes.
const freshProbe = 1 << 20

// allocFresh returns make([]float32, n), placed in memory the process has
// not used before when it can. The Go runtime zeroes a large allocation
// that begins in heap memory used before, which makes every page of it
// resident at once, and a large allocation takes the lowest run of free
// pages that fits: usually one beginning in the pages at the top of the
// heap that a collection has just freed. A model's weights are such an
// allocation. Zeroed, all of them are resident from the start, although
// int8 scoring writes its float32 linear weights one at a time and drops
// each once quantized (nn/infer Int8Weights), so that they are never
// resident whole; the process's peak then depends on what its last
// collection freed.
//
// So allocFresh first takes the free pages below with probes of 1 MiB,
// kept alive until the buffer is made: a probe the runtime zeroed (its
// first page resident, mincore) lay in used memory; once one does not,
// the free pages above it are fresh and the buffer goes there. The probes
// never total more than the buffer, so that they never touch more memory
// than zeroing the buffer would; they are garbage afterwards. When the
// residency cannot be read it is make.
func allocFresh(n int) []float32 {
	page := uintptr(os.Getpagesize())
	var probes [][]byte
	vec := []byte{0}
	for len(probes)*freshProbe < 4*n {
		p := make([]byte, freshProbe)
		probes = append(probes, p)
		addr := uintptr(unsafe.Pointer(&p[0])) &^ (page - 1)
		if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, addr, page, uintptr(unsafe.Pointer(&vec[0]))); e != 0 || vec[0]&1 == 0 {
			break // fresh, or residency unknown
		}
	}
	v := make([]float32, n)
	runtime.KeepAlive(probes)
	return v
}
