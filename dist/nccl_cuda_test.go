//go:build cuda && !cudaemu

package dist

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Without libnccl.so.2 the NCCL backend says where to get it (no GPU
// needed: the library is loaded first).
func TestOpenNCCLWithoutLibrary(t *testing.T) {
	t.Setenv("RERANK_NCCL_LIBRARY", t.TempDir()+"/libnccl.so.2")
	_, err := Open(Options{Backend: NCCL, Device: "cuda", Launch: &Launch{Launcher: "torchrun", Size: 2, MasterAddr: "127.0.0.1", MasterPort: 29500}})
	require.ErrorContains(t, err, "NCCL: cannot load")
	require.ErrorContains(t, err, "LD_LIBRARY_PATH")
}
