package nn

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
)

// TestActivationSizeIsWhatIsCarved: the size ActivationBytes reports (and
// ensure allocates) is exactly what ensure's views take, in every layout,
// with and without gradient buffers (Forward keeps the same either way).
func TestActivationSizeIsWhatIsCarved(t *testing.T) {
	cfg := Config{Arch: BERT, VocabSize: 50, Hidden: 16, Layers: 3, Heads: 4, Intermediate: 24,
		MaxPositions: 40, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	const n, s = 3, 12
	b := &Batch{N: n, S: s, InputIDs: make([]int32, n*s), TypeIDs: make([]int32, n*s), Mask: make([]int32, n*s)}
	for i := 0; i < n; i++ {
		for j := 0; j < s-3*i; j++ { // rows of 12, 9 and 6 tokens: padding
			b.InputIDs[i*s+j], b.Mask[i*s+j] = int32(2+j), 1
		}
	}
	for _, train := range []bool{false, true} {
		for _, ckpt := range []bool{false, true} {
			for _, packed := range []bool{false, true} {
				for _, mode := range []AttentionMode{AttentionStored, AttentionTiled} {
					t.Run(fmt.Sprintf("train=%v/ckpt=%v/packed=%v/mode=%d", train, ckpt, packed, mode), func(t *testing.T) {
						be := cpu.New()
						m, err := New(be, cfg)
						require.NoError(t, err)
						m.InitRandom(1, 0.02)
						if train {
							require.NoError(t, m.EnableGrads(nil))
						}
						m.Attention.Mode = mode
						_, err = m.Forward(b, RunOptions{Train: train, SkipPadding: packed, GradientCheckpointing: ckpt})
						require.NoError(t, err)
						o := ActOptions{GradientCheckpointing: ckpt, Attention: m.Attention, Packed: packed}
						want := ActivationBytes(be, cfg, n, s, o)
						assert.Equal(t, want, 4*int64(m.acts.carved)+16*n*s, "the views take what the size says")
						assert.Equal(t, want, 4*int64(m.acts.mem.Len())+4*int64(m.acts.imem.Len()), "the allocation is the size")
					})
				}
			}
		}
	}
}
