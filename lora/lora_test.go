package lora_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/golden"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/loss"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/optim"
	"github.com/rerank-go/rerank/safetensors"
)

func tinyConfig(arch nn.Arch) nn.Config {
	c := nn.Config{Arch: arch, VocabSize: 30, Hidden: 8, Layers: 2, Heads: 2, Intermediate: 12, MaxPositions: 20,
		TypeVocab: 2, PadID: 0, LayerNormEps: 1e-12, NumLabels: 1, HiddenDropout: 0.1, AttentionDropout: 0.1, ClassifierDropout: 0.1}
	if arch == nn.XLMRoberta {
		c.TypeVocab, c.PadID = 1, 1
	}
	return c
}

func tinyModel(t *testing.T, arch nn.Arch) *nn.Model {
	t.Helper()
	m, err := nn.New(cpu.New(), tinyConfig(arch))
	require.NoError(t, err)
	m.InitRandom(3, 0.2)
	return m
}

// tinyBatch is 2 groups of 3 rows of 6 tokens with some padding.
func tinyBatch(c nn.Config) *nn.Batch {
	rng := rand.New(rand.NewPCG(5, 5))
	b := &nn.Batch{N: 6, S: 6}
	for n := 0; n < b.N; n++ {
		for s := 0; s < b.S; s++ {
			id, mask := int32(2+rng.IntN(c.VocabSize-2)), int32(1)
			if s >= b.S-n%3 {
				id, mask = int32(c.PadID), 0
			}
			b.InputIDs = append(b.InputIDs, id)
			b.TypeIDs = append(b.TypeIDs, 0)
			b.Mask = append(b.Mask, mask)
		}
	}
	return b
}

func logitsOf(t *testing.T, m *nn.Model, o nn.RunOptions) []float32 {
	t.Helper()
	l, err := m.Forward(tinyBatch(m.Cfg), o)
	require.NoError(t, err)
	return slices.Clone(l) // the model reuses its logits
}

func TestConfigMatches(t *testing.T) {
	const l0 = "bert.encoder.layer.0."
	cases := []struct {
		name    string
		cfg     lora.Config
		module  string
		matches bool
	}{
		{"default query", lora.DefaultConfig(), l0 + "attention.self.query", true},
		{"default value", lora.DefaultConfig(), l0 + "attention.self.value", true},
		{"default not key", lora.DefaultConfig(), l0 + "attention.self.key", false},
		{"suffix must follow a dot", lora.Config{TargetModules: []string{"uery"}}, l0 + "attention.self.query", false},
		{"exact name", lora.Config{TargetModules: []string{"classifier"}}, "classifier", true},
		{"bare dense wraps the pooler", lora.Config{TargetModules: []string{"dense"}}, "bert.pooler.dense", true},
		{"bare dense wraps classifier.dense", lora.Config{TargetModules: []string{"dense"}}, "classifier.dense", true},
		{"output.dense also matches attention.output.dense", lora.Config{TargetModules: []string{"output.dense"}}, l0 + "attention.output.dense", true},
		{"attention.output.dense not output.dense", lora.Config{TargetModules: []string{"attention.output.dense"}}, l0 + "output.dense", false},
		{"intermediate.dense", lora.Config{TargetModules: []string{"intermediate.dense"}}, l0 + "intermediate.dense", true},
		{"regex full match", lora.Config{TargetRegex: `.*layer\.1\..*(query|value)`}, "bert.encoder.layer.1.attention.self.value", true},
		{"regex must match the whole name", lora.Config{TargetRegex: `query`}, l0 + "attention.self.query", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.matches, tc.cfg.Matches(tc.module))
		})
	}
}

func TestConfigValidateAndScaling(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*lora.Config)
		err     string
		scaling float64
	}{
		{"defaults", func(*lora.Config) {}, "", 1},
		{"alpha over r", func(c *lora.Config) { c.R, c.Alpha = 4, 8 }, "", 2},
		{"rslora", func(c *lora.Config) { c.R, c.Alpha, c.UseRSLoRA = 16, 8, true }, "", 2},
		{"zero rank", func(c *lora.Config) { c.R = 0 }, "rank r must be positive", 0},
		{"negative alpha", func(c *lora.Config) { c.Alpha = -1 }, "lora_alpha", 0},
		{"dropout one", func(c *lora.Config) { c.Dropout = 1 }, "lora_dropout", 0},
		{"no targets", func(c *lora.Config) { c.TargetModules = nil }, "no target modules", 0},
		{"empty target", func(c *lora.Config) { c.TargetModules = []string{"query", " "} }, "target module", 0},
		{"bad regex", func(c *lora.Config) { c.TargetModules, c.TargetRegex = nil, "(" }, "regex", 0},
		{"bad init", func(c *lora.Config) { c.Init = "olora" }, "init", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := lora.DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, tc.scaling, c.Scaling(), 1e-12)
		})
	}
}

