package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/dist"
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
		{"lora alpha without a rank", []string{"--model", model, "--train-data", data, "--output-dir", t.TempDir(), "--lora-alpha", "32"}, "--lora-alpha applies to LoRA training, which --lora-rank turns on"},
		{"rslora without a rank", []string{"--model", model, "--train-data", data, "--output-dir", t.TempDir(), "--use-rslora"}, "--use-rslora applies to LoRA training"},
		{"lora targets without a rank", []string{"--model", model, "--train-data", data, "--output-dir", t.TempDir(), "--lora-target-modules", "query"}, "--lora-target-modules applies to LoRA training"},
		{"group of one with ce", []string{"--model", model, "--train-data", data, "--output-dir", t.TempDir(), "--train-group-size", "1"}, "--train-group-size: 1 passage per query with --loss ce"},
		{"eval steps without dev data", []string{"--model", model, "--train-data", data, "--output-dir", t.TempDir(), "--eval-steps", "5"}, "--eval-steps: needs dev data to evaluate on: --dev-candidates"},
		{"resume and overwrite", []string{"--model", model, "--train-data", data, "--output-dir", "x", "--resume", "latest", "--overwrite-output-dir"}, "--overwrite-output-dir: starts a fresh run and --resume continues one"},
		{"resume override without resume", []string{"--model", model, "--train-data", data, "--output-dir", "x", "--resume-override", "learning-rate"}, "--resume-override: applies to a resumed run: add --resume"},
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

func TestRankDevice(t *testing.T) {
	two := func(local int) dist.Launch {
		return dist.Launch{Launcher: "torchrun", Size: 4, Rank: local, LocalRank: local}
	}
	tests := []struct {
		name, device, visible string
		launch                dist.Launch
		open, physical, set   string
		err                   string
	}{
		{"one process", "cuda", "", dist.Launch{Size: 1}, "cuda", "cuda", "", ""},
		{"cpu", "cpu", "", two(1), "cpu", "cpu", "", ""},
		{"explicit ordinal kept", "cuda:0", "", two(1), "cuda:0", "cuda:0", "", ""},
		{"local rank", "cuda", "", two(1), "cuda:0", "cuda:1", "1", ""},
		{"within visible", "cuda", "4,5,6,7", two(2), "cuda:0", "cuda:6", "6", ""},
		{"uuid", "cuda", "GPU-abc,GPU-def", two(1), "cuda:0", "cuda", "GPU-def", ""},
		{"too few visible", "cuda", "0,1", two(3), "", "", "", "lists 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := ""
			open, phys, err := rankDevice(tc.device, tc.launch,
				func(string) string { return tc.visible },
				func(k, v string) error { require.Equal(t, "CUDA_VISIBLE_DEVICES", k); set = v; return nil })
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.open, open)
			assert.Equal(t, tc.physical, phys)
			assert.Equal(t, tc.set, set)
		})
	}
}

func TestTrainDDPFlags(t *testing.T) {
	model, data := trainFixture(t)
	base := []string{"train", "--model", model, "--train-data", data, "--output-dir", filepath.Join(t.TempDir(), "out"),
		"--max-steps", "1", "--per-device-train-batch-size", "2", "--query-max-len", "8", "--passage-max-len", "16", "--quiet"}
	_, _, err := runTrainCLI(t, append(base, "--ddp-backend", "gloo")...)
	require.ErrorContains(t, err, `--ddp-backend "gloo": want nccl, mpi or none`)

	// torchrun's variables on the cpu: the cpu backend is MPI.
	t.Setenv("WORLD_SIZE", "2")
	t.Setenv("RANK", "0")
	_, _, err = runTrainCLI(t, base...)
	require.ErrorContains(t, err, "mpirun -np 2")
	_, _, err = runTrainCLI(t, append(base, "--ddp-backend", "none")...)
	require.ErrorContains(t, err, "--ddp-backend none with a world of 2")
}
