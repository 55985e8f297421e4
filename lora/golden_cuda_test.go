//go:build cuda

package lora_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/cuda"
	"github.com/rerank-go/rerank/internal/golden"
	"github.com/rerank-go/rerank/internal/sharedtest"
)

// TestGoldenCUDA runs every LoRA case on the GPU backend (go test -tags
// cuda ./lora/), with the same checks and tolerances as on the CPU.
func TestGoldenCUDA(t *testing.T) {
	root := sharedtest.Golden(t)
	newBE := func() backend.Backend {
		be, err := cuda.New(cuda.Options{})
		require.NoError(t, err)
		return be
	}
	for _, c := range golden.Cases(t, root) {
		if c.IsLora() {
			t.Run(c.Name, func(t *testing.T) { checkLoraCase(t, c, newBE) })
		}
	}
}
