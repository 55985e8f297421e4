//go:build cuda

package lora_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/cuda"
	"github.com/rerank-go/rerank/cuda/cudatest"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/golden"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/nn"
)

// TestGoldenCUDA runs every LoRA case on the GPU backend (go test -tags
// cuda ./lora/), with the same checks and tolerances as on the CPU. Cases
// whose shapes the GPU kernels do not support (the fused attention wants
// head dims 32, 64 or 128; the shared set's are 8) are skipped, saying so;
// TestAdapterCUDA covers the adapter on any shape.
func TestGoldenCUDA(t *testing.T) {
	cudatest.Open(t, cuda.Options{}) // skips (or fails under RERANK_REQUIRE_GPU=1) without a GPU
	root := sharedtest.Golden(t)
	newBE := func() backend.Backend {
		be, err := cuda.New(cuda.Options{})
		require.NoError(t, err)
		return be
	}
	for _, c := range golden.Cases(t, root) {
		if !c.IsLora() {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			m, _, err := hfmodel.Load(newBE(), filepath.Join(c.Dir, "model"), hfmodel.LoadOptions{})
			require.NoError(t, err)
			if _, err := m.Forward(c.Inputs.Batch(), nn.RunOptions{}); err != nil && strings.Contains(err.Error(), "unsupported shape") {
				t.Skipf("the CUDA backend does not run this case's shapes: %v", err)
			}
			checkLoraCase(t, c, newBE)
		})
	}
}
