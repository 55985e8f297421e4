package nn_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/nntest"
	"github.com/rerank-go/rerank/loss"
	"github.com/rerank-go/rerank/nn"
)

func tinyConfig(arch nn.Arch) nn.Config { return nntest.TinyConfig(arch) }

// randomBatch builds n rows of at most s tokens with right padding.
func randomBatch(r *rand.Rand, c nn.Config, n, s int) *nn.Batch {
	return nntest.RandomBatch(r, c, n, s)
}

func newModel(t testing.TB, c nn.Config, seed uint64) *nn.Model {
	m, err := nn.New(cpu.New(), c)
	require.NoError(t, err)
	m.InitRandom(seed, 0.2) // a large std makes every path matter
	require.NoError(t, m.EnableGrads(nil))
	return m
}

func lossAndGrad(t testing.TB, m *nn.Model, b *nn.Batch, o nn.RunOptions, g int) (float64, bool) {
	logits, err := m.Forward(b, o)
	require.NoError(t, err)
	ce, dl, err := loss.GroupSoftmaxCE(logits, g)
	require.NoError(t, err)
	if dl != nil {
		m.ZeroGrads()
		require.NoError(t, m.Backward(dl))
	}
	return float64(ce), true
}

func flatGrads(m *nn.Model) []float32 {
	var out []float32
	for _, p := range m.Params() {
		v := make([]float32, p.Size())
		m.Backend().Download(v, p.G)
		out = append(out, v...)
	}
	return out
}

// TestDirectionalDerivative checks the whole backward pass, in training mode
// with every dropout active, against a finite difference of the loss along
// a random direction in parameter space.
func TestDirectionalDerivative(t *testing.T) {
	for _, arch := range []nn.Arch{nn.BERT, nn.XLMRoberta} {
		t.Run(arch.String(), func(t *testing.T) {
			c := tinyConfig(arch)
			r := rand.New(rand.NewPCG(11, uint64(arch)))
			m := newModel(t, c, 3)
			b := randomBatch(r, c, 6, 12)
			o := nn.RunOptions{Train: true, Seed: 1234}
			lossAndGrad(t, m, b, o, 3)
			g := flatGrads(m)

			var params [][]float32
			var dirs [][]float32
			dot := 0.0
			k := 0
			for _, p := range m.Params() {
				v := make([]float32, p.Size())
				m.Backend().Download(v, p.W)
				d := make([]float32, p.Size())
				for i := range d {
					d[i] = float32(r.NormFloat64())
					dot += float64(d[i]) * float64(g[k])
					k++
				}
				params, dirs = append(params, v), append(dirs, d)
			}
			at := func(h float64) float64 {
				for i, p := range m.Params() {
					v := make([]float32, p.Size())
					for j := range v {
						v[j] = params[i][j] + float32(h)*dirs[i][j]
					}
					m.Backend().Upload(p.W, v)
				}
				logits, err := m.Forward(b, o)
				require.NoError(t, err)
				ce, _, err := loss.GroupSoftmaxCE(logits, 3)
				require.NoError(t, err)
				return float64(ce)
			}
			const h = 1e-3
			fd := (at(h) - at(-h)) / (2 * h)
			assert.InEpsilon(t, fd, dot, 2e-2, "directional derivative: finite difference %v, backward %v", fd, dot)
		})
	}
}

// TestGradientCheckpointing: recomputing each layer in the backward pass
// gives the same logits and bit-identical gradients, dropout included.
func TestGradientCheckpointing(t *testing.T) {
	for _, arch := range []nn.Arch{nn.BERT, nn.XLMRoberta} {
		t.Run(arch.String(), func(t *testing.T) {
			c := tinyConfig(arch)
			r := rand.New(rand.NewPCG(5, 6))
			b := randomBatch(r, c, 4, 10)
			o := nn.RunOptions{Train: true, Seed: 77}
			plain := newModel(t, c, 9)
			ckpt := newModel(t, c, 9)
			oc := o
			oc.GradientCheckpointing = true
			l1, _ := lossAndGrad(t, plain, b, o, 2)
			l2, _ := lossAndGrad(t, ckpt, b, oc, 2)
			assert.Equal(t, l1, l2)
			assert.Equal(t, flatGrads(plain), flatGrads(ckpt))
		})
	}
}

func TestDropoutSeeds(t *testing.T) {
	c := tinyConfig(nn.BERT)
	m := newModel(t, c, 1)
	b := randomBatch(rand.New(rand.NewPCG(1, 2)), c, 2, 8)
	run := func(o nn.RunOptions) []float32 {
		l, err := m.Forward(b, o)
		require.NoError(t, err)
		return slices.Clone(l) // the model reuses its logits
	}
	assert.Equal(t, run(nn.RunOptions{Train: true, Seed: 1}), run(nn.RunOptions{Train: true, Seed: 1}), "same seed, same masks")
	assert.NotEqual(t, run(nn.RunOptions{Train: true, Seed: 1}), run(nn.RunOptions{Train: true, Seed: 2}), "new seed, new masks")
	assert.Equal(t, run(nn.RunOptions{Seed: 1}), run(nn.RunOptions{Seed: 2}), "eval mode has no dropout")
}

