package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unsafe"

	"github.com/rerank-go/rerank/internal/atomicfile"
)

// Tensor is one tensor to write: Data holds the element bytes,
// little-endian, row-major, len(Data) = DType.Size() × product(Shape).
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// F32Tensor returns a float32 tensor holding a copy of v.
func F32Tensor(name string, shape []int, v []float32) Tensor {
	data := make([]byte, 4*len(v))
	if littleEndian && len(v) > 0 {
		copy(data, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v)))
	} else {
		for i, x := range v {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
		}
	}
	return Tensor{Name: name, DType: F32, Shape: append([]int(nil), shape...), Data: data}
}

// F32View is F32Tensor without the copy on little-endian machines: Data
// views v's memory, so v must stay unchanged until the tensor is written.
// Writers of large models use it to hold the weights once, not twice.
func F32View(name string, shape []int, v []float32) Tensor {
	if !littleEndian || len(v) == 0 {
		return F32Tensor(name, shape, v)
	}
	data := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
	return Tensor{Name: name, DType: F32, Shape: append([]int(nil), shape...), Data: data}
}

// BF16Tensor returns a bfloat16 tensor of v, rounded to nearest even.
func BF16Tensor(name string, shape []int, v []float32) Tensor {
	data := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(data[2*i:], F32ToBF16(x))
	}
	return Tensor{Name: name, DType: BF16, Shape: append([]int(nil), shape...), Data: data}
}

// F16Tensor returns a half-precision tensor of v, rounded to nearest even.
func F16Tensor(name string, shape []int, v []float32) Tensor {
	data := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(data[2*i:], F32ToF16(x))
	}
	return Tensor{Name: name, DType: F16, Shape: append([]int(nil), shape...), Data: data}
}

// Write writes tensors to a safetensors file at path, atomically: it
// writes a temporary file in the same directory, syncs it and renames it
// over path, so readers never see a partial file.
//
// The layout is that of Hugging Face's writer, byte for byte: tensors in
// order of decreasing dtype alignment and then by name (for a file of one
// dtype, simply by name), data back to back from offset 0; a compact JSON
// header with "__metadata__" first, padded with spaces to a multiple of 8
// bytes. metadata nil means {"format": "pt"}, as transformers writes; an
// empty non-nil map writes no "__metadata__". Metadata keys are written
// sorted (HF's order for several keys is unspecified).
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	header, order, err := buildHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(header); err != nil {
			return err
		}
		for _, t := range order {
			if _, err := w.Write(t.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// WriteFloat32 writes float32 tensors (see Write); shapes must give the
// shape of every tensor.
func WriteFloat32(path string, tensors map[string][]float32, shapes map[string][]int, metadata map[string]string) error {
	list := make([]Tensor, 0, len(tensors))
	for name, v := range tensors {
		shape, ok := shapes[name]
		if !ok {
			return fmt.Errorf("safetensors: writing %s: no shape given for tensor %q", path, name)
		}
		list = append(list, F32Tensor(name, shape, v))
	}
	for name := range shapes {
		if _, ok := tensors[name]; !ok {
			return fmt.Errorf("safetensors: writing %s: shape given for tensor %q, which has no values", path, name)
		}
	}
	return Write(path, list, metadata)
}

// buildHeader validates the tensors and returns the padded header and the
// tensors in file order.
func buildHeader(tensors []Tensor, metadata map[string]string) ([]byte, []*Tensor, error) {
	order := make([]*Tensor, len(tensors))
	seen := make(map[string]bool, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		if t.Name == metadataKey {
			return nil, nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		}
		if seen[t.Name] {
			return nil, nil, fmt.Errorf("duplicate tensor %q", t.Name)
		}
		seen[t.Name] = true
		if !t.DType.Valid() {
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q (known: %s)", t.Name, t.DType, knownDTypes)
		}
		want, ok := byteSize(t.DType, t.Shape)
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q: invalid shape %v (negative or overflowing)", t.Name, t.Shape)
		}
		if uint64(len(t.Data)) != want {
			return nil, nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, data has %d", t.Name, t.Shape, t.DType, want, len(t.Data))
		}
		order[i] = t
	}
	sort.Slice(order, func(i, j int) bool {
		ri, rj := dtypeInfo[order[i].DType].rank, dtypeInfo[order[j].DType].rank
		if ri != rj {
			return ri > rj
		}
		return order[i].Name < order[j].Name
	})

	if metadata == nil {
		metadata = map[string]string{"format": "pt"}
	}
	h := make([]byte, 0, 128*len(order)+64)
	h = append(h, '{')
	first := true
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		h = appendJSONString(h, metadataKey)
		h = append(h, ":{"...)
		for i, k := range keys {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendJSONString(h, k)
			h = append(h, ':')
			h = appendJSONString(h, metadata[k])
		}
		h = append(h, '}')
		first = false
	}
	var off uint64
	for _, t := range order {
		if !first {
			h = append(h, ',')
		}
		first = false
		h = appendJSONString(h, t.Name)
		h = append(h, `:{"dtype":`...)
		h = appendJSONString(h, string(t.DType))
		h = append(h, `,"shape":[`...)
		for i, d := range t.Shape {
			if i > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, int64(d), 10)
		}
		h = append(h, `],"data_offsets":[`...)
		h = strconv.AppendUint(h, off, 10)
		h = append(h, ',')
		off += uint64(len(t.Data))
		h = strconv.AppendUint(h, off, 10)
		h = append(h, "]}"...)
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	if len(h) > MaxHeaderSize {
		return nil, nil, fmt.Errorf("header of %d bytes exceeds the %d-byte limit", len(h), MaxHeaderSize)
	}
	return h, order, nil
}

// appendJSONString quotes s as serde_json (HF's writer) does: only '"',
// '\\' and control characters are escaped; other characters, non-ASCII
// included, are written as they are.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b = append(b, '\\', '"')
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
