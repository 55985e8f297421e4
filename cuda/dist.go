//go:build cuda

package cuda

import (
	"unsafe"

	"github.com/rerank-go/rerank/backend"
)

// Stream is the backend's CUDA stream (a cudaStream_t), for libraries
// that queue work beside the backend's (NCCL in package dist): they order
// themselves against it with events.
func (b *Backend) Stream() unsafe.Pointer { return b.stream }

// Device is the CUDA device ordinal the backend runs on.
func (b *Backend) Device() int { return b.opt.Device }

// DevicePtr returns the device address and length (float32 values) of a
// buffer of a cuda Backend.
func DevicePtr(buf backend.Buf) (unsafe.Pointer, int) {
	x := buf.(*Buf)
	return x.ptr, x.n
}
