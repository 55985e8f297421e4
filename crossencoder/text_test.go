package crossencoder

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/nn"
)

// oddTexts are texts users send that a reranker must score as any other:
// each scores, finite, as its own encoding says (the ids themselves are
// checked against Hugging Face's tokenizers in package tokenize).
var oddTexts = []struct{ name, text string }{
	{"empty", ""},
	{"whitespace only", " \t\r\n\u3000\u00a0 "},
	{"special tokens as text", "[CLS] [SEP] [PAD] [MASK] <s> </s> <pad> <mask>"},
	{"punctuation only", "?!…—«»@#$%^&*()"},
	{"CJK", "机翼是什么？機翼は揚力を生む。비행기 날개"},
	{"Thai", "ปีกเครื่องบินสร้างแรงยก"},
	{"Arabic RTL marks", "\u202bما هو الجناح؟\u202c \u200fالرفع"},
	{"emoji ZWJ and skin tones", "👩‍👩‍👧‍👦 👍🏽 🧑🏿‍🚀 🏳️‍🌈 1️⃣ 🇫🇷"},
	{"combining marks", "Z\u0335\u0321a\u0336l\u0337g\u0338o e\u0301\u0302\u0303"},
	{"NFC", "caf\u00e9 na\u00efve"},
	{"NFD", "cafe\u0301 nai\u0308ve"},
	{"zero-width", "a\u200bb\u200cc\u200dd\u2060e\ufeff"},
	{"zero-width only", "\u200b\u200c\u00ad"},
	{"control characters", "a\u0000b\u0001c\u007f\u0085\u009f"},
	{"replacement character", "\ufffd\ufffd"},
	{"private use and noncharacters", "\ue000\U000f0000\ufdd0\uffff"},
	{"one long word", strings.Repeat("x", 5000)},
}

// TestOddTexts scores every odd text as query and as passage, on a BERT
// WordPiece and an XLM-R Unigram tokenizer: no error, a finite score, the
// same score alone and batched with the others, and a text that tokenizes
// to nothing scores as the empty text does.
func TestOddTexts(t *testing.T) {
	bertTok := filepath.Join(bundledTokenizer(t), "tokenizer.json")
	xlmrTok := filepath.Join(sharedtest.Models(t), "xlmr-layout-unigram-tokenizer", "tokenizer.json")
	for _, tk := range []struct {
		name string
		arch nn.Arch
		path string
	}{{"bert", nn.BERT, bertTok}, {"xlmr", nn.XLMRoberta, xlmrTok}} {
		t.Run(tk.name, func(t *testing.T) {
			m := narrowModel(t, tk.arch, tk.path, 128, Options{MaxLen: 128})
			ctx := context.Background()
			var passages []string
			for _, tc := range oddTexts {
				passages = append(passages, tc.text)
			}
			const q = "what is a wing"
			batched, err := m.Rerank(ctx, q, passages)
			require.NoError(t, err)
			empty, err := m.Rerank(ctx, q, []string{""})
			require.NoError(t, err)
			emptyQ, err := m.Rerank(ctx, "", []string{"a wing"})
			require.NoError(t, err)
			for i, tc := range oddTexts {
				e, err := m.Encode(q, tc.text)
				require.NoError(t, err, tc.name)
				for _, id := range e.IDs {
					require.Less(t, int(id), m.Net.Cfg.VocabSize, tc.name)
				}
				alone, err := m.Rerank(ctx, q, []string{tc.text})
				require.NoError(t, err, tc.name)
				assert.False(t, math.IsNaN(float64(alone[0])) || math.IsInf(float64(alone[0]), 0), "%s: score %v", tc.name, alone[0])
				assert.Equal(t, alone[0], batched[i], "%s: alone and batched", tc.name)
				asQuery, err := m.Rerank(ctx, tc.text, []string{"a wing"})
				require.NoError(t, err, tc.name)
				assert.False(t, math.IsNaN(float64(asQuery[0])), tc.name)
				if len(m.Tok.Tokenize(tc.text)) == 0 {
					assert.Equal(t, empty[0], alone[0], "%s tokenizes to nothing: the empty passage's score", tc.name)
					assert.Equal(t, emptyQ[0], asQuery[0], "%s tokenizes to nothing: the empty query's score", tc.name)
				}
			}
		})
	}
}
