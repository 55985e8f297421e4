package tokenize

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/internal/sharedtest"
)

var (
	loadOnce   sync.Once
	bertTok    *Tokenizer
	xlmrTok    *Tokenizer
	loadErr    error
	modelsRoot string
)

// sharedTokenizers loads the two shared tokenizers once.
func sharedTokenizers(t testing.TB) (bert, xlmr *Tokenizer) {
	t.Helper()
	models := sharedtest.Models(t)
	loadOnce.Do(func() {
		modelsRoot = models
		if bertTok, loadErr = Load(filepath.Join(models, "bert-uncased-wordpiece-tokenizer")); loadErr != nil {
			return
		}
		xlmrTok, loadErr = Load(filepath.Join(models, "xlmr-layout-unigram-tokenizer", "tokenizer.json"))
	})
	require.NoError(t, loadErr)
	return bertTok, xlmrTok
}

func TestSpotIDs(t *testing.T) {
	bert, xlmr := sharedTokenizers(t)
	for _, tc := range []struct {
		name   string
		tok    *Tokenizer
		q, p   string
		ids    []int32
		types  []int32
		padID  int32
		vocabN int
	}{
		{"bert", bert, "Hello world", "the", []int32{101, 7592, 2088, 102, 1996, 102}, []int32{0, 0, 0, 0, 1, 1}, 0, 30522},
		{"bert accents", bert, "Café", "naïve", []int32{101, 7668, 102, 15743, 102}, []int32{0, 0, 0, 1, 1}, 0, 30522},
		{"xlmr empty", xlmr, "", "", []int32{0, 2, 2, 2}, []int32{0, 0, 0, 0}, 1, 32002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tc.tok.EncodePair(tc.q, tc.p, Truncation{})
			require.NoError(t, err)
			assert.Equal(t, tc.ids, e.IDs)
			assert.Equal(t, tc.types, e.TypeIDs)
			assert.Equal(t, len(tc.ids), e.Len())
			for _, m := range e.Mask {
				assert.Equal(t, int32(1), m)
			}
			assert.Equal(t, tc.padID, tc.tok.PadID())
			assert.Equal(t, tc.vocabN, tc.tok.VocabSize())
		})
	}
}

func TestLoadDirectoryOrFile(t *testing.T) {
	bert, _ := sharedTokenizers(t)
	byFile, err := Load(filepath.Join(modelsRoot, "bert-uncased-wordpiece-tokenizer", "tokenizer.json"))
	require.NoError(t, err)
	assert.Equal(t, bert.Tokenize("The quick brown fox"), byFile.Tokenize("The quick brown fox"))
	assert.Equal(t, bert.Fingerprint(), byFile.Fingerprint())
	assert.Equal(t, 3, bert.SpecialTokens(true))
	assert.Equal(t, 2, bert.SpecialTokens(false))
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	const wp = `"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"a":1}}`
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"missing", filepath.Join(dir, "nope.json"), []string{"nope.json", "no such file"}},
		{"directory without tokenizer.json", dir, []string{"tokenizer.json"}},
		{"not json", write("bad.json", "{"), []string{"bad.json", "not a tokenizer.json"}},
		{"no model", write("nomodel.json", `{}`), []string{"nomodel.json", "model"}},
		{"bpe", write("bpe.json", `{"model":{"type":"BPE"}}`), []string{"bpe.json", "model.type", "BPE"}},
		{"unk missing", write("unk.json", `{"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"a":1}}}`), []string{"unk.json", "model.unk_token"}},
		{"unigram pair", write("uni.json", `{"model":{"type":"Unigram","unk_id":0,"vocab":[["a"]]}}`), []string{"uni.json", "model.vocab[0]"}},
		{"unigram unk", write("uni2.json", `{"model":{"type":"Unigram","unk_id":5,"vocab":[["a",-1]]}}`), []string{"uni2.json", "model.unk_id"}},
		{"normalizer", write("norm.json", `{"normalizer":{"type":"Strange"},`+wp+`}`), []string{"norm.json", "normalizer.type", "Strange"}},
		{"charsmap", write("pc.json", `{"normalizer":{"type":"Sequence","normalizers":[{"type":"Precompiled","precompiled_charsmap":"!!"}]},`+wp+`}`), []string{"pc.json", "normalizer.normalizers[0].precompiled_charsmap"}},
		{"pre_tokenizer", write("pre.json", `{"pre_tokenizer":{"type":"ByteLevel"},`+wp+`}`), []string{"pre.json", "pre_tokenizer.type"}},
		{"template", write("tp.json", `{"post_processor":{"type":"TemplateProcessing","single":[],"pair":[{"SpecialToken":{"id":"[X]","type_id":0}}]},`+wp+`}`), []string{"tp.json", "post_processor.pair[0]", "[X]"}},
		{"empty added token", write("added.json", `{"added_tokens":[{"id":0,"content":""}],`+wp+`}`), []string{"added.json", "added_tokens[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseStrategy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Strategy
		ok   bool
	}{
		{"none", NoTruncation, true},
		{"longest_first", LongestFirst, true},
		{"only_first", OnlyFirst, true},
		{"only_second", OnlySecond, true},
		{"flag", FlagEmbedding, true},
		{"LongestFirst", 0, false},
		{"", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseStrategy(tc.in)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.in, got.String())
		})
	}
}

