package cpu

import (
	"syscall"
	"unsafe"

	"github.com/rerank-go/rerank/backend"
)

// Discard implements backend.Discarder: madvise(MADV_DONTNEED) on the
// whole pages inside b, which then read as zeros. The garbage collector
// does not mind: a float32 slice holds no pointers, and memory the
// runtime reuses is zeroed anew.
func (*Backend) Discard(b backend.Buf) int64 {
	v := f(b)
	if len(v) == 0 {
		return 0
	}
	page := uintptr(syscall.Getpagesize())
	lo := uintptr(unsafe.Pointer(&v[0]))
	hi := lo + uintptr(len(v))*4
	start, end := (lo+page-1)&^(page-1), hi&^(page-1)
	if end <= start {
		return 0
	}
	first := (start - lo) / 4 // lo is 4-aligned, page a multiple of 4
	if err := syscall.Madvise(unsafe.Slice((*byte)(unsafe.Pointer(&v[first])), end-start), syscall.MADV_DONTNEED); err != nil {
		return 0
	}
	return int64(end - start)
}