func TestConfigJSON(t *testing.T) {
	cases := []struct {
		name   string
		cfg    lora.Config
		base   string
		want   map[string]string // field → exact JSON text
		absent []string
	}{
		{"defaults", lora.DefaultConfig(), "", map[string]string{
			`"r"`: `8`, `"lora_alpha"`: `8`, `"lora_dropout"`: `0.0`, `"base_model_name_or_path"`: `null`,
			`"init_lora_weights"`: `true`, `"task_type"`: `"SEQ_CLS"`, `"modules_to_save"`: `null`, `"inference_mode"`: `true`,
		}, []string{"use_rslora"}},
		{"trained settings", lora.Config{R: 16, Alpha: 32, Dropout: 0.05, TargetModules: []string{"value", "query", "key"}, UseRSLoRA: true},
			"BAAI/bge-reranker-base", map[string]string{
				`"r"`: `16`, `"lora_alpha"`: `32`, `"lora_dropout"`: `0.05`, `"use_rslora"`: `true`,
				`"base_model_name_or_path"`: `"BAAI/bge-reranker-base"`,
			}, nil},
		{"fractional alpha, tiny dropout", lora.Config{R: 2, Alpha: 2.5, Dropout: 1e-5, TargetModules: []string{"query"}, Init: lora.InitGaussian},
			"", map[string]string{`"lora_alpha"`: `2.5`, `"lora_dropout"`: `1e-05`, `"init_lora_weights"`: `"gaussian"`}, nil},
		{"random init", lora.Config{R: 2, Alpha: 2, TargetModules: []string{"query"}, Init: lora.InitRandom},
			"", map[string]string{`"init_lora_weights"`: `false`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			js, err := tc.cfg.ConfigJSON(tc.base)
			require.NoError(t, err)
			s := string(js)
			for k, v := range tc.want {
				assert.Contains(t, s, k+": "+v)
			}
			for _, k := range tc.absent {
				assert.NotContains(t, s, k)
			}
			assert.False(t, strings.HasSuffix(s, "\n"), "PEFT writes no trailing newline")
			got, base, err := lora.ParseConfig("x", js)
			require.NoError(t, err)
			assert.Equal(t, tc.base, base)
			assert.Equal(t, tc.cfg.R, got.R)
			assert.Equal(t, tc.cfg.Alpha, got.Alpha)
			assert.Equal(t, tc.cfg.Dropout, got.Dropout)
			assert.Equal(t, tc.cfg.UseRSLoRA, got.UseRSLoRA)
			assert.Equal(t, tc.cfg.Init, got.Init)
			assert.ElementsMatch(t, tc.cfg.TargetModules, got.TargetModules)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name, json, err string
	}{
		{"not json", `{`, "not a PEFT adapter config"},
		{"prefix tuning", `{"peft_type": "PREFIX_TUNING", "r": 4}`, `field "peft_type"`},
		{"no rank", `{"peft_type": "LORA"}`, `field "r"`},
		{"causal lm", `{"peft_type": "LORA", "r": 4, "task_type": "CAUSAL_LM"}`, `field "task_type"`},
		{"conv1d weights", `{"peft_type": "LORA", "r": 4, "fan_in_fan_out": true}`, `field "fan_in_fan_out"`},
		{"rank pattern", `{"peft_type": "LORA", "r": 4, "rank_pattern": {"query": 8}}`, `field "rank_pattern"`},
		{"layers", `{"peft_type": "LORA", "r": 4, "layers_to_transform": [0]}`, `field "layers_to_transform"`},
		{"dora", `{"peft_type": "LORA", "r": 4, "use_dora": true}`, `field "use_dora"`},
		{"bad targets", `{"peft_type": "LORA", "r": 4, "target_modules": 3}`, `field "target_modules"`},
		{"bad rank value", `{"peft_type": "LORA", "r": -2}`, "rank r must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := lora.ParseConfig("dir/adapter_config.json", []byte(tc.json))
			require.ErrorContains(t, err, tc.err)
			assert.Contains(t, err.Error(), "dir/adapter_config.json")
		})
	}
	t.Run("regex and default targets", func(t *testing.T) {
		c, _, err := lora.ParseConfig("x", []byte(`{"peft_type": "LORA", "r": 4, "target_modules": ".*query"}`))
		require.NoError(t, err)
		assert.Equal(t, ".*query", c.TargetRegex)
		c, _, err = lora.ParseConfig("x", []byte(`{"peft_type": "LORA", "r": 4, "target_modules": null}`))
		require.NoError(t, err)
		assert.Equal(t, lora.DefaultTargets, c.TargetModules)
		assert.Equal(t, 8.0, c.Alpha, "PEFT's default lora_alpha")
	})
}

func TestNormalizeKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{"base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight", "bert.encoder.layer.0.attention.self.query.lora_A.weight"},
		{"base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.default.weight", "bert.encoder.layer.0.attention.self.query.lora_B.weight"},
		{"base_model.model.classifier.modules_to_save.default.weight", "classifier.weight"},
		{"base_model.model.classifier.modules_to_save.default.out_proj.bias", "classifier.out_proj.bias"},
		{"base_model.model.classifier.dense.bias", "classifier.dense.bias"},
		{"roberta.encoder.layer.1.output.dense.lora_A.weight", "roberta.encoder.layer.1.output.dense.lora_A.weight"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) { assert.Equal(t, tc.want, lora.NormalizeKey(tc.in)) })
	}
}

