package hfmodel

import (
	"path/filepath"
	"testing"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInitPresets(t *testing.T) {
	tests := []struct {
		preset string
		arch   nn.Arch
		want   [4]int // layers, hidden, heads, intermediate
		maxPos int
		maxSeq int
		err    string
	}{
		{"tiny", nn.BERT, [4]int{2, 128, 2, 512}, 512, 512, ""},
		{"mini", nn.BERT, [4]int{6, 384, 12, 1536}, 512, 512, ""},
		{"base", nn.XLMRoberta, [4]int{12, 768, 12, 3072}, 514, 512, ""},
		// bge-reranker-large and bge-reranker-v2-m3, as their config.json.
		{"large", nn.XLMRoberta, [4]int{24, 1024, 16, 4096}, 514, 512, ""},
		{"m3", nn.XLMRoberta, [4]int{24, 1024, 16, 4096}, 8194, 8192, ""},
		{"m3", nn.BERT, [4]int{24, 1024, 16, 4096}, 8192, 8192, ""},
		{"huge", nn.BERT, [4]int{}, 0, 0, `preset "huge"`},
	}
	for _, tc := range tests {
		t.Run(tc.preset, func(t *testing.T) {
			c, err := PresetConfig(tc.preset, tc.arch, 30522, 0)
			if tc.arch == nn.XLMRoberta {
				c, err = PresetConfig(tc.preset, tc.arch, 250002, 1)
			}
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, [4]int{c.Layers, c.Hidden, c.Heads, c.Intermediate})
			assert.Equal(t, tc.maxPos, c.MaxPositions)
			assert.Equal(t, tc.maxSeq, c.MaxSequence())
		})
	}
}

// TestInitTokenizerFitsArch: init refuses an architecture its tokenizer
// cannot feed (XLM-R has one token type; a BERT tokenizer gives passages
// type 1), which could score nothing, and writes nothing then.
func TestInitTokenizerFitsArch(t *testing.T) {
	tok := filepath.Join("..", "examples", "bert-uncased-tokenizer")
	for _, tc := range []struct {
		name string
		arch nn.Arch
		err  string
	}{
		{"bert", nn.BERT, ""},
		{"xlm-roberta with a BERT tokenizer", nn.XLMRoberta, "init: --arch xlm-roberta: tokenizer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m")
			_, err := Init(cpu.New(), InitOptions{Preset: "tiny", Arch: tc.arch, Tokenizer: tok, Output: out})
			if tc.err == "" {
				require.NoError(t, err)
				assert.FileExists(t, filepath.Join(out, "config.json"))
				return
			}
			require.ErrorContains(t, err, tc.err)
			assert.ErrorContains(t, err, "gives the passage token type 1 but the model's type_vocab_size is 1")
			assert.NoDirExists(t, out)
		})
	}
}
