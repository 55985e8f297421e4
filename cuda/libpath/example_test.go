package libpath_test

import (
	"fmt"
	"os"

	"github.com/rerank-go/rerank/cuda/libpath"
)

// Find an NVIDIA library to dlopen: an environment variable naming the
// file wins alone; otherwise the candidates start with the bare soname (the
// dynamic loader's own search) and go on with the folders that hold it.
// Searched words the error for when none opens.
func Example() {
	os.Setenv("RERANK_NVML", "/opt/driver/libnvidia-ml.so.1")
	fmt.Println(libpath.Candidates("RERANK_NVML", "libnvidia-ml.so.1"))
	os.Unsetenv("RERANK_NVML")

	c := libpath.Candidates("RERANK_NVML", "libnvidia-ml.so.1")
	fmt.Println(c[0])
	// Output:
	// [/opt/driver/libnvidia-ml.so.1]
	// libnvidia-ml.so.1
}
