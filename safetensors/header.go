package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header accepted, as in Hugging Face's
// safetensors library.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding the string metadata.
const metadataKey = "__metadata__"

// TensorInfo describes one tensor of a file. Begin and End are byte offsets
// relative to the start of the data area (just after the header).
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// ParseHeader parses and validates the header of a safetensors file.
//
// b holds the start of the file: the 8-byte little-endian header length N
// followed by at least N header bytes (anything after them is ignored, so b
// may be the whole file). fileSize is the size of the whole file; the tensor
// data must exactly fill bytes 8+N … fileSize. It returns the tensors by name
// and the "__metadata__" strings (nil when absent). Bad input gives an
// error, never a panic.
func ParseHeader(b []byte, fileSize int64) (map[string]TensorInfo, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("header too small: %d bytes, need at least 8 (is this a safetensors file?)", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > MaxHeaderSize {
		return nil, nil, fmt.Errorf("header length %d exceeds the %d-byte limit (not a safetensors file, or corrupt)", n, MaxHeaderSize)
	}
	if fileSize < 8 || n > uint64(fileSize-8) {
		return nil, nil, fmt.Errorf("header length %d runs past the end of the %d-byte file (truncated or not a safetensors file)", n, fileSize)
	}
	if n > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("header length %d but only %d header bytes given", n, len(b)-8)
	}
	h := b[8 : 8+n]
	if !utf8.Valid(h) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	if len(h) == 0 || h[0] != '{' {
		return nil, nil, errors.New("header does not start with '{'")
	}
	tensors, meta, err := parseJSON(h)
	if err != nil {
		return nil, nil, fmt.Errorf("header JSON: %w", err)
	}
	// Validate the layout as HF does: sorted by offsets, the tensors must
	// tile the data area from 0 with no gap or overlap, each exactly
	// dtype size × element count long, and end at the end of the file.
	order := make([]TensorInfo, 0, len(tensors))
	for _, t := range tensors {
		order = append(order, t)
	}
	sort.Slice(order, func(i, j int) bool {
		a, c := order[i], order[j]
		if a.Begin != c.Begin {
			return a.Begin < c.Begin
		}
		if a.End != c.End {
			return a.End < c.End
		}
		return a.Name < c.Name
	})
	dataSize := fileSize - 8 - int64(n)
	var pos int64
	for _, t := range order {
		if t.End < t.Begin {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] end before they begin", t.Name, t.Begin, t.End)
		}
		if t.Begin != pos {
			if t.Begin < pos {
				return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap the previous tensor, which ends at %d", t.Name, t.Begin, t.End, pos)
			}
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a gap after byte %d of the data", t.Name, t.Begin, t.End, pos)
		}
		if t.End > dataSize {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] run past the end of the data (%d bytes; file truncated?)", t.Name, t.Begin, t.End, dataSize)
		}
		pos = t.End
		want, ok := byteSize(t.DType, t.Shape)
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q: shape %v of %s overflows", t.Name, t.Shape, t.DType)
		}
		if uint64(t.End-t.Begin) != want {
			return nil, nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes but data_offsets [%d, %d] span %d", t.Name, t.Shape, t.DType, want, t.Begin, t.End, t.End-t.Begin)
		}
	}
	if pos != dataSize {
		return nil, nil, fmt.Errorf("tensors cover %d bytes of data but the file holds %d (truncated, or trailing bytes)", pos, dataSize)
	}
	return tensors, meta, nil
}

// byteSize returns the data size of a tensor, reporting overflow of uint64.
func byteSize(d DType, shape []int) (uint64, bool) {
	n := uint64(d.Size())
	for _, s := range shape {
		if s < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(n, uint64(s))
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// parseJSON walks the header object token by token, so that duplicate keys,
// missing fields and wrongly typed values are caught (encoding/json alone
// would silently accept them, and match field names case-insensitively).
func parseJSON(h []byte) (map[string]TensorInfo, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(h))
	dec.UseNumber()
	if err := expectDelim(dec, '{', "the header"); err != nil {
		return nil, nil, err
	}
	tensors := map[string]TensorInfo{}
	var meta map[string]string
	seenMeta := false
	for dec.More() {
		key, err := readKey(dec)
		if err != nil {
			return nil, nil, err
		}
		if key == metadataKey {
			if seenMeta {
				return nil, nil, fmt.Errorf("duplicate key %q", key)
			}
			seenMeta = true
			if meta, err = readMetadata(dec); err != nil {
				return nil, nil, err
			}
			continue
		}
		if _, dup := tensors[key]; dup {
			return nil, nil, fmt.Errorf("duplicate tensor %q", key)
		}
		t, err := readTensor(dec, key)
		if err != nil {
			return nil, nil, err
		}
		tensors[key] = t
	}
	if err := expectDelim(dec, '}', "the header"); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("unexpected data after the header object (only trailing spaces are allowed)")
	}
	return tensors, meta, nil
}

