package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fileBytes builds a safetensors file from a header (padded with spaces to
// a multiple of 8) and data.
func fileBytes(header string, data []byte) []byte {
	for len(header)%8 != 0 {
		header += " "
	}
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func writeFile(t *testing.T, path string, b []byte) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

func TestRoundTripEveryDType(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, dt := range []DType{F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, U16, U32, U64, F8E4M3, F8E5M2} {
		t.Run(string(dt), func(t *testing.T) {
			shapes := [][]int{{2, 3}, {5}, {}, {0, 4}, {1, 1, 7}}
			var tensors []Tensor
			for i, s := range shapes {
				n := 1
				for _, d := range s {
					n *= d
				}
				data := randBytes(rng, n*dt.Size())
				if dt == BOOL {
					for j := range data {
						data[j] &= 1
					}
				}
				tensors = append(tensors, Tensor{Name: string(rune('e' - i)), DType: dt, Shape: s, Data: data})
			}
			path := filepath.Join(t.TempDir(), "x.safetensors")
			require.NoError(t, Write(path, tensors, map[string]string{"format": "pt", "note": "r\u00e9\"rank\"\n"}))
			f, err := Open(path)
			require.NoError(t, err)
			defer f.Close()
			assert.Equal(t, map[string]string{"format": "pt", "note": "r\u00e9\"rank\"\n"}, f.Metadata)
			assert.Equal(t, []string{"a", "b", "c", "d", "e"}, f.Names())
			for _, want := range tensors {
				info, err := f.Info(want.Name)
				require.NoError(t, err)
				assert.Equal(t, dt, info.DType)
				assert.Equal(t, len(want.Shape), len(info.Shape))
				if len(want.Shape) > 0 {
					assert.Equal(t, want.Shape, info.Shape)
				}
				raw, err := f.Raw(want.Name)
				require.NoError(t, err)
				assert.Equal(t, want.Data, raw)
			}
		})
	}
}

func TestFloat32Reads(t *testing.T) {
	vals := []float32{0, 1, -2.5, 3.14159, 1e-3, -65504, 1e-7, float32(math.Inf(1))}
	shape := []int{2, 4}
	f64 := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(f64[8*i:], math.Float64bits(float64(v)))
	}
	bf := make([]float32, len(vals))
	hf := make([]float32, len(vals))
	for i, v := range vals {
		bf[i] = BF16ToF32(F32ToBF16(v))
		hf[i] = F16ToF32(F32ToF16(v))
	}
	cases := []struct {
		name   string
		tensor Tensor
		want   []float32
	}{
		{"F32", F32Tensor("t", shape, vals), vals},
		{"F32 view", F32View("t", shape, vals), vals},
		{"BF16", BF16Tensor("t", shape, vals), bf},
		{"F16", F16Tensor("t", shape, vals), hf},
		{"F64", Tensor{Name: "t", DType: F64, Shape: shape, Data: f64}, vals},
		{"empty", F32Tensor("t", []int{0, 3}, nil), []float32{}},
		{"scalar", F32Tensor("t", []int{}, []float32{7}), []float32{7}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.safetensors")
			// A neighbour of another dtype makes the offsets non-zero.
			pad := Tensor{Name: "a", DType: U8, Shape: []int{3}, Data: []byte{1, 2, 3}}
			require.NoError(t, Write(path, []Tensor{pad, c.tensor}, nil))
			f, err := Open(path)
			require.NoError(t, err)
			defer f.Close()
			got, gotShape, err := f.Float32("t")
			require.NoError(t, err)
			assert.Equal(t, c.tensor.Shape, gotShape)
			require.Len(t, got, len(c.want))
			for i := range c.want {
				assert.Equal(t, math.Float32bits(c.want[i]), math.Float32bits(got[i]), "element %d", i)
			}
			// The same values a chunk at a time, chunks cut short included.
			for _, chunk := range []int{1, 3, 8, 100} {
				var all []float32
				err := f.Float32Chunks("t", make([]float32, chunk), func(off int, v []float32) error {
					assert.Equal(t, len(all), off, "chunk %d offset", chunk)
					assert.LessOrEqual(t, len(v), chunk)
					all = append(all, v...)
					return nil
				})
				require.NoError(t, err)
				require.Len(t, all, len(c.want), "chunk %d", chunk)
				for i := range c.want {
					assert.Equal(t, math.Float32bits(c.want[i]), math.Float32bits(all[i]), "chunk %d element %d", chunk, i)
				}
			}
		})
	}
}

