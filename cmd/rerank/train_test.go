package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const bundledTokenizer = "../../examples/bert-uncased-tokenizer"

func runTrainCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runCommands(t, commands, args...)
}

func trainFixture(t *testing.T) (model, data string) {
	t.Helper()
	dir := t.TempDir()
	model = filepath.Join(dir, "tiny")
	_, _, err := runTrainCLI(t, "init", "--preset", "tiny", "--tokenizer", bundledTokenizer, "--output", model, "--seed", "1")
	require.NoError(t, err)
	var lines []string
	for _, q := range []string{"wing lift", "heat transfer", "boundary layer", "shock wave"} {
		lines = append(lines, `{"query":"`+q+`","pos":["a study of `+q+`"],"neg":["nothing related","another topic","more noise"]}`)
	}
	data = filepath.Join(dir, "train.jsonl")
	require.NoError(t, os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return model, data
}

func TestInitTrainEvalCLI(t *testing.T) {
	model, data := trainFixture(t)
	out := filepath.Join(t.TempDir(), "out")
	cfg := filepath.Join(t.TempDir(), "args.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"train_group_size": 2, "logging_steps": 1}`), 0o644))
	stdout, _, err := runTrainCLI(t, "train", "--config", cfg, "--model", model, "--train-data", data, "--output-dir", out,
		"--max-steps", "3", "--per-device-train-batch-size", "2", "--query-max-len", "8", "--passage-max-len", "16",
		"--learning-rate", "1e-3", "--save-steps", "2", "--quiet")
	require.NoError(t, err)
	assert.Contains(t, stdout, "trained 3 steps")
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "training_args.json", "metrics.jsonl", "checkpoint-2/trainer_state.json"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	args, err := os.ReadFile(filepath.Join(out, "training_args.json"))
	require.NoError(t, err)
	assert.Contains(t, string(args), `"train_group_size": 2`, "--config applies")
	assert.Contains(t, string(args), `"query_max_len": 8`, "flags apply")

	// The trained model reranks through rerank eval's engine hook.
	beir := evalFixture(t)
	stdout, _, err = runTrainCLI(t, "eval", "--beir", beir, "--candidates", filepath.Join(beir, "bm25", "dev.top100.jsonl"),
		"--model", out, "--label", "trained", "--quiet", "--max-len", "32")
	require.NoError(t, err)
	assert.Contains(t, stdout, "trained")
}

func TestTrainCLIErrors(t *testing.T) {
	model, data := trainFixture(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"--train-data", data, "--output-dir", "x"}, "--model: required"},
		{"bad loss", []string{"--model", model, "--train-data", data, "--output-dir", "x", "--loss", "mse"}, `--loss: "mse"`},
		{"too long", []string{"--model", model, "--train-data", data, "--output-dir", t.TempDir(), "--query-max-len", "64", "--passage-max-len", "512"}, "at most 512"},
		{"missing data", []string{"--model", model, "--train-data", filepath.Join(t.TempDir(), "none.jsonl"), "--output-dir", t.TempDir()}, "none.jsonl"},
		{"bad config", []string{"--config", filepath.Join(t.TempDir(), "none.json")}, "read config"},
		{"bad lora", []string{"--model", model, "--train-data", data, "--output-dir", "x", "--lora-rank", "-1"}, "--lora-rank"},
		{"lora rank above the layers", []string{"--model", model, "--train-data", data, "--output-dir", t.TempDir(), "--lora-rank", "100000"}, "--lora-rank: lora: rank 100000 exceeds"},
		{"infinite learning rate", []string{"--model", model, "--train-data", data, "--output-dir", "x", "--learning-rate", "Inf"}, "--learning-rate: must be a finite number, got +Inf"},
		{"NaN max grad norm", []string{"--model", model, "--train-data", data, "--output-dir", "x", "--max-grad-norm", "NaN"}, "--max-grad-norm: must be a finite number, got NaN"},
		{"negative save total limit", []string{"--model", model, "--train-data", data, "--output-dir", "x", "--save-total-limit", "-1"}, "--save-total-limit: must not be negative"},
		{"epochs without max steps", []string{"--model", model, "--train-data", data, "--output-dir", "x", "--num-train-epochs", "0"}, "--num-train-epochs: must be positive when --max-steps is not set"},
		{"output is the model", []string{"--model", model, "--train-data", data, "--output-dir", model}, "--output-dir: " + model + " is the input --model"},
		{"unknown resume override", []string{"--model", model, "--train-data", data, "--output-dir", "x", "--resume-override", "lr"}, `--resume-override: "lr" is not a flag`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runTrainCLI(t, append([]string{"train", "--quiet"}, tc.args...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestInitCLIErrors(t *testing.T) {
	nonEmpty := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(nonEmpty, "model.safetensors"), []byte("trained"), 0o644))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad preset", []string{"--preset", "huge", "--tokenizer", bundledTokenizer, "--output", t.TempDir()}, `preset "huge"`},
		{"bad arch", []string{"--arch", "gpt", "--tokenizer", bundledTokenizer, "--output", t.TempDir()}, "--arch"},
		{"no tokenizer", []string{"--tokenizer", t.TempDir(), "--output", t.TempDir()}, "no tokenizer.json"},
		{"onto a model", []string{"--tokenizer", bundledTokenizer, "--output", nonEmpty}, "is not empty (it holds model.safetensors)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runTrainCLI(t, append([]string{"init"}, tc.args...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
