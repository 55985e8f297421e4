package lora_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/golden"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/loss"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/safetensors"
)

// TolMerged is the README's tolerance for merged target weights.
const TolMerged = 1e-6

// TestGolden runs every LoRA case under $RERANK_GOLDEN (default
// ../shared/golden) on the CPU backend. Shapes, rank, alpha and targets
// come from each case's files.
func TestGolden(t *testing.T) {
	root := sharedtest.Golden(t)
	ran := 0
	for _, c := range golden.Cases(t, root) {
		if !c.IsLora() {
			continue
		}
		ran++
		t.Run(c.Name, func(t *testing.T) { checkLoraCase(t, c, func() backend.Backend { return cpu.New() }) })
		t.Run(c.Name+"/tiled attention", func(t *testing.T) {
			checkLoraCase(t, c, func() backend.Backend { return tiledCPU{cpu.New()} })
		})
	}
	if ran == 0 {
		t.Fatalf("no LoRA case under %s", root)
	}
}

// tiledCPU is the CPU backend with every attention call tiled, in blocks
// of 3 queries × 3 keys so that the cases' short sequences span several
// (the model-level choice, nn.Model.Attention, is covered by package nn's
// golden test; the optional extensions stay promoted).
type tiledCPU struct{ *cpu.Backend }

func tiled(a backend.Attn) backend.Attn {
	a.Tiled, a.Tile = true, 3
	return a
}

func (b tiledCPU) AttentionSaveLen(a backend.Attn) int { return b.Backend.AttentionSaveLen(tiled(a)) }

func (b tiledCPU) Attention(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, save backend.Buf) {
	b.Backend.Attention(tiled(a), qkv, mask, ctx, save)
}

func (b tiledCPU) AttentionBackward(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, dctx, save, dqkv backend.Buf) {
	b.Backend.AttentionBackward(tiled(a), qkv, mask, ctx, dctx, save, dqkv)
}

func download(be backend.Backend, b backend.Buf) []float32 {
	v := make([]float32, b.Len())
	be.Download(v, b)
	return v
}

func loadBase(t *testing.T, c *golden.Case, newBE func() backend.Backend) (*nn.Model, *hfmodel.Loaded) {
	t.Helper()
	m, info, err := hfmodel.Load(newBE(), filepath.Join(c.Dir, "model"), hfmodel.LoadOptions{})
	require.NoError(t, err)
	return m, info
}

func loadAdapter(t *testing.T, c *golden.Case, newBE func() backend.Backend) (*nn.Model, *lora.Adapters) {
	t.Helper()
	m, _ := loadBase(t, c, newBE)
	a, err := lora.Load(m, filepath.Join(c.Dir, "adapter"))
	require.NoError(t, err)
	return m, a
}

func forwardLoss(t *testing.T, m *nn.Model, c *golden.Case) ([]float32, float32, []float32) {
	t.Helper()
	return forwardLossWith(t, m, c, nn.RunOptions{})
}

// forwardLossWith is forwardLoss with the given run options.
func forwardLossWith(t *testing.T, m *nn.Model, c *golden.Case, o nn.RunOptions) ([]float32, float32, []float32) {
	t.Helper()
	logits, err := m.Forward(c.Inputs.Batch(), o)
	require.NoError(t, err)
	ce, dl, err := loss.GroupSoftmaxCE(logits, c.Expected.G)
	require.NoError(t, err)
	return slices.Clone(logits), ce, dl // the model reuses its logits
}

// setTrainable uploads reference tensors (named by adapter keys) into the
// trainable parameters; every trainable parameter must be present.
func setTrainable(t *testing.T, a *lora.Adapters, be backend.Backend, ref map[string][]float32, grads bool) {
	t.Helper()
	for _, p := range a.Trainable() {
		v, ok := ref[lora.Key(p)]
		require.True(t, ok, "reference lacks %s", lora.Key(p))
		require.Len(t, v, p.Size(), lora.Key(p))
		if grads {
			be.Upload(p.G, v)
		} else {
			be.Upload(p.W, v)
		}
	}
}

