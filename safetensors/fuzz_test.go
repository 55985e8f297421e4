package safetensors

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseHeader feeds arbitrary file prefixes to ParseHeader. It must
// never panic, and whatever it accepts must be a valid layout that
// survives being written and parsed again unchanged.
func FuzzParseHeader(f *testing.F) {
	seeds := [][]byte{
		fileBytes(goodHeader, make([]byte, 12)),
		fileBytes(`{}`, nil),
		fileBytes(`{"__metadata__":null}`, nil),
		fileBytes(`{"__metadata__":{"format":"pt","k":"v\n\u00e9\"x\""}}`, nil),
		fileBytes(`{"b":{"data_offsets":[8,12],"shape":[2],"dtype":"BF16"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":{}}}`, make([]byte, 12)),
		fileBytes(`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}`, []byte{1}),
		fileBytes(`{"a":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},"b":{"dtype":"BOOL","shape":[1],"data_offsets":[8,9]}}`, make([]byte, 9)),
		fileBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)),
		fileBytes(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)),
		fileBytes(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)),
		fileBytes(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)),
		fileBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)),
		fileBytes(`{"a":`, nil),
		{255, 255, 255, 255, 255, 255, 255, 255},
		{},
	}
	// A file from our writer with every dtype and a few shapes.
	var ts []Tensor
	for i, dt := range []DType{F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, U16, U32, U64, F8E4M3, F8E5M2} {
		ts = append(ts, Tensor{Name: fmt.Sprintf("layer.%d.%s", i, dt), DType: dt, Shape: []int{i % 3, 2}, Data: make([]byte, dt.Size()*2*(i%3))})
	}
	path := filepath.Join(f.TempDir(), "seed.safetensors")
	require.NoError(f, Write(path, ts, nil))
	sf, err := Open(path)
	require.NoError(f, err)
	hdr := make([]byte, sf.dataStart)
	_, err = sf.r.ReadAt(hdr, 0)
	require.NoError(f, err)
	sf.Close()
	seeds = append(seeds, hdr)
	for _, s := range seeds {
		f.Add(s, int64(0))
	}
	f.Add(seeds[0], int64(-3))
	f.Add(seeds[0], int64(1<<62))

	f.Fuzz(func(t *testing.T, b []byte, delta int64) {
		for _, size := range []int64{int64(len(b)), int64(len(b)) + delta} {
			tensors, meta, err := ParseHeader(b, size)
			if err != nil {
				continue
			}
			checkAccepted(t, b, size, tensors, meta)
		}
	})
}

// checkAccepted verifies the invariants of an accepted header and that our
// writer reproduces a header that parses to the same thing.
func checkAccepted(t *testing.T, b []byte, size int64, tensors map[string]TensorInfo, meta map[string]string) {
	n := int64(binary.LittleEndian.Uint64(b))
	dataSize := size - 8 - n
	list := make([]TensorInfo, 0, len(tensors))
	for name, ti := range tensors {
		if name != ti.Name || name == metadataKey {
			t.Fatalf("bad name %q / %q", name, ti.Name)
		}
		want, ok := byteSize(ti.DType, ti.Shape)
		if !ok || uint64(ti.End-ti.Begin) != want || ti.Begin < 0 || ti.End > dataSize {
			t.Fatalf("accepted invalid tensor %+v (data %d bytes)", ti, dataSize)
		}
		list = append(list, ti)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Begin != list[j].Begin {
			return list[i].Begin < list[j].Begin
		}
		return list[i].End < list[j].End
	})
	var pos int64
	for _, ti := range list {
		if ti.Begin != pos {
			t.Fatalf("accepted a gap or overlap at %+v", ti)
		}
		pos = ti.End
	}
	if pos != dataSize {
		t.Fatalf("accepted %d bytes of tensors for %d bytes of data", pos, dataSize)
	}

	// Re-serialize (with placeholder data) and parse again.
	var ts []Tensor
	for _, ti := range list {
		ts = append(ts, Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: make([]byte, ti.End-ti.Begin)})
	}
	if meta == nil {
		meta = map[string]string{}
	}
	h, _, err := buildHeader(ts, meta)
	if err != nil {
		t.Fatalf("writer rejects an accepted header: %v", err)
	}
	file := make([]byte, 8, 8+len(h))
	binary.LittleEndian.PutUint64(file, uint64(len(h)))
	file = append(file, h...)
	tensors2, meta2, err := ParseHeader(file, int64(len(file))+pos)
	if err != nil {
		t.Fatalf("re-parsing our header: %v\n%s", err, h)
	}
	if len(meta) == 0 && meta2 == nil {
		meta2 = map[string]string{}
	}
	require.Equal(t, meta, meta2)
	require.Equal(t, len(tensors), len(tensors2))
	for name, ti := range tensors {
		ti2 := tensors2[name]
		require.Equal(t, ti.DType, ti2.DType, name)
		require.Equal(t, len(ti.Shape), len(ti2.Shape), name)
		for i := range ti.Shape {
			require.Equal(t, ti.Shape[i], ti2.Shape[i], name)
		}
		require.Equal(t, ti.End-ti.Begin, ti2.End-ti2.Begin, name)
	}
}