func TestFloat32Errors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	require.NoError(t, Write(path, []Tensor{{Name: "ids", DType: I64, Shape: []int{1}, Data: make([]byte, 8)}}, nil))
	f, err := Open(path)
	require.NoError(t, err)
	_, _, err = f.Float32("ids")
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), `"ids"`)
	assert.Contains(t, err.Error(), "I64")
	err = f.Float32Chunks("ids", make([]float32, 4), func(int, []float32) error { return nil })
	assert.ErrorContains(t, err, "I64")
	stop := errors.New("stop")
	require.NoError(t, Write(path+"2", []Tensor{F32Tensor("w", []int{5}, []float32{1, 2, 3, 4, 5})}, nil))
	f2, err := Open(path + "2")
	require.NoError(t, err)
	defer f2.Close()
	assert.ErrorIs(t, f2.Float32Chunks("w", make([]float32, 2), func(int, []float32) error { return stop }), stop)
	assert.ErrorContains(t, f2.Float32Chunks("w", nil, func(int, []float32) error { return nil }), "empty buffer")
	_, _, err = f.Float32("missing")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"missing"`)
	_, err = f.Raw("missing")
	require.Error(t, err)
	require.NoError(t, f.Close())
	_, err = f.Raw("ids")
	require.Error(t, err, "read after close")
}

// TestWriteLayout checks the exact bytes of HF's layout on small cases.
func TestWriteLayout(t *testing.T) {
	cases := []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		header  string
		data    []byte
	}{
		{
			name:    "default metadata",
			tensors: []Tensor{F32Tensor("w", []int{1, 2}, []float32{1, 2})},
			header:  `{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}`,
			data:    []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40},
		},
		{
			name:    "no metadata, empty",
			tensors: nil,
			meta:    map[string]string{},
			header:  `{}`,
		},
		{
			name: "alignment then name order",
			tensors: []Tensor{
				{Name: "a_u8", DType: U8, Shape: []int{1}, Data: []byte{9}},
				{Name: "b_f32", DType: F32, Shape: []int{1}, Data: []byte{1, 1, 1, 1}},
				{Name: "a_f32", DType: F32, Shape: []int{1}, Data: []byte{2, 2, 2, 2}},
				{Name: "z_i64", DType: I64, Shape: []int{}, Data: []byte{3, 3, 3, 3, 3, 3, 3, 3}},
				{Name: "c_bf16", DType: BF16, Shape: []int{1}, Data: []byte{4, 4}},
			},
			meta: map[string]string{"b": "2", "a": "<&>\t\u0001é"},
			header: `{"__metadata__":{"a":"<&>\t\u0001é","b":"2"},` +
				`"z_i64":{"dtype":"I64","shape":[],"data_offsets":[0,8]},` +
				`"a_f32":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},` +
				`"b_f32":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},` +
				`"c_bf16":{"dtype":"BF16","shape":[1],"data_offsets":[16,18]},` +
				`"a_u8":{"dtype":"U8","shape":[1],"data_offsets":[18,19]}}`,
			data: []byte{3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 4, 4, 9},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.safetensors")
			require.NoError(t, Write(path, c.tensors, c.meta))
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, string(fileBytes(c.header, c.data)), string(got))
			assert.Zero(t, binary.LittleEndian.Uint64(got)%8, "header length is a multiple of 8")
			f, err := Open(path)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		})
	}
}

func TestWriteAtomicAndErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	require.NoError(t, WriteFloat32(path, map[string][]float32{"a": {1, 2, 3, 4}}, map[string][]int{"a": {2, 2}}, nil))
	require.NoError(t, WriteFloat32(path, map[string][]float32{"b": {5}}, map[string][]int{"b": {1}}, nil), "overwrite")
	f, err := Open(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, f.Names())
	assert.Equal(t, map[string]string{"format": "pt"}, f.Metadata)
	require.NoError(t, f.Close())

	bad := []struct {
		name    string
		write   func(p string) error
		message string
	}{
		{"shape mismatch", func(p string) error { return Write(p, []Tensor{F32Tensor("w", []int{3}, []float32{1, 2})}, nil) }, `"w"`},
		{"negative dim", func(p string) error { return Write(p, []Tensor{F32Tensor("w", []int{-1}, nil)}, nil) }, `"w"`},
		{"duplicate", func(p string) error {
			return Write(p, []Tensor{F32Tensor("w", []int{1}, []float32{1}), F32Tensor("w", []int{1}, []float32{1})}, nil)
		}, "duplicate"},
		{"reserved name", func(p string) error {
			return Write(p, []Tensor{F32Tensor("__metadata__", []int{1}, []float32{1})}, nil)
		}, "reserved"},
		{"unknown dtype", func(p string) error {
			return Write(p, []Tensor{{Name: "w", DType: "F128", Shape: []int{1}, Data: make([]byte, 16)}}, nil)
		}, "F128"},
		{"missing shape", func(p string) error { return WriteFloat32(p, map[string][]float32{"w": {1}}, nil, nil) }, `"w"`},
		{"stray shape", func(p string) error { return WriteFloat32(p, nil, map[string][]int{"w": {1}}, nil) }, `"w"`},
		{"missing directory", func(p string) error { return Write(filepath.Join(p, "no", "such"), nil, nil) }, "no"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			err := c.write(filepath.Join(dir, "bad.safetensors"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.message)
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"m.safetensors"}, names, "no temporary or partial files left")
}

// goodHeader is a valid two-tensor header over 12 bytes of data.
const goodHeader = `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}`

func TestParseHeaderGood(t *testing.T) {
	b := fileBytes(goodHeader, make([]byte, 12))
	tensors, meta, err := ParseHeader(b, int64(len(b)))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"format": "pt"}, meta)
	assert.Equal(t, TensorInfo{Name: "b", DType: BF16, Shape: []int{2}, Begin: 8, End: 12}, tensors["b"])

	// Accepted as HF accepts them: any key order, unknown fields,
	// null metadata, zero-sized tensors sharing an offset, no tensors.
	ok := []struct{ header, data string }{
		{`{"b":{"data_offsets":[8,12],"shape":[2],"dtype":"BF16"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":[1,{"x":2}]}}`, "123456789012"},
		{`{"__metadata__":null,"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, "x"},
		{`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"y":{"dtype":"F32","shape":[3,0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}`, "x"},
		{`{}`, ""},
		{"{\n \"a\" : {\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}\t}\n", "x"},
	}
	for _, c := range ok {
		b := fileBytes(c.header, []byte(c.data))
		_, _, err := ParseHeader(b, int64(len(b)))
		assert.NoError(t, err, c.header)
	}
}

func TestParseHeaderMalformed(t *testing.T) {
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	past := make([]byte, 16)
	binary.LittleEndian.PutUint64(past, 9)
	cases := []struct {
		name   string
		file   []byte
		size   int64 // 0: len(file)
		errHas string
	}{
		{"too small", []byte{1, 2, 3}, 0, "too small"},
		{"header length huge", huge, 0, "limit"},
		{"header length max uint64", []byte{255, 255, 255, 255, 255, 255, 255, 255}, 0, "limit"},
		{"header past end of file", past, 0, "past the end"},
		{"header bytes not given", fileBytes(`{}`, nil)[:12], 16, "header bytes"},
		{"bad JSON", fileBytes(`{"a":`, nil), 0, "JSON"},
		{"not an object", fileBytes(`[1]`, nil), 0, "start with '{'"},
		{"leading space", fileBytes(` {}`, nil), 0, "start with '{'"},
		{"invalid UTF-8", fileBytes("{\"\xff\":1}", nil), 0, "UTF-8"},
		{"trailing garbage", fileBytes(`{}x`, nil), 0, "after the header"},
		{"two objects", fileBytes(`{}{}`, nil), 0, "after the header"},
		{"tensor not an object", fileBytes(`{"a":3}`, nil), 0, `"a"`},
		{"unknown dtype", fileBytes(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, make([]byte, 16)), 0, "unknown dtype"},
		{"lowercase dtype", fileBytes(`{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "unknown dtype"},
		{"dtype not a string", fileBytes(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "dtype"},
		{"missing dtype", fileBytes(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "missing field dtype"},
		{"missing shape", fileBytes(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), 0, "missing field shape"},
		{"missing offsets", fileBytes(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), 0, "missing field data_offsets"},
		{"field case differs", fileBytes(`{"a":{"DType":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "missing field dtype"},
		{"duplicate field", fileBytes(`{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "duplicate field"},
		{"negative dim", fileBytes(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "negative"},
		{"fractional dim", fileBytes(`{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "shape"},
		{"exponent dim", fileBytes(`{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "shape"},
		{"dim not a number", fileBytes(`{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "shape"},
		{"huge dim", fileBytes(`{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "shape"},
		{"shape overflow", fileBytes(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "overflow"},
		{"one offset", fileBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, make([]byte, 4)), 0, "data_offsets"},
		{"three offsets", fileBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, make([]byte, 4)), 0, "data_offsets"},
		{"negative offset", fileBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)), 0, "negative"},
		{"offsets beyond file", fileBytes(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, make([]byte, 4)), 0, "past the end of the data"},
		{"offsets far beyond file", fileBytes(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":0},"b":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]}}`, make([]byte, 1)), 0, "gap"},
		{"end before begin", fileBytes(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "before they begin"},
		{"overlapping", fileBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), 0, "overlap"},
		{"same range twice", fileBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), 0, "overlap"},
		{"gap", fileBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), 0, "gap"},
		{"shape/size mismatch", fileBytes(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), 0, "needs 12 bytes"},
		{"dtype/size mismatch", fileBytes(`{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), 0, "needs 16 bytes"},
		{"trailing data", fileBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 8)), 0, "trailing"},
		{"truncated data", fileBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), 0, "past the end of the data"},
		{"duplicate tensor", fileBytes(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), 0, "duplicate"},
		{"duplicate metadata", fileBytes(`{"__metadata__":{},"__metadata__":{}}`, nil), 0, "duplicate"},
		{"metadata value not string", fileBytes(`{"__metadata__":{"n":1}}`, nil), 0, "strings"},
		{"metadata not object", fileBytes(`{"__metadata__":[]}`, nil), 0, "__metadata__"},
		{"metadata duplicate key", fileBytes(`{"__metadata__":{"k":"1","k":"2"}}`, nil), 0, "duplicate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			size := c.size
			if size == 0 {
				size = int64(len(c.file))
			}
			_, _, err := ParseHeader(c.file, size)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.errHas)

			// The same through Open, which must name the file.
			if c.size == 0 {
				path := writeFile(t, filepath.Join(t.TempDir(), "bad.safetensors"), c.file)
				_, err := Open(path)
				require.Error(t, err)
				assert.Contains(t, err.Error(), path)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(filepath.Join(dir, "none.safetensors"))
	require.Error(t, err)
	_, err = Open(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "directory")
	empty := writeFile(t, filepath.Join(dir, "empty.safetensors"), nil)
	_, err = Open(empty)
	require.Error(t, err)
	assert.Contains(t, err.Error(), empty)
}

// TestGoldenRewrite reads every HF-written file of the golden set and
// writes its tensors back: the bytes must be identical.
func TestGoldenRewrite(t *testing.T) {
	golden := sharedtest.Golden(t)
	paths, err := filepath.Glob(filepath.Join(golden, "*", "*", "*.safetensors"))
	require.NoError(t, err)
	more, err := filepath.Glob(filepath.Join(golden, "*", "*.safetensors"))
	require.NoError(t, err)
	paths = append(paths, more...)
	models, err := filepath.Glob(filepath.Join(golden, "*", "model", "model.safetensors"))
	require.NoError(t, err)
	require.NotEmpty(t, models, "no */model/model.safetensors under %s", golden)
	for _, p := range paths {
		rel, _ := filepath.Rel(golden, p)
		t.Run(rel, func(t *testing.T) {
			want, err := os.ReadFile(p)
			require.NoError(t, err)
			f, err := Open(p)
			require.NoError(t, err)
			defer f.Close()
			var raw []Tensor
			floats := map[string][]float32{}
			shapes := map[string][]int{}
			for _, name := range f.Names() {
				info := f.Tensors[name]
				data, err := f.Raw(name)
				require.NoError(t, err)
				raw = append(raw, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: data})
				v, shape, err := f.Float32(name)
				require.NoError(t, err)
				floats[name], shapes[name] = v, shape
			}
			out := filepath.Join(t.TempDir(), "out.safetensors")
			require.NoError(t, Write(out, raw, f.Metadata))
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "Write(Raw) differs from the HF file")

			require.NoError(t, WriteFloat32(out, floats, shapes, f.Metadata))
			got, err = os.ReadFile(out)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "WriteFloat32(Float32) differs from the HF file")
		})
	}
}

func TestOpenDirGolden(t *testing.T) {
	golden := sharedtest.Golden(t)
	s, err := OpenDir(filepath.Join(golden, "bert_tiny", "model"))
	require.NoError(t, err)
	defer s.Close()
	require.True(t, s.Has("classifier.weight"))
	v, shape, err := s.Float32("classifier.weight")
	require.NoError(t, err)
	require.Len(t, shape, 2)
	assert.Equal(t, shape[0]*shape[1], len(v))
	assert.Equal(t, "pt", s.Metadata["format"])
}

// writeShards splits tensors into shards and writes an index, as
// transformers' save_pretrained does for large models.
func writeShards(t *testing.T, dir string, shards map[string][]Tensor, extraIndex map[string]string) {
	t.Helper()
	weightMap := map[string]string{}
	for file, ts := range shards {
		require.NoError(t, Write(filepath.Join(dir, file), ts, nil))
		for _, tt := range ts {
			weightMap[tt.Name] = file
		}
	}
	for k, v := range extraIndex {
		weightMap[k] = v
	}
	var sb strings.Builder
	sb.WriteString(`{"metadata":{"total_size":28,"format":"pt"},"weight_map":{`)
	first := true
	for k, v := range weightMap {
		if !first {
			sb.WriteString(",")
		}
		first = false
		sb.WriteString(`"` + k + `":"` + v + `"`)
	}
	sb.WriteString("}}")
	writeFile(t, filepath.Join(dir, IndexFile), []byte(sb.String()))
}

func TestOpenDirSharded(t *testing.T) {
	dir := t.TempDir()
	s1 := "model-00001-of-00002.safetensors"
	s2 := "model-00002-of-00002.safetensors"
	writeShards(t, dir, map[string][]Tensor{
		s1: {F32Tensor("enc.w", []int{2, 2}, []float32{1, 2, 3, 4}), BF16Tensor("enc.b", []int{2}, []float32{0.5, -1})},
		s2: {F32Tensor("head.w", []int{1, 2}, []float32{5, 6})},
	}, nil)
	s, err := OpenDir(dir)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, []string{"enc.b", "enc.w", "head.w"}, s.Names())
	assert.Equal(t, map[string]string{"total_size": "28", "format": "pt"}, s.Metadata)
	assert.True(t, s.Has("head.w"))
	assert.False(t, s.Has("nope"))
	cases := []struct {
		name  string
		want  []float32
		shape []int
		dtype DType
	}{
		{"enc.w", []float32{1, 2, 3, 4}, []int{2, 2}, F32},
		{"enc.b", []float32{0.5, -1}, []int{2}, BF16},
		{"head.w", []float32{5, 6}, []int{1, 2}, F32},
	}
	for _, c := range cases {
		v, shape, err := s.Float32(c.name)
		require.NoError(t, err)
		assert.Equal(t, c.want, v)
		assert.Equal(t, c.shape, shape)
		info, err := s.Info(c.name)
		require.NoError(t, err)
		assert.Equal(t, c.dtype, info.DType)
	}
	_, err = s.Info("nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nope"`)
	_, _, err = s.Float32("nope")
	require.Error(t, err)
}

func TestOpenDirErrors(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		errHas []string
	}{
		{"only pytorch_model.bin", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "pytorch_model.bin"), []byte("pickle"))
		}, []string{"pytorch_model.bin", "safe_serialization=True", "convert"}},
		{"only sharded pytorch", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "pytorch_model.bin.index.json"), []byte("{}"))
		}, []string{"pytorch_model.bin.index.json", "safe_serialization=True"}},
		{"empty directory", func(t *testing.T, dir string) {}, []string{"model.safetensors"}},
		{"missing shard", func(t *testing.T, dir string) {
			writeShards(t, dir, map[string][]Tensor{"a.safetensors": {F32Tensor("x", []int{1}, []float32{1})}},
				map[string]string{"y": "b.safetensors"})
		}, []string{"b.safetensors", `"y"`, "missing"}},
		{"tensor not in its shard", func(t *testing.T, dir string) {
			writeShards(t, dir, map[string][]Tensor{"a.safetensors": {F32Tensor("x", []int{1}, []float32{1})}},
				map[string]string{"y": "a.safetensors"})
		}, []string{"a.safetensors", `"y"`}},
		{"shard outside directory", func(t *testing.T, dir string) {
			writeShards(t, dir, nil, map[string]string{"y": "../a.safetensors"})
		}, []string{"../a.safetensors"}},
		{"bad index JSON", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, IndexFile), []byte(`{"weight_map":`))
		}, []string{IndexFile}},
		{"empty weight_map", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, IndexFile), []byte(`{"weight_map":{}}`))
		}, []string{"weight_map"}},
		{"corrupt single file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, SingleFile), fileBytes(`{"a":1}`, nil))
		}, []string{SingleFile}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.setup(t, dir)
			_, err := OpenDir(dir)
			require.Error(t, err)
			for _, s := range c.errHas {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
	_, err := OpenDir(filepath.Join(t.TempDir(), "absent"))
	require.Error(t, err)
}

func TestOpenDirPrefersSingleFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, WriteFloat32(filepath.Join(dir, SingleFile), map[string][]float32{"w": {1}}, map[string][]int{"w": {1}}, nil))
	writeFile(t, filepath.Join(dir, "pytorch_model.bin"), []byte("pickle"))
	s, err := OpenDir(dir)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, []string{"w"}, s.Names())
}

