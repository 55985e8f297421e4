package cuda

// The GPU bundle (make gpu-bundle, scripts/gpu-bundle.sh) must run on a
// machine with another CUDA toolkit, PyTorch's CUDA wheels and no Go: its
// binaries may link no CUDA-version-specific library (the runtime is
// static; cuBLAS, NCCL and NVML are opened at run time) nor OpenBLAS.
// These tests build with or without the cuda tag.

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forbiddenLibs may not appear in ldd's output for a bundle binary.
var forbiddenLibs = []string{"libcudart", "libcublas", "libcublasLt", "libnccl", "libnvidia-ml", "libcuda.so", "libopenblas", "libgfortran"}

// bundleLimit is the bundle's size limit: the GPU machine receives at most
// 64 MiB of build outputs with the work tree.
const bundleLimit = 60 << 20

// lddViolations returns the lines of ldd's output that name a forbidden
// library.
func lddViolations(out string) []string {
	var bad []string
	for _, line := range strings.Split(out, "\n") {
		name := strings.TrimSpace(strings.SplitN(strings.TrimSpace(line), " ", 2)[0])
		for _, lib := range forbiddenLibs {
			if strings.HasPrefix(name, lib) || strings.Contains(line, "/"+lib) {
				bad = append(bad, strings.TrimSpace(line))
				break
			}
		}
	}
	return bad
}

func TestLddViolations(t *testing.T) {
	cases := []struct {
		name string
		out  string
		want int
	}{
		{"clean", "\tlinux-vdso.so.1 (0x1)\n\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x2)\n\tlibc.so.6 => /lib/libc.so.6 (0x3)\n", 0},
		{"cudart", "\tlibcudart.so.11.0 => /usr/lib/x86_64-linux-gnu/libcudart.so.11.0 (0x1)\n", 1},
		{"cublas and lt", "\tlibcublas.so.11 => /usr/lib/libcublas.so.11 (0x1)\n\tlibcublasLt.so.11 => /usr/lib/libcublasLt.so.11 (0x2)\n", 2},
		{"missing nccl", "\tlibnccl.so.2 => not found\n", 1},
		{"nvml", "\tlibnvidia-ml.so.1 => /usr/lib/libnvidia-ml.so.1 (0x1)\n", 1},
		{"driver", "\tlibcuda.so.1 => /usr/lib/libcuda.so.1 (0x1)\n", 1},
		{"openblas", "\tlibopenblas.so.0 => /lib/libopenblas.so.0 (0x1)\n\tlibgfortran.so.5 => /lib/libgfortran.so.5 (0x2)\n", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { assert.Len(t, lddViolations(tc.out), tc.want) })
	}
}

// bundleDir returns $RERANK_GPU_BUNDLE (which must exist), else bin/gpu
// of this repository, skipping when it has not been built.
func bundleDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("RERANK_GPU_BUNDLE"); d != "" {
		require.DirExists(t, d, "RERANK_GPU_BUNDLE")
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	d := filepath.Join(filepath.Dir(file), "..", "bin", "gpu")
	if _, err := os.Stat(filepath.Join(d, "MANIFEST")); err != nil {
		t.Skip("no GPU bundle: run `make gpu-bundle` (make test does, then runs this test with RERANK_GPU_BUNDLE set)")
	}
	return d
}

// TestGPUBundle checks the built bundle: every file of its MANIFEST is
// there with its size and sha256, every listed binary is there, the whole
// fits the limit, and ldd shows no CUDA library nor OpenBLAS in any binary.
func TestGPUBundle(t *testing.T) {
	dir := bundleDir(t)
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	require.NoError(t, err)
	defer f.Close()
	var total int64
	files := map[string]bool{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		require.Len(t, fields, 3, "MANIFEST line %d: want sha256 size name", line)
		sum, name := fields[0], fields[2]
		size, err := strconv.ParseInt(fields[1], 10, 64)
		require.NoError(t, err, "MANIFEST line %d: size", line)
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, "MANIFEST line %d", line)
		h := sha256.Sum256(data)
		assert.Equal(t, size, int64(len(data)), "%s: size", name)
		assert.Equal(t, sum, hex.EncodeToString(h[:]), "%s: sha256", name)
		total += size
		files[name] = true
	}
	require.NoError(t, sc.Err())
	assert.LessOrEqual(t, total, int64(bundleLimit), "bundle size")

	env, err := os.ReadFile(filepath.Join(dir, "bundle.env"))
	require.NoError(t, err)
	want := []string{"rerank.gz", "rerank_kernels_check.gz", "train/train.jsonl.gz", "train/cpu_metrics.jsonl", "bundle.env"}
	for _, line := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(line, "BUNDLE_TESTS='"); ok {
			for _, tp := range strings.Fields(strings.TrimSuffix(v, "'")) {
				want = append(want, strings.SplitN(tp, ":", 2)[0]+".gz")
			}
		}
	}
	assert.Contains(t, want, "cuda.test.gz", "bundle.env lists the cuda package's tests")
	for _, w := range want {
		assert.True(t, files[w], "%s is missing from the bundle", w)
	}

	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("ldd not installed")
	}
	tmp := t.TempDir()
	for name := range files {
		if !strings.HasSuffix(name, ".gz") || strings.Contains(name, "/") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			bin := filepath.Join(tmp, strings.TrimSuffix(name, ".gz"))
			require.NoError(t, gunzip(filepath.Join(dir, name), bin))
			out, err := exec.Command("ldd", bin).CombinedOutput()
			require.NoError(t, err, "ldd %s: %s", name, out)
			assert.Contains(t, string(out), "libc.so", "a dynamic executable")
			assert.Empty(t, lddViolations(string(out)), "%s links what the GPU machine may lack:\n%s", name, out)
		})
	}
}

func gunzip(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, zr); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", src, err)
	}
	return out.Close()
}
