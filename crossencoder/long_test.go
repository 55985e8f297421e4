package crossencoder

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/input"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/tokenize"
)

// narrowModel is a one-layer cross-encoder of hidden size 16 for the
// tokenizer at path, with positions for maxSeq tokens: cheap enough to
// run 8192-token pairs in a test.
func narrowModel(t *testing.T, arch nn.Arch, tokPath string, maxSeq int, opts Options) *Model {
	t.Helper()
	tok, err := tokenize.Load(tokPath)
	require.NoError(t, err)
	c := nn.Config{Arch: arch, VocabSize: tok.VocabSize(), Hidden: 16, Layers: 1, Heads: 2, Intermediate: 24,
		MaxPositions: maxSeq, TypeVocab: 2, PadID: int(tok.PadID()), LayerNormEps: 1e-12, NumLabels: 1}
	if arch == nn.XLMRoberta {
		c.MaxPositions, c.TypeVocab, c.LayerNormEps = maxSeq+c.PadID+1, 1, 1e-5
	}
	net, err := nn.New(cpu.New(), c)
	require.NoError(t, err)
	net.InitRandom(5, 0.5)
	m, err := New(net, tok, opts)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// words returns n space-separated words that tokenize to about n tokens.
func words(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString([]string{"wing", "lift", "flow", "air", "drag", "speed", "angle"}[i%7])
	}
	return b.String()
}

// TestLongInputs: passages and queries far longer than the model takes,
// on a 512-position BERT and on an XLM-R with bge-reranker-v2-m3's 8194
// positions at MaxLen 8192, under both policies: every window fits (and a
// cut pair fills MaxLen exactly), the passage keeps tokens when the query
// alone is too long (longest_first), and each score is the training path's
// logit of the same tokens (positions up to 8193, tiled attention), the
// highest of its windows' under Chunk. MaxLen above the position table is
// lowered to it.
//
//	model           MaxLen  query   passage  policy          windows
//	BERT 512 pos.   (1e5)   4       10000    truncate        1 × 512
//	BERT 512 pos.   512     4       10000    chunk (10)      10 × 512
//	BERT 512 pos.   512     600     10000    truncate        1 × 512 (query cut)
//	BERT 512 pos.   512     600     300      chunk           ≥ 2 × ≤ 512
//	XLM-R 8194 pos. 8192    4       10000    truncate        1 × 8192
//	XLM-R 8194 pos. 8192    4       10000    chunk (2)       2 × 8192
//	XLM-R 8194 pos. 8192    9000    3        truncate        1 × 8192 (query cut)
func TestLongInputs(t *testing.T) {
	bertTok := filepath.Join(bundledTokenizer(t), "tokenizer.json")
	xlmrTok := filepath.Join(sharedtest.Models(t), "xlmr-layout-unigram-tokenizer", "tokenizer.json")
	for _, tc := range []struct {
		name           string
		arch           nn.Arch
		tok            string
		maxSeq, maxLen int
		query, passage int // words
		long           LongPolicy
		windows        int // 0: at least 2
		wantLen        int // of every window but the last; 0: ≤ MaxLen
	}{
		{"bert truncate, max len above positions", nn.BERT, bertTok, 512, 100_000, 4, 10_000, LongPolicy{}, 1, 512},
		{"bert chunk", nn.BERT, bertTok, 512, 512, 4, 10_000, LongPolicy{Mode: Chunk}, DefaultMaxChunksPerDoc, 512},
		{"bert query longer than max len", nn.BERT, bertTok, 512, 512, 600, 10_000, LongPolicy{}, 1, 512},
		{"bert chunk, query longer than max len", nn.BERT, bertTok, 512, 512, 600, 300, LongPolicy{Mode: Chunk}, 0, 0},
		{"xlmr 8192 truncate", nn.XLMRoberta, xlmrTok, 8192, 8192, 4, 10_000, LongPolicy{}, 1, 8192},
		{"xlmr 8192 chunk", nn.XLMRoberta, xlmrTok, 8192, 8192, 4, 10_000, LongPolicy{Mode: Chunk, MaxChunksPerDoc: 2}, 2, 8192},
		{"xlmr 8192 query longer than max len", nn.XLMRoberta, xlmrTok, 8192, 8192, 9000, 3, LongPolicy{}, 1, 8192},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := narrowModel(t, tc.arch, tc.tok, tc.maxSeq, Options{MaxLen: tc.maxLen, Long: tc.long})
			assert.Equal(t, tc.maxSeq, m.MaxLen())
			q, p := words(tc.query), words(tc.passage)
			doc, err := m.EncodeDoc(q, p, tc.long)
			require.NoError(t, err)
			if tc.windows > 0 {
				require.Len(t, doc.Windows, tc.windows)
			} else {
				require.GreaterOrEqual(t, len(doc.Windows), 2)
			}
			want := float32(math.Inf(-1))
			for i, w := range doc.Windows {
				assert.LessOrEqual(t, w.Len(), m.MaxLen(), "window %d", i)
				if tc.wantLen > 0 && i < len(doc.Windows)-1 || len(doc.Windows) == 1 && tc.wantLen > 0 {
					assert.Equal(t, tc.wantLen, w.Len(), "window %d", i)
				}
				assert.Positive(t, passageTokens(m, w), "window %d keeps passage tokens", i)
				logits, err := m.Net.Forward(input.Batch([]tokenize.Encoding{w}, int32(m.Net.Cfg.PadID)), nn.RunOptions{AllPositions: true})
				require.NoError(t, err)
				want = max(want, logits[0])
			}
			got, err := m.Rerank(context.Background(), q, []string{p})
			require.NoError(t, err)
			assert.InDelta(t, want, got[0], 1e-4*max(1, math.Abs(float64(want))))
			assert.False(t, math.IsNaN(float64(got[0])))
		})
	}
}

// passageTokens counts the passage's tokens in a pair's encoding: those
// after the query's closing separator(s), before the last.
func passageTokens(m *Model, e tokenize.Encoding) int {
	sep := m.Tok.SpecialTokens(true) - 2 // separators between the two: 1 for BERT, 2 for XLM-R
	for j := 1; j+sep <= len(e.IDs); j++ {
		if e.IDs[j] == e.IDs[len(e.IDs)-1] { // the first separator
			return len(e.IDs) - (j + sep) - 1
		}
	}
	return 0
}
