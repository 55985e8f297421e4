//go:build cuda

package cuda

/*
#cgo CFLAGS: -I${SRCDIR}/../kernels
#include <stdlib.h>
#include "rerank_kernels.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"unsafe"

	"github.com/rerank-go/rerank/backend"
)

// Buf is a view of device memory holding float32 values.
type Buf struct {
	ptr   unsafe.Pointer
	n     int
	block *block // non-nil only for the whole buffer Alloc returned
}

// Len implements backend.Buf.
func (b *Buf) Len() int { return b.n }

// Slice implements backend.Buf; like a Go slice expression it panics when
// the view would leave the buffer.
func (b *Buf) Slice(off, n int) backend.Buf {
	if off < 0 || n < 0 || off+n > b.n {
		panic(fmt.Sprintf("cuda: Slice(%d, %d) of a buffer of %d values", off, n, b.n))
	}
	return &Buf{ptr: unsafe.Add(b.ptr, 4*off), n: n}
}

// IntBuf is a view of device memory holding int32 values.
type IntBuf struct {
	ptr   unsafe.Pointer
	n     int
	block *block
}

// Len implements backend.IntBuf.
func (b *IntBuf) Len() int { return b.n }

// Slice implements backend.IntBuf.
func (b *IntBuf) Slice(off, n int) backend.IntBuf {
	if off < 0 || n < 0 || off+n > b.n {
		panic(fmt.Sprintf("cuda: Slice(%d, %d) of an int buffer of %d values", off, n, b.n))
	}
	return &IntBuf{ptr: unsafe.Add(b.ptr, 4*off), n: n}
}

// block is one device allocation owned by the caching allocator.
type block struct {
	ptr   unsafe.Pointer
	bytes int
}

// Options configure New.
type Options struct {
	// Device is the CUDA device ordinal.
	Device int
	// BF16 runs Gemm and attention (forward and backward) on
	// tensor cores with bf16 operands (rounded from the float32 buffers) and
	// float32 accumulation. Everything else stays float32.
	BF16 bool
	// SyncEach synchronises after every operation, so an error names the
	// kernel that faulted (slow; also set by RERANK_CUDA_SYNC=1).
	SyncEach bool
}

// Backend runs backend.Backend on one GPU. It is not safe for concurrent
// use: like the model code that drives it, it expects one goroutine.
type Backend struct {
	opt    Options
	name   string
	stream unsafe.Pointer

	err    error
	lastOp string

	// caching allocator: freed blocks by rounded size
	free            map[int][]*block
	inUse, cached   int64
	peakUse, allocs int64
	stage           unsafe.Pointer // pinned staging buffer
	stageBytes      int
	closeOnce       sync.Once
	closed          bool
}

var _ backend.Backend = (*Backend)(nil)

// cudaErr turns a return code into an error naming op; nil for 0.
func cudaErr(op string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	var buf [256]C.char
	C.rk_error_string(rc, &buf[0], C.int(len(buf)))
	return fmt.Errorf("%s: %s (error %d)", op, C.GoString(&buf[0]), int(rc))
}

// New opens the device and creates the backend's stream.
func New(opt Options) (*Backend, error) {
	rt, err := Probe()
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	if opt.Device < 0 || opt.Device >= len(rt.Devices) {
		return nil, fmt.Errorf("cuda: device %d does not exist (%d visible)", opt.Device, len(rt.Devices))
	}
	if err := cudaErr("cudaSetDevice", C.rk_set_device(C.int(opt.Device))); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	var name [128]C.char
	var major, minor, sms C.int
	if err := cudaErr("cudaGetDeviceProperties", C.rk_device_info(C.int(opt.Device), &name[0], C.int(len(name)), &major, &minor, &sms)); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	if major < 8 {
		return nil, fmt.Errorf("cuda: %s is sm_%d%d; the kernels are built for sm_80 and newer", C.GoString(&name[0]), int(major), int(minor))
	}
	b := &Backend{opt: opt, free: map[int][]*block{}}
	if os.Getenv("RERANK_CUDA_SYNC") == "1" {
		b.opt.SyncEach = true
	}
	b.name = fmt.Sprintf("cuda:%d", opt.Device)
	if err := cudaErr("cudaStreamCreate", C.rk_stream_create(&b.stream)); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	return b, nil
}

// DeviceName is the GPU's marketing name.
func (b *Backend) DeviceName() string {
	var name [128]C.char
	var major, minor, sms C.int
	if C.rk_device_info(C.int(b.opt.Device), &name[0], C.int(len(name)), &major, &minor, &sms) != 0 {
		return "unknown"
	}
	return fmt.Sprintf("%s (sm_%d%d, %d SMs)", C.GoString(&name[0]), int(major), int(minor), int(sms))
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return b.name }

// Close synchronises, then frees every device and pinned allocation the
// backend holds. Buffers must not be used afterwards.
func (b *Backend) Close() error {
	var err error
	b.closeOnce.Do(func() {
		err = b.Sync()
		b.ReleaseCache()
		if b.stage != nil {
			C.rk_host_free(b.stage)
			b.stage, b.stageBytes = nil, 0
		}
		if b.stream != nil {
			C.rk_stream_destroy(b.stream)
			b.stream = nil
		}
		b.closed = true
	})
	return err
}

// MemStats reports the allocator's bytes: in use by live buffers, cached
// for reuse, and the peak in use since New.
type MemStats struct {
	InUse, Cached, Peak, Allocs int64
}

// MemStats returns the caching allocator's counters.
func (b *Backend) MemStats() MemStats {
	return MemStats{InUse: b.inUse, Cached: b.cached, Peak: b.peakUse, Allocs: b.allocs}
}

// ReleaseCache returns cached (freed but kept) blocks to the driver.
func (b *Backend) ReleaseCache() {
	C.rk_stream_sync(b.stream)
	for size, list := range b.free {
		for _, blk := range list {
			C.rk_free(blk.ptr)
			b.cached -= int64(blk.bytes)
		}
		delete(b.free, size)
	}
}

// roundSize picks the cached block size for a request: 512-byte steps up
// to 1 MiB, 2 MiB steps above, so that blocks are reused across shapes.
func roundSize(bytes int) int {
	if bytes <= 0 {
		return 512
	}
	if bytes <= 1<<20 {
		return (bytes + 511) &^ 511
	}
	return (bytes + (2<<20 - 1)) &^ (2<<20 - 1)
}

// alloc returns a block of at least bytes, from the cache or the driver.
// On out-of-memory it releases the cache and tries once more.
func (b *Backend) alloc(bytes int) (*block, error) {
	size := roundSize(bytes)
	if list := b.free[size]; len(list) > 0 {
		blk := list[len(list)-1]
		b.free[size] = list[:len(list)-1]
		b.cached -= int64(size)
		b.use(size)
		return blk, nil
	}
	var p unsafe.Pointer
	rc := C.rk_malloc(&p, C.size_t(size))
	if rc != 0 {
		C.rk_last_error() // clear the sticky-free allocation error
		b.ReleaseCache()
		rc = C.rk_malloc(&p, C.size_t(size))
		if rc != 0 {
			C.rk_last_error()
			return nil, fmt.Errorf("cuda: %w (asked for %d bytes; %d in use, %d cached)", cudaErr("cudaMalloc", rc), size, b.inUse, b.cached)
		}
	}
	b.allocs++
	b.use(size)
	return &block{ptr: p, bytes: size}, nil
}

func (b *Backend) use(size int) {
	b.inUse += int64(size)
	if b.inUse > b.peakUse {
		b.peakUse = b.inUse
	}
}

// release returns a block to the cache. Work queued on the stream that
// still uses it runs before any later user, as both are on one stream.
func (b *Backend) release(blk *block) {
	b.free[blk.bytes] = append(b.free[blk.bytes], blk)
	b.inUse -= int64(blk.bytes)
	b.cached += int64(blk.bytes)
}

// Alloc implements backend.Backend.
func (b *Backend) Alloc(n int) (backend.Buf, error) {
	if n < 0 {
		return nil, fmt.Errorf("cuda: alloc of %d values", n)
	}
	blk, err := b.alloc(4 * n)
	if err != nil {
		return nil, err
	}
	if err := cudaErr("cudaMemsetAsync", C.rk_memset(b.stream, blk.ptr, 0, C.size_t(4*n))); err != nil {
		b.release(blk)
		return nil, fmt.Errorf("cuda: %w", err)
	}
	return &Buf{ptr: blk.ptr, n: n, block: blk}, nil
}

// AllocInt implements backend.Backend.
func (b *Backend) AllocInt(n int) (backend.IntBuf, error) {
	if n < 0 {
		return nil, fmt.Errorf("cuda: alloc of %d values", n)
	}
	blk, err := b.alloc(4 * n)
	if err != nil {
		return nil, err
	}
	if err := cudaErr("cudaMemsetAsync", C.rk_memset(b.stream, blk.ptr, 0, C.size_t(4*n))); err != nil {
		b.release(blk)
		return nil, fmt.Errorf("cuda: %w", err)
	}
	return &IntBuf{ptr: blk.ptr, n: n, block: blk}, nil
}

// Free implements backend.Backend: the memory goes back to the cache.
// Slices and foreign values are ignored.
func (b *Backend) Free(x any) {
	switch v := x.(type) {
	case *Buf:
		if v != nil && v.block != nil {
			b.release(v.block)
			v.block, v.ptr, v.n = nil, nil, 0
		}
	case *IntBuf:
		if v != nil && v.block != nil {
			b.release(v.block)
			v.block, v.ptr, v.n = nil, nil, 0
		}
	}
}

// scratch allocates n temporary float32 values; give them back with
// b.release(blk) once the work using them is queued.
func (b *Backend) scratch(op string, n int) (*block, bool) {
	blk, err := b.alloc(4 * max(n, 1))
	if err != nil {
		b.fail(fmt.Errorf("%s: scratch: %w", op, err))
		return nil, false
	}
	return blk, true
}

// fail records the first error, prefixed "cuda: " unless it has it.
func (b *Backend) fail(err error) {
	if b.err == nil && err != nil {
		if strings.HasPrefix(err.Error(), "cuda: ") {
			b.err = err
		} else {
			b.err = fmt.Errorf("cuda: %w", err)
		}
	}
}

// ok reports whether work may still be queued; after Close it records
// an error instead.
func (b *Backend) ok() bool {
	if b.closed {
		b.fail(errors.New("backend used after Close"))
		return false
	}
	return b.err == nil
}

// check records a kernel call's result under op, and synchronises when
// SyncEach is set so faults are attributed to op.
func (b *Backend) check(op string, rc C.int) {
	b.lastOp = op
	if rc != 0 {
		b.fail(cudaErr(op, rc))
		return
	}
	if b.opt.SyncEach {
		if rc := C.rk_stream_sync(b.stream); rc != 0 {
			b.fail(cudaErr(op, rc))
		}
	}
}

// badArg records an argument error for op.
func (b *Backend) badArg(op, format string, args ...any) {
	b.fail(fmt.Errorf("%s: %s", op, fmt.Sprintf(format, args...)))
}

// Sync implements backend.Backend.
func (b *Backend) Sync() error {
	if b.closed {
		b.fail(errors.New("backend used after Close"))
	} else if rc := C.rk_stream_sync(b.stream); rc != 0 {
		b.fail(fmt.Errorf("%w (a kernel faulted; the last op queued was %s; rerun with RERANK_CUDA_SYNC=1 to name the faulting one)",
			cudaErr("synchronize", rc), b.lastOp))
	}
	err := b.err
	b.err = nil
	return err
}

// f returns the device pointer of a float buffer; nil for a nil Buf.
func f(x backend.Buf) *C.float {
	if x == nil {
		return nil
	}
	v, ok := x.(*Buf)
	if !ok || v == nil {
		return nil
	}
	return (*C.float)(v.ptr)
}

func ip(x backend.IntBuf) *C.int32_t {
	v, ok := x.(*IntBuf)
	if !ok || v == nil {
		return nil
	}
	return (*C.int32_t)(v.ptr)
}

// own reports whether every non-nil buffer is one of this package's, and
// records an error naming op otherwise.
func (b *Backend) own(op string, bufs ...backend.Buf) bool {
	for i, x := range bufs {
		if x == nil {
			continue
		}
		if v, ok := x.(*Buf); !ok || v == nil || v.ptr == nil && v.n > 0 {
			b.badArg(op, "argument %d is a %T, not a live cuda buffer", i, x)
			return false
		}
	}
	return true
}

// need records an error unless x holds at least n values.
func (b *Backend) need(op, what string, x backend.Buf, n int) bool {
	if x == nil {
		b.badArg(op, "%s is nil", what)
		return false
	}
	if x.Len() < n {
		b.badArg(op, "%s holds %d values, needs %d", what, x.Len(), n)
		return false
	}
	return true
}

// stageFor returns a pinned buffer of at least bytes (at most 64 MiB; larger
// copies go through it in chunks).
func (b *Backend) stageFor(bytes int) (unsafe.Pointer, int, error) {
	const maxStage = 64 << 20
	want := min(max(bytes, 1<<20), maxStage)
	if b.stageBytes < want {
		if b.stage != nil {
			C.rk_stream_sync(b.stream)
			C.rk_host_free(b.stage)
			b.stage, b.stageBytes = nil, 0
		}
		var p unsafe.Pointer
		if err := cudaErr("cudaHostAlloc", C.rk_host_alloc(&p, C.size_t(want))); err != nil {
			return nil, 0, err
		}
		b.stage, b.stageBytes = p, want
	}
	return b.stage, b.stageBytes, nil
}

// upload copies bytes from host memory to dst through the pinned stage.
func (b *Backend) upload(op string, dst unsafe.Pointer, src unsafe.Pointer, bytes int) {
	stage, size, err := b.stageFor(bytes)
	if err != nil {
		b.fail(fmt.Errorf("%s: %w", op, err))
		return
	}
	for off := 0; off < bytes; off += size {
		n := min(size, bytes-off)
		// The previous chunk's copy must have left the stage.
		if rc := C.rk_stream_sync(b.stream); rc != 0 {
			b.check(op, rc)
			return
		}
		copy(unsafe.Slice((*byte)(stage), n), unsafe.Slice((*byte)(unsafe.Add(src, off)), n))
		b.check(op, C.rk_memcpy_h2d(b.stream, unsafe.Add(dst, off), stage, C.size_t(n)))
		if !b.ok() {
			return
		}
	}
	b.check(op, C.rk_stream_sync(b.stream))
}

// download copies bytes from src to host memory through the pinned stage.
func (b *Backend) download(op string, dst unsafe.Pointer, src unsafe.Pointer, bytes int) {
	stage, size, err := b.stageFor(bytes)
	if err != nil {
		b.fail(fmt.Errorf("%s: %w", op, err))
		return
	}
	for off := 0; off < bytes; off += size {
		n := min(size, bytes-off)
		b.check(op, C.rk_memcpy_d2h(b.stream, stage, unsafe.Add(src, off), C.size_t(n)))
		if !b.ok() {
			return
		}
		if rc := C.rk_stream_sync(b.stream); rc != 0 {
			b.check(op, rc)
			return
		}
		copy(unsafe.Slice((*byte)(unsafe.Add(dst, off)), n), unsafe.Slice((*byte)(stage), n))
	}
}

// Upload implements backend.Backend.
func (b *Backend) Upload(dst backend.Buf, src []float32) {
	if !b.ok() || len(src) == 0 || !b.own("Upload", dst) || !b.need("Upload", "dst", dst, len(src)) {
		return
	}
	b.upload("Upload", dst.(*Buf).ptr, unsafe.Pointer(&src[0]), 4*len(src))
}

// Download implements backend.Backend. On a recorded error dst is filled
// with NaN, so a caller that forgets Sync does not read stale numbers.
func (b *Backend) Download(dst []float32, src backend.Buf) {
	if len(dst) == 0 {
		return
	}
	if b.ok() && b.own("Download", src) && b.need("Download", "src", src, len(dst)) {
		b.download("Download", unsafe.Pointer(&dst[0]), src.(*Buf).ptr, 4*len(dst))
	}
	if !b.ok() {
		nan := float32(math.NaN())
		for i := range dst {
			dst[i] = nan
		}
	}
}

// UploadInt implements backend.Backend.
func (b *Backend) UploadInt(dst backend.IntBuf, src []int32) {
	if !b.ok() || len(src) == 0 {
		return
	}
	d, ok := dst.(*IntBuf)
	if !ok || d == nil || d.n < len(src) {
		b.badArg("UploadInt", "dst is not a cuda int buffer of at least %d values", len(src))
		return
	}
	b.upload("UploadInt", d.ptr, unsafe.Pointer(&src[0]), 4*len(src))
}

// DownloadInt copies int32 values back to the host (for tests and tools).
func (b *Backend) DownloadInt(dst []int32, src backend.IntBuf) {
	s, ok := src.(*IntBuf)
	if !b.ok() || len(dst) == 0 || !ok || s.n < len(dst) {
		return
	}
	b.download("DownloadInt", unsafe.Pointer(&dst[0]), s.ptr, 4*len(dst))
}
