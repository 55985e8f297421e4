package nn_test

import (
	"testing"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/golden"
	"github.com/rerank-go/rerank/internal/sharedtest"
)

// plainBackend hides the optional extensions of the backend it wraps
// (backend.AddLayerNormer, BiasGemmer, Laner, ...), so that nn takes the
// paths a backend without them gets.
type plainBackend struct{ backend.Backend }

// TestGolden runs every full case under $RERANK_GOLDEN on the CPU backend,
// with and without its optional extensions. LoRA cases are run by package
// lora.
func TestGolden(t *testing.T) {
	root := sharedtest.Golden(t)
	ran := 0
	for _, c := range golden.Cases(t, root) {
		if c.IsLora() {
			continue
		}
		ran++
		for _, be := range []struct {
			name string
			new  func() backend.Backend
		}{
			{"cpu", func() backend.Backend { return cpu.New() }},
			{"cpu without extensions", func() backend.Backend { return plainBackend{cpu.New()} }},
		} {
			t.Run(c.Name+"/"+be.name, func(t *testing.T) {
				golden.CheckFull(t, c, golden.Options{
					NewBackend:    be.new,
					Probabilities: cpu.Probabilities,
				})
			})
		}
	}
	if ran == 0 {
		t.Fatalf("no full (non-LoRA) case under %s", root)
	}
}
