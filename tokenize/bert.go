package tokenize

import (
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// bertNormalizer is Hugging Face's BertNormalizer. strip_accents left unset
// (null) follows lowercase, as in HF.
type bertNormalizer struct {
	cleanText, chinese, stripAccents, lowercase bool
}

// normalize returns the normalized text. It is the general path; the
// ASCII-only path is fused with pre-tokenization in bertWords.
func (n *bertNormalizer) normalize(s string) string {
	buf := make([]byte, 0, len(s)+8)
	for _, r := range s {
		c := class(r)
		if n.cleanText {
			if r == 0 || r == 0xFFFD || c&cControl != 0 {
				continue
			}
			if c&cWhitespace != 0 {
				r, c = ' ', class(' ')
			}
		}
		if n.chinese && c&cChinese != 0 {
			buf = append(buf, ' ')
			buf = utf8.AppendRune(buf, r)
			buf = append(buf, ' ')
			continue
		}
		buf = utf8.AppendRune(buf, r)
	}
	if n.stripAccents {
		d := norm.NFD.Append(nil, buf...)
		buf = buf[:0]
		for i := 0; i < len(d); {
			r, size := utf8.DecodeRune(d[i:])
			if class(r)&cMn == 0 {
				buf = append(buf, d[i:i+size]...)
			}
			i += size
		}
	}
	if n.lowercase {
		out := make([]byte, 0, len(buf)+4)
		for i := 0; i < len(buf); {
			r, size := utf8.DecodeRune(buf[i:])
			if r < utf8.RuneSelf {
				if 'A' <= r && r <= 'Z' {
					r += 'a' - 'A'
				}
				out = append(out, byte(r))
			} else {
				out = appendLower(out, r)
			}
			i += size
		}
		buf = out
	}
	return string(buf)
}

// bertPreTokenize is BertPreTokenizer: split on whitespace (removed), then
// isolate every punctuation character.
func bertPreTokenize(s string, emit func(word string) bool) {
	start := -1
	for i, r := range s {
		c := class(r)
		switch {
		case c&cWhitespace != 0:
			if start >= 0 {
				if !emit(s[start:i]) {
					return
				}
				start = -1
			}
		case c&cPunct != 0:
			if start >= 0 {
				if !emit(s[start:i]) {
					return
				}
				start = -1
			}
			if !emit(s[i : i+utf8.RuneLen(r)]) {
				return
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		emit(s[start:])
	}
}

// bertWordsASCII fuses BertNormalizer and BertPreTokenizer for pure ASCII
// text, where NFD, accent stripping and CJK padding do nothing. buf is
// scratch space for lowercased words; it is returned for reuse.
func (n *bertNormalizer) wordsASCII(s string, buf []byte, emit func(word string) bool) []byte {
	buf = buf[:0]
	flush := func() bool {
		if len(buf) > 0 {
			w := string(buf)
			buf = buf[:0]
			return emit(w)
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		c := bmpClass[b]
		if n.cleanText {
			if b == 0 || c&cControl != 0 {
				continue
			}
		}
		switch {
		case c&cWhitespace != 0:
			if !flush() {
				return buf
			}
		case c&cPunct != 0:
			if !flush() || !emit(s[i:i+1]) {
				return buf
			}
		default:
			if n.lowercase && 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			buf = append(buf, b)
		}
	}
	flush()
	return buf
}

// wordPiece is Hugging Face's WordPiece model: greedy longest match from
// the start of each word, continuation pieces carrying a prefix ("##"),
// and the whole word as the unknown token when any part fails to match or
// the word is longer than maxChars characters.
type wordPiece struct {
	vocab    map[string]int32 // every entry, for the first piece of a word
	cont     map[string]int32 // entries that start with the prefix, without it
	unk      int32
	maxChars int
	maxBytes int // longest entry, in bytes, without the prefix
}

func newWordPiece(vocab map[string]int32, unk int32, prefix string, maxChars int) *wordPiece {
	w := &wordPiece{vocab: vocab, cont: map[string]int32{}, unk: unk, maxChars: maxChars}
	for k, id := range vocab {
		if len(k) > w.maxBytes {
			w.maxBytes = len(k)
		}
		if prefix != "" && len(k) > len(prefix) && k[:len(prefix)] == prefix {
			w.cont[k[len(prefix):]] = id
		}
	}
	return w
}

func (w *wordPiece) encode(word string, dst []int32) []int32 {
	if len(word) > w.maxChars && utf8.RuneCountInString(word) > w.maxChars {
		return append(dst, w.unk)
	}
	n0 := len(dst)
	for start := 0; start < len(word); {
		m := w.vocab
		if start > 0 {
			m = w.cont
		}
		end := len(word)
		if end-start > w.maxBytes {
			end = start + w.maxBytes
			for end > start && !utf8.RuneStart(word[end]) {
				end--
			}
		}
		found := false
		for end > start {
			if id, ok := m[word[start:end]]; ok {
				dst = append(dst, id)
				found = true
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if !found {
			return append(dst[:n0], w.unk)
		}
		start = end
	}
	return dst
}
