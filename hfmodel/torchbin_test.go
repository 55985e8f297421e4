package hfmodel_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/sharedtest"
)

// A directory with only pytorch_model.bin (torch 1.13's torch.save of the
// golden bert_tiny, scripts/make-torchbin-fixtures.py) loads the same
// weights as its safetensors, and saves the same model.safetensors.
func TestLoadPytorchModelBin(t *testing.T) {
	src := filepath.Join(sharedtest.Golden(t), "bert_tiny", "model")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "tokenizer.json", "vocab.txt"} {
		if b, err := os.ReadFile(filepath.Join(src, f)); err == nil {
			require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
		}
	}
	bin, err := os.ReadFile("../torchbin/testdata/bert_tiny-1.13.bin")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), bin, 0o644))

	want, _, err := hfmodel.Load(cpu.New(), src, hfmodel.LoadOptions{})
	require.NoError(t, err)
	got, info, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{})
	require.NoError(t, err)
	assert.Empty(t, info.Initialized)
	assert.Equal(t, weights(t, want), weights(t, got), "bit-exact")

	out := t.TempDir()
	require.NoError(t, hfmodel.Save(got, info.Config, out, dir))
	a, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, a, b, "safetensors stays the output format, byte for byte")
}
