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

// TestLaneActivationsBound: a lane's activations for a share with padding
// to skip take no more memory than the same share unpacked (the packing
// scratch lives in the intermediate's memory), however many short rows a
// lane is dealt beside a long one (issue 17: eight queries in flight gave
// one lane 15 short rows padded to the longest).
func TestLaneActivationsBound(t *testing.T) {
	base := nn.Config{Arch: nn.BERT, VocabSize: 50, Hidden: 16, Layers: 2, Heads: 4, Intermediate: 64,
		MaxPositions: 40, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	narrow := base
	narrow.Intermediate = 24 // below 3·Hidden: the intermediate grows to hold the packed QKV
	for _, tc := range []struct {
		name string
		cfg  nn.Config
		lens []int
	}{
		{"many short beside two long", base, []int{32, 3, 4, 3, 5, 3, 4, 32, 3, 3, 6, 3, 4, 3, 3, 5}},
		{"all full", base, []int{32, 32, 32, 32}},
		{"narrow intermediate", narrow, []int{32, 3, 4, 3, 5, 3, 4, 32}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const S = 32
			n := len(tc.lens)
			b := &nn.Batch{N: n, S: S, InputIDs: make([]int32, n*S), TypeIDs: make([]int32, n*S), Mask: make([]int32, n*S)}
			for i, l := range tc.lens {
				for j := 0; j < l; j++ {
					b.InputIDs[i*S+j], b.Mask[i*S+j] = int32(2+j), 1
				}
			}
			be := cpu.NewWorkers(2)
			m, err := nn.New(be, tc.cfg)
			require.NoError(t, err)
			m.InitRandom(1, 0.02)
			r, err := New(m)
			require.NoError(t, err)
			require.Len(t, r.lanes, 2)
			_, err = r.Forward(b)
			require.NoError(t, err)
			for i, p := range r.lanes {
				a := &p.a
				require.NotNil(t, a.mem, "lane %d ran", i)
				bound := ActivationBytes(p.be, tc.cfg, a.n, a.s, m.Attention, false)
				if tc.cfg.Intermediate < 3*tc.cfg.Hidden && a.packed {
					bound += 4 * int64(a.n*a.s*(3*tc.cfg.Hidden-tc.cfg.Intermediate))
				}
				got := 4*int64(a.mem.Len()) + 4*int64(a.imem.Len())
				assert.LessOrEqual(t, got, bound, "lane %d (%d×%d, %d rows, packed %v): activation bytes past the unpacked share's", i, a.n, a.s, a.rows, a.packed)
			}
		})
	}
}
