package torchbin

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fixtures come from scripts/make-torchbin-fixtures.py: torch 1.13's
// own torch.save, and torch 2.x's layout written by hand.
var layouts = []string{"1.13", "2.x"}

type expected struct {
	Values map[string][]float64
	Shapes map[string][]int
}

func loadExpected(t *testing.T) expected {
	b, err := os.ReadFile("testdata/dtypes.json")
	require.NoError(t, err)
	var e expected
	require.NoError(t, json.Unmarshal(b, &e))
	return e
}

func TestReadDTypesAndViews(t *testing.T) {
	want := loadExpected(t)
	for _, layout := range layouts {
		t.Run(layout, func(t *testing.T) {
			f, err := Open("testdata/dtypes-" + layout + ".bin")
			require.NoError(t, err)
			defer f.Close()
			var names []string
			for n := range want.Values {
				names = append(names, n)
			}
			assert.ElementsMatch(t, names, f.Names())
			for name, vals := range want.Values {
				info, err := f.Info(name)
				require.NoError(t, err)
				assert.Equal(t, want.Shapes[name], append([]int{}, info.Shape...), name)
				if info.DType == I64 {
					_, _, err := f.Float32(name)
					require.Error(t, err, "an int64 buffer is not a weight")
					assert.Contains(t, err.Error(), "not floating point")
					continue
				}
				got, shape, err := f.Float32(name)
				require.NoError(t, err, name)
				assert.Equal(t, want.Shapes[name], append([]int{}, shape...))
				require.Len(t, got, len(vals), name)
				for i, v := range vals {
					assert.Equal(t, float32(v), got[i], "%s[%d]", name, i)
				}
				for _, chunk := range []int{1, 3, 1 << 20} {
					assert.Equal(t, got, chunks(t, f, name, chunk), "%s in chunks of %d", name, chunk)
				}
			}
			info, _ := f.Info("f32_transposed")
			assert.Equal(t, []int{1, 4}, info.Stride, "a non-contiguous view")
			info, _ = f.Info("bf16")
			assert.Equal(t, BF16, info.DType)
		})
	}
}

// chunks reads a tensor with Float32Chunks into a buffer of n values,
// checking each chunk's offset.
func chunks(t testing.TB, f *File, name string, n int) []float32 {
	var out []float32
	err := f.Float32Chunks(name, make([]float32, n), func(off int, v []float32) error {
		if off != len(out) || len(v) == 0 || len(v) > n {
			t.Fatalf("%s: chunk of %d at %d after %d values", name, len(v), off, len(out))
		}
		out = append(out, v...)
		return nil
	})
	require.NoError(t, err, name)
	return out
}

