package nn_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/nn"
)

// closeRel reports the largest |a-b| / max(1, |b|).
func closeRel(a, b []float32) float64 {
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i]))/math.Max(1, math.Abs(float64(b[i]))))
	}
	return worst
}

// TestSkipPadding: packing the real tokens (RunOptions.SkipPadding) gives
// the padded pass's logits, loss, gradients and hidden states at computed
// positions, with and without gradient checkpointing; with dropout, the
// checkpointed and plain packed passes agree bit for bit.
func TestSkipPadding(t *testing.T) {
	for _, tc := range []struct {
		name    string
		arch    nn.Arch
		dropout bool
		ckpt    bool
	}{
		{"bert", nn.BERT, false, false},
		{"bert checkpointing", nn.BERT, false, true},
		{"xlmr", nn.XLMRoberta, false, false},
		{"xlmr checkpointing", nn.XLMRoberta, false, true},
		{"bert dropout", nn.BERT, true, false},
		{"xlmr dropout", nn.XLMRoberta, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			if !tc.dropout {
				c.HiddenDropout, c.AttentionDropout, c.ClassifierDropout = 0, 0, 0
			}
			r := rand.New(rand.NewPCG(21, uint64(tc.arch)))
			b := randomBatch(r, c, 6, 14)
			// One row with padding inside too, one with a single token.
			b.Mask[2*14+3] = 0
			for j := 1; j < 14; j++ {
				b.Mask[5*14+j], b.InputIDs[5*14+j] = 0, int32(c.PadID)
			}
			o := nn.RunOptions{Train: true, Seed: 99, AllPositions: true, GradientCheckpointing: tc.ckpt}
			ref := newModel(t, c, 4)
			skip := newModel(t, c, 4)
			l1, _ := lossAndGrad(t, ref, b, o, 3)
			o.SkipPadding = true
			l2, _ := lossAndGrad(t, skip, b, o, 3)
			if tc.dropout {
				// Other masks: compare plain and checkpointed packed passes.
				again := newModel(t, c, 4)
				oc := o
				oc.GradientCheckpointing = true
				l3, _ := lossAndGrad(t, again, b, oc, 3)
				assert.Equal(t, l2, l3)
				assert.Equal(t, flatGrads(skip), flatGrads(again))
				return
			}
			assert.InDelta(t, l1, l2, 1e-6)
			assert.LessOrEqual(t, closeRel(flatGrads(skip), flatGrads(ref)), 1e-5)
			for k := 0; k <= c.Layers; k++ {
				want, got := ref.HiddenState(k), skip.HiddenState(k)
				for i := 0; i < b.N; i++ {
					last := 0
					for j := 0; j < b.S; j++ {
						if b.Mask[i*b.S+j] != 0 {
							last = j
						}
					}
					H := c.Hidden
					row := func(v []float32, j int) []float32 { return v[(i*b.S+j)*H : (i*b.S+j+1)*H] }
					for j := 0; j < b.S; j++ {
						if j <= last {
							assert.LessOrEqualf(t, closeRel(row(got, j), row(want, j)), 1e-5, "hidden %d row %d pos %d", k, i, j)
						} else {
							assert.Equalf(t, make([]float32, H), row(got, j), "hidden %d row %d pos %d is skipped", k, i, j)
						}
					}
				}
			}
		})
	}
}

