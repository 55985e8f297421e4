// Package safetensors reads and writes Hugging Face safetensors files and
// model directories (a single model.safetensors, or a sharded checkpoint
// described by model.safetensors.index.json).
//
// The file format: bytes 0–7 hold N, a little-endian uint64; the next N
// bytes are a UTF-8 JSON header mapping tensor names to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
// start of the data), plus an optional "__metadata__" object of string
// values; the tensor data follows, little-endian, row-major.
//
// Reading validates the header the way Hugging Face's safetensors library
// does (header at most 100,000,000 bytes, valid UTF-8 starting with '{',
// known dtypes, offsets that tile the data area from 0 to the end of the file
// with no gap or overlap, and data sizes that match dtype × shape), and in
// addition rejects duplicate JSON keys. Writing reproduces the byte layout of
// Hugging Face's writer, so a file read and written back is byte-identical.
package safetensors

// DType is a safetensors element type, spelled as in the file header.
type DType string

// The element types this package understands. Float32 converts F32, F16,
// BF16 and F64; every type can be read with Raw.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
)

// dtypeInfo holds the element size and the rank HF's writer sorts by
// (the order of its Dtype enum, which is increasing alignment).
var dtypeInfo = map[DType]struct{ size, rank int }{
	BOOL:   {1, 0},
	U8:     {1, 1},
	I8:     {1, 2},
	F8E5M2: {1, 3},
	F8E4M3: {1, 4},
	I16:    {2, 5},
	U16:    {2, 6},
	F16:    {2, 7},
	BF16:   {2, 8},
	I32:    {4, 9},
	U32:    {4, 10},
	F32:    {4, 11},
	F64:    {8, 12},
	I64:    {8, 13},
	U64:    {8, 14},
}

// Size returns the size in bytes of one element, or 0 for an unknown type.
func (d DType) Size() int { return dtypeInfo[d].size }

// Valid reports whether d is a dtype this package knows.
func (d DType) Valid() bool { _, ok := dtypeInfo[d]; return ok }

// knownDTypes lists the dtypes for error messages.
const knownDTypes = "BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64"
