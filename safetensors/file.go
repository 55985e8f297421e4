package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"unsafe"
)

// File is an open safetensors file whose header has been parsed and
// validated. Tensor data is read on demand with ReadAt; reads (Raw,
// Float32) may run concurrently, but not concurrently with Close.
type File struct {
	Path     string
	Metadata map[string]string     // "__metadata__", nil when absent
	Tensors  map[string]TensorInfo // by name

	r         *os.File
	dataStart int64 // file offset of the data area: 8 + header length
}

// littleEndian is true on little-endian hosts, where F32 data is read
// straight into the output slice.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Open opens a safetensors file and parses and validates its header (see
// ParseHeader). No tensor data is read.
func Open(path string) (*File, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := open(r, path)
	if err != nil {
		r.Close()
		return nil, err
	}
	return f, nil
}

func open(r *os.File, path string) (*File, error) {
	st, err := r.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("safetensors: %s is a directory (use OpenDir for a model directory)", path)
	}
	size := st.Size()
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %d bytes, too short for a safetensors file", path, size)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	// Check the length before allocating for it; ParseHeader says why.
	if n > MaxHeaderSize || n > uint64(size-8) {
		_, _, err := ParseHeader(lenBuf[:], size)
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	buf := make([]byte, 8+n)
	copy(buf, lenBuf[:])
	if _, err := r.ReadAt(buf[8:], 8); err != nil {
		return nil, fmt.Errorf("safetensors: %s: reading the header: %w", path, err)
	}
	tensors, meta, err := ParseHeader(buf, size)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return &File{Path: path, Metadata: meta, Tensors: tensors, r: r, dataStart: 8 + int64(n)}, nil
}

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for n := range f.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Info returns the description of one tensor.
func (f *File) Info(name string) (TensorInfo, error) {
	t, ok := f.Tensors[name]
	if !ok {
		return TensorInfo{}, fmt.Errorf("safetensors: %s: no tensor %q (the file has %d tensors; see Names)", f.Path, name, len(f.Tensors))
	}
	return t, nil
}

// Raw returns a copy of a tensor's bytes as stored (little-endian).
func (f *File) Raw(name string) ([]byte, error) {
	t, err := f.Info(name)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, t.End-t.Begin)
	if err := f.readAt(buf, t, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// Float32 reads a tensor of dtype F32, F16, BF16 or F64 and returns its
// values as float32 (F64 is rounded to nearest) with its shape.
func (f *File) Float32(name string) ([]float32, []int, error) {
	t, err := f.Info(name)
	if err != nil {
		return nil, nil, err
	}
	n := t.NumElements()
	out := make([]float32, n)
	shape := append([]int(nil), t.Shape...)
	if n == 0 {
		return out, shape, nil
	}
	// The output viewed as bytes, so that data is read straight into it.
	ob := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), 4*n)
	switch t.DType {
	case F32:
		if err := f.readAt(ob, t, 0); err != nil {
			return nil, nil, err
		}
		if !littleEndian {
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(ob[4*i:]))
			}
		}
	case F16, BF16:
		// Read the 2n source bytes into the upper half of the output and
		// widen in place from the front, a chunk at a time so that each
		// chunk is still in cache: element i goes to bytes [4i, 4i+4),
		// which lie below the source bytes 2n+2j of every j > i, so nothing
		// is overwritten before it is read.
		src := ob[2*n:]
		conv := bf16Chunk
		if t.DType == F16 {
			conv = f16Chunk
		}
		for lo := 0; lo < n; lo += convChunk {
			hi := min(lo+convChunk, n)
			s := src[2*lo : 2*hi]
			if err := f.readAt(s, t, int64(2*lo)); err != nil {
				return nil, nil, err
			}
			conv(out[lo:hi], s)
		}
	case F64:
		const chunk = 1 << 16 // elements per read
		buf := make([]byte, 8*min(n, chunk))
		for lo := 0; lo < n; lo += chunk {
			hi := min(lo+chunk, n)
			b := buf[:8*(hi-lo)]
			if err := f.readAt(b, t, int64(8*lo)); err != nil {
				return nil, nil, err
			}
			for i := lo; i < hi; i++ {
				out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*(i-lo):])))
			}
		}
	default:
		return nil, nil, fmt.Errorf("safetensors: %s: tensor %q has dtype %s; Float32 reads only F32, F16, BF16 and F64 (use Raw)", f.Path, name, t.DType)
	}
	return out, shape, nil
}

