package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/safetensors"
)

func tokenizerDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(filepath.Dir(file)), "examples", "bert-uncased-tokenizer")
}

// microConfig has golden bert_tiny's shapes with the real BERT vocabulary.
func microConfig() nn.Config {
	return nn.Config{Arch: nn.BERT, VocabSize: 30522, Hidden: 32, Layers: 2, Heads: 4, Intermediate: 64,
		MaxPositions: 64, TypeVocab: 2, LayerNormEps: 1e-12, HiddenDropout: 0.1, AttentionDropout: 0.1,
		ClassifierDropout: 0.1, NumLabels: 1}
}

// microModel writes a small random BERT cross-encoder directory.
func microModel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	m, err := nn.New(cpu.New(), microConfig())
	require.NoError(t, err)
	m.InitRandom(3, 0.02)
	require.NoError(t, hfmodel.Save(m, nil, dir, tokenizerDir()))
	return dir
}

var words = strings.Fields("protein cell gene cancer virus brain heart blood drug mouse tumor immune receptor dose lung liver kidney bone skin muscle")

// microData writes n FlagEmbedding lines: the positive repeats the
// query's words, the negatives are other words.
func microData(t testing.TB, n int, scores bool) string {
	t.Helper()
	var ex []flagdata.Example
	for i := 0; i < n; i++ {
		q := words[i%len(words)] + " " + words[(i*7+3)%len(words)]
		e := flagdata.Example{Query: q, Pos: []string{"about " + q + " and more " + q}}
		for k := 0; k < 5; k++ {
			e.Neg = append(e.Neg, fmt.Sprintf("%s %s study %d", words[(i+k+5)%len(words)], words[(i*3+k+11)%len(words)], k))
		}
		if scores {
			e.PosScores = []float64{3}
			e.NegScores = []float64{0.5, -1, 0, 1, -2}
		}
		ex = append(ex, e)
	}
	path := filepath.Join(t.TempDir(), "train.jsonl")
	require.NoError(t, flagdata.WriteFile(path, ex))
	return path
}

func microArgs(t *testing.T, model, data string) Args {
	a := DefaultArgs()
	a.ModelDir, a.TrainData, a.OutputDir = model, data, filepath.Join(t.TempDir(), "out")
	a.CacheDir = filepath.Join(t.TempDir(), "cache") // not the user's cache
	a.TrainGroupSize, a.QueryMaxLen, a.PassageMaxLen = 4, 8, 24
	a.PerDeviceTrainBatchSize, a.MaxSteps, a.LearningRate = 2, 6, 1e-3
	a.LoggingSteps, a.SaveSteps, a.WarmupRatio, a.WeightDecay = 1, 2, 0.2, 0.01
	return a
}

var errInterrupted = errors.New("interrupted")

func TestResumeGivesIdenticalLosses(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	tests := []struct {
		name       string
		accum      int
		interrupt  int // stop after this step
		resumeFrom string
		limit      int
		lora       int
	}{
		{"latest", 1, 5, "latest", 0, 0},
		{"explicit checkpoint with accumulation", 2, 3, "checkpoint-2", 0, 0},
		{"latest with save limit", 1, 5, "latest", 1, 0},
		{"lora", 1, 3, "latest", 0, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := microArgs(t, model, data)
			a.GradientAccumulationSteps, a.SaveTotalLimit, a.LoraRank = tc.accum, tc.limit, tc.lora
			full, err := Run(context.Background(), cpu.New(), a, Options{})
			require.NoError(t, err)
			require.Len(t, full.Losses, 6)

			b := a
			b.OutputDir = filepath.Join(t.TempDir(), "out")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err = Run(ctx, cpu.New(), b, Options{OnStep: func(s StepInfo) error {
				if s.Step == tc.interrupt {
					cancel() // as a kill would; the loop notices before the next step
				}
				return nil
			}})
			require.ErrorIs(t, err, context.Canceled)
			assert.Contains(t, err.Error(), "continue with resume_from_checkpoint latest and the same arguments, which "+filepath.Join(b.OutputDir, ArgsFile)+" holds",
				"the interruption says how to continue")
			assert.NoFileExists(t, filepath.Join(b.OutputDir, "model.safetensors"), "an interrupted run writes no final model")
			assert.NoFileExists(t, filepath.Join(b.OutputDir, "adapter_model.safetensors"), "an interrupted run writes no final adapter")

			b.Resume = tc.resumeFrom
			if tc.resumeFrom != "latest" {
				b.Resume = filepath.Join(b.OutputDir, tc.resumeFrom)
			}
			resumed, err := Run(context.Background(), cpu.New(), b, Options{})
			require.NoError(t, err)
			from := resumed.FirstStep - 1
			require.Greater(t, from, 0)
			assert.Equal(t, full.Losses[from:], resumed.Losses, "losses after resuming at step %d", from)

			// Same final weights, byte for byte, and the same metrics log.
			weights := "model.safetensors"
			if tc.lora > 0 {
				weights = "adapter_model.safetensors"
			}
			wa, err := os.ReadFile(filepath.Join(a.OutputDir, weights))
			require.NoError(t, err)
			wb, err := os.ReadFile(filepath.Join(b.OutputDir, weights))
			require.NoError(t, err)
			assert.True(t, string(wa) == string(wb), "final weights differ")
			assert.Equal(t, metricSteps(t, a.OutputDir), metricSteps(t, b.OutputDir))
		})
	}
}

