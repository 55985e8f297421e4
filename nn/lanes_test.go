package nn_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
)

// TestLanes: splitting a batch's sequences across lanes gives the logits
// of one pass over the whole batch, whatever the lane count, batch size and
// padding; the model keeps working on its own afterwards and the lanes see
// its weights change.
func TestLanes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		arch  nn.Arch
		lanes int
		n     int
		skip  bool
	}{
		{"bert 2 lanes", nn.BERT, 2, 6, false},
		{"bert 3 lanes skip padding", nn.BERT, 3, 7, true},
		{"xlmr 2 lanes skip padding", nn.XLMRoberta, 2, 5, true},
		{"more lanes than rows", nn.BERT, 4, 3, false},
		{"one row", nn.XLMRoberta, 2, 1, true},
		{"one lane", nn.BERT, 1, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			m, err := nn.New(cpu.NewWorkers(tc.lanes), c)
			require.NoError(t, err)
			m.InitRandom(3, 0.2)
			ln, err := nn.NewLanes(m)
			require.NoError(t, err)
			assert.Equal(t, tc.lanes, ln.Count())
			r := rand.New(rand.NewPCG(5, uint64(tc.n)))
			o := nn.RunOptions{SkipPadding: tc.skip}
			for step := 0; step < 2; step++ {
				b := randomBatch(r, c, tc.n, 12)
				got, err := ln.Forward(b, o)
				require.NoError(t, err)
				want, err := m.Forward(b, o)
				require.NoError(t, err)
				assert.LessOrEqual(t, closeRel(got, want), 1e-6, "step %d", step)
				// A weight update shows in the next pass of the lanes.
				m.InitRandom(uint64(10+step), 0.2)
			}
			_, err = ln.Forward(randomBatch(r, c, tc.n, 12), nn.RunOptions{Train: true})
			assert.ErrorContains(t, err, "inference only")
		})
	}
}

// TestLanesWithGrads: a model being trained (gradient buffers) still
// scores on its lanes.
func TestLanesWithGrads(t *testing.T) {
	c := tinyConfig(nn.BERT)
	m := newModel(t, c, 4) // gradient buffers enabled: the lanes still run
	ln, err := nn.NewLanes(m)
	require.NoError(t, err)
	b := randomBatch(rand.New(rand.NewPCG(1, 1)), c, 4, 10)
	got, err := ln.Forward(b, nn.RunOptions{})
	require.NoError(t, err)
	want, err := m.Forward(b, nn.RunOptions{})
	require.NoError(t, err)
	assert.LessOrEqual(t, closeRel(got, want), 1e-6)
}

// TestLanesPackWeights: lanes with packed weights give the bits of lanes
// without, whatever part of the weights the budget covers, with and
// without padding skipped and with every position computed; after
// release they read the model's weights again.
func TestLanesPackWeights(t *testing.T) {
	packs := cpu.NewWorkers(2).PackedSize(64, 64) > 0
	for _, tc := range []struct {
		name   string
		arch   nn.Arch
		budget int64
		o      nn.RunOptions
	}{
		{"bert all", nn.BERT, -1, nn.RunOptions{}},
		{"bert all skip padding", nn.BERT, -1, nn.RunOptions{SkipPadding: true}},
		{"xlmr all positions", nn.XLMRoberta, -1, nn.RunOptions{AllPositions: true}},
		{"xlmr part", nn.XLMRoberta, 20_000, nn.RunOptions{SkipPadding: true}},
		{"bert head only", nn.BERT, 5_000, nn.RunOptions{}},
		{"budget too small", nn.BERT, 100, nn.RunOptions{}},
		{"zero budget", nn.BERT, 0, nn.RunOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			m, ln := twoLanes(t, c, 3)
			r := rand.New(rand.NewPCG(7, 7))
			b := randomBatch(r, c, 6, 12)
			want, err := ln.Forward(b, tc.o)
			require.NoError(t, err)
			want = slices.Clone(want) // the next pass reuses the logits

			release, err := ln.PackWeights(tc.budget)
			require.NoError(t, err)
			if tc.budget >= 0 {
				assert.LessOrEqual(t, ln.PackedBytes(), tc.budget)
			}
			if packs && (tc.budget < 0 || tc.budget > 1000) {
				assert.Positive(t, ln.PackedBytes())
			}
			_, err = ln.PackWeights(-1)
			assert.ErrorContains(t, err, "already packed")
			got, err := ln.Forward(b, tc.o)
			require.NoError(t, err)
			assert.Equal(t, want, got, "packed weights change the logits")

			release()
			release()
			assert.Zero(t, ln.PackedBytes())
			m.InitRandom(4, 0.2)
			got, err = ln.Forward(b, tc.o)
			require.NoError(t, err)
			want, err = m.Forward(b, tc.o)
			require.NoError(t, err)
			assert.LessOrEqual(t, closeRel(got, want), 1e-6, "released lanes read the new weights")
		})
	}
}

// TestLanesHelpEachOther: with packed weights, a lane that finishes early
// (two short rows against one long one) takes blocks of the other's
// products; the logits keep the bits of lanes that do not share.
func TestLanesHelpEachOther(t *testing.T) {
	c := tinyConfig(nn.BERT)
	c.MaxPositions = 512
	_, ln := twoLanes(t, c, 5)
	r := rand.New(rand.NewPCG(8, 8))
	b := randomBatch(r, c, 3, 500)
	for i := 1; i < 3; i++ { // rows 1 and 2 keep 8 tokens
		for j := 8; j < 500; j++ {
			b.InputIDs[i*500+j], b.TypeIDs[i*500+j], b.Mask[i*500+j] = int32(c.PadID), 0, 0
		}
	}
	for _, o := range []nn.RunOptions{{SkipPadding: true}, {}} {
		want, err := ln.Forward(b, o)
		require.NoError(t, err)
		want = slices.Clone(want) // the next pass reuses the logits
		release, err := ln.PackWeights(-1)
		require.NoError(t, err)
		for pass := 0; pass < 3; pass++ {
			got, err := ln.Forward(b, o)
			require.NoError(t, err)
			assert.Equal(t, want, got, "pass %d", pass)
		}
		release()
	}
}

// twoLanes returns a model of shape c on a two-worker CPU backend, its
// weights drawn from seed, and its lanes.
func twoLanes(t *testing.T, c nn.Config, seed uint64) (*nn.Model, *nn.Lanes) {
	t.Helper()
	m, err := nn.New(cpu.NewWorkers(2), c)
	require.NoError(t, err)
	m.InitRandom(seed, 0.2)
	ln, err := nn.NewLanes(m)
	require.NoError(t, err)
	return m, ln
}
