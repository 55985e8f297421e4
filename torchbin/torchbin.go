// Package torchbin reads PyTorch checkpoints written by torch.save in its
// zip format (torch ≥ 1.6): pytorch_model.bin and PEFT's
// adapter_model.bin, as torch 1.x and 2.x lay them out.
//
// The archive holds <prefix>/data.pkl (a pickled state_dict),
// <prefix>/data/<key> (the raw bytes of each storage) and, from torch 2.x,
// <prefix>/byteorder. The pickle is read by a restricted unpickler that
// knows only what a state_dict contains (collections.OrderedDict, torch's
// tensor and parameter rebuild functions, typed storages) and refuses any
// other global before anything is called: nothing from the file is ever
// executed. Tensors are read lazily, one at a time, converted to float32.
//
// rerank writes safetensors; this package only reads.
package torchbin

import (
	"archive/zip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unsafe"

	"github.com/rerank-go/rerank/safetensors"
)

// DType is a storage's element type.
type DType string

// The element types of torch's typed storages.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size is the bytes of one element.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	}
	return 1
}

// Tensor describes one entry of the state_dict.
type Tensor struct {
	DType  DType
	Shape  []int
	Stride []int // in elements
	Offset int64 // in elements, into the storage
	key    string
	numel  int64 // of the storage
}

// File is an open checkpoint. Its methods may be called concurrently,
// except Close.
type File struct {
	Path    string
	r       io.ReaderAt // the archive, for reading storages in chunks
	zr      *zip.Reader
	closer  io.Closer
	prefix  string
	big     bool
	tensors map[string]*Tensor
	names   []string
	records map[string]*zip.File
}

// Open reads the state_dict pickle of a torch zip checkpoint.
func Open(p string) (*File, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("torchbin: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("torchbin: %w", err)
	}
	tf, err := NewReader(f, st.Size(), p)
	if err != nil {
		f.Close()
		return nil, err
	}
	tf.closer = f
	return tf, nil
}

// NewReader reads a checkpoint from r (size bytes); name is used in errors.
func NewReader(r io.ReaderAt, size int64, name string) (*File, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("torchbin: %s: %s", name, fmt.Sprintf(format, a...))
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		if isLegacy(r, size) {
			return nil, fail("a legacy (pre-1.6, non-zip) torch file: load and re-save it with torch ≥ 1.6, or as safetensors")
		}
		return nil, fail("not a torch zip checkpoint: %v", err)
	}
	tf := &File{Path: name, r: r, zr: zr, records: map[string]*zip.File{}}
	for _, f := range zr.File {
		// torch.save stores every record uncompressed; a record's size
		// must then lie within the file, which bounds every allocation.
		if f.Method != zip.Store {
			return nil, fail("record %s is compressed (method %d): not written by torch.save", f.Name, f.Method)
		}
		off, err := f.DataOffset()
		if err != nil || f.CompressedSize64 != f.UncompressedSize64 || off < 0 || uint64(off)+f.UncompressedSize64 > uint64(size) {
			return nil, fail("record %s: its size does not fit in the file", f.Name)
		}
		tf.records[f.Name] = f
		if strings.HasSuffix(f.Name, "/data.pkl") && strings.Count(f.Name, "/") == 1 {
			if tf.prefix != "" {
				return nil, fail("two data.pkl records")
			}
			tf.prefix = strings.TrimSuffix(f.Name, "data.pkl")
		}
	}
	if tf.prefix == "" {
		return nil, fail("no <archive>/data.pkl record: not written by torch.save")
	}
	if bo, ok := tf.records[tf.prefix+"byteorder"]; ok {
		b, err := readRecord(bo, 16)
		if err != nil {
			return nil, fail("byteorder: %v", err)
		}
		switch strings.TrimSpace(string(b)) {
		case "little":
		case "big":
			tf.big = true
		default:
			return nil, fail("byteorder %q", b)
		}
	}
	pkl, err := readRecord(tf.records[tf.prefix+"data.pkl"], 1<<30)
	if err != nil {
		return nil, fail("data.pkl: %v", err)
	}
	top, err := unpickle(pkl)
	if err != nil {
		return nil, fail("%v", err)
	}
	d := asDict(top)
	if d == nil {
		return nil, fail("the pickle holds a %s, not a state_dict", kindOf(top))
	}
	tf.tensors = map[string]*Tensor{}
	for i, k := range d.keys {
		key, ok := k.(string)
		if !ok {
			return nil, fail("state_dict key %d is a %s, not a name", i, kindOf(k))
		}
		t, ok := d.vals[i].(*tensor)
		if !ok {
			continue // not a tensor (an _extra_state): not a weight
		}
		if _, dup := tf.tensors[key]; dup {
			return nil, fail("tensor %q twice", key)
		}
		tt, err := tf.check(key, t)
		if err != nil {
			return nil, err
		}
		tf.tensors[key] = tt
		tf.names = append(tf.names, key)
	}
	sort.Strings(tf.names)
	return tf, nil
}