func metricSteps(t *testing.T, dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		out = append(out, fmt.Sprintf("%v %v %v", r["step"], r["loss"], r["learning_rate"]))
	}
	return out
}

func TestLoRAAdapterOutput(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps, a.LoraRank, a.LoraAlpha, a.LoraTargetModules = 4, 0, 4, 8, []string{"query", "key", "value", "dense"}
	res, err := Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", ArgsFile, MetricsFile} {
		assert.FileExists(t, filepath.Join(a.OutputDir, f))
	}
	assert.NoFileExists(t, filepath.Join(a.OutputDir, "model.safetensors"))
	// The base is recorded by absolute path, so merge works from anywhere.
	_, recorded, err := lora.ReadConfig(a.OutputDir)
	require.NoError(t, err)
	abs, err := filepath.Abs(model)
	require.NoError(t, err)
	assert.Equal(t, abs, recorded)
	opts := crossencoder.Options{QueryMaxLen: 8, PassageMaxLen: 24}
	_, err = crossencoder.New(res.Net, nil, opts)
	require.Error(t, err, "New without a tokenizer")
	opts.Adapter = a.OutputDir
	loaded, err := crossencoder.Load(cpu.New(), model, opts)
	require.NoError(t, err)
	opts.Adapter = ""
	trained, err := crossencoder.New(res.Net, loaded.Tok, opts)
	require.NoError(t, err)
	ps := []string{"protein cell", "about heart blood", "nothing here"}
	want, err := trained.Score(context.Background(), "protein gene", ps)
	require.NoError(t, err)
	got, err := loaded.Score(context.Background(), "protein gene", ps)
	require.NoError(t, err)
	assert.InDeltaSlice(t, want, got, 1e-5, "merged adapter scores like the trained model")
	base, err := crossencoder.Load(cpu.New(), model, opts)
	require.NoError(t, err)
	before, err := base.Score(context.Background(), "protein gene", ps)
	require.NoError(t, err)
	assert.NotEqual(t, before, got, "the adapter changes the scores")
}

func TestNonFiniteStopsAndKeepsCheckpoint(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	nan := float32(math.NaN())
	tests := []struct {
		name     string
		poison   func(step int, m *nn.Model)
		wantStep int
		what     string
		good     int
	}{
		{"gradient", func(step int, m *nn.Model) {
			if step == 5 {
				p := m.Params()[len(m.Params())-1]
				m.Backend().Upload(p.G, []float32{nan})
			}
		}, 5, "gradient norm", 4},
		{"loss", func(step int, m *nn.Model) {
			if step == 3 { // a NaN weight after step 3 makes step 4's loss NaN
				p := m.Param("classifier.bias")
				m.Backend().Upload(p.W, []float32{float32(math.Inf(1))})
				m.Backend().Upload(p.G, []float32{0})
			}
		}, 4, "loss", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := microArgs(t, model, data)
			_, err := Run(context.Background(), cpu.New(), a, Options{BeforeUpdate: tc.poison})
			var nf *NonFiniteError
			require.ErrorAs(t, err, &nf)
			assert.Equal(t, tc.wantStep, nf.Step)
			assert.Equal(t, tc.what, nf.What)
			good := CheckpointDir(a.OutputDir, tc.good)
			assert.Equal(t, good, nf.Checkpoint)
			assert.Contains(t, err.Error(), fmt.Sprintf("step %d", tc.wantStep))
			assert.Contains(t, err.Error(), good)
			cks, err := Checkpoints(a.OutputDir)
			require.NoError(t, err)
			assert.Equal(t, good, cks[len(cks)-1], "no checkpoint after the bad step")
			assert.NoFileExists(t, filepath.Join(a.OutputDir, "model.safetensors"))
			// The kept checkpoint loads and is finite.
			m, _, err := hfmodel.Load(cpu.New(), good, hfmodel.LoadOptions{})
			require.NoError(t, err)
			for _, p := range m.Params() {
				v := make([]float32, p.Size())
				m.Backend().Download(v, p.W)
				for _, x := range v {
					require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0), p.Name)
				}
			}
		})
	}
}

