package hfmodel_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/safetensors"
)

func weights(t *testing.T, m *nn.Model) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range m.Params() {
		v := make([]float32, p.Size())
		m.Backend().Download(v, p.W)
		out[p.Name] = v
	}
	return out
}

func configKeys(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func tensorNames(t *testing.T, path string) []string {
	f, err := safetensors.Open(path)
	require.NoError(t, err)
	defer f.Close()
	return f.Names()
}

// TestRoundTripGolden loads each golden model, saves it, and checks that the
// saved directory has the golden file's tensor names and config keys, and
// that loading it back gives bit-identical weights.
func TestRoundTripGolden(t *testing.T) {
	root := sharedtest.Golden(t)
	for _, name := range []string{"bert_tiny", "xlmr_tiny", "bert_small"} {
		src := filepath.Join(root, name, "model")
		if _, err := os.Stat(src); err != nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			m, info, err := hfmodel.Load(cpu.New(), src, hfmodel.LoadOptions{})
			require.NoError(t, err)
			assert.Empty(t, info.Initialized)
			assert.Empty(t, info.Unused)
			out := t.TempDir()
			require.NoError(t, hfmodel.Save(m, info.Config, out, src))
			assert.Equal(t, tensorNames(t, filepath.Join(src, "model.safetensors")), tensorNames(t, filepath.Join(out, "model.safetensors")))
			// The saved config is the golden one plus where it came from,
			// as transformers' save_pretrained records it.
			abs, err := filepath.Abs(src)
			require.NoError(t, err)
			assert.Equal(t, abs, info.Source)
			wantKeys := append(configKeys(t, filepath.Join(src, "config.json")), "_name_or_path")
			sort.Strings(wantKeys)
			assert.Equal(t, wantKeys, configKeys(t, filepath.Join(out, "config.json")))
			var want, got map[string]any
			data, err := os.ReadFile(filepath.Join(src, "config.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(data, &want))
			want["_name_or_path"] = abs
			data, err = os.ReadFile(filepath.Join(out, "config.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(data, &got))
			assert.Equal(t, want, got)

			back, _, err := hfmodel.Load(cpu.New(), out, hfmodel.LoadOptions{})
			require.NoError(t, err)
			assert.Equal(t, weights(t, m), weights(t, back), "bit-exact round trip")
			wantBytes, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
			require.NoError(t, err)
			gotBytes, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
			require.NoError(t, err)
			assert.Equal(t, wantBytes, gotBytes, "model.safetensors byte-identical to transformers' file")
		})
	}
}

func tinyConfig(arch nn.Arch) nn.Config {
	c := nn.Config{Arch: arch, VocabSize: 30, Hidden: 8, Layers: 1, Heads: 2, Intermediate: 12,
		MaxPositions: 20, TypeVocab: 2, LayerNormEps: 1e-12, HiddenDropout: 0.1, AttentionDropout: 0.1,
		ClassifierDropout: 0.1, NumLabels: 1}
	if arch == nn.XLMRoberta {
		c.TypeVocab, c.PadID, c.LayerNormEps = 1, 1, 1e-5
	}
	return c
}

// TestFreshModelRoundTrip saves a randomly initialised model of each
// architecture and reloads it bit-exactly, with the keys transformers
// writes.
func TestFreshModelRoundTrip(t *testing.T) {
	for _, arch := range []nn.Arch{nn.BERT, nn.XLMRoberta} {
		t.Run(arch.String(), func(t *testing.T) {
			m, err := nn.New(cpu.New(), tinyConfig(arch))
			require.NoError(t, err)
			m.InitRandom(1, 0.02)
			dir := t.TempDir()
			require.NoError(t, hfmodel.Save(m, nil, dir, ""))
			back, info, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{})
			require.NoError(t, err)
			assert.Equal(t, weights(t, m), weights(t, back))
			assert.Equal(t, m.Cfg, back.Cfg)
			assert.Equal(t, []string{map[nn.Arch]string{nn.BERT: "BertForSequenceClassification", nn.XLMRoberta: "XLMRobertaForSequenceClassification"}[arch]}, info.Config.Architectures)
			keys := configKeys(t, filepath.Join(dir, "config.json"))
			for _, k := range []string{"architectures", "id2label", "label2id", "model_type", "hidden_act", "pad_token_id", "layer_norm_eps", "classifier_dropout"} {
				assert.Contains(t, keys, k)
			}
			assert.NotContains(t, keys, "num_labels")
		})
	}
}

// TestHeadlessCheckpoint: a plain BertModel checkpoint (names without the
// "bert." prefix, no pooler, no head, extra buffers) loads with a fresh,
// seeded head.
func TestHeadlessCheckpoint(t *testing.T) {
	c := tinyConfig(nn.BERT)
	m, err := nn.New(cpu.New(), c)
	require.NoError(t, err)
	m.InitRandom(4, 0.02)
	dir := t.TempDir()
	var ts []safetensors.Tensor
	for name, v := range weights(t, m) {
		if name == "classifier.weight" || name == "classifier.bias" || filepath.Ext(name) == "" {
			continue
		}
		if len(name) > 5 && name[:5] == "bert." {
			if name[5:11] == "pooler" {
				continue
			}
			name = name[5:]
		}
		ts = append(ts, safetensors.F32Tensor(name, m.Param(pickName(m, name)).Shape, v))
	}
	ts = append(ts, safetensors.F32Tensor("embeddings.position_ids", []int{1, 2}, []float32{0, 1}))
	require.NoError(t, safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil))
	cfg := `{"architectures":["BertModel"],"model_type":"bert","vocab_size":30,"hidden_size":8,"num_hidden_layers":1,
	"num_attention_heads":2,"intermediate_size":12,"max_position_embeddings":20,"type_vocab_size":2,"hidden_act":"gelu"}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644))

	a, info, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{Seed: 7})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"}, info.Initialized)
	assert.Equal(t, []string{"embeddings.position_ids"}, info.Unused)
	b, _, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{Seed: 7})
	require.NoError(t, err)
	assert.Equal(t, weights(t, a), weights(t, b), "the fresh head is seeded")
	w := weights(t, a)
	assert.Equal(t, make([]float32, 1), w["classifier.bias"])
	assert.NotEqual(t, make([]float32, 8), w["classifier.weight"])
}

func pickName(m *nn.Model, bare string) string {
	if m.Param(bare) != nil {
		return bare
	}
	return "bert." + bare
}

func TestLoadErrors(t *testing.T) {
	good := `{"architectures":["BertForSequenceClassification"],"model_type":"bert","vocab_size":30,"hidden_size":8,
	"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":12,"max_position_embeddings":20,"type_vocab_size":2}`
	for _, tc := range []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"no config", func(dir string) {}, "config.json"},
		{"pytorch only, not a torch file", func(dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(good), 0o644)
			os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("x"), 0o644)
		}, "pytorch_model.bin: not a torch zip checkpoint"},
		{"unknown arch", func(dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2"}`), 0o644)
		}, "unsupported model"},
		{"bad activation", func(dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(good[:len(good)-1]+`,"hidden_act":"relu"}`), 0o644)
		}, `"hidden_act"`},
		{"missing tensor", func(dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(good), 0o644)
			safetensors.Write(filepath.Join(dir, "model.safetensors"), []safetensors.Tensor{safetensors.F32Tensor("bert.embeddings.word_embeddings.weight", []int{30, 8}, make([]float32, 240))}, nil)
		}, "lacks"},
		{"wrong shape", func(dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(good), 0o644)
			safetensors.Write(filepath.Join(dir, "model.safetensors"), []safetensors.Tensor{safetensors.F32Tensor("bert.embeddings.word_embeddings.weight", []int{31, 8}, make([]float32, 248))}, nil)
		}, `"bert.embeddings.word_embeddings.weight" has shape [31 8]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(dir)
			_, _, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"not object", `[1]`, "not a JSON object"},
		{"missing field", `{"model_type":"bert"}`, `field "vocab_size": missing`},
		{"wrong type", `{"model_type":"bert","vocab_size":"big"}`, `field "vocab_size": want an integer`},
		{"bad eps", `{"model_type":"bert","vocab_size":3,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4,"max_position_embeddings":4,"layer_norm_eps":"x"}`, `field "layer_norm_eps"`},
		{"bad labels", `{"model_type":"bert","id2label":[1]}`, `field "id2label"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hfmodel.ParseConfig("dir/config.json", []byte(tc.json))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "dir/config.json")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"architectures":["BertForSequenceClassification"],"model_type":"bert","vocab_size":30,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":12,"max_position_embeddings":20,"type_vocab_size":2,"id2label":{"0":"LABEL_0"}}`))
	f.Add([]byte(`{"model_type":"xlm-roberta","vocab_size":1e9,"hidden_size":-1}`))
	f.Add([]byte(`{"architectures":null,"classifier_dropout":null}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := hfmodel.ParseConfig("config.json", data)
		if err != nil {
			return
		}
		// A config that parses is valid and marshals back.
		require.NoError(t, c.Config.Validate())
		out, err := c.Marshal()
		require.NoError(t, err)
		_, err = hfmodel.ParseConfig("config.json", out)
		require.NoError(t, err)
	})
}
