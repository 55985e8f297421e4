package nntest

import (
	"os"
	"syscall"
	"unsafe"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
)

// ResidentSupported reports whether ResidentBytes can tell (Linux).
const ResidentSupported = true

// ResidentBytes returns the bytes of the whole pages inside the
// parameters' CPU buffers that are resident in memory (mincore), -1 if
// it cannot tell: what a loader really holds of them, as the process's
// RSS counts it.
func ResidentBytes(ps []*nn.Param) int64 {
	page := uintptr(os.Getpagesize())
	var n int64
	vec := make([]byte, 0, 1024)
	for _, p := range ps {
		v, ok := p.W.(cpu.F32)
		if !ok || len(v) == 0 {
			return -1
		}
		lo := uintptr(unsafe.Pointer(&v[0]))
		start, end := (lo+page-1)&^(page-1), (lo+uintptr(len(v))*4)&^(page-1)
		for a := start; a < end; a += 1024 * page {
			b := min(end, a+1024*page)
			vec = vec[:(b-a)/page]
			if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, a, b-a, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
				return -1
			}
			for _, r := range vec {
				if r&1 != 0 {
					n += int64(page)
				}
			}
		}
	}
	return n
}

// DiscardAll gives the pages of the parameters back to the system (they
// read as zeros, as a fresh allocation does): the Go runtime zeroes a
// large allocation that reuses heap memory, which makes every page
// resident; a test of what a loader makes resident starts from none.
func DiscardAll(be *cpu.Backend, ps []*nn.Param) {
	for _, p := range ps {
		be.Discard(p.W)
	}
}
