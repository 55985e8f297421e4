// Package libpath lists where rerank looks for the NVIDIA libraries it
// opens at run time (NVML here; cuBLAS and NCCL through the same order in
// kernels/dynload.cc), so that one binary runs beside any driver, CUDA
// toolkit or PyTorch install without linking a CUDA-version-specific
// library.
//
// The order: the file named by an environment variable (RERANK_NVML, ...),
// the bare soname (the dynamic loader's own search: LD_LIBRARY_PATH, the
// ldconfig cache, /lib, /usr/lib), the CUDA toolkit's and Debian's library
// folders, then the nvidia/*/lib folders of the Python packages that
// PyTorch's CUDA wheels install.
package libpath

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SystemDirs are searched after the loader's own path.
var SystemDirs = []string{"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"}

// pythonScript prints every <site>/nvidia/*/lib folder without importing
// torch (slow) or anything else.
const pythonScript = `import sys,glob,os
seen=set()
for p in sys.path:
  for d in sorted(glob.glob(os.path.join(p or '.','nvidia','*','lib'))):
    d=os.path.realpath(d)
    if d not in seen: seen.add(d); print(d)`

var (
	pyOnce sync.Once
	pyDirs []string
)

// PythonDirs returns the nvidia/*/lib folders of $RERANK_PYTHON (default
// python3), asked once and cached; nil without Python or CUDA wheels.
func PythonDirs() []string {
	pyOnce.Do(func() {
		py := os.Getenv("RERANK_PYTHON")
		if py == "" {
			py = "python3"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, py, "-c", pythonScript).Output()
		if err != nil {
			return
		}
		pyDirs = strings.Fields(string(out))
	})
	return pyDirs
}

// Candidates lists, in search order, what to try to open for a library
// with the given sonames: $env's value when set (alone), the sonames
// themselves, then each soname in SystemDirs and PythonDirs.
func Candidates(env string, sonames ...string) []string {
	if env != "" {
		if p := os.Getenv(env); p != "" {
			return []string{p}
		}
	}
	out := append([]string(nil), sonames...)
	for _, d := range append(append([]string(nil), SystemDirs...), PythonDirs()...) {
		for _, s := range sonames {
			p := filepath.Join(d, s)
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// Searched describes the search for an error message.
func Searched(env string, sonames ...string) string {
	s := strings.Join(sonames, ", ") + " in the loader's path (LD_LIBRARY_PATH, ldconfig), " + strings.Join(SystemDirs, ", ")
	if d := PythonDirs(); len(d) > 0 {
		s += " and python3's nvidia/*/lib folders (" + strings.Join(d, ", ") + ")"
	} else {
		s += " and python3's nvidia/*/lib folders (none: no PyTorch CUDA wheels)"
	}
	if env != "" {
		s += "; set " + env + " to the library's path"
	}
	return s
}