// isLegacy reports the magic number of torch's pre-1.6 format.
func isLegacy(r io.ReaderAt, size int64) bool {
	b := make([]byte, 2)
	if size < 2 {
		return false
	}
	if _, err := r.ReadAt(b, 0); err != nil {
		return false
	}
	return b[0] == 0x80 && b[1] <= 5 // a bare pickle
}

func readRecord(f *zip.File, limit int64) ([]byte, error) {
	if f == nil {
		return nil, errors.New("missing")
	}
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%d bytes", f.UncompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

// check validates a tensor against its storage record.
func (tf *File) check(name string, t *tensor) (*Tensor, error) {
	rec := tf.records[tf.prefix+"data/"+t.st.key]
	if rec == nil {
		return nil, fmt.Errorf("torchbin: %s: tensor %q: storage record data/%s is missing", tf.Path, name, t.st.key)
	}
	if want := uint64(t.st.numel) * uint64(t.st.dtype.Size()); t.st.numel > 1<<40 || rec.UncompressedSize64 < want {
		return nil, fmt.Errorf("torchbin: %s: tensor %q: storage data/%s holds %d bytes, %d %s elements need %d",
			tf.Path, name, t.st.key, rec.UncompressedSize64, t.st.numel, t.st.dtype, want)
	}
	out := &Tensor{DType: t.st.dtype, Offset: t.offset, key: t.st.key, numel: t.st.numel}
	n := int64(1)
	last := t.offset // the furthest element the view reads
	for i := range t.shape {
		if t.shape[i] > 1<<40 || t.stride[i] > 1<<40 {
			return nil, fmt.Errorf("torchbin: %s: tensor %q: size %v stride %v", tf.Path, name, t.shape, t.stride)
		}
		n *= t.shape[i]
		if n > 1<<40 {
			return nil, fmt.Errorf("torchbin: %s: tensor %q: size %v is too large", tf.Path, name, t.shape)
		}
		if t.shape[i] > 0 {
			last += (t.shape[i] - 1) * t.stride[i]
		}
		out.Shape = append(out.Shape, int(t.shape[i]))
		out.Stride = append(out.Stride, int(t.stride[i]))
	}
	if n > 0 && last >= t.st.numel {
		return nil, fmt.Errorf("torchbin: %s: tensor %q: size %v, stride %v and offset %d reach past its storage of %d elements",
			tf.Path, name, t.shape, t.stride, t.offset, t.st.numel)
	}
	if n > t.st.numel {
		// Only an overlapping view (a zero stride) reads more elements
		// than its storage holds; state_dicts have none, and it would
		// let a small file ask for a huge allocation.
		return nil, fmt.Errorf("torchbin: %s: tensor %q: size %v reads more than its storage of %d elements (an overlapping view)",
			tf.Path, name, t.shape, t.st.numel)
	}
	return out, nil
}

// Names lists the tensors, sorted.
func (tf *File) Names() []string { return append([]string(nil), tf.names...) }

// Has reports whether the state_dict holds a tensor.
func (tf *File) Has(name string) bool { _, ok := tf.tensors[name]; return ok }

// Info describes a tensor.
func (tf *File) Info(name string) (Tensor, error) {
	t, ok := tf.tensors[name]
	if !ok {
		return Tensor{}, fmt.Errorf("torchbin: %s has no tensor %q", tf.Path, name)
	}
	return *t, nil
}

// Float32 reads a floating-point tensor (F32, F16, BF16, F64) as float32,
// in row-major order, and its shape.
func (tf *File) Float32(name string) ([]float32, []int, error) {
	t, ok := tf.tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("torchbin: %s has no tensor %q", tf.Path, name)
	}
	switch t.DType {
	case F32, F16, BF16, F64:
	default:
		return nil, nil, fmt.Errorf("torchbin: %s: tensor %q is %s, not floating point", tf.Path, name, t.DType)
	}
	size := t.DType.Size()
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	out := make([]float32, n)
	if n == 0 {
		return out, append([]int(nil), t.Shape...), nil
	}
	rc, err := tf.records[tf.prefix+"data/"+t.key].Open()
	if err != nil {
		return nil, nil, fmt.Errorf("torchbin: %s: tensor %q: %w", tf.Path, name, err)
	}
	defer rc.Close()
	raw := make([]byte, t.numel*int64(size))
	if _, err := io.ReadFull(rc, raw); err != nil {
		return nil, nil, fmt.Errorf("torchbin: %s: tensor %q: storage data/%s: %w", tf.Path, name, t.key, err)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if tf.big {
		order = binary.BigEndian
	}
	elem := func(i int64) float32 {
		b := raw[i*int64(size):]
		switch t.DType {
		case F32:
			return math.Float32frombits(order.Uint32(b))
		case F16:
			return safetensors.F16ToF32(order.Uint16(b))
		case BF16:
			return safetensors.BF16ToF32(order.Uint16(b))
		default:
			return float32(math.Float64frombits(order.Uint64(b)))
		}
	}
	// Walk the view's elements in row-major order.
	idx := make([]int, len(t.Shape))
	pos := t.Offset
	for i := 0; i < n; i++ {
		out[i] = elem(pos)
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			pos += int64(t.Stride[d])
			if idx[d] < t.Shape[d] {
				break
			}
			pos -= int64(t.Stride[d]) * int64(t.Shape[d])
			idx[d] = 0
		}
	}
	return out, append([]int(nil), t.Shape...), nil
}