// TestPaddingIsInvisible: extra padding changes no logit.
func TestPaddingIsInvisible(t *testing.T) {
	for _, arch := range []nn.Arch{nn.BERT, nn.XLMRoberta} {
		c := tinyConfig(arch)
		m := newModel(t, c, 2)
		b := randomBatch(rand.New(rand.NewPCG(3, 4)), c, 3, 8)
		wide := &nn.Batch{N: 3, S: 12}
		for i := 0; i < 3; i++ {
			wide.InputIDs = append(append(wide.InputIDs, b.InputIDs[i*8:i*8+8]...), int32(c.PadID), int32(c.PadID), int32(c.PadID), int32(c.PadID))
			wide.TypeIDs = append(append(wide.TypeIDs, b.TypeIDs[i*8:i*8+8]...), 0, 0, 0, 0)
			wide.Mask = append(append(wide.Mask, b.Mask[i*8:i*8+8]...), 0, 0, 0, 0)
		}
		l1, err := m.Forward(b, nn.RunOptions{})
		require.NoError(t, err)
		l1 = slices.Clone(l1) // the model reuses its logits
		l2, err := m.Forward(wide, nn.RunOptions{})
		require.NoError(t, err)
		for i := range l1 {
			assert.InDelta(t, l1[i], l2[i], 1e-5, "%s row %d", arch, i)
		}
	}
}

func TestBatchErrors(t *testing.T) {
	c := tinyConfig(nn.BERT)
	m := newModel(t, c, 1)
	for _, tc := range []struct {
		name string
		b    nn.Batch
		want string
	}{
		{"empty", nn.Batch{}, "at least one row"},
		{"short arrays", nn.Batch{N: 1, S: 2, InputIDs: []int32{1}}, "must hold 2 values"},
		{"bad token", nn.Batch{N: 1, S: 2, InputIDs: []int32{1, 50}, TypeIDs: []int32{0, 0}, Mask: []int32{1, 1}}, "row 0 position 1: token id 50 outside the vocabulary"},
		{"bad type", nn.Batch{N: 1, S: 2, InputIDs: []int32{1, 2}, TypeIDs: []int32{0, 2}, Mask: []int32{1, 1}}, "token type 2"},
		{"too long", nn.Batch{N: 1, S: 41, InputIDs: make([]int32, 41), TypeIDs: make([]int32, 41), Mask: make([]int32, 41)}, "exceeds the model's 40 positions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Forward(&tc.b, nn.RunOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	require.Error(t, m.Backward([]float32{1}), "backward after a failed forward")
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*nn.Config)
		want string
	}{
		{"heads", func(c *nn.Config) { c.Heads = 5 }, "not a multiple"},
		{"pad", func(c *nn.Config) { c.PadID = 99 }, "outside the vocabulary"},
		{"dropout", func(c *nn.Config) { c.HiddenDropout = 1 }, "hidden_dropout_prob"},
		{"layers", func(c *nn.Config) { c.Layers = 0 }, "num_hidden_layers"},
		{"absurd width", func(c *nn.Config) { c.Hidden = 1000000000 }, "hidden_size 1000000000 is more than rerank supports"},
		{"absurd depth", func(c *nn.Config) { c.Layers = 1000000 }, "num_hidden_layers 1000000 is more than"},
		{"too many parameters", func(c *nn.Config) { c.VocabSize, c.Hidden, c.Heads = 1<<24, 1<<14, 1 }, "parameters (1033 GiB as float32), more than rerank supports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(nn.BERT)
			tc.mod(&c)
			_, err := nn.New(cpu.New(), c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

var _ backend.Backend = cpu.New()

// GradsReady reports growing suffixes of the gradient allocation, each
// final when reported: the gradients after it do not change any more.
func TestGradsReadySuffixesAreFinal(t *testing.T) {
	be := cpu.New()
	cfg := nn.Config{Arch: nn.BERT, VocabSize: 50, Hidden: 8, Layers: 3, Heads: 2, Intermediate: 16, MaxPositions: 16, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	m, err := nn.New(be, cfg)
	require.NoError(t, err)
	m.InitRandom(1, 0.1)
	require.NoError(t, m.EnableGrads(nil))
	b := &nn.Batch{N: 2, S: 4, InputIDs: []int32{1, 5, 6, 2, 1, 7, 2, 0}, TypeIDs: make([]int32, 8), Mask: []int32{1, 1, 1, 1, 1, 1, 1, 0}}
	_, err = m.Forward(b, nn.RunOptions{})
	require.NoError(t, err)
	total := m.Grads().Len()
	var offs []int
	var snaps [][]float32
	m.GradsReady = func(off int) error {
		snap := make([]float32, total-off)
		be.Download(snap, m.Grads().Slice(off, total-off))
		offs, snaps = append(offs, off), append(snaps, snap)
		return nil
	}
	m.ZeroGrads()
	require.NoError(t, m.Backward([]float32{1, -1}))
	require.Len(t, offs, 1+cfg.Layers+1)
	assert.Equal(t, 0, offs[len(offs)-1])
	final := make([]float32, total)
	be.Download(final, m.Grads())
	for i, off := range offs {
		if i > 0 {
			assert.Less(t, off, offs[i-1])
		}
		assert.Equal(t, final[off:], snaps[i], "the suffix from %d changed after it was reported", off)
		nonzero := false
		for _, v := range snaps[i] {
			nonzero = nonzero || v != 0
		}
		assert.True(t, nonzero, "suffix from %d is all zero", off)
	}
}
