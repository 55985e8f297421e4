package golden

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/loss"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
	"github.com/rerank-go/rerank/optim"
)

// Tolerances from the golden README, section 9.
const (
	TolLogits     = 2e-5
	TolHidden     = 5e-5
	TolAttn       = 1e-5
	TolGrad       = 1e-5
	TolGradE2E    = 2e-5
	TolOptimizer  = 5e-7
	TolParamE2E   = 2e-5
	TolStepLogits = 1e-4
)

// Options select the backend and what it can expose.
type Options struct {
	// NewBackend returns the backend under test.
	NewBackend func() backend.Backend
	// Probabilities, when set, turns an attention save buffer into the
	// [N, Heads, S, S] probabilities (only the CPU backend keeps them).
	Probabilities func(save backend.Buf) []float32
	// Attention is set on every model the checks load, to force a path
	// (tiled attention with small blocks covers it on the tiny cases).
	// Leave Probabilities nil when it tiles: no probabilities are kept.
	Attention nn.AttentionOptions
}

// MaxDiff returns the largest |a[i]-b[i]| and its index; lengths must match.
func MaxDiff(a, b []float32) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1), i
		}
		if d > worst {
			worst, at = d, i
		}
	}
	return worst, at
}

// Close asserts that got matches want elementwise within tol.
func Close(t testing.TB, name string, want, got []float32, tol float64) bool {
	t.Helper()
	if !assert.Len(t, got, len(want), name) {
		return false
	}
	d, at := MaxDiff(want, got)
	if testing.Verbose() {
		t.Logf("%-70s max|diff| %.2e (tol %.0e)", name, d, tol)
	}
	return assert.LessOrEqualf(t, d, tol, "%s: max |diff| %.3g at %d (want %v, got %v)", name, d, at, pick(want, at), pick(got, at))
}

func pick(v []float32, i int) any {
	if i < 0 || i >= len(v) {
		return nil
	}
	return v[i]
}