func TestGradientCheckpointingSameLossesAndGradients(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	var runs [2][]float64
	var grads [2][][]float32
	for i, gc := range []bool{false, true} {
		a := microArgs(t, model, data)
		a.MaxSteps, a.SaveSteps, a.GradientCheckpointing = 3, 0, gc
		res, err := Run(context.Background(), cpu.New(), a, Options{BeforeUpdate: func(step int, m *nn.Model) {
			for _, p := range m.Params() {
				g := make([]float32, p.Size())
				m.Backend().Download(g, p.G)
				grads[i] = append(grads[i], g)
			}
		}})
		require.NoError(t, err)
		runs[i] = res.Losses
	}
	assert.Equal(t, runs[0], runs[1])
	require.Equal(t, len(grads[0]), len(grads[1]))
	for k := range grads[0] {
		require.InDeltaSlice(t, grads[0][k], grads[1][k], 0, "gradient %d", k)
	}
}

// TestTiledAttentionSameLosses: --attention tiled trains like stored
// attention (to float rounding: the softmax sums in another order).
func TestTiledAttentionSameLosses(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	var runs [2][]float64
	for i, mode := range []string{"stored", "tiled"} {
		a := microArgs(t, model, data)
		a.MaxSteps, a.SaveSteps, a.Attention = 3, 0, mode
		res, err := Run(context.Background(), cpu.New(), a, Options{BeforeUpdate: func(step int, m *nn.Model) {
			assert.Equal(t, mode == "tiled", m.Attention.Mode == nn.AttentionTiled)
		}})
		require.NoError(t, err)
		runs[i] = res.Losses
	}
	require.Len(t, runs[1], len(runs[0]))
	assert.InDeltaSlice(t, runs[0], runs[1], 1e-5)
}

func TestSaveTotalLimit(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	tests := []struct {
		limit int
		want  []int
	}{{0, []int{1, 2, 3, 4, 5}}, {2, []int{4, 5}}, {1, []int{5}}}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			a := microArgs(t, model, data)
			a.MaxSteps, a.SaveSteps, a.SaveTotalLimit = 5, 1, tc.limit
			_, err := Run(context.Background(), cpu.New(), a, Options{})
			require.NoError(t, err)
			cks, err := Checkpoints(a.OutputDir)
			require.NoError(t, err)
			var want []string
			for _, s := range tc.want {
				want = append(want, CheckpointDir(a.OutputDir, s))
			}
			assert.Equal(t, want, cks)
			for _, d := range cks {
				for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", OptimizerFile, StateFile, ArgsFile} {
					assert.FileExists(t, filepath.Join(d, f))
				}
			}
		})
	}
}

func TestOutputDirectory(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 4, 0
	res, err := Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", ArgsFile, MetricsFile} {
		assert.FileExists(t, filepath.Join(a.OutputDir, f))
	}
	assert.Equal(t, []string{"1 loss lr pps", "2 loss lr pps", "3 loss lr pps", "4 loss lr pps"}, metricKeys(t, a.OutputDir))
	assert.Less(t, res.Losses[3], math.Log(4)+1)

	// The model reloads and gives identical logits to the trained one.
	loaded, err := crossencoder.Load(cpu.New(), a.OutputDir, crossencoder.Options{QueryMaxLen: 8, PassageMaxLen: 24})
	require.NoError(t, err)
	trained, err := crossencoder.New(res.Net, loaded.Tok, crossencoder.Options{QueryMaxLen: 8, PassageMaxLen: 24})
	require.NoError(t, err)
	ps := []string{"protein cell", "about heart blood", "nothing here"}
	want, err := trained.Score(context.Background(), "protein gene", ps)
	require.NoError(t, err)
	got, err := loaded.Score(context.Background(), "protein gene", ps)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	var args Args
	js, err := os.ReadFile(filepath.Join(a.OutputDir, ArgsFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(js, &args))
	assert.Equal(t, a, args)
}