// checkGrads compares the gradient of every trainable parameter with the
// reference; analytically zero tensors only need |g| ≤ tol.
func checkGrads(t *testing.T, a *lora.Adapters, be backend.Backend, want map[string][]float32, zero []string) {
	t.Helper()
	isZero := map[string]bool{}
	for _, z := range zero {
		isZero[z] = true
	}
	var names []string
	for _, p := range a.Trainable() {
		key := lora.Key(p)
		names = append(names, key)
		got := download(be, p.G)
		if isZero[key] {
			worst := 0.0
			for _, v := range got {
				worst = max(worst, abs64(v))
			}
			assert.LessOrEqualf(t, worst, golden.TolGrad, "grad %s is analytically zero", key)
			continue
		}
		w, ok := want[key]
		if assert.True(t, ok, "reference has no gradient for %s", key) {
			golden.Close(t, "grad "+key, w, got, golden.TolGrad)
		}
	}
	assert.ElementsMatch(t, keys(want), names, "gradient tensors")
}

func abs64(v float32) float64 {
	if v < 0 {
		return float64(-v)
	}
	return float64(v)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkLoraCase runs every check of one LoRA case on the backends newBE
// returns (the cuda-tagged test passes the GPU backend).
func checkLoraCase(t *testing.T, c *golden.Case, newBE func() backend.Backend) {
	exp := c.Expected
	adapterDir := filepath.Join(c.Dir, "adapter")

	t.Run("attach_matches_reference", func(t *testing.T) {
		cfg, _, err := lora.ReadConfig(adapterDir)
		require.NoError(t, err)
		m, _ := loadBase(t, c, newBE)
		a, err := lora.Attach(m, cfg, 1)
		require.NoError(t, err)
		assert.ElementsMatch(t, exp.Lora.WrappedModules, a.WrappedModules(), "wrapped modules")
		var trainable, decay, noDecay []string
		for _, p := range a.Trainable() {
			trainable = append(trainable, lora.Key(p))
			if p.Decay {
				decay = append(decay, lora.Key(p))
			} else {
				noDecay = append(noDecay, lora.Key(p))
			}
		}
		assert.ElementsMatch(t, exp.Lora.TrainableParams, trainable, "trainable parameters")
		assert.ElementsMatch(t, exp.AdamW.DecayParams, decay, "decay group")
		assert.ElementsMatch(t, exp.AdamW.NoDecayParams, noDecay, "no-decay group")
		head := map[*nn.Param]bool{}
		for _, p := range m.HeadParams() {
			head[p] = true
		}
		for _, p := range m.Params() {
			assert.Equalf(t, head[p], p.G != nil, "%s: only the head has a gradient buffer", p.Name)
		}
		// PEFT's init: B = 0, so a fresh adapter leaves the logits alone.
		for _, ad := range a.List() {
			for _, v := range download(m.Backend(), ad.B.W) {
				require.Zero(t, v, ad.B.Name)
			}
		}
		base0, _ := loadBase(t, c, newBE)
		// The same route for both (the base model alone may attend for
		// position 0 only in its last layer), so that equal means exact.
		all := nn.RunOptions{AllPositions: true}
		want, _, _ := forwardLossWith(t, base0, c, all)
		got, _, _ := forwardLossWith(t, m, c, all)
		golden.Close(t, "logits of a fresh adapter", want, got, 0)
	})

	t.Run("forward_backward", func(t *testing.T) {
		m, a := loadAdapter(t, c, newBE)
		// Every position of the last layer, for its hidden state.
		logits, loss, dl := forwardLossWith(t, m, c, nn.RunOptions{AllPositions: true})
		golden.Close(t, "logits", exp.Logits, logits, golden.TolLogits)
		assert.InDelta(t, exp.Loss, loss, golden.TolLogits, "loss")
		hs := golden.Tensors(t, filepath.Join(c.Dir, "hidden_states.safetensors"))
		for k := 0; k <= m.Cfg.Layers; k++ {
			name := fmt.Sprintf("hidden_states.%d", k)
			golden.Close(t, name, hs[name], m.HiddenState(k), golden.TolHidden)
		}
		golden.Close(t, "pooled_output", hs["pooled_output"], m.Pooled(), golden.TolHidden)
		m.ZeroGrads()
		a.ZeroGrads()
		require.NoError(t, m.Backward(dl))
		checkGrads(t, a, m.Backend(), golden.Tensors(t, filepath.Join(c.Dir, "grads.safetensors")), exp.AnalyticallyZero)
	})

	t.Run("logits_without_adapter", func(t *testing.T) {
		m, _ := loadBase(t, c, newBE)
		logits, _, _ := forwardLoss(t, m, c)
		golden.Close(t, "logits_base_model_without_adapter", exp.LogitsBaseWithoutAdapter, logits, golden.TolLogits)
		// Loading the adapter and detaching it again gives the base back.
		a, err := lora.Load(m, adapterDir)
		require.NoError(t, err)
		require.NoError(t, a.Detach())
		again, _, _ := forwardLoss(t, m, c)
		golden.Close(t, "logits after Detach", logits, again, 0)
	})

	t.Run("grads_step2_at_stored_params", func(t *testing.T) {
		m, a := loadAdapter(t, c, newBE)
		setTrainable(t, a, m.Backend(), golden.Tensors(t, filepath.Join(c.Dir, "params_step1.safetensors")), false)
		_, _, dl := forwardLoss(t, m, c)
		require.NoError(t, m.Backward(dl))
		checkGrads(t, a, m.Backend(), golden.Tensors(t, filepath.Join(c.Dir, "grads_step2.safetensors")), exp.AnalyticallyZero)
	})

	t.Run("adamw_optimizer_only", func(t *testing.T) {
		m, a := loadAdapter(t, c, newBE)
		opt := golden.NewOptimizer(t, m.Backend(), a.Trainable(), exp)
		assert.Len(t, opt.Params(), len(exp.Lora.TrainableParams), "optimizer state only for the trainable tensors")
		for step, files := range [][2]string{{"grads", "params_step1"}, {"grads_step2", "params_step2"}} {
			setTrainable(t, a, m.Backend(), golden.Tensors(t, filepath.Join(c.Dir, files[0]+".safetensors")), true)
			require.NoError(t, opt.Step(exp.AdamW.LR))
			want := golden.Tensors(t, filepath.Join(c.Dir, files[1]+".safetensors"))
			for _, p := range a.Trainable() {
				golden.Close(t, fmt.Sprintf("step %d %s", step+1, lora.Key(p)), want[lora.Key(p)], download(m.Backend(), p.W), golden.TolOptimizer)
			}
		}
	})

	t.Run("end_to_end_two_steps", func(t *testing.T) {
		m, a := loadAdapter(t, c, newBE)
		golden.EndToEnd(t, c, m, a.Trainable(), lora.KeyPrefix, a.ZeroGrads)
	})

	t.Run("merge", func(t *testing.T) {
		m, a := loadAdapter(t, c, newBE)
		require.NoError(t, a.Merge())
		want := golden.Tensors(t, filepath.Join(c.Dir, "merged_targets.safetensors"))
		assert.Len(t, want, len(a.List()), "merged targets")
		for _, ad := range a.List() {
			name := ad.Module + ".weight"
			w, ok := want[name]
			if assert.True(t, ok, "reference lacks %s", name) {
				golden.Close(t, "merged "+name, w, download(m.Backend(), m.Param(name).W), TolMerged)
			}
		}
		logits, _, _ := forwardLoss(t, m, c)
		golden.Close(t, "logits of the merged model in memory", exp.LogitsMerged, logits, golden.TolLogits)
		golden.Close(t, "logits of the merged model vs unmerged reference", exp.Logits, logits, golden.TolLogits)

		// Our merge written as a plain HF model dir, read back.
		out := t.TempDir()
		_, info := loadBase(t, c, newBE)
		require.NoError(t, hfmodel.Save(m, info.Config, out, ""))
		mm, _, err := hfmodel.Load(newBE(), out, hfmodel.LoadOptions{})
		require.NoError(t, err)
		logits, _, _ = forwardLoss(t, mm, c)
		golden.Close(t, "logits of rerank's merged model dir", exp.LogitsMerged, logits, golden.TolLogits)
		ref := golden.Tensors(t, filepath.Join(c.Dir, "merged", "model.safetensors"))
		ours := golden.Tensors(t, filepath.Join(out, "model.safetensors"))
		assert.ElementsMatch(t, keys(ref), keys(ours), "merged model tensors")
		for name, w := range ref {
			golden.Close(t, "merged/"+name, w, ours[name], TolMerged)
		}

		// PEFT's merged/ directory.
		pm, _, err := hfmodel.Load(newBE(), filepath.Join(c.Dir, "merged"), hfmodel.LoadOptions{})
		require.NoError(t, err)
		logits, _, _ = forwardLoss(t, pm, c)
		golden.Close(t, "logits of PEFT's merged model", exp.LogitsMerged, logits, golden.TolLogits)

		// Unmerge restores the base weights and the adapter's function.
		require.NoError(t, a.Unmerge())
		base := golden.Tensors(t, filepath.Join(c.Dir, "model", "model.safetensors"))
		for _, ad := range a.List() {
			name := ad.Module + ".weight"
			golden.Close(t, "unmerged "+name, base[name], download(m.Backend(), m.Param(name).W), TolMerged)
		}
		logits, _, _ = forwardLoss(t, m, c)
		golden.Close(t, "logits after unmerge", exp.Logits, logits, golden.TolLogits)
	})

	t.Run("peft_files_round_trip", func(t *testing.T) {
		m, a := loadAdapter(t, c, newBE)
		out := t.TempDir()
		require.NoError(t, a.Save(out, a.BaseModel))

		refCfg, err := os.ReadFile(filepath.Join(adapterDir, lora.ConfigFile))
		require.NoError(t, err)
		ourCfg, err := os.ReadFile(filepath.Join(out, lora.ConfigFile))
		require.NoError(t, err)
		var rf, of map[string]any
		require.NoError(t, json.Unmarshal(refCfg, &rf))
		require.NoError(t, json.Unmarshal(ourCfg, &of))
		assert.Equal(t, rf, of, "adapter_config.json fields and values")
		assert.Equal(t, string(refCfg), string(ourCfg), "adapter_config.json bytes")

		ref := golden.Tensors(t, filepath.Join(adapterDir, lora.WeightsFile))
		ours := golden.Tensors(t, filepath.Join(out, lora.WeightsFile))
		assert.Equal(t, keys(ref), keys(ours), "adapter tensor names")
		for k, v := range ref {
			assert.Equal(t, v, ours[k], k)
		}
		rfile, err := safetensors.Open(filepath.Join(adapterDir, lora.WeightsFile))
		require.NoError(t, err)
		defer rfile.Close()
		ofile, err := safetensors.Open(filepath.Join(out, lora.WeightsFile))
		require.NoError(t, err)
		defer ofile.Close()
		for _, k := range rfile.Names() {
			ri, err := rfile.Info(k)
			require.NoError(t, err)
			oi, err := ofile.Info(k)
			require.NoError(t, err)
			assert.Equal(t, ri.Shape, oi.Shape, k)
			assert.Equal(t, ri.DType, oi.DType, k)
		}

		// Read back: same logits.
		want, _, _ := forwardLoss(t, m, c)
		m2, _ := loadBase(t, c, newBE)
		_, err = lora.Load(m2, out)
		require.NoError(t, err)
		got, _, _ := forwardLoss(t, m2, c)
		golden.Close(t, "logits of the re-read adapter", want, got, 0)
	})

	t.Run("peft_in_memory_names", func(t *testing.T) {
		// The same tensors under PEFT's in-memory names load the same;
		// original_module copies are ignored.
		ref := golden.Tensors(t, filepath.Join(adapterDir, lora.WeightsFile))
		rfile, err := safetensors.Open(filepath.Join(adapterDir, lora.WeightsFile))
		require.NoError(t, err)
		var ts []safetensors.Tensor
		for _, k := range rfile.Names() {
			info, err := rfile.Info(k)
			require.NoError(t, err)
			name := strings.Replace(k, ".lora_A.weight", ".lora_A.default.weight", 1)
			name = strings.Replace(name, ".lora_B.weight", ".lora_B.default.weight", 1)
			name = strings.Replace(name, "base_model.model.classifier.", "base_model.model.classifier.modules_to_save.default.", 1)
			ts = append(ts, safetensors.F32Tensor(name, info.Shape, ref[k]))
		}
		rfile.Close()
		ts = append(ts, safetensors.F32Tensor("base_model.model.classifier.original_module.dense.lora_A.default.weight", []int{1, 2}, []float32{1, 2}))
		dir := t.TempDir()
		require.NoError(t, safetensors.Write(filepath.Join(dir, lora.WeightsFile), ts, nil))
		data, err := os.ReadFile(filepath.Join(adapterDir, lora.ConfigFile))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, lora.ConfigFile), data, 0o644))
		m, _ := loadBase(t, c, newBE)
		_, err = lora.Load(m, dir)
		require.NoError(t, err)
		logits, _, _ := forwardLoss(t, m, c)
		golden.Close(t, "logits with in-memory names", exp.Logits, logits, golden.TolLogits)
	})
}