// CheckFull runs every check of a full (all parameters trainable) case.
func CheckFull(t *testing.T, c *Case, o Options) {
	exp := c.Expected
	batch := c.Inputs.Batch()
	load := func() *nn.Model {
		m, _, err := hfmodel.Load(o.NewBackend(), filepath.Join(c.Dir, "model"), hfmodel.LoadOptions{})
		require.NoError(t, err)
		m.Attention = o.Attention
		require.NoError(t, m.EnableGrads(nil))
		return m
	}

	t.Run("decay_groups", func(t *testing.T) {
		m := load()
		var decay, noDecay []string
		for _, p := range m.Params() {
			if p.Decay {
				decay = append(decay, p.Name)
			} else {
				noDecay = append(noDecay, p.Name)
			}
		}
		assert.ElementsMatch(t, exp.AdamW.DecayParams, decay)
		assert.ElementsMatch(t, exp.AdamW.NoDecayParams, noDecay)
	})

	// Both ways of running the last layer: at every position, and at
	// position 0 only (the default), where the last hidden state is
	// compared at the rows the head reads.
	for _, run := range []struct {
		name string
		o    nn.RunOptions
	}{
		{"forward_backward", nn.RunOptions{AllPositions: true}},
		{"forward_backward_cls_only", nn.RunOptions{}},
	} {
		t.Run(run.name, func(t *testing.T) {
			m := load()
			logits, err := m.Forward(batch, run.o)
			require.NoError(t, err)
			Close(t, "logits", exp.Logits, logits, TolLogits)
			ce, dl, err := loss.GroupSoftmaxCE(logits, exp.G)
			require.NoError(t, err)
			assert.InDelta(t, exp.Loss, ce, TolLogits, "loss")

			hs := Tensors(t, filepath.Join(c.Dir, "hidden_states.safetensors"))
			for k := 0; k <= m.Cfg.Layers; k++ {
				want, got := hs[fmt.Sprintf("hidden_states.%d", k)], m.HiddenState(k)
				if k == m.Cfg.Layers && !run.o.AllPositions {
					want, got = firstRows(want, batch.S, m.Cfg.Hidden), firstRows(got, batch.S, m.Cfg.Hidden)
				}
				Close(t, fmt.Sprintf("hidden_states.%d", k), want, got, TolHidden)
			}
			Close(t, "pooled_output", hs["pooled_output"], m.Pooled(), TolHidden)
			if o.Probabilities != nil {
				for l := 0; l < m.Cfg.Layers; l++ {
					Close(t, fmt.Sprintf("attentions.%d", l), hs[fmt.Sprintf("attentions.%d", l)], o.Probabilities(m.AttentionSave(l)), TolAttn)
				}
			}

			require.NoError(t, m.Backward(dl))
			CheckGrads(t, m, Tensors(t, filepath.Join(c.Dir, "grads.safetensors")), exp.AnalyticallyZero, TolGrad, "")
		})
	}

	// Scoring (package nn/infer): one shared set of layer activations,
	// padding skipped, a last layer that may attend for position 0 only,
	// and the batch split across the backend's lanes.
	t.Run("inference", func(t *testing.T) {
		m, _, err := hfmodel.Load(o.NewBackend(), filepath.Join(c.Dir, "model"), hfmodel.LoadOptions{})
		require.NoError(t, err)
		m.Attention = o.Attention
		run, err := infer.New(m)
		require.NoError(t, err)
		logits, err := run.Forward(batch)
		require.NoError(t, err)
		Close(t, "logits", exp.Logits, logits, TolLogits)
	})

	t.Run("grads_step2_at_stored_params", func(t *testing.T) {
		m := load()
		SetParams(t, m, Tensors(t, filepath.Join(c.Dir, "params_step1.safetensors")), "")
		logits, err := m.Forward(batch, nn.RunOptions{})
		require.NoError(t, err)
		_, dl, err := loss.GroupSoftmaxCE(logits, exp.G)
		require.NoError(t, err)
		require.NoError(t, m.Backward(dl))
		CheckGrads(t, m, Tensors(t, filepath.Join(c.Dir, "grads_step2.safetensors")), exp.AnalyticallyZero, TolGrad, "")
	})

	t.Run("adamw_optimizer_only", func(t *testing.T) {
		m := load()
		opt := NewOptimizer(t, m.Backend(), m.Params(), exp)
		for step, files := range [][2]string{{"grads", "params_step1"}, {"grads_step2", "params_step2"}} {
			SetGrads(t, m, Tensors(t, filepath.Join(c.Dir, files[0]+".safetensors")), "")
			require.NoError(t, opt.Step(exp.AdamW.LR))
			want := Tensors(t, filepath.Join(c.Dir, files[1]+".safetensors"))
			for _, p := range m.Params() {
				Close(t, fmt.Sprintf("step %d %s", step+1, p.Name), want[p.Name], download(m.Backend(), p.W), TolOptimizer)
			}
		}
	})

	t.Run("end_to_end_two_steps", func(t *testing.T) {
		m := load()
		EndToEnd(t, c, m, m.Params(), "", func() {})
	})
}

// firstRows keeps position 0 of each sequence of a [N·S·H] tensor.
func firstRows(v []float32, s, h int) []float32 {
	var out []float32
	for i := 0; i+h <= len(v); i += s * h {
		out = append(out, v[i:i+h]...)
	}
	return out
}

// EndToEnd trains two AdamW steps with the model's own gradients and
// compares parameters, loss and logits with the reference, splitting
// noise-sensitive elements as the README prescribes. prefix maps the
// reference names (adapter keys) to params: name = prefix + param name.
func EndToEnd(t *testing.T, c *Case, m *nn.Model, params []*nn.Param, prefix string, zero func()) {
	exp := c.Expected
	batch := c.Inputs.Batch()
	opt := NewOptimizer(t, m.Backend(), params, exp)
	var g1 map[string][]float32
	for step := 1; step <= 2; step++ {
		m.ZeroGrads()
		zero()
		logits, err := m.Forward(batch, nn.RunOptions{})
		require.NoError(t, err)
		_, dl, err := loss.GroupSoftmaxCE(logits, exp.G)
		require.NoError(t, err)
		require.NoError(t, m.Backward(dl))
		g := map[string][]float32{}
		for _, p := range params {
			g[p.Name] = download(m.Backend(), p.G)
		}
		if step == 1 {
			g1 = g
		}
		require.NoError(t, opt.Step(exp.AdamW.LR))
		want := Tensors(t, filepath.Join(c.Dir, fmt.Sprintf("params_step%d.safetensors", step)))
		loose := 2 * float64(exp.AdamW.LR) * float64(step)
		for _, p := range params {
			w := want[prefix+p.Name]
			require.NotNil(t, w, "reference lacks %s", prefix+p.Name)
			got := download(m.Backend(), p.W)
			worstTight, worstLoose := 0.0, 0.0
			for i := range w {
				d := math.Abs(float64(w[i]) - float64(got[i]))
				sensitive := math.Abs(float64(g1[p.Name][i])) < 1e-5 || (step == 2 && math.Abs(float64(g[p.Name][i])) < 1e-5)
				if sensitive {
					worstLoose = math.Max(worstLoose, d)
				} else {
					worstTight = math.Max(worstTight, d)
				}
			}
			assert.LessOrEqualf(t, worstTight, TolParamE2E, "step %d %s: max |diff| of gradient-carrying elements", step, p.Name)
			assert.LessOrEqualf(t, worstLoose, loose, "step %d %s: max |diff| of noise-sensitive elements", step, p.Name)
		}
		after := exp.AfterStep1
		if step == 2 {
			after = exp.AfterStep2
		}
		logits, err = m.Forward(batch, nn.RunOptions{})
		require.NoError(t, err)
		ce, _, err := loss.GroupSoftmaxCE(logits, exp.G)
		require.NoError(t, err)
		assert.InDeltaf(t, after.Loss, ce, TolLogits, "loss after step %d", step)
		hb := headBias(m)
		noBias := make([]float32, len(logits))
		for i := range logits {
			noBias[i] = logits[i] - hb[i%len(hb)]
		}
		Close(t, fmt.Sprintf("logits without head bias after step %d", step), after.LogitsWithoutHeadBias, noBias, TolStepLogits)
	}
}

