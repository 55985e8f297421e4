package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildRerank builds the command into a temporary directory.
func buildRerank(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "rerank")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// withConfig copies model dir src to a new directory with config.json's
// key set to v.
func withConfig(t *testing.T, src, key string, v any) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "model")
	require.NoError(t, os.MkdirAll(dst, 0o755))
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		if e.Name() == "config.json" {
			var raw map[string]any
			require.NoError(t, json.Unmarshal(data, &raw))
			raw[key] = v
			data, _ = json.Marshal(raw)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644))
	}
	return dst
}

// TestNoStackTraces runs the built binary on the hostile inputs of issue
// 20: each ends in a clear message (an error, exit 1, or a refusal), and
// none prints a Go stack trace ("goroutine ", "panic:"). The binary runs
// under a 6 GiB address-space limit, so that a regression fails here
// instead of exhausting the machine.
func TestNoStackTraces(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildRerank(t)
	model, data := trainFixture(t)
	beir := evalFixture(t)
	cand := filepath.Join(beir, "bm25", "dev.top100.jsonl")
	// Qrels judging a document the corpus lacks.
	missing := filepath.Join(t.TempDir(), "qrels.tsv")
	require.NoError(t, os.WriteFile(missing, []byte("q1\td2\t1\nq1\td77\t1\n"), 0o644))
	badUTF8 := filepath.Join(t.TempDir(), "bad.jsonl")
	require.NoError(t, os.WriteFile(badUTF8, []byte(`{"query":"caf`+"\xe9"+`","pos":["p"],"neg":["n"]}`+"\n"), 0o644))
	trained := filepath.Join(t.TempDir(), "trained")
	require.NoError(t, os.MkdirAll(trained, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(trained, "model.safetensors"), []byte("a trained model"), 0o644))
	resumed := filepath.Join(t.TempDir(), "resumed")

	small := []string{"--max-steps", "2", "--per-device-train-batch-size", "2", "--train-group-size", "2", "--query-max-len", "8", "--passage-max-len", "16", "--save-steps", "1"}
	train := func(out string, extra ...string) []string {
		return append(append([]string{"train", "-q", "--model", model, "--train-data", data, "--output-dir", out}, small...), extra...)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		exit  int
		wants []string
	}{
		{"info: hidden_size 10^9", []string{"info", withConfig(t, model, "hidden_size", 1000000000)}, 1, []string{"hidden_size 1000000000 is more than rerank supports"}},
		{"info: hidden_size 65536", []string{"info", withConfig(t, model, "hidden_size", 65536)}, 1, []string{"config.json implies", "do not belong together"}},
		{"info: a million layers", []string{"info", withConfig(t, model, "num_hidden_layers", 1000000)}, 1, []string{"num_hidden_layers 1000000 is more than"}},
		{"info: a thousand layers", []string{"info", withConfig(t, model, "num_hidden_layers", 1000)}, 1, []string{"lacks", "num_hidden_layers 1000"}},
		{"train: group size 20000", append(train(filepath.Join(t.TempDir(), "o")), "--train-group-size", "20000", "--passage-max-len", "500"), 1,
			[]string{"--per-device-train-batch-size: this run needs about", "is available", "--train-group-size (20000)"}},
		{"train: lora rank 100000", train(filepath.Join(t.TempDir(), "o"), "--lora-rank", "100000"), 1, []string{"--lora-rank: lora: rank 100000 exceeds the dimensions"}},
		{"train: output is the model", train(model), 1, []string{"--output-dir: " + model + " is the input --model"}},
		{"train: onto a trained model", train(trained), 1, []string{"--output-dir: " + trained + " is not empty", "--overwrite-output-dir"}},
		{"train: learning rate Inf", train(filepath.Join(t.TempDir(), "o"), "--learning-rate", "Inf"), 1, []string{"--learning-rate: must be a finite number, got +Inf"}},
		{"train: max grad norm NaN", train(filepath.Join(t.TempDir(), "o"), "--max-grad-norm", "NaN"), 1, []string{"--max-grad-norm: must be a finite number, got NaN"}},
		{"train: save total limit -1", train(filepath.Join(t.TempDir(), "o"), "--save-total-limit", "-1"), 1, []string{"--save-total-limit: must not be negative"}},
		{"train: invalid UTF-8", []string{"train", "-q", "--model", model, "--train-data", badUTF8, "--output-dir", filepath.Join(t.TempDir(), "o")}, 1, []string{badUTF8 + ":1: invalid UTF-8"}},
		{"train: a run to resume", train(resumed), 0, []string{"trained 2 steps"}},
		{"train: resume with another learning rate", train(resumed, "--resume", filepath.Join(resumed, "checkpoint-1"), "--learning-rate", "1e-3"), 1,
			[]string{"--resume: ", "--learning-rate 0.00005 -> 0.001", "--resume-override"}},
		{"train: resume overriding it", train(resumed, "--resume", filepath.Join(resumed, "checkpoint-1"), "--learning-rate", "1e-3", "--resume-override", "learning-rate"), 0, []string{"trained 2 steps"}},
		{"init: onto a trained model", []string{"init", "--tokenizer", bundledTokenizer, "--output", trained}, 1, []string{"is not empty"}},
		{"eval: no permutations", []string{"eval", "--beir", beir, "--candidates", cand, "--permutations", "0"}, 1, []string{"--permutations: must be at least 1"}},
		{"eval: negative bootstrap", []string{"eval", "--beir", beir, "--candidates", cand, "--bootstrap", "-1"}, 1, []string{"--bootstrap: must be at least 1"}},
		{"eval: qrels of absent documents", []string{"eval", "--beir", beir, "--candidates", cand, "--qrels", missing}, 0, []string{"the qrels judge 1 documents relevant that the corpus lacks (d77)"}},
		{"eval: max-len above the model's", []string{"eval", "-q", "--beir", beir, "--candidates", cand, "--model", model, "--max-len", "100000"}, 0, []string{"takes at most 512 tokens", "--max-len 100000 is capped to 512"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", append([]string{"-c", `ulimit -v 6291456; exec "$0" "$@"`, bin}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			s := string(out)
			assert.NotContains(t, s, "goroutine ")
			assert.NotContains(t, s, "panic:")
			assert.Equal(t, tc.exit, code, "%s", s)
			for _, w := range tc.wants {
				assert.Contains(t, s, w)
			}
		})
	}
}
