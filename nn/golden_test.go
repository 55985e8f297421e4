package nn_test

import (
	"testing"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/golden"
	"github.com/rerank-go/rerank/internal/sharedtest"
)

// TestGolden runs every full case under $RERANK_GOLDEN on the CPU backend.
// LoRA cases are run by package lora.
func TestGolden(t *testing.T) {
	root := sharedtest.Golden(t)
	ran := 0
	for _, c := range golden.Cases(t, root) {
		if c.IsLora() {
			continue
		}
		ran++
		t.Run(c.Name, func(t *testing.T) {
			golden.CheckFull(t, c, golden.Options{
				NewBackend:    func() backend.Backend { return cpu.New() },
				Probabilities: cpu.Probabilities,
			})
		})
	}
	if ran == 0 {
		t.Fatalf("no full (non-LoRA) case under %s", root)
	}
}
