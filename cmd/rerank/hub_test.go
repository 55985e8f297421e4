package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/internal/fakehub"
	"github.com/rerank-go/rerank/lora"
)

const (
	tinyCommit    = "0123456789abcdef0123456789abcdef01234567"
	adapterCommit = "89abcdef0123456789abcdef0123456789abcdef"
)

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// Every command takes Hub ids: a tiny model published on a fake Hub is
// fetched once and then used by info, tokenize, train (LoRA), eval and
// merge, score (and eval's scorer), and a second round runs with the Hub gone and HF_HUB_OFFLINE=1.
func TestCommandsTakeHubIDs(t *testing.T) {
	model, data := trainFixture(t)
	h := fakehub.New(t)
	h.AddDir(t, "org/tiny", "main", tinyCommit, model)
	cache := filepath.Join(t.TempDir(), "hub")
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_ENDPOINT", h.URL)
	t.Setenv("HF_HUB_OFFLINE", "0")

	stdout, stderr, err := runCommands(t, commands, "info", "org/tiny")
	require.NoError(t, err)
	assert.Contains(t, stdout, "model:          org/tiny\n")
	assert.Contains(t, stdout, "architecture:")
	assert.Contains(t, stdout, "tokenizer:      tokenizer.json", "the snapshot's tokenizer files")
	assert.Contains(t, stderr, "download org/tiny/model.safetensors", "a progress bar per file")
	snap := filepath.Join(cache, "models--org--tiny", "snapshots", tinyCommit)
	assert.FileExists(t, filepath.Join(snap, "model.safetensors"))

	pairs := filepath.Join(t.TempDir(), "pairs.jsonl")
	require.NoError(t, os.WriteFile(pairs, []byte(`{"query": "wing lift", "passage": "a study of wing lift"}`+"\n"), 0o644))
	ids := filepath.Join(t.TempDir(), "ids.jsonl")
	_, _, err = runCommands(t, commands, "tokenize", "--tokenizer", "org/tiny", "--input", pairs, "--output", ids)
	require.NoError(t, err)
	assert.FileExists(t, ids)

	// LoRA training from the id records the id as the adapter's base.
	out := filepath.Join(t.TempDir(), "lora")
	stdout, _, err = runCommands(t, commands, "train", "--model", "org/tiny", "--train-data", data, "--output-dir", out,
		"--max-steps", "1", "--per-device-train-batch-size", "2", "--train-group-size", "2", "--query-max-len", "8",
		"--passage-max-len", "16", "--lora-rank", "2", "--quiet")
	require.NoError(t, err)
	assert.Contains(t, stdout, "trained 1 steps; LoRA adapter in "+out+" (use it with --model org/tiny --adapter "+out, "the next step")
	_, base, err := lora.ReadConfig(out)
	require.NoError(t, err)
	assert.Equal(t, "org/tiny", base)

	// The adapter, published too, merges onto the base it names, from
	// any directory.
	h.AddDir(t, "org/tiny-lora", "main", adapterCommit, out)
	stdout, _, err = runCommands(t, commands, "info", "org/tiny-lora")
	require.NoError(t, err, "rerank info takes an adapter's Hub id")
	assert.Contains(t, stdout, "adapter:        org/tiny-lora (PEFT LoRA)")
	assert.Contains(t, stdout, "base model:     org/tiny")
	assert.Contains(t, stdout, "rank:           2")
	merged := filepath.Join(t.TempDir(), "merged")
	stdout, _, err = runCommands(t, commands, "merge", "--adapter", "org/tiny-lora", "--output", merged)
	require.NoError(t, err, stdout)
	assert.Equal(t, "org/tiny", readJSON(t, filepath.Join(merged, "config.json"))["_name_or_path"])
	assert.FileExists(t, filepath.Join(merged, "tokenizer.json"))

	// eval reaches the same loader through crossencoder.Load (its
	// --model is a slice flag that would keep this id for later tests).
	sc, err := engineScorer("org/tiny", "org/tiny-lora", scorerOptions{MaxLen: 32, Hub: hubClient(cliContext(t))})
	require.NoError(t, err)
	scores, err := sc.Score(context.Background(), "wing lift", []string{"a study of wing lift", "nothing"})
	require.NoError(t, err)
	assert.Len(t, scores, 2)

	scored := filepath.Join(t.TempDir(), "scores.jsonl")
	_, _, err = runCommands(t, commands, "score", "-q", "--model", "org/tiny", "--adapter", "org/tiny-lora", "--max-len", "32",
		"--input", pairs, "--output", scored)
	require.NoError(t, err)
	assert.FileExists(t, scored)

	// Everything again with the Hub gone, from the cache alone.
	fetched := len(h.Requests("GET "))
	h.Close()
	t.Setenv("HF_HUB_OFFLINE", "1")
	_, _, err = runCommands(t, commands, "info", "org/tiny")
	require.NoError(t, err)
	merged2 := filepath.Join(t.TempDir(), "merged")
	_, _, err = runCommands(t, commands, "merge", "--adapter", "org/tiny-lora@"+adapterCommit, "--output", merged2)
	require.NoError(t, err)
	_, _, err = runCommands(t, commands, "tokenize", "--tokenizer", "org/tiny", "--input", pairs, "--output", ids)
	require.NoError(t, err)
	assert.Len(t, h.Requests("GET "), fetched)

	// A missing model, offline, says so.
	_, _, err = runCommands(t, commands, "info", "org/other")
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "HF_HUB_OFFLINE"), err.Error())
}

func cliContext(t *testing.T) *cli.Context {
	var errb strings.Builder
	return cli.NewContext(&cli.App{ErrWriter: &errb}, flag.NewFlagSet("test", flag.ContinueOnError), nil)
}
