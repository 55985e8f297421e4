package lora_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/lora"
)

// PEFT < 0.7 saved adapter_model.bin (a torch pickle): the golden
// adapter written by torch 1.13 and in torch 2.x's layout
// (scripts/make-torchbin-fixtures.py) loads exactly as its safetensors.
func TestLoadAdapterBin(t *testing.T) {
	c := filepath.Join(sharedtest.Golden(t), "bert_tiny_lora_qkv")
	params := func(t *testing.T, adapterDir string) map[string][]float32 {
		m, _, err := hfmodel.Load(cpu.New(), filepath.Join(c, "model"), hfmodel.LoadOptions{})
		require.NoError(t, err)
		ad, err := lora.Load(m, adapterDir)
		require.NoError(t, err)
		out := map[string][]float32{}
		for _, p := range ad.Trainable() {
			v := make([]float32, p.Size())
			m.Backend().Download(v, p.W)
			out[p.Name] = v
		}
		return out
	}
	want := params(t, filepath.Join(c, "adapter"))
	require.NotEmpty(t, want)
	for _, layout := range []string{"1.13", "2.x"} {
		t.Run(layout, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := os.ReadFile(filepath.Join(c, "adapter", lora.ConfigFile))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, lora.ConfigFile), cfg, 0o644))
			bin, err := os.ReadFile(filepath.Join("..", "torchbin", "testdata", "bert_tiny_lora_qkv-"+layout+".bin"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, lora.BinWeightsFile), bin, 0o644))
			assert.Equal(t, want, params(t, dir))
		})
	}
}