func seq(n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(i + 1)
	}
	return s
}

// TestTruncatePair checks HF's truncate_encodings arithmetic.
func TestTruncatePair(t *testing.T) {
	for _, tc := range []struct {
		name         string
		a, b, max    int
		strategy     Strategy
		wantA, wantB int
		err          bool
	}{
		{"fits", 3, 4, 7, LongestFirst, 3, 4, false},
		{"longer second cut", 3, 10, 7, LongestFirst, 3, 4, false},
		{"longer first cut", 10, 3, 7, LongestFirst, 4, 3, false},
		{"both cut, odd goes to longer", 10, 20, 7, LongestFirst, 3, 4, false},
		{"both cut, first longer", 20, 10, 7, LongestFirst, 4, 3, false},
		{"equal", 10, 10, 7, LongestFirst, 3, 4, false},
		{"shorter over max", 8, 9, 7, LongestFirst, 3, 4, false},
		{"only second", 3, 10, 7, OnlySecond, 3, 4, false},
		{"only second too short", 8, 2, 7, OnlySecond, 0, 0, true},
		{"only second exact", 7, 1, 7, OnlySecond, 0, 0, true},
		{"only first", 10, 3, 7, OnlyFirst, 4, 3, false},
		{"only first too short", 2, 8, 7, OnlyFirst, 0, 0, true},
		{"max zero", 2, 3, 0, LongestFirst, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, err := truncatePair(seq(tc.a), seq(tc.b), tc.strategy, tc.max)
			if tc.err {
				require.ErrorIs(t, err, ErrTooShort)
				return
			}
			require.NoError(t, err)
			assert.Len(t, a, tc.wantA)
			assert.Len(t, b, tc.wantB)
			assert.LessOrEqual(t, len(a)+len(b), tc.max)
		})
	}
}

func TestTruncationLimits(t *testing.T) {
	bert, xlmr := sharedTokenizers(t)
	long := strings.Repeat("tokenization of long passages ", 200)
	for _, tc := range []struct {
		name string
		tok  *Tokenizer
		tr   Truncation
		q    string
		max  int
		err  bool
	}{
		{"bert longest_first 16", bert, Truncation{Strategy: LongestFirst, MaxLen: 16}, long, 16, false},
		{"xlmr longest_first 5", xlmr, Truncation{Strategy: LongestFirst, MaxLen: 5}, long, 5, false},
		{"bert flag", bert, Truncation{Strategy: FlagEmbedding, QueryMaxLen: 32, PassageMaxLen: 64}, long, 96, false},
		{"xlmr only_second long query", xlmr, Truncation{Strategy: OnlySecond, MaxLen: 32}, long, 0, true},
		{"bert max below specials", bert, Truncation{Strategy: LongestFirst, MaxLen: 2}, "a", 0, true},
		{"flag zero", bert, Truncation{Strategy: FlagEmbedding}, "a", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tc.tok.EncodePair(tc.q, long, tc.tr)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.max, e.Len())
		})
	}
}

// TestFullLengths checks the two LongestFirst behaviours on a query of 34
// tokens against a long passage at 32: tokenizers 0.23 caps both at 32
// while tokenizing, finds the query longer and gives it the odd token;
// earlier versions compare 34 with the full passage and give it to the
// passage.
func TestFullLengths(t *testing.T) {
	bert, _ := sharedTokenizers(t)
	q := "Allogeneic mechanical circulatory support is not as effective as autologous mechanical circulatory support for treating acute myocardial infarction."
	p := strings.Repeat("acute myocardial infarction ", 40)
	require.Len(t, bert.Tokenize(q), 34)
	for _, tc := range []struct {
		name        string
		fullLengths bool
		queryTokens int
	}{
		{"tokenizers 0.23", false, 15},
		{"tokenizers before 0.23", true, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := bert.EncodePair(q, p, Truncation{Strategy: LongestFirst, MaxLen: 32, FullLengths: tc.fullLengths})
			require.NoError(t, err)
			require.Equal(t, 32, e.Len())
			zeros := 0
			for _, ty := range e.TypeIDs {
				if ty == 0 {
					zeros++
				}
			}
			assert.Equal(t, tc.queryTokens, zeros-2) // [CLS] and the first [SEP]
		})
	}
}