// Float32Chunks reads a tensor of dtype F32, F16, BF16 or F64 as Float32
// does, but at most len(buf) values at a time into buf, calling fn with
// each chunk (a prefix of buf) and the index of its first value: a large
// tensor (a 250k-token embedding table is 1 GiB) can go to its destination
// without a second whole copy in memory, and a loader that passes the same
// buf for every tensor allocates nothing per tensor: the raw bytes are
// read into buf itself and widened in place, as Float32 does (a buffer per
// tensor left a base-sized F16 model's worth of garbage behind a load).
// fn must not keep v.
func (f *File) Float32Chunks(name string, buf []float32, fn func(off int, v []float32) error) error {
	t, err := f.Info(name)
	if err != nil {
		return err
	}
	switch t.DType {
	case F32, F16, BF16, F64:
	default:
		return fmt.Errorf("safetensors: %s: tensor %q has dtype %s; Float32Chunks reads only F32, F16, BF16 and F64 (use Raw)", f.Path, name, t.DType)
	}
	if len(buf) == 0 {
		return fmt.Errorf("safetensors: %s: reading tensor %q in chunks of an empty buffer", f.Path, name)
	}
	n, size := t.NumElements(), t.DType.Size()
	chunk := min(len(buf), max(n, 1))
	if size > 4 {
		chunk = max(1, chunk*4/size) // F64: half as many values a read
	}
	mem := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), 4*len(buf))
	if size*chunk > len(mem) {
		mem = make([]byte, size*chunk) // F64 into a buffer of one value
	}
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		c := hi - lo
		v := buf[:c]
		switch t.DType {
		case F32:
			b := mem[:4*c]
			if err := f.readAt(b, t, int64(4*lo)); err != nil {
				return err
			}
			if !littleEndian {
				for i := range v {
					v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
				}
			}
		case F16, BF16:
			// The 2c source bytes in the upper half of the chunk's 4c,
			// widened from the front (see Float32).
			src := mem[2*c : 4*c]
			if err := f.readAt(src, t, int64(2*lo)); err != nil {
				return err
			}
			conv := bf16Chunk
			if t.DType == F16 {
				conv = f16Chunk
			}
			for k := 0; k < c; k += convChunk {
				e := min(k+convChunk, c)
				conv(v[k:e], src[2*k:2*e])
			}
		case F64:
			// Narrowed from the front: value i goes to bytes [4i, 4i+4),
			// read from [8i, 8i+8) before.
			b := mem[:8*c]
			if err := f.readAt(b, t, int64(8*lo)); err != nil {
				return err
			}
			for i := range v {
				v[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
			}
		}
		if err := fn(lo, v); err != nil {
			return err
		}
	}
	return nil
}

// convChunk is the number of elements widened per read.
const convChunk = 1 << 17

// bf16Chunk widens len(dst) little-endian bfloat16 values from src.
func bf16Chunk(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(src[2*i])<<16 | uint32(src[2*i+1])<<24)
	}
}

// f16Table maps every half-precision bit pattern to its float32 value.
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = F16ToF32(uint16(i))
	}
	return &t
})

// f16Chunk widens len(dst) little-endian half-precision values from src.
func f16Chunk(dst []float32, src []byte) {
	tab := f16Table()
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = tab[uint16(src[2*i])|uint16(src[2*i+1])<<8]
	}
}

// readAt fills buf from the tensor's data starting off bytes into it.
func (f *File) readAt(buf []byte, t TensorInfo, off int64) error {
	if f.r == nil {
		return fmt.Errorf("safetensors: %s: file is closed", f.Path)
	}
	_, err := f.r.ReadAt(buf, f.dataStart+t.Begin+off)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("safetensors: %s: reading tensor %q: %w (was the file changed after opening?)", f.Path, t.Name, err)
	}
	return nil
}

// Close closes the underlying file; later reads return an error.
func (f *File) Close() error {
	if f.r == nil {
		return nil
	}
	err := f.r.Close()
	f.r = nil
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", f.Path, err)
	}
	return nil
}