func expectDelim(dec *json.Decoder, want json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%s: expected %q, found %v", what, want, tok)
	}
	return nil
}

func readKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	k, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("expected an object key, found %v", tok)
	}
	return k, nil
}

// readMetadata reads "__metadata__": an object of strings, or null.
func readMetadata(dec *json.Decoder) (map[string]string, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", metadataKey, err)
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%s: expected an object of strings, found %v", metadataKey, tok)
	}
	meta := map[string]string{}
	for dec.More() {
		k, err := readKey(dec)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", metadataKey, err)
		}
		if _, dup := meta[k]; dup {
			return nil, fmt.Errorf("%s: duplicate key %q", metadataKey, k)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s[%q]: %v", metadataKey, k, err)
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%q]: values must be strings, found %v", metadataKey, k, tok)
		}
		meta[k] = v
	}
	if err := expectDelim(dec, '}', metadataKey); err != nil {
		return nil, err
	}
	return meta, nil
}

// readTensor reads one {"dtype", "shape", "data_offsets"} entry. Unknown
// fields are skipped, as HF's reader does.
func readTensor(dec *json.Decoder, name string) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	fail := func(format string, a ...any) (TensorInfo, error) {
		return TensorInfo{}, fmt.Errorf("tensor %q: %s", name, fmt.Sprintf(format, a...))
	}
	tok, err := dec.Token()
	if err != nil {
		return fail("%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fail("expected an object with dtype, shape and data_offsets, found %v", tok)
	}
	var haveDType, haveShape, haveOffsets bool
	for dec.More() {
		k, err := readKey(dec)
		if err != nil {
			return fail("%v", err)
		}
		switch k {
		case "dtype":
			if haveDType {
				return fail("duplicate field dtype")
			}
			haveDType = true
			tok, err := dec.Token()
			if err != nil {
				return fail("dtype: %v", err)
			}
			s, ok := tok.(string)
			if !ok {
				return fail("dtype must be a string, found %v", tok)
			}
			if !DType(s).Valid() {
				return fail("unknown dtype %q (known: %s)", s, knownDTypes)
			}
			t.DType = DType(s)
		case "shape":
			if haveShape {
				return fail("duplicate field shape")
			}
			haveShape = true
			dims, err := readUints(dec, -1)
			if err != nil {
				return fail("shape: %v", err)
			}
			t.Shape = make([]int, len(dims))
			for i, d := range dims {
				if d > math.MaxInt64 {
					return fail("shape: dimension %d is too large", d)
				}
				t.Shape[i] = int(d)
			}
		case "data_offsets":
			if haveOffsets {
				return fail("duplicate field data_offsets")
			}
			haveOffsets = true
			offs, err := readUints(dec, 2)
			if err != nil {
				return fail("data_offsets: %v", err)
			}
			if offs[0] > math.MaxInt64 || offs[1] > math.MaxInt64 {
				return fail("data_offsets %v are too large", offs)
			}
			t.Begin, t.End = int64(offs[0]), int64(offs[1])
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fail("field %q: %v", k, err)
			}
		}
	}
	if err := expectDelim(dec, '}', "tensor "+strconv.Quote(name)); err != nil {
		return TensorInfo{}, err
	}
	switch {
	case !haveDType:
		return fail("missing field dtype")
	case !haveShape:
		return fail("missing field shape")
	case !haveOffsets:
		return fail("missing field data_offsets")
	}
	if _, ok := byteSize(t.DType, t.Shape); !ok {
		return fail("shape %v overflows", t.Shape)
	}
	return t, nil
}

// readUints reads an array of non-negative integers; want ≥ 0 requires
// exactly that many.
func readUints(dec *json.Decoder, want int) ([]uint64, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("expected an array of non-negative integers, found %v", tok)
	}
	var out []uint64
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("expected a non-negative integer, found %v", tok)
		}
		s := string(num)
		if len(s) > 0 && s[0] == '-' {
			return nil, fmt.Errorf("negative value %s", s)
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a non-negative 64-bit integer", s)
		}
		out = append(out, v)
	}
	if err := expectDelim(dec, ']', "array"); err != nil {
		return nil, err
	}
	if want >= 0 && len(out) != want {
		return nil, fmt.Errorf("expected %d values, found %d", want, len(out))
	}
	return out, nil
}
