package tokenize

import (
	"testing"
	"unicode/utf8"
)

// FuzzEncodePair feeds arbitrary bytes (valid UTF-8 or not) to both shared
// tokenizers under every truncation: encoding must never panic, never
// exceed the limit, and keep ids, type ids and mask aligned.
func FuzzEncodePair(f *testing.F) {
	for _, s := range []struct {
		q, p string
		n    uint8
	}{
		{"hello", "world", 8},
		{"Café naïve", "東京 한국어 हिन्दी ภาษาไทย", 16},
		{"\r\n\u2028\u00a0\u3000", "\x00\xff\xfe\x80 [SEP]<mask></s>", 5},
		{"e\u0301\u0301\u0301", "👨‍👩‍👧 🇫🇷 1️⃣", 4},
		{"", "", 0},
		{"▁▁", "  <mask>  ", 3},
	} {
		f.Add(s.q, s.p, s.n)
	}
	f.Fuzz(func(t *testing.T, q, p string, n uint8) {
		bert, xlmr := sharedTokenizers(t)
		for _, tok := range []*Tokenizer{bert, xlmr} {
			for _, tr := range []Truncation{
				{},
				{Strategy: LongestFirst, MaxLen: int(n)},
				{Strategy: OnlyFirst, MaxLen: int(n)},
				{Strategy: OnlySecond, MaxLen: int(n)},
				{Strategy: FlagEmbedding, QueryMaxLen: int(n%64) + 1, PassageMaxLen: int(n) + 1},
			} {
				e, err := tok.EncodePair(q, p, tr)
				if err != nil {
					if tr.Strategy == LongestFirst && int(n) >= tok.SpecialTokens(true) {
						t.Fatalf("longest_first %d failed: %v", n, err)
					}
					continue
				}
				if lim := tr.Limit(); lim > 0 && e.Len() > lim {
					t.Fatalf("%v: %d tokens, limit %d", tr, e.Len(), lim)
				}
				if len(e.TypeIDs) != e.Len() || len(e.Mask) != e.Len() {
					t.Fatalf("misaligned encoding: %d ids, %d type ids, %d mask", e.Len(), len(e.TypeIDs), len(e.Mask))
				}
				for _, id := range e.IDs {
					if id < 0 || int(id) >= tok.VocabSize() {
						t.Fatalf("id %d outside the vocabulary", id)
					}
				}
			}
		}
		_ = utf8.ValidString(q)
	})
}

// FuzzLoadJSON feeds arbitrary tokenizer.json contents to the loader: it
// must return a tokenizer or an error, never panic, and a tokenizer it
// returns must encode without panicking.
func FuzzLoadJSON(f *testing.F) {
	for _, s := range []string{
		`{"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"a":1,"##b":2}},"normalizer":{"type":"BertNormalizer","lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"}}`,
		`{"model":{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0],["▁a",-1.5],["b",-2]]},"pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true}}`,
		`{"model":{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0]]},"normalizer":{"type":"Precompiled","precompiled_charsmap":"AAAAAA=="}}`,
		`{"post_processor":{"type":"TemplateProcessing","single":[{"Sequence":{"id":"A","type_id":0}}],"pair":[{"Sequence":{"id":"B","type_id":3}}],"special_tokens":{}},"model":{"type":"WordPiece","unk_token":"u","vocab":{"u":0}}}`,
		`{"added_tokens":[{"id":1,"content":"x","lstrip":true,"rstrip":true,"single_word":true}],"model":{"type":"WordPiece","unk_token":"u","vocab":{"u":0}}}`,
		`null`, `[]`, `{"model":{"type":"Unigram","unk_id":-1,"vocab":[]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := LoadJSON("fuzz.json", data)
		if err != nil {
			return
		}
		for _, tr := range []Truncation{{}, {Strategy: LongestFirst, MaxLen: 8}} {
			if tr.MaxLen > 0 && tr.MaxLen < tok.SpecialTokens(true) {
				continue
			}
			_, _ = tok.EncodePair("ab x b\u00e9 \x00 a", "xx ▁a b", tr)
		}
	})
}
