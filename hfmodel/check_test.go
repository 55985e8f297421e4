package hfmodel_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/nn"
)

// noAlloc is a backend on which any allocation fails the test.
type noAlloc struct {
	backend.Backend
	t *testing.T
}

func (b noAlloc) Alloc(n int) (backend.Buf, error) {
	b.t.Errorf("Alloc(%d) before the config was checked against the weights", n)
	return b.Backend.Alloc(n)
}

// TestAbsurdConfigAllocatesNothing: a config.json whose sizes do not
// match its weights, or are beyond any model, is an error naming the
// mismatch before any memory is allocated (it used to panic in makeslice
// or run out of memory).
func TestAbsurdConfigAllocatesNothing(t *testing.T) {
	cfg := nn.Config{Arch: nn.BERT, VocabSize: 30, Hidden: 8, Layers: 1, Heads: 2, Intermediate: 12,
		MaxPositions: 20, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	src := filepath.Join(t.TempDir(), "model")
	m, err := nn.New(cpu.New(), cfg)
	require.NoError(t, err)
	require.NoError(t, hfmodel.Save(m, nil, src, ""))
	for _, tc := range []struct {
		key  string
		val  int
		want string
	}{
		{"hidden_size", 1000000000, "hidden_size 1000000000 is more than rerank supports"},
		{"hidden_size", 65536, "has shape [30 8], but config.json implies [30 65536]"},
		{"num_hidden_layers", 1000000, "num_hidden_layers 1000000 is more than rerank supports"},
		{"num_hidden_layers", 1000, "lacks 15984 tensors the model needs, first \"bert.encoder.layer.1.attention.self.query.weight\""},
		{"intermediate_size", 4096, "config.json implies [4096 8]"},
		{"vocab_size", 16000000, "config.json implies [16000000 8]"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"config.json", "model.safetensors"} {
				data, err := os.ReadFile(filepath.Join(src, f))
				require.NoError(t, err)
				if f == "config.json" {
					var raw map[string]any
					require.NoError(t, json.Unmarshal(data, &raw))
					raw[tc.key] = tc.val
					data, _ = json.Marshal(raw)
				}
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), data, 0o644))
			}
			_, _, err := hfmodel.Load(noAlloc{cpu.New(), t}, dir, hfmodel.LoadOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