// TestLastLayerAtCLSOnly: running the last layer past its attention at
// position 0 only (the default) gives the logits, loss and gradients of
// the full pass, packed or not, with or without gradient checkpointing and
// in inference; the earlier hidden states are equal and the last one holds
// position 0 only. With dropout, plain and checkpointed passes agree bit
// for bit.
func TestLastLayerAtCLSOnly(t *testing.T) {
	for _, tc := range []struct {
		name             string
		arch             nn.Arch
		skip, ckpt, drop bool
		infer            bool
	}{
		{name: "bert", arch: nn.BERT},
		{name: "xlmr", arch: nn.XLMRoberta},
		{name: "bert skip padding", arch: nn.BERT, skip: true},
		{name: "xlmr skip padding checkpointing", arch: nn.XLMRoberta, skip: true, ckpt: true},
		{name: "bert checkpointing", arch: nn.BERT, ckpt: true},
		{name: "bert inference", arch: nn.BERT, infer: true},
		{name: "xlmr inference skip padding", arch: nn.XLMRoberta, infer: true, skip: true},
		{name: "bert dropout", arch: nn.BERT, drop: true},
		{name: "xlmr dropout skip padding", arch: nn.XLMRoberta, drop: true, skip: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			c.Layers = 3
			if !tc.drop {
				c.HiddenDropout, c.AttentionDropout, c.ClassifierDropout = 0, 0, 0
			}
			r := rand.New(rand.NewPCG(31, uint64(tc.arch)))
			warm, b := randomBatch(r, c, 6, 13), randomBatch(r, c, 6, 13)
			full := nn.RunOptions{Train: !tc.infer, Seed: 7, SkipPadding: tc.skip, AllPositions: true}
			cls := full
			cls.AllPositions = false
			run := func(o nn.RunOptions, ckpt bool) (*nn.Model, []float32, float64) {
				o.GradientCheckpointing = ckpt
				m := newModel(t, c, 12)
				if tc.infer {
					m, _ = nn.New(m.Backend(), c)
					m.InitRandom(12, 0.2)
				}
				// A step on another batch first leaves stale values in every
				// buffer.
				if tc.infer {
					_, err := m.Forward(warm, o)
					require.NoError(t, err)
				} else {
					lossAndGrad(t, m, warm, o, 3)
				}
				logits, err := m.Forward(b, o)
				require.NoError(t, err)
				logits = slices.Clone(logits) // the model reuses its logits
				if tc.infer {
					return m, logits, 0
				}
				loss, _ := lossAndGrad(t, m, b, o, 3)
				return m, logits, loss
			}
			if tc.drop {
				plain, l1, loss1 := run(cls, false)
				ckpt, l2, loss2 := run(cls, true)
				assert.Equal(t, l1, l2)
				assert.Equal(t, loss1, loss2)
				assert.Equal(t, flatGrads(plain), flatGrads(ckpt))
				return
			}
			ref, want, wantLoss := run(full, tc.ckpt)
			got, logits, loss := run(cls, tc.ckpt)
			assert.LessOrEqual(t, closeRel(logits, want), 1e-5)
			if !tc.infer {
				assert.InDelta(t, wantLoss, loss, 1e-6)
				assert.LessOrEqual(t, closeRel(flatGrads(got), flatGrads(ref)), 1e-5)
			}
			for k := 0; k < c.Layers; k++ {
				assert.Equal(t, ref.HiddenState(k), got.HiddenState(k), "hidden state %d", k)
			}
			H := c.Hidden
			last, lastRef := got.HiddenState(c.Layers), ref.HiddenState(c.Layers)
			for i := 0; i < b.N; i++ {
				row := i * b.S * H
				assert.LessOrEqual(t, closeRel(last[row:row+H], lastRef[row:row+H]), 1e-5, "sequence %d position 0", i)
				assert.Equal(t, make([]float32, (b.S-1)*H), last[row+H:row+b.S*H], "sequence %d: positions past 0 are not computed", i)
			}
		})
	}
}

// TestForwardKeepsActivationsWithoutGrads: what Forward keeps does not
// depend on whether EnableGrads was called before it: a pass on a model
// without gradient buffers gives the logits and hidden states of one with
// them, and a Backward after EnableGrads follows it directly, with the
// gradients of a model that had its buffers all along. (Scoring, which
// keeps nothing, is nn/infer's.)
func TestForwardKeepsActivationsWithoutGrads(t *testing.T) {
	for _, tc := range []struct {
		name  string
		arch  nn.Arch
		skip  bool
		train bool
	}{
		{"bert", nn.BERT, false, false},
		{"bert skip padding", nn.BERT, true, false},
		{"bert dropout", nn.BERT, true, true},
		{"xlmr", nn.XLMRoberta, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(tc.arch)
			b := randomBatch(rand.New(rand.NewPCG(8, 9)), c, 4, 11)
			o := nn.RunOptions{SkipPadding: tc.skip, Train: tc.train, Seed: 5, AllPositions: true}
			withGrads := newModel(t, c, 6)
			late, err := nn.New(withGrads.Backend(), c)
			require.NoError(t, err)
			late.InitRandom(6, 0.2)
			want, err := withGrads.Forward(b, o)
			require.NoError(t, err)
			got, err := late.Forward(b, o)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			for k := 0; k <= c.Layers; k++ {
				assert.Equal(t, withGrads.HiddenState(k), late.HiddenState(k), "hidden state %d", k)
			}
			assert.ErrorContains(t, late.Backward(make([]float32, b.N)), "call EnableGrads first")
			require.NoError(t, late.EnableGrads(nil))
			dl := make([]float32, b.N)
			for i := range dl {
				dl[i] = float32(i) - 1.5
			}
			withGrads.ZeroGrads()
			require.NoError(t, withGrads.Backward(dl))
			require.NoError(t, late.Backward(dl))
			assert.Equal(t, flatGrads(withGrads), flatGrads(late))
		})
	}
}