func headBias(m *nn.Model) []float32 {
	hp := m.HeadParams()
	return download(m.Backend(), hp[len(hp)-1].W)
}

// NewOptimizer builds AdamW with the case's settings.
func NewOptimizer(t testing.TB, be backend.Backend, params []*nn.Param, exp *Expected) *optim.AdamW {
	opt, err := optim.NewAdamW(be, params, exp.AdamW.WeightDecay)
	require.NoError(t, err)
	opt.Beta1, opt.Beta2, opt.Eps = exp.AdamW.Betas[0], exp.AdamW.Betas[1], exp.AdamW.Eps
	return opt
}

// CheckGrads compares every gradient of the model's trainable parameters
// with the reference (named prefix + parameter name).
func CheckGrads(t *testing.T, m *nn.Model, want map[string][]float32, zero []string, tol float64, prefix string) {
	isZero := map[string]bool{}
	for _, z := range zero {
		isZero[z] = true
	}
	n := 0
	for _, p := range m.Params() {
		if p.G == nil {
			continue
		}
		n++
		checkGrad(t, p, want[prefix+p.Name], isZero[prefix+p.Name], tol, m.Backend())
	}
	assert.Equal(t, len(want), n, "number of gradient tensors")
}

func checkGrad(t *testing.T, p *nn.Param, want []float32, zero bool, tol float64, be backend.Backend) {
	t.Helper()
	if !assert.NotNil(t, want, "reference has no gradient for %s", p.Name) {
		return
	}
	got := download(be, p.G)
	if zero {
		worst := 0.0
		for _, v := range got {
			worst = math.Max(worst, math.Abs(float64(v)))
		}
		assert.LessOrEqualf(t, worst, tol, "grad %s is analytically zero", p.Name)
		return
	}
	Close(t, "grad "+p.Name, want, got, tol)
}

// SetParams uploads reference tensors into the model's parameters.
func SetParams(t testing.TB, m *nn.Model, v map[string][]float32, prefix string) {
	for _, p := range m.Params() {
		if w, ok := v[prefix+p.Name]; ok {
			require.Len(t, w, p.Size(), p.Name)
			m.Backend().Upload(p.W, w)
		}
	}
}

// SetGrads uploads reference gradients into the model's gradient buffers.
func SetGrads(t testing.TB, m *nn.Model, v map[string][]float32, prefix string) {
	for _, p := range m.Params() {
		if p.G == nil {
			continue
		}
		w, ok := v[prefix+p.Name]
		require.True(t, ok, "reference lacks gradient %s", prefix+p.Name)
		m.Backend().Upload(p.G, w)
	}
}

func download(be backend.Backend, b backend.Buf) []float32 {
	v := make([]float32, b.Len())
	be.Download(v, b)
	return v
}

// IsLora reports whether a case is a LoRA case.
func (c *Case) IsLora() bool {
	return strings.Contains(c.Expected.Kind, "lora") || c.Expected.Lora.WrappedModules != nil
}
