//go:build cgo

package dist

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadNCCLMissingLibrary(t *testing.T) {
	_, err := LoadNCCL(filepath.Join(t.TempDir(), "libnccl.so.2"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NCCL: cannot load")
	assert.Contains(t, err.Error(), "LD_LIBRARY_PATH")
	assert.Contains(t, err.Error(), "RERANK_NCCL_LIBRARY")
}

func TestLoadNCCLWithoutNCCLSymbols(t *testing.T) {
	// A real shared library that is not NCCL: the first missing symbol
	// is named.
	_, err := LoadNCCL("libm.so.6")
	require.ErrorContains(t, err, "missing symbol ncclGetVersion")
}

func TestNCCLVersionString(t *testing.T) {
	assert.Equal(t, "2.21.5", ncclVersionString(22105))
	assert.Equal(t, "2.7.8", ncclVersionString(2708))
}
