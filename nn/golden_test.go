package nn_test

import (
	"testing"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/golden"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/nn"
)

// plainBackend hides the optional extensions of the backend it wraps
// (backend.AddLayerNormer, BiasGemmer, Laner, ...), so that nn takes the
// paths a backend without them gets.
type plainBackend struct{ backend.Backend }

// tiledSmall forces tiled attention in blocks of 3 queries × 3 keys, so
// that the golden cases' short sequences span several blocks, and the
// online softmax and the backward's recomputation meet every case.
var tiledSmall = nn.AttentionOptions{Mode: nn.AttentionTiled, Tile: 3}

// TestGolden runs every full case under $RERANK_GOLDEN on the CPU backend,
// with and without its optional extensions, and with tiled attention.
// LoRA cases are run by package lora.
func TestGolden(t *testing.T) {
	root := sharedtest.Golden(t)
	ran := 0
	for _, c := range golden.Cases(t, root) {
		if c.IsLora() {
			continue
		}
		ran++
		for _, be := range []struct {
			name  string
			new   func() backend.Backend
			tiled bool
		}{
			{"cpu", func() backend.Backend { return cpu.New() }, false},
			{"cpu without extensions", func() backend.Backend { return plainBackend{cpu.New()} }, false},
			{"cpu tiled attention", func() backend.Backend { return cpu.New() }, true},
		} {
			t.Run(c.Name+"/"+be.name, func(t *testing.T) {
				o := golden.Options{NewBackend: be.new, Probabilities: cpu.Probabilities}
				if be.tiled {
					o.Attention, o.Probabilities = tiledSmall, nil
				}
				golden.CheckFull(t, c, o)
			})
		}
	}
	if ran == 0 {
		t.Fatalf("no full (non-LoRA) case under %s", root)
	}
}
