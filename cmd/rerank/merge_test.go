package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/golden"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := runCommands(t, commands, args...)
	return out + errOut, err
}

// copyAdapter copies a golden adapter, recording base as its base model.
func copyAdapter(t *testing.T, src, base string) string {
	t.Helper()
	dst := t.TempDir()
	data, err := os.ReadFile(filepath.Join(src, lora.WeightsFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dst, lora.WeightsFile), data, 0o644))
	cfg, _, err := lora.ReadConfig(src)
	require.NoError(t, err)
	js, err := cfg.ConfigJSON(base)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dst, lora.ConfigFile), js, 0o644))
	return dst
}

func TestMergeCommand(t *testing.T) {
	root := sharedtest.Golden(t)
	var c *golden.Case
	var cases []*golden.Case
	for _, gc := range golden.Cases(t, root) {
		if gc.IsLora() {
			cases = append(cases, gc)
		}
	}
	require.NotEmpty(t, cases, "no LoRA case under %s", root)
	c = cases[0]
	model, adapter := filepath.Join(c.Dir, "model"), filepath.Join(c.Dir, "adapter")

	tests := []struct {
		name    string
		args    func(t *testing.T, out string) []string
		err     string
		checkOK bool
	}{
		{"explicit base", func(t *testing.T, out string) []string {
			return []string{"merge", "--model", model, "--adapter", adapter, "--output", out}
		}, "", true},
		{"base from adapter_config", func(t *testing.T, out string) []string {
			return []string{"merge", "--adapter", copyAdapter(t, adapter, model), "--output", out}
		}, "", true},
		{"no base anywhere", func(t *testing.T, out string) []string {
			return []string{"merge", "--adapter", adapter, "--output", out}
		}, "pass --model", false},
		{"base not local", func(t *testing.T, out string) []string {
			return []string{"merge", "--adapter", copyAdapter(t, adapter, "BAAI/bge-reranker-base"), "--output", out}
		}, "HF_HUB_OFFLINE", false},
		{"output is the base", func(t *testing.T, out string) []string {
			return []string{"merge", "--model", model, "--adapter", adapter, "--output", model}
		}, "input directory", false},
		{"adapter missing", func(t *testing.T, out string) []string {
			return []string{"merge", "--model", model, "--adapter", filepath.Join(out, "nope"), "--output", out}
		}, lora.ConfigFile, false},
		{"flags required", func(t *testing.T, out string) []string { return []string{"merge", "--model", model} }, "Required flag", false},
		{"another base than the recorded one", func(t *testing.T, out string) []string {
			return []string{"merge", "--model", tinyModel(t), "--adapter", copyAdapter(t, adapter, model), "--output", out}
		}, "(the adapter was trained on " + model + ", and --model is ", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "merged")
			msg, err := runCLI(t, tc.args(t, out)...)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err, msg)
			assert.True(t, strings.HasPrefix(msg, "merged "), msg)
			m, _, err := hfmodel.Load(cpu.New(), out, hfmodel.LoadOptions{})
			require.NoError(t, err)
			logits, err := m.Forward(c.Inputs.Batch(), nn.RunOptions{})
			require.NoError(t, err)
			golden.Close(t, "logits of the merged model", c.Expected.LogitsMerged, logits, golden.TolLogits)
		})
	}
}

func TestMergeCommandEveryCase(t *testing.T) {
	root := sharedtest.Golden(t)
	for _, c := range golden.Cases(t, root) {
		if !c.IsLora() {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			out := t.TempDir()
			_, err := runCLI(t, "merge", "--model", filepath.Join(c.Dir, "model"), "--adapter", filepath.Join(c.Dir, "adapter"), "--output", out)
			require.NoError(t, err)
			ref := golden.Tensors(t, filepath.Join(c.Dir, "merged", "model.safetensors"))
			got := golden.Tensors(t, filepath.Join(out, "model.safetensors"))
			require.Len(t, got, len(ref))
			for name, w := range ref {
				golden.Close(t, name, w, got[name], 1e-6)
			}
		})
	}
}
