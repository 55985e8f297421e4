package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/safetensors"
)

// headlessModel turns a tiny cross-encoder into a BertModel checkpoint: no
// "bert." prefix, no pooler, no classifier.
func headlessModel(t *testing.T, model string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "headless")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f, err := safetensors.Open(filepath.Join(model, "model.safetensors"))
	require.NoError(t, err)
	defer f.Close()
	var ts []safetensors.Tensor
	for _, name := range f.Names() {
		if strings.HasPrefix(name, "classifier.") || strings.HasPrefix(name, "bert.pooler.") {
			continue
		}
		v, shape, err := f.Float32(name)
		require.NoError(t, err)
		ts = append(ts, safetensors.F32Tensor(strings.TrimPrefix(name, "bert."), shape, v))
	}
	require.NoError(t, safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil))
	cfg, err := os.ReadFile(filepath.Join(model, "config.json"))
	require.NoError(t, err)
	cfg = []byte(strings.Replace(string(cfg), "BertForSequenceClassification", "BertModel", 1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644))
	require.NoError(t, hfmodel.CopyTokenizer(model, dir))
	return dir
}

// TestHeadlessSameHeadEverywhere: a BertModel checkpoint gets one fresh
// head, whatever the command or train's --seed, and score says it is
// untrained (issue 19 §6).
func TestHeadlessSameHeadEverywhere(t *testing.T) {
	model, data := trainFixture(t)
	headless := headlessModel(t, model)
	m, err := crossencoder.Load(cpu.New(), headless, crossencoder.Options{MaxLen: 32})
	require.NoError(t, err)
	require.NotEmpty(t, m.FreshHead())
	want := make([]float32, m.Net.Param("classifier.weight").Size())
	m.Net.Backend().Download(want, m.Net.Param("classifier.weight").W)
	m.Close()

	// Training at learning rate 1e-30 keeps the head it started from.
	out := filepath.Join(t.TempDir(), "out")
	_, _, err = runTrainCLI(t, "train", "--model", headless, "--train-data", data, "--output-dir", out, "--seed", "5",
		"--max-steps", "1", "--per-device-train-batch-size", "2", "--train-group-size", "2", "--query-max-len", "8", "--passage-max-len", "16",
		"--learning-rate", "1e-30", "--quiet")
	require.NoError(t, err)
	f, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
	require.NoError(t, err)
	defer f.Close()
	got, _, err := f.Float32("classifier.weight")
	require.NoError(t, err)
	assert.Equal(t, want, got, "train draws the head eval and score draw")

	in := filepath.Join(t.TempDir(), "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(`{"query":"q","passage":"p"}`+"\n"), 0o644))
	_, stderr, err := runTrainCLI(t, "score", "--model", headless, "--max-len", "32", "--input", in, "--output", filepath.Join(t.TempDir(), "s.jsonl"))
	require.NoError(t, err)
	assert.Contains(t, stderr, "has no trained head")
}