// rezip rewrites a checkpoint, changing records with edit (nil drops one).
func rezip(t testing.TB, src string, edit func(name string, data []byte) []byte) []byte {
	zr, err := zip.OpenReader(src)
	require.NoError(t, err)
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		data, err := io.ReadAll(rc)
		require.NoError(t, err)
		rc.Close()
		data = edit(f.Name, data)
		if data == nil {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		require.NoError(t, err)
		w.Write(data)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func openBytes(b []byte) (*File, error) {
	return NewReader(bytes.NewReader(b), int64(len(b)), "test.bin")
}

// torch 2.x records the byte order; a big-endian checkpoint reads the same.
func TestBigEndian(t *testing.T) {
	want := loadExpected(t)
	little, err := Open("testdata/dtypes-2.x.bin")
	require.NoError(t, err)
	sizes := map[string]int{}
	for _, n := range little.Names() {
		info, _ := little.Info(n)
		sizes["archive/data/"+info.key] = info.DType.Size()
	}
	little.Close()
	b := rezip(t, "testdata/dtypes-2.x.bin", func(name string, data []byte) []byte {
		if name == "archive/byteorder" {
			return []byte("big")
		}
		if s := sizes[name]; s > 1 {
			for i := 0; i+s <= len(data); i += s {
				for a, z := i, i+s-1; a < z; a, z = a+1, z-1 {
					data[a], data[z] = data[z], data[a]
				}
			}
		}
		return data
	})
	f, err := openBytes(b)
	require.NoError(t, err)
	got, _, err := f.Float32("f32_transposed")
	require.NoError(t, err)
	for i, v := range want.Values["f32_transposed"] {
		assert.Equal(t, float32(v), got[i])
	}
	got, _, err = f.Float32("f16")
	require.NoError(t, err)
	assert.Equal(t, float32(want.Values["f16"][0]), got[0])
}

// Pickles that name anything outside the allow-list are refused, by
// name, before anything is called.
func TestRefusesForeignPickles(t *testing.T) {
	p2 := func(body string) []byte { return []byte("\x80\x02" + body) }
	cases := []struct {
		name string
		pkl  []byte
		says string
	}{
		{"os.system, protocol 0", []byte("cos\nsystem\n(S'touch /tmp/pwned'\ntR."), "os.system"},
		{"builtins.eval", p2("cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R."), "builtins.eval"},
		{"posix.system via STACK_GLOBAL", []byte("\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R."), "posix.system"},
		{"subprocess in a tensor", p2("ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00acsubprocess\nPopen\n)Rsb."), "subprocess.Popen"},
		{"torch.load recursion", p2("ctorch\nload\n)R."), "torch.load"},
		{"getattr", p2("c__builtin__\ngetattr\n."), "__builtin__.getattr"},
		{"INST", []byte("(ios\nsystem\nS'x'\n."), "opcode 'i'"},
		{"OBJ", p2("(ccollections\nOrderedDict\no."), "opcode 'o'"},
		{"NEWOBJ", p2("ccollections\nOrderedDict\n)\x81."), "0x81"},
		{"calling a storage class", p2("ctorch\nFloatStorage\n)R."), "refused"},
		{"calling a type", p2("ctorch\nTensor\n)R."), "not callable"},
		{"BUILD on a dict", p2("}}b."), "BUILD"},
		{"not a state_dict", p2("K\x05."), "not a state_dict"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := rezip(t, "testdata/dtypes-2.x.bin", func(name string, data []byte) []byte {
				if name == "archive/data.pkl" {
					return tc.pkl
				}
				return data
			})
			_, err := openBytes(b)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
}

func TestBadArchives(t *testing.T) {
	pkl := func(t *testing.T) []byte {
		zr, err := zip.OpenReader("testdata/dtypes-2.x.bin")
		require.NoError(t, err)
		defer zr.Close()
		rc, err := zr.Open("archive/data.pkl")
		require.NoError(t, err)
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return b
	}
	cases := []struct {
		name string
		edit func(name string, data []byte) []byte
		says string
	}{
		{"storage record missing", func(n string, d []byte) []byte {
			if n == "archive/data/0" {
				return nil
			}
			return d
		}, "data/0 is missing"},
		{"storage record short", func(n string, d []byte) []byte {
			if n == "archive/data/0" {
				return d[:8]
			}
			return d
		}, "holds 8 bytes"},
		{"no data.pkl", func(n string, d []byte) []byte {
			if n == "archive/data.pkl" {
				return nil
			}
			return d
		}, "no <archive>/data.pkl"},
		{"truncated pickle", func(n string, d []byte) []byte {
			if n == "archive/data.pkl" {
				return pkl(t)[:100]
			}
			return d
		}, "truncated"},
		{"bad byteorder", func(n string, d []byte) []byte {
			if n == "archive/byteorder" {
				return []byte("middle")
			}
			return d
		}, "byteorder"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openBytes(rezip(t, "testdata/dtypes-2.x.bin", tc.edit))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
	_, err := openBytes([]byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "legacy")
	_, err = openBytes([]byte("hello"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a torch zip checkpoint")
}

func TestViewPastStorage(t *testing.T) {
	// f32_offset_view: storage 0 of 12 floats, offset 4, size (2,2),
	// stride (4,1). Shrink the declared storage to 6 elements: the view
	// then reaches past it.
	b := rezip(t, "testdata/dtypes-2.x.bin", func(n string, d []byte) []byte {
		if n == "archive/data.pkl" {
			// numel 12 is BININT1 0x0c right after the "cpu" string.
			return bytes.Replace(d, []byte("X\x03\x00\x00\x00cpuq\x07K\x0c"), []byte("X\x03\x00\x00\x00cpuq\x07K\x06"), 1)
		}
		return d
	})
	_, err := openBytes(b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "past its storage")
}

func TestShardedIndex(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/dtypes-1.13.bin")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pytorch_model-00001-of-00001.bin"), data, 0o644))
	idx := `{"metadata": {"total_size": 1}, "weight_map": {"f32": "pytorch_model-00001-of-00001.bin", "f16": "pytorch_model-00001-of-00001.bin"}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, IndexFile), []byte(idx), 0o644))
	s, err := OpenDir(dir, SingleFile)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, []string{"f16", "f32"}, s.Names())
	v, shape, err := s.Float32("f32")
	require.NoError(t, err)
	assert.Equal(t, []int{3, 4}, shape)
	assert.Equal(t, float32(-2), v[0])
}

func seeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, l := range layouts {
		b, err := os.ReadFile("testdata/dtypes-" + l + ".bin")
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzOpen: any bytes give a checkpoint or an error, never a panic, and
// every tensor of an accepted checkpoint reads as its shape says.
func FuzzOpen(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tf, err := openBytes(b)
		if err != nil {
			return
		}
		for _, n := range tf.Names() {
			v, shape, err := tf.Float32(n)
			if err != nil {
				continue
			}
			want := 1
			for _, d := range shape {
				want *= d
			}
			if len(v) != want {
				t.Fatalf("%s: %d values for shape %v", n, len(v), shape)
			}
			if got := chunks(t, tf, n, 5); !slices.Equal(math32bits(v), math32bits(got)) && len(v) > 0 {
				t.Fatalf("%s: Float32Chunks reads %v, Float32 %v", n, got, v)
			}
		}
	})
}

// FuzzUnpickle: the unpickler alone, from torch's own pickles and
// foreign ones.
func FuzzUnpickle(f *testing.F) {
	for _, s := range seeds(f) {
		zr, err := zip.NewReader(bytes.NewReader(s), int64(len(s)))
		if err != nil {
			f.Fatal(err)
		}
		for _, zf := range zr.File {
			if filepath.Base(zf.Name) == "data.pkl" {
				rc, _ := zf.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				f.Add(b)
			}
		}
	}
	f.Add([]byte("cos\nsystem\n(S'x'\ntR."))
	f.Add([]byte("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94K\x01u."))
	f.Add([]byte("\x80\x02]q\x00(K\x01G?\xf0\x00\x00\x00\x00\x00\x00\x8a\x02\xff\x7fe."))
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], 1<<62)
	f.Add(append([]byte("\x80\x04\x8d"), le[:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		unpickle(b)
	})
}

// math32bits returns the bits of v, so that NaNs compare equal.
func math32bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = math.Float32bits(x)
	}
	return out
}