func metricKeys(t *testing.T, dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		s := fmt.Sprint(r["step"])
		for _, k := range []string{"loss", "learning_rate", "pairs_per_second"} {
			if _, ok := r[k]; ok {
				s += " " + map[string]string{"loss": "loss", "learning_rate": "lr", "pairs_per_second": "pps"}[k]
			}
		}
		out = append(out, s)
	}
	return out
}

// The trained directory has exactly the tensor names and config keys of
// a transformers-written checkpoint of the same shape.
func TestOutputMatchesGoldenLayout(t *testing.T) {
	golden := filepath.Join(sharedtest.Golden(t), "bert_tiny", "model")
	model, data := microModel(t), microData(t, 4, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 1, 0
	_, err := Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)
	names := func(dir string) []string {
		f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
		require.NoError(t, err)
		defer f.Close()
		n := f.Names()
		sort.Strings(n)
		return n
	}
	keys := func(dir string) []string {
		var m map[string]any
		js, err := os.ReadFile(filepath.Join(dir, "config.json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(js, &m))
		var k []string
		for key := range m {
			k = append(k, key)
		}
		sort.Strings(k)
		return k
	}
	assert.Equal(t, names(golden), names(a.OutputDir))
	// Plus where the model came from, as transformers' save_pretrained
	// records a model loaded from a path.
	want := append(keys(golden), "_name_or_path")
	sort.Strings(want)
	assert.Equal(t, want, keys(a.OutputDir))
	var cfg map[string]any
	js, err := os.ReadFile(filepath.Join(a.OutputDir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(js, &cfg))
	abs, err := filepath.Abs(model)
	require.NoError(t, err)
	assert.Equal(t, abs, cfg["_name_or_path"])
}

func TestLossesAndDistillation(t *testing.T) {
	model := microModel(t)
	for _, loss := range []string{"ce", "bce", "distill"} {
		t.Run(loss, func(t *testing.T) {
			a := microArgs(t, model, microData(t, 10, loss == "distill"))
			a.Loss, a.MaxSteps, a.SaveSteps = loss, 3, 0
			res, err := Run(context.Background(), cpu.New(), a, Options{})
			require.NoError(t, err)
			require.Len(t, res.Losses, 3)
			for _, l := range res.Losses {
				assert.Greater(t, l, 0.0)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	model := microModel(t)
	write := func(t *testing.T, content string) string {
		p := filepath.Join(t.TempDir(), "bad.jsonl")
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	good := `{"query":"q","pos":["p"],"neg":["n1","n2"]}` + "\n"
	tests := []struct {
		name string
		data string
		edit func(a *Args)
		want []string
	}{
		{"missing neg", good + `{"query":"q","pos":["p"]}` + "\n", nil, []string{"bad.jsonl:2", `"neg"`}},
		{"empty pos", good + good + `{"query":"q","pos":[],"neg":["n"]}` + "\n", nil, []string{"bad.jsonl:3", `"pos"`}},
		{"wrong type", `{"query":3,"pos":["p"],"neg":["n"]}` + "\n" + good, nil, []string{"bad.jsonl:1", `"query"`}},
		{"bad json", good + "{not json\n", nil, []string{"bad.jsonl:2"}},
		{"score lengths", `{"query":"q","pos":["p"],"neg":["n1","n2"],"pos_scores":[1],"neg_scores":[1]}` + "\n" + good,
			func(a *Args) { a.Loss = "distill" }, []string{"bad.jsonl:1", "neg_scores"}},
		{"distill without scores", good + good, func(a *Args) { a.Loss = "distill" }, []string{"bad.jsonl:1", "pos_scores"}},
		{"too long for the model", good + good, func(a *Args) { a.QueryMaxLen, a.PassageMaxLen = 32, 64 },
			[]string{"query_max_len 32 + passage_max_len 64 = 96", "at most 64"}},
		{"unknown loss", good + good, func(a *Args) { a.Loss = "mse" }, []string{"loss: ", `"mse"`}},
		{"unknown attention", good + good, func(a *Args) { a.Attention = "flash" }, []string{"attention: ", `"flash"`, "tiled"}},
		{"no model", good + good, func(a *Args) { a.ModelDir = filepath.Join(a.OutputDir, "none") }, []string{"model_name_or_path: ", "none", "no such"}},
		{"infinite learning rate", good + good, func(a *Args) { a.LearningRate = math.Inf(1) }, []string{"learning_rate: ", "finite", "+Inf"}},
		{"NaN max grad norm", good + good, func(a *Args) { a.MaxGradNorm = math.NaN() }, []string{"max_grad_norm: ", "finite", "NaN"}},
		{"negative save total limit", good + good, func(a *Args) { a.SaveTotalLimit = -1 }, []string{"save_total_limit: ", "-1"}},
		{"unknown resume override", good + good, func(a *Args) { a.ResumeOverride = []string{"lr"} }, []string{"resume_override: ", `"lr"`}},
		{"output is the model", good + good, func(a *Args) { a.OutputDir = a.ModelDir }, []string{"output_dir: ", "model_name_or_path", "overwrite its weights"}},
		{"lora rank above the dimensions", good + good, func(a *Args) { a.LoraRank = 100000 }, []string{"lora_rank: ", "rank 100000 exceeds", "at most 32"}},
		{"finished model in the output", good + good, func(a *Args) {
			require.NoError(t, os.MkdirAll(a.OutputDir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(a.OutputDir, "model.safetensors"), []byte("x"), 0o644))
		}, []string{"output_dir: ", "not empty", "model.safetensors", "overwrite_output_dir"}},
		{"resume without checkpoint", good + good, func(a *Args) { a.Resume = "latest" }, []string{"resume: no checkpoint"}},
		{"earlier checkpoints", good + good, func(a *Args) {
			require.NoError(t, os.MkdirAll(CheckpointDir(a.OutputDir, 3), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(CheckpointDir(a.OutputDir, 3), StateFile), []byte("{}"), 0o644))
		}, []string{"checkpoint-3", "resume_from_checkpoint latest", "overwrite_output_dir"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := microArgs(t, model, write(t, tc.data))
			a.PerDeviceTrainBatchSize, a.MaxSteps = 1, 1
			if tc.edit != nil {
				tc.edit(&a)
			}
			_, err := Run(context.Background(), cpu.New(), a, Options{})
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "--", "the library names fields, not flags")
		})
	}
}

func TestReadArgsFile(t *testing.T) {
	tests := []struct {
		name, content string
		check         func(t *testing.T, a Args)
		err           string
	}{
		{"values", `{"learning_rate": 0.001, "train_group_size": 4, "gradient_checkpointing": true}`, func(t *testing.T, a Args) {
			assert.Equal(t, 0.001, a.LearningRate)
			assert.Equal(t, 4, a.TrainGroupSize)
			assert.True(t, a.GradientCheckpointing)
			assert.Equal(t, 128, a.PassageMaxLen, "defaults stay")
		}, ""},
		{"unknown key", `{"learning_rat": 0.001}`, nil, `unknown field "learning_rat"`},
		{"wrong type", "{\n\"train_group_size\": \"four\"}", nil, `cfg.json:2: field "train_group_size"`},
		{"syntax", "{\n\"seed\": 1,,}", nil, "cfg.json:2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "cfg.json")
			require.NoError(t, os.WriteFile(p, []byte(tc.content), 0o644))
			a, err := ReadArgsFile(p, DefaultArgs())
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, a)
		})
	}
}

// A run killed while writing a checkpoint leaves a temporary directory or,
// at worst, a checkpoint without its state file: neither is resumed from.
func TestCheckpointsIgnoreIncomplete(t *testing.T) {
	tests := []struct {
		name   string
		dirs   map[string]bool // name → has trainer_state.json
		latest string
	}{
		{"none", map[string]bool{}, ""},
		{"complete ones by step", map[string]bool{"checkpoint-2": true, "checkpoint-10": true, "checkpoint-4": true}, "checkpoint-10"},
		{"temporary left by a kill", map[string]bool{"checkpoint-2": true, ".checkpoint-4.tmp-123": true}, "checkpoint-2"},
		{"state file missing", map[string]bool{"checkpoint-2": true, "checkpoint-4": false}, "checkpoint-2"},
		{"not a step", map[string]bool{"checkpoint-2": true, "checkpoint-final": true}, "checkpoint-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			for d, complete := range tc.dirs {
				require.NoError(t, os.MkdirAll(filepath.Join(out, d), 0o755))
				if complete {
					require.NoError(t, os.WriteFile(filepath.Join(out, d, StateFile), []byte("{}"), 0o644))
				}
			}
			got, err := LatestCheckpoint(out)
			require.NoError(t, err)
			if tc.latest == "" {
				assert.Empty(t, got)
				return
			}
			assert.Equal(t, filepath.Join(out, tc.latest), got)
		})
	}
}

type fakeMonitor struct{}

func (f *fakeMonitor) Metrics() map[string]float64 {
	return map[string]float64{"gpu_memory_used": 1 << 30}
}

// recorder is a Progress that keeps what it is told.
type recorder struct {
	msgs  []string
	steps []StepInfo
}

func (r *recorder) Message(m string) { r.msgs = append(r.msgs, m) }
func (r *recorder) Step(s StepInfo)  { r.steps = append(r.steps, s) }

// TestMonitorReachesProgressAndLog: Progress hears of every step with
// its total, and a device monitor's numbers land in every metrics.jsonl
// record.
func TestMonitorReachesProgressAndLog(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 2, 0
	var progress recorder
	_, err := Run(context.Background(), cpu.New(), a, Options{Monitor: &fakeMonitor{}, Progress: &progress})
	require.NoError(t, err)
	require.Len(t, progress.steps, 2)
	for i, s := range progress.steps {
		assert.Equal(t, i+1, s.Step)
		assert.Equal(t, 2, s.Total)
		assert.Equal(t, a.PerDeviceTrainBatchSize*a.TrainGroupSize, s.Pairs)
		assert.Positive(t, s.Loss)
	}
	assert.NotEmpty(t, progress.msgs)
	for _, m := range progress.msgs {
		assert.NotContains(t, m, "\n", "messages are single lines; the caller ends them")
	}
	raw, err := os.ReadFile(filepath.Join(a.OutputDir, MetricsFile))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	require.Len(t, lines, 2)
	for _, l := range lines {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		assert.EqualValues(t, 1<<30, r["gpu_memory_used"])
	}
}

// Training from examples in memory gives the losses of the same examples
// read from a file, and the metrics land where the caller puts them, not
// in the output directory.
func TestInMemoryExamplesAndPlacedFiles(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 3, 0
	fromFile, err := Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)

	exs, err := flagdata.Load(data, flagdata.Options{})
	require.NoError(t, err)
	b := microArgs(t, model, "")
	b.MaxSteps, b.SaveSteps = 3, 0
	metrics := filepath.Join(t.TempDir(), "logs", "run.jsonl")
	require.NoError(t, os.MkdirAll(filepath.Dir(metrics), 0o755))
	fromMemory, err := Run(context.Background(), cpu.New(), b, Options{Examples: exs, MetricsPath: metrics})
	require.NoError(t, err)
	assert.Equal(t, fromFile.Losses, fromMemory.Losses)
	assert.NoFileExists(t, filepath.Join(b.OutputDir, MetricsFile))
	raw, err := os.ReadFile(metrics)
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(string(raw), "\n"), "a record per step")
}

// TestLastStepCheckpoint: as transformers' Trainer with save_strategy
// "steps", the last step writes a checkpoint whatever its number, and
// resuming from it trains nothing more and leaves the same model.
func TestLastStepCheckpoint(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 5, 2
	res, err := Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)
	require.Equal(t, 5, res.Steps)
	cks, err := Checkpoints(a.OutputDir)
	require.NoError(t, err)
	assert.Equal(t, []string{CheckpointDir(a.OutputDir, 2), CheckpointDir(a.OutputDir, 4), CheckpointDir(a.OutputDir, 5)}, cks)
	before, err := os.ReadFile(filepath.Join(a.OutputDir, "model.safetensors"))
	require.NoError(t, err)

	a.Resume = "latest"
	res, err = Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)
	assert.Equal(t, 5, res.Steps)
	assert.Empty(t, res.Losses, "nothing left to train")
	after, err := os.ReadFile(filepath.Join(a.OutputDir, "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, before, after)
}
