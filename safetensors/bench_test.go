package safetensors

import (
	"path/filepath"
	"testing"
)

// benchFile writes one 100 MB tensor of dtype dt and opens the file.
func benchFile(b *testing.B, dt DType) *File {
	b.Helper()
	const size = 100 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	n := size / dt.Size()
	path := filepath.Join(b.TempDir(), "big.safetensors")
	if err := Write(path, []Tensor{{Name: "w", DType: dt, Shape: []int{n / 1024, 1024}, Data: data}}, nil); err != nil {
		b.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// BenchmarkFloat32 reads a 100 MB tensor (bytes/s counts file bytes).
func BenchmarkFloat32(b *testing.B) {
	for _, dt := range []DType{F32, BF16, F16} {
		b.Run(string(dt), func(b *testing.B) {
			f := benchFile(b, dt)
			b.SetBytes(100 << 20)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := f.Float32("w"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