// Float32Chunks reads a floating-point tensor as Float32 does, but at
// most len(buf) values at a time into buf, calling fn with each chunk (a
// prefix of buf) and the index of its first value, so that a large tensor
// goes to its destination without a whole copy, nor its raw bytes, in
// memory: a loader that passes the same buf for every tensor allocates
// nothing per tensor (hfmodel.Load; with a whole copy per tensor, the
// garbage of a base-sized model outgrew the model). Views whose elements
// are not contiguous in their storage (none in a state_dict) are read
// whole first. fn must not keep v.
func (tf *File) Float32Chunks(name string, buf []float32, fn func(off int, v []float32) error) error {
	t, ok := tf.tensors[name]
	if !ok {
		return fmt.Errorf("torchbin: %s has no tensor %q", tf.Path, name)
	}
	if len(buf) == 0 {
		return fmt.Errorf("torchbin: %s: reading tensor %q in chunks of an empty buffer", tf.Path, name)
	}
	n, contiguous := 1, true
	for d := len(t.Shape) - 1; d >= 0; d-- {
		if t.Shape[d] != 1 && t.Stride[d] != n {
			contiguous = false
		}
		n *= t.Shape[d]
	}
	rec := tf.records[tf.prefix+"data/"+t.key]
	base, err := rec.DataOffset()
	if !contiguous || tf.r == nil || err != nil {
		v, _, err := tf.Float32(name)
		if err != nil {
			return err
		}
		for off := 0; off < len(v); off += len(buf) {
			c := buf[:copy(buf, v[off:])]
			if err := fn(off, c); err != nil {
				return err
			}
		}
		return nil
	}
	switch t.DType {
	case F32, F16, BF16, F64:
	default:
		return fmt.Errorf("torchbin: %s: tensor %q is %s, not floating point", tf.Path, name, t.DType)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if tf.big {
		order = binary.BigEndian
	}
	size := t.DType.Size()
	// The raw bytes are read into buf's own memory: at its end for
	// types of up to 4 bytes, widened front to back (value i is written
	// at bytes 4i, never over raw values not yet read), and at its start
	// for F64, in chunks of half as many values.
	chunk := len(buf)
	if size > 4 {
		chunk = max(1, len(buf)*4/size)
	}
	mem := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), 4*len(buf))
	if size*chunk > len(mem) {
		mem = make([]byte, size*chunk) // F64 into a buffer of one value
	}
	for lo := 0; lo < n; lo += chunk {
		c := min(chunk, n-lo)
		at := 4*c - size*c
		if size > 4 {
			at = 0
		}
		raw := mem[at : at+size*c]
		if _, err := tf.r.ReadAt(raw, base+(t.Offset+int64(lo))*int64(size)); err != nil {
			return fmt.Errorf("torchbin: %s: tensor %q: storage data/%s: %w", tf.Path, name, t.key, err)
		}
		v := buf[:c]
		for i := range v {
			b := raw[i*size:]
			var x float32
			switch t.DType {
			case F32:
				x = math.Float32frombits(order.Uint32(b))
			case F16:
				x = safetensors.F16ToF32(order.Uint16(b))
			case BF16:
				x = safetensors.BF16ToF32(order.Uint16(b))
			default:
				x = float32(math.Float64frombits(order.Uint64(b)))
			}
			v[i] = x
		}
		if err := fn(lo, v); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the file.
func (tf *File) Close() error {
	if tf.closer != nil {
		return tf.closer.Close()
	}
	return nil
}

// Set is the weights of a directory: pytorch_model.bin, or
// pytorch_model.bin.index.json and its shards.
type Set struct {
	Dir   string
	files []*File
	where map[string]*File
	names []string
}

// File names of a model directory's PyTorch weights.
const (
	SingleFile = "pytorch_model.bin"
	IndexFile  = "pytorch_model.bin.index.json"
)

// OpenDir opens dir/name when it exists, else dir/pytorch_model.bin.index.json
// and its shards (name is pytorch_model.bin for a model,
// adapter_model.bin for an adapter).
func OpenDir(dir, name string) (*Set, error) {
	single := filepath.Join(dir, name)
	if _, err := os.Stat(single); err == nil {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		s := &Set{Dir: dir, files: []*File{f}, where: map[string]*File{}, names: f.Names()}
		for _, n := range s.names {
			s.where[n] = f
		}
		return s, nil
	}
	index := filepath.Join(dir, strings.TrimSuffix(name, ".bin")+".bin.index.json")
	raw, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("torchbin: %s has no %s or %s", dir, name, filepath.Base(index))
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("torchbin: %s: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("torchbin: %s: no \"weight_map\" entries", index)
	}
	s := &Set{Dir: dir, where: map[string]*File{}}
	shards := map[string]*File{}
	for _, t := range sortedKeys(idx.WeightMap) {
		shard := idx.WeightMap[t]
		f, ok := shards[shard]
		if !ok {
			if shard == "" || shard != path.Base(shard) || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
				s.Close()
				return nil, fmt.Errorf("torchbin: %s: tensor %q maps to %q, which is not a file name in the directory", index, t, shard)
			}
			f, err = Open(filepath.Join(dir, shard))
			if err != nil {
				s.Close()
				return nil, err
			}
			shards[shard] = f
			s.files = append(s.files, f)
		}
		if !f.Has(t) {
			s.Close()
			return nil, fmt.Errorf("torchbin: %s: tensor %q is mapped to %s, which does not contain it", index, t, shard)
		}
		s.where[t] = f
		s.names = append(s.names, t)
	}
	return s, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Names lists the tensors, sorted.
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Has reports whether the set holds a tensor.
func (s *Set) Has(name string) bool { _, ok := s.where[name]; return ok }

// Info describes a tensor.
func (s *Set) Info(name string) (Tensor, error) {
	f, ok := s.where[name]
	if !ok {
		return Tensor{}, fmt.Errorf("torchbin: %s has no tensor %q", s.Dir, name)
	}
	return f.Info(name)
}

// Float32 reads a tensor as float32 (see File.Float32).
func (s *Set) Float32(name string) ([]float32, []int, error) {
	f, ok := s.where[name]
	if !ok {
		return nil, nil, fmt.Errorf("torchbin: %s has no tensor %q", s.Dir, name)
	}
	return f.Float32(name)
}

// Float32Chunks reads a tensor in chunks (see File.Float32Chunks).
func (s *Set) Float32Chunks(name string, buf []float32, fn func(off int, v []float32) error) error {
	f, ok := s.where[name]
	if !ok {
		return fmt.Errorf("torchbin: %s has no tensor %q", s.Dir, name)
	}
	return f.Float32Chunks(name, buf, fn)
}

// Close closes every file.
func (s *Set) Close() error {
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
