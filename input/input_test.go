package input

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/tokenize"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenizerDir is a BERT uncased tokenizer in the repository (vocabulary
// 30522, [PAD] = 0).
var tokenizerDir = filepath.Join("..", "examples", "bert-uncased-tokenizer")

func bertConfig() nn.Config {
	return nn.Config{Arch: nn.BERT, VocabSize: 30522, MaxPositions: 512, PadID: 0, TypeVocab: 2}
}

func TestLoadTokenizer(t *testing.T) {
	tok, err := LoadTokenizer(tokenizerDir)
	require.NoError(t, err)
	assert.Equal(t, 30522, tok.VocabSize())
	_, err = LoadTokenizer(t.TempDir())
	assert.ErrorContains(t, err, "has no tokenizer.json")
}

func TestNewEncoder(t *testing.T) {
	tok, err := LoadTokenizer(tokenizerDir)
	require.NoError(t, err)
	flag := func(q, p int) tokenize.Truncation {
		return tokenize.Truncation{Strategy: tokenize.FlagEmbedding, QueryMaxLen: q, PassageMaxLen: p}
	}
	for _, tc := range []struct {
		name   string
		mod    func(*nn.Config)
		tr     tokenize.Truncation
		err    string
		length bool // a *LengthError
	}{
		{"fits", nil, tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: 512}, "", false},
		{"flag fits", nil, flag(64, 448), "", false},
		{"flag too long", nil, flag(64, 512), "64 + passage max length 512 = 576 exceeds the model's 512 positions", true},
		{"max len too long", nil, tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: 513}, "max length 513 exceeds the model's 512 positions", true},
		{"no limit", nil, tokenize.Truncation{}, "no length limit", false},
		{"max len below the special tokens", nil, tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: 2}, "max length 2 is less than the 3 special tokens", false},
		{"flag lengths below the special tokens", nil, flag(1, 1), "query + passage max length 2 is less than the 3 special tokens", false},
		{"small vocabulary", func(c *nn.Config) { c.VocabSize = 1000 }, flag(8, 8), "vocab_size is 1000", false},
		{"other pad id", func(c *nn.Config) { c.PadID = 1 }, flag(8, 8), "pad_token_id is 1", false},
		{"one token type", func(c *nn.Config) { c.TypeVocab = 1 }, flag(8, 8), "gives the passage token type 1 but the model's type_vocab_size is 1", false},
		{"one label", func(c *nn.Config) { c.NumLabels = 1 }, flag(8, 8), "", false},
		// A classifier's logits are not one score per pair: scoring would
		// read its first label, training would group 2N logits as N.
		{"two labels", func(c *nn.Config) { c.NumLabels = 2 }, flag(8, 8), "has 2 labels (num_labels 2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bertConfig()
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			enc, err := NewEncoder(cfg, tok, tc.tr)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				var le *LengthError
				assert.Equal(t, tc.length, errors.As(err, &le))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.tr, enc.Trunc)
			assert.Equal(t, int32(cfg.PadID), enc.PadID)
		})
	}
	_, err = NewEncoder(bertConfig(), nil, flag(8, 8))
	assert.ErrorContains(t, err, "no tokenizer")
}

func TestBatch(t *testing.T) {
	tok, err := LoadTokenizer(tokenizerDir)
	require.NoError(t, err)
	cfg := bertConfig()
	cfg.PadID = 0
	enc, err := NewEncoder(cfg, tok, tokenize.Truncation{Strategy: tokenize.FlagEmbedding, QueryMaxLen: 8, PassageMaxLen: 8})
	require.NoError(t, err)
	long, err := enc.Encode("what is a wing", "the lift of a wing in flight grows with its speed")
	require.NoError(t, err)
	short, err := enc.Encode("wing", "lift")
	require.NoError(t, err)
	require.LessOrEqual(t, long.Len(), 16, "truncated")
	b := enc.Batch([]tokenize.Encoding{long, short})
	assert.Equal(t, 2, b.N)
	assert.Equal(t, long.Len(), b.S)
	assert.Equal(t, long.IDs, b.InputIDs[:b.S])
	row := b.InputIDs[b.S:]
	assert.Equal(t, short.IDs, row[:short.Len()])
	for j := short.Len(); j < b.S; j++ {
		assert.Equal(t, int32(0), row[j], "padding id")
		assert.Equal(t, int32(0), b.Mask[b.S+j], "padding mask")
		assert.Equal(t, int32(0), b.TypeIDs[b.S+j], "padding type")
	}
	assert.Equal(t, short.Mask, b.Mask[b.S:b.S+short.Len()])
}
