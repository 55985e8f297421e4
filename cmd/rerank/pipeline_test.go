package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/internal/sharedtest"
)

// TestMineTrainRescorePipeline runs the path a user takes from raw qrels
// to training data on a real collection: `rerank mine` on med's train
// split, `rerank train` on its output unchanged, then `rerank mine` again
// with the trained model as the rescoring teacher (the real engine behind
// the scorer hook), whose output trains with distillation.
func TestMineTrainRescorePipeline(t *testing.T) {
	med := filepath.Join(sharedtest.Data(t), "med")
	tmp := t.TempDir()
	mined := filepath.Join(tmp, "mined.jsonl")
	stdout, _, err := runTrainCLI(t, "mine", "-q", "--beir", med, "--split", "train", "--output", mined,
		"--range-for-sampling", "2-50", "--negative-number", "7")
	require.NoError(t, err)
	assert.Contains(t, stdout, "mined")
	exs, err := flagdata.Load(mined, flagdata.Options{})
	require.NoError(t, err)
	require.NotEmpty(t, exs)

	model := filepath.Join(tmp, "tiny")
	_, _, err = runTrainCLI(t, "init", "--preset", "tiny", "--tokenizer", bundledTokenizer, "--output", model, "--seed", "3")
	require.NoError(t, err)
	out := filepath.Join(tmp, "trained")
	stdout, _, err = runTrainCLI(t, "train", "--model", model, "--train-data", mined, "--output-dir", out,
		"--max-steps", "2", "--per-device-train-batch-size", "2", "--train-group-size", "4",
		"--query-max-len", "16", "--passage-max-len", "48", "--save-steps", "0", "--quiet")
	require.NoError(t, err)
	assert.Contains(t, stdout, "trained 2 steps")

	scored := filepath.Join(tmp, "scored.jsonl")
	_, _, err = runTrainCLI(t, "mine", "-q", "--beir", med, "--split", "train", "--output", scored,
		"--range-for-sampling", "2-30", "--negative-number", "3", "--rescore-model", out, "--teacher-scores",
		"--max-len", "64", "--batch-size", "64")
	require.NoError(t, err)
	withScores, err := flagdata.Load(scored, flagdata.Options{RequireScores: true})
	require.NoError(t, err, "--teacher-scores writes pos_scores/neg_scores for every line")
	require.NotEmpty(t, withScores)

	_, _, err = runTrainCLI(t, "train", "--model", model, "--train-data", scored, "--output-dir", filepath.Join(tmp, "distilled"),
		"--max-steps", "1", "--per-device-train-batch-size", "2", "--train-group-size", "4", "--loss", "distill",
		"--query-max-len", "16", "--passage-max-len", "48", "--save-steps", "0", "--quiet")
	require.NoError(t, err)
}