func TestEncodeBatch(t *testing.T) {
	bert, xlmr := sharedTokenizers(t)
	pairs := []Pair{{"what is bm25", "a ranking function"}, {"q", "a much longer passage about ranking functions and retrieval"}, {"", ""}}
	for _, tc := range []struct {
		name     string
		tok      *Tokenizer
		multiple int
		workers  int
	}{
		{"bert longest", bert, 0, 1},
		{"bert multiple of 8", bert, 8, 2},
		{"xlmr multiple of 16", xlmr, 16, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.tok.EncodeBatch(pairs, BatchOptions{Truncation: Truncation{Strategy: LongestFirst, MaxLen: 64}, PadToMultipleOf: tc.multiple, Workers: tc.workers})
			require.NoError(t, err)
			assert.Equal(t, len(pairs), b.N)
			if tc.multiple > 1 {
				assert.Zero(t, b.S%tc.multiple)
			}
			require.Len(t, b.IDs, b.N*b.S)
			require.Len(t, b.TypeIDs, b.N*b.S)
			require.Len(t, b.Mask, b.N*b.S)
			for i, p := range pairs {
				e, err := tc.tok.EncodePair(p.Query, p.Passage, Truncation{Strategy: LongestFirst, MaxLen: 64})
				require.NoError(t, err)
				row := i * b.S
				assert.Equal(t, e.IDs, b.IDs[row:row+e.Len()])
				assert.Equal(t, e.TypeIDs, b.TypeIDs[row:row+e.Len()])
				for j := row + e.Len(); j < row+b.S; j++ {
					assert.Equal(t, tc.tok.PadID(), b.IDs[j])
					assert.Zero(t, b.Mask[j])
					assert.Zero(t, b.TypeIDs[j])
				}
			}
		})
	}
}

func TestEncodeBatchError(t *testing.T) {
	_, xlmr := sharedTokenizers(t)
	pairs := []Pair{{"short", "passage"}, {strings.Repeat("long query ", 50), "passage"}}
	_, err := xlmr.EncodeBatch(pairs, BatchOptions{Truncation: Truncation{Strategy: OnlySecond, MaxLen: 16}})
	require.ErrorIs(t, err, ErrTooShort)
	assert.Contains(t, err.Error(), "pair 1")
	encs, errs := xlmr.EncodePairs(pairs, Truncation{Strategy: OnlySecond, MaxLen: 16}, 2)
	require.Len(t, errs, 2)
	assert.NoError(t, errs[0])
	assert.Error(t, errs[1])
	assert.NotEmpty(t, encs[0].IDs)
}

func TestCache(t *testing.T) {
	bert, _ := sharedTokenizers(t)
	tr := Truncation{Strategy: FlagEmbedding, QueryMaxLen: 16, PassageMaxLen: 48}
	c, err := NewCache(bert, tr)
	require.NoError(t, err)
	pairs := []Pair{{"a query", "a passage"}, {"another query", strings.Repeat("words ", 100)}, {"a query", "a passage"}}
	encs, err := c.EncodePairs(pairs, 0)
	require.NoError(t, err)
	assert.Equal(t, 2, c.Len())
	for i, p := range pairs {
		want, err := bert.EncodePair(p.Query, p.Passage, tr)
		require.NoError(t, err)
		assert.Equal(t, want, encs[i])
	}
	b1, err := c.EncodeBatch(pairs, 8, 1)
	require.NoError(t, err)

	path := filepath.Join(t.TempDir(), "train.cache")
	require.NoError(t, c.Save(path))
	c2, err := LoadCache(path, bert, tr)
	require.NoError(t, err)
	assert.Equal(t, 2, c2.Len())
	b2, err := c2.EncodeBatch(pairs, 8, 1)
	require.NoError(t, err)
	assert.Equal(t, b1, b2)

	for _, tc := range []struct {
		name string
		tr   Truncation
		path string
		want string
	}{
		{"other truncation", Truncation{Strategy: LongestFirst, MaxLen: 64}, path, "another tokenizer.json or truncation"},
		{"full lengths", Truncation{Strategy: FlagEmbedding, QueryMaxLen: 16, PassageMaxLen: 48, FullLengths: true}, path, "another tokenizer.json or truncation"},
		{"missing", tr, path + ".nope", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCache(tc.path, bert, tc.tr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data[:len(data)-3], 0o644))
	_, err = LoadCache(path, bert, tr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ends early")
}

func TestSugarmeModel(t *testing.T) {
	bert, xlmr := sharedTokenizers(t)
	for _, tc := range []struct {
		name string
		tok  *Tokenizer
		word string
		want []int
	}{
		{"wordpiece", bert, "hello", []int{7592}},
		{"unigram", xlmr, "▁hello", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.tok.Model()
			toks, err := m.Tokenize(tc.word)
			require.NoError(t, err)
			require.NotEmpty(t, toks)
			if tc.want != nil {
				assert.Equal(t, tc.want[0], toks[0].Id)
			}
			id, ok := m.TokenToId(toks[0].Value)
			assert.True(t, ok)
			assert.Equal(t, toks[0].Id, id)
			assert.Equal(t, len(m.GetVocab()), m.GetVocabSize())
		})
	}
}