func TestAttach(t *testing.T) {
	cases := []struct {
		name    string
		arch    nn.Arch
		targets []string
		wrapped []string
		err     string
	}{
		{"bert default", nn.BERT, nil, []string{
			"bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.0.attention.self.value",
			"bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.1.attention.self.value"}, ""},
		{"bert bare dense wraps the pooler", nn.BERT, []string{"dense"}, []string{
			"bert.encoder.layer.0.attention.output.dense", "bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.0.output.dense",
			"bert.encoder.layer.1.attention.output.dense", "bert.encoder.layer.1.intermediate.dense", "bert.encoder.layer.1.output.dense",
			"bert.pooler.dense"}, ""},
		{"xlmr bare dense wraps classifier.dense", nn.XLMRoberta, []string{"intermediate.dense", "classifier.dense"}, []string{
			"roberta.encoder.layer.0.intermediate.dense", "roberta.encoder.layer.1.intermediate.dense", "classifier.dense"}, ""},
		{"no match", nn.BERT, []string{"q_proj", "v_proj"}, nil, "match no Linear"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tinyModel(t, tc.arch)
			cfg := lora.DefaultConfig()
			if tc.targets != nil {
				cfg.TargetModules = tc.targets
			}
			a, err := lora.Attach(m, cfg, 1)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wrapped, a.WrappedModules())
			_, err = lora.Attach(m, cfg, 1)
			require.ErrorContains(t, err, "already has an adapter")
			require.NoError(t, a.Detach())
			_, err = lora.Attach(m, cfg, 1)
			require.NoError(t, err, "attach again after Detach")
		})
	}
}