// TestFloat32LargeChunks reads half-precision tensors spanning several
// conversion chunks, which are widened in place.
func TestFloat32LargeChunks(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	n := 3*convChunk + 5
	data := randBytes(rng, 2*n)
	for _, dt := range []DType{BF16, F16} {
		t.Run(string(dt), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.safetensors")
			pad := Tensor{Name: "a", DType: U8, Shape: []int{3}, Data: []byte{1, 2, 3}}
			require.NoError(t, Write(path, []Tensor{pad, {Name: "w", DType: dt, Shape: []int{n}, Data: data}}, nil))
			f, err := Open(path)
			require.NoError(t, err)
			defer f.Close()
			got, _, err := f.Float32("w")
			require.NoError(t, err)
			require.Len(t, got, n)
			// In chunks of several conversion chunks, widened in the
			// caller's buffer: the same bits.
			var chunked []float32
			require.NoError(t, f.Float32Chunks("w", make([]float32, 2*convChunk+3), func(off int, v []float32) error {
				chunked = append(chunked, v...)
				return nil
			}))
			require.Equal(t, len(got), len(chunked))
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(chunked[i]) {
					t.Fatalf("chunked element %d: got %#08x, want %#08x", i, math.Float32bits(chunked[i]), math.Float32bits(got[i]))
				}
			}
			for i := 0; i < n; i++ {
				u := binary.LittleEndian.Uint16(data[2*i:])
				want := BF16ToF32(u)
				if dt == F16 {
					want = F16ToF32(u)
				}
				if math.Float32bits(want) != math.Float32bits(got[i]) {
					t.Fatalf("element %d: got %#08x, want %#08x", i, math.Float32bits(got[i]), math.Float32bits(want))
				}
			}
		})
	}
}
