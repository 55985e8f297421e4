package hfmodel_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/nn"
)

// TestSaveWritesTokenizerConfig: a saved model carries a
// tokenizer_config.json with model_max_length, as save_pretrained writes
// it (issue 19 §6), keeping an existing file's other fields.
func TestSaveWritesTokenizerConfig(t *testing.T) {
	for _, tc := range []struct {
		name      string
		arch      nn.Arch
		positions int
		noTok     bool   // the source has no tokenizer.json
		existing  string // the source's tokenizer_config.json ("": none)
		want      any    // model_max_length (nil: no tokenizer_config.json written)
		kept      map[string]any
	}{
		{name: "bert", arch: nn.BERT, positions: 512, want: 512.0},
		{name: "xlmr 514", arch: nn.XLMRoberta, positions: 514, want: 512.0},
		{name: "xlmr 8194", arch: nn.XLMRoberta, positions: 8194, want: 8192.0},
		{name: "no limit replaced", arch: nn.BERT, positions: 512,
			existing: `{"do_lower_case": true, "cls_token": "<s>", "model_max_length": 1000000000000000019884624838656, "added_tokens_decoder": {"0": {"content": "[PAD]"}}}`,
			want:     512.0, kept: map[string]any{"do_lower_case": true, "cls_token": "<s>", "added_tokens_decoder": map[string]any{"0": map[string]any{"content": "[PAD]"}}}},
		{name: "smaller limit kept", arch: nn.XLMRoberta, positions: 8194,
			existing: `{"model_max_length": 512, "tokenizer_class": "XLMRobertaTokenizer"}`,
			want:     512.0, kept: map[string]any{"tokenizer_class": "XLMRobertaTokenizer"}},
		{name: "larger limit cut", arch: nn.BERT, positions: 512, existing: `{"model_max_length": 4096}`, want: 512.0},
		{name: "no tokenizer", arch: nn.BERT, positions: 512, noTok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyConfig(tc.arch)
			cfg.MaxPositions = tc.positions
			m, err := nn.New(cpu.New(), cfg)
			require.NoError(t, err)
			m.InitRandom(1, 0.02)
			src, dir := t.TempDir(), t.TempDir()
			if !tc.noTok {
				require.NoError(t, os.WriteFile(filepath.Join(src, "tokenizer.json"), []byte(`{}`), 0o644))
			}
			if tc.existing != "" {
				require.NoError(t, os.WriteFile(filepath.Join(src, "tokenizer_config.json"), []byte(tc.existing), 0o644))
			}
			require.NoError(t, hfmodel.Save(m, nil, dir, src))
			data, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
			if tc.want == nil {
				assert.ErrorIs(t, err, os.ErrNotExist)
				return
			}
			require.NoError(t, err)
			assert.NotContains(t, string(data), `\u003c`, "written as Python's json writes it")
			var got map[string]any
			require.NoError(t, json.Unmarshal(data, &got))
			assert.Equal(t, tc.want, got["model_max_length"])
			for k, v := range tc.kept {
				assert.Equal(t, v, got[k], k)
			}
			assert.Len(t, got, len(tc.kept)+1)
		})
	}
}