// TestTrainSaveLoadMerge trains a few steps with dropout on, checks that
// the base stays frozen, then saves, reloads, merges and unmerges.
func TestTrainSaveLoadMerge(t *testing.T) {
	cases := []struct {
		name string
		arch nn.Arch
		cfg  lora.Config
	}{
		{"bert qkv", nn.BERT, lora.Config{R: 2, Alpha: 4, Dropout: 0.1, TargetModules: []string{"query", "key", "value"}}},
		{"bert all rslora", nn.BERT, lora.Config{R: 3, Alpha: 3, TargetModules: []string{"query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"}, UseRSLoRA: true}},
		{"xlmr dense", nn.XLMRoberta, lora.Config{R: 2, Alpha: 2, Dropout: 0.2, TargetModules: []string{"dense"}, Init: lora.InitGaussian}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tinyModel(t, tc.arch)
			be := m.Backend()
			base := map[string][]float32{}
			for _, p := range m.Params() {
				base[p.Name] = download(be, p.W)
			}
			a, err := lora.Attach(m, tc.cfg, 11)
			require.NoError(t, err)
			opt, err := optim.NewAdamW(be, a.Trainable(), 0.01)
			require.NoError(t, err)
			assert.Len(t, opt.Params(), len(a.Trainable()))
			batch := tinyBatch(m.Cfg)
			var first, last float32
			for step := 0; step < 30; step++ {
				m.ZeroGrads()
				a.ZeroGrads()
				logits, err := m.Forward(batch, nn.RunOptions{Train: true, Seed: uint64(step)})
				require.NoError(t, err)
				ce, dl, err := loss.GroupSoftmaxCE(logits, 3)
				require.NoError(t, err)
				if step == 0 {
					first = ce
				}
				last = ce
				require.NoError(t, m.Backward(dl))
				require.NoError(t, opt.Step(1e-2))
			}
			assert.Less(t, last, first, "training lowers the loss")
			head := map[string]bool{}
			for _, p := range m.HeadParams() {
				head[p.Name] = true
			}
			for _, p := range m.Params() {
				if !head[p.Name] {
					require.Equal(t, base[p.Name], download(be, p.W), "%s is frozen", p.Name)
				}
			}

			dir := t.TempDir()
			require.NoError(t, a.Save(dir, "base/dir"))
			want := logitsOf(t, m, nn.RunOptions{})

			m2 := tinyModel(t, tc.arch)
			a2, err := lora.Load(m2, dir)
			require.NoError(t, err)
			assert.Equal(t, "base/dir", a2.BaseModel)
			golden.Close(t, "reloaded adapter", want, logitsOf(t, m2, nn.RunOptions{}), 0)

			require.NoError(t, a2.Merge())
			require.Error(t, a2.Merge(), "merge twice")
			golden.Close(t, "merged", want, logitsOf(t, m2, nn.RunOptions{}), 1e-5)
			require.NoError(t, a2.Unmerge())
			require.Error(t, a2.Unmerge(), "unmerge twice")
			golden.Close(t, "unmerged", want, logitsOf(t, m2, nn.RunOptions{}), 1e-5)
			require.NoError(t, a2.Merge())
			require.NoError(t, a2.Detach(), "detach unmerges")
			for _, p := range m2.Params() {
				golden.Close(t, "after detach "+p.Name, base[p.Name], download(be, p.W), 1e-6)
			}
		})
	}
}

// writeAdapter saves a fresh adapter of m's shape and returns its dir.
func writeAdapter(t *testing.T, arch nn.Arch, cfg lora.Config) string {
	t.Helper()
	a, err := lora.Attach(tinyModel(t, arch), cfg, 1)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, a.Save(dir, ""))
	return dir
}

func rewriteWeights(t *testing.T, dir string, edit func(map[string][]float32, map[string][]int)) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(dir, lora.WeightsFile))
	require.NoError(t, err)
	vals, shapes := map[string][]float32{}, map[string][]int{}
	for _, n := range f.Names() {
		v, s, err := f.Float32(n)
		require.NoError(t, err)
		vals[n], shapes[n] = v, s
	}
	require.NoError(t, f.Close())
	edit(vals, shapes)
	require.NoError(t, safetensors.WriteFloat32(filepath.Join(dir, lora.WeightsFile), vals, shapes, nil))
}

func TestLoadErrors(t *testing.T) {
	cfg := lora.Config{R: 2, Alpha: 4, TargetModules: []string{"query", "value"}}
	const q0A = "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"
	cases := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		model nn.Arch
		err   []string
	}{
		{"missing lora tensor", func(t *testing.T, dir string) {
			rewriteWeights(t, dir, func(v map[string][]float32, s map[string][]int) { delete(v, q0A); delete(s, q0A) })
		}, nn.BERT, []string{lora.WeightsFile, q0A}},
		{"wrong shape", func(t *testing.T, dir string) {
			rewriteWeights(t, dir, func(v map[string][]float32, s map[string][]int) { v[q0A] = make([]float32, 3*8); s[q0A] = []int{3, 8} })
		}, nn.BERT, []string{lora.WeightsFile, q0A, "shape [3 8]"}},
		{"untargeted lora tensor", func(t *testing.T, dir string) {
			k := "base_model.model.bert.encoder.layer.0.attention.self.key.lora_A.weight"
			rewriteWeights(t, dir, func(v map[string][]float32, s map[string][]int) { v[k] = make([]float32, 16); s[k] = []int{2, 8} })
		}, nn.BERT, []string{"attention.self.key.lora_A", "no module"}},
		{"unknown tensor", func(t *testing.T, dir string) {
			rewriteWeights(t, dir, func(v map[string][]float32, s map[string][]int) {
				v["base_model.model.lm_head.weight"] = []float32{1}
				s["base_model.model.lm_head.weight"] = []int{1}
			})
		}, nn.BERT, []string{"lm_head.weight", "matches no parameter"}},
		{"adapter for another architecture", func(t *testing.T, dir string) {}, nn.XLMRoberta, []string{"no module"}},
		{"garbage pickle", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, lora.WeightsFile)))
			require.NoError(t, os.WriteFile(filepath.Join(dir, lora.BinWeightsFile), []byte("x"), 0o644))
		}, nn.BERT, []string{lora.BinWeightsFile, "not a torch zip checkpoint"}},
		{"no weights", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, lora.WeightsFile)))
		}, nn.BERT, []string{lora.WeightsFile, lora.BinWeightsFile}},
		{"no config", func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, lora.ConfigFile))) },
			nn.BERT, []string{lora.ConfigFile}},
		{"truncated weights", func(t *testing.T, dir string) {
			p := filepath.Join(dir, lora.WeightsFile)
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, data[:len(data)/2], 0o644))
		}, nn.BERT, []string{lora.WeightsFile}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeAdapter(t, nn.BERT, cfg)
			tc.edit(t, dir)
			m := tinyModel(t, tc.model)
			before := logitsOf(t, m, nn.RunOptions{})
			_, err := lora.Load(m, dir)
			require.Error(t, err)
			for _, s := range tc.err {
				assert.Contains(t, err.Error(), s)
			}
			// A failed load leaves the model as it was, ready for another.
			golden.Close(t, "logits after a failed load", before, logitsOf(t, m, nn.RunOptions{}), 0)
			_, err = lora.Attach(m, lora.DefaultConfig(), 1)
			require.NoError(t, err)
		})
	}
}

