package infer

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
)

// TestActivationSizeIsWhatIsCarved: the size ActivationBytes reports is
// what a pass allocates and what its views take, packed or not, stored or
// tiled attention.
func TestActivationSizeIsWhatIsCarved(t *testing.T) {
	cfg := nn.Config{Arch: nn.BERT, VocabSize: 50, Hidden: 16, Layers: 3, Heads: 4, Intermediate: 24,
		MaxPositions: 40, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	const n, s = 3, 12
	for _, packed := range []bool{false, true} {
		for _, mode := range []nn.AttentionMode{nn.AttentionStored, nn.AttentionTiled} {
			t.Run(fmt.Sprintf("packed=%v/mode=%v", packed, mode), func(t *testing.T) {
				b := &nn.Batch{N: n, S: s, InputIDs: make([]int32, n*s), TypeIDs: make([]int32, n*s), Mask: make([]int32, n*s)}
				for i := 0; i < n; i++ {
					l := s
					if packed {
						l = s - 3*i // rows of 12, 9 and 6 tokens
					}
					for j := 0; j < l; j++ {
						b.InputIDs[i*s+j], b.Mask[i*s+j] = int32(2+j), 1
					}
				}
				be := cpu.NewWorkers(1) // one lane: the pass runs on the model's backend whole
				m, err := nn.New(be, cfg)
				require.NoError(t, err)
				m.InitRandom(1, 0.02)
				m.Attention.Mode = mode
				r, err := New(m)
				require.NoError(t, err)
				_, err = r.Forward(b)
				require.NoError(t, err)
				a := &r.whole.a
				require.Equal(t, packed, a.packed)
				want := ActivationBytes(be, cfg, n, s, m.Attention, packed)
				assert.Equal(t, want, 4*int64(a.carved)+4*int64(a.imem.Len()), "the views take what the size says")
				assert.Equal(t, want, 4*int64(a.mem.Len())+4*int64(a.imem.Len()), "the allocation is the size")
			})
		}
	}
}