func TestInitDistribution(t *testing.T) {
	m := tinyModel(t, nn.BERT)
	cfg := lora.Config{R: 4, Alpha: 4, TargetModules: []string{"intermediate.dense"}}
	a, err := lora.Attach(m, cfg, 9)
	require.NoError(t, err)
	for _, ad := range a.List() {
		bound := 1 / math.Sqrt(float64(ad.In))
		for _, v := range download(m.Backend(), ad.A.W) {
			require.LessOrEqual(t, math.Abs(float64(v)), bound, "kaiming_uniform(a=√5) bound")
		}
	}
	b, err := lora.Attach(tinyModel(t, nn.BERT), cfg, 9)
	require.NoError(t, err)
	assert.Equal(t, download(m.Backend(), a.List()[0].A.W), download(m.Backend(), b.List()[0].A.W), "seeded")
}

// TestGradientCheckpointing checks that recomputing layers in the
// backward pass (which runs the adapters' Forward again) gives the same
// adapter and head gradients, with LoRA dropout on.
func TestGradientCheckpointing(t *testing.T) {
	cases := []struct {
		name string
		arch nn.Arch
	}{{"bert", nn.BERT}, {"xlmr", nn.XLMRoberta}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			grads := func(ckpt bool) map[string][]float32 {
				m := tinyModel(t, tc.arch)
				cfg := lora.Config{R: 2, Alpha: 4, Dropout: 0.3, TargetModules: []string{"query", "key", "value", "output.dense"}, Init: lora.InitRandom}
				a, err := lora.Attach(m, cfg, 4)
				require.NoError(t, err)
				logits := logitsOf(t, m, nn.RunOptions{Train: true, Seed: 77, GradientCheckpointing: ckpt})
				_, dl, err := loss.GroupSoftmaxCE(logits, 3)
				require.NoError(t, err)
				require.NoError(t, m.Backward(dl))
				out := map[string][]float32{}
				for _, p := range a.Trainable() {
					out[p.Name] = download(m.Backend(), p.G)
				}
				return out
			}
			plain, ckpt := grads(false), grads(true)
			for name, g := range plain {
				golden.Close(t, name, g, ckpt[name], 1e-6)
			}
		})
	}
}

// TestLoadBiasTensors loads an adapter trained with bias "all": its bias
// tensors replace the model's.
func TestLoadBiasTensors(t *testing.T) {
	const bias = "bert.encoder.layer.0.attention.self.query.bias"
	cases := []struct{ name, key string }{
		{"peft name", lora.KeyPrefix + bias},
		{"bare name", bias},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeAdapter(t, nn.BERT, lora.Config{R: 2, Alpha: 2, TargetModules: []string{"query"}})
			want := []float32{1, 2, 3, 4, 5, 6, 7, 8}
			rewriteWeights(t, dir, func(v map[string][]float32, s map[string][]int) { v[tc.key], s[tc.key] = want, []int{8} })
			m := tinyModel(t, nn.BERT)
			_, err := lora.Load(m, dir)
			require.NoError(t, err)
			assert.Equal(t, want, download(m.Backend(), m.Param(bias).W))
		})
	}
}
