package tokenize

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Character classes, as Hugging Face tokenizers computes them.
const (
	cControl    uint8 = 1 << iota // BertNormalizer is_control: Cc, Cf or Co, except \t \n \r
	cWhitespace                   // BertNormalizer is_whitespace: White_Space, plus \t \n \r
	cPunct                        // BertPreTokenizer is_bert_punc: ASCII punctuation or P*
	cMn                           // Mn, removed after NFD when accents are stripped
	cChinese                      // CJK ideograph blocks padded with spaces
)

// bmpClass holds the classes of every BMP code point; classSlow covers the
// other planes.
var bmpClass [0x10000]uint8

func init() {
	mark := func(ranges [][2]rune, c uint8) {
		for _, r := range ranges {
			for x := r[0]; x <= r[1] && x < 0x10000; x++ {
				bmpClass[x] |= c
			}
		}
	}
	mark(hfControl, cControl)
	mark(hfFormat, cControl)
	mark(hfPrivateUseListed, cControl)
	mark([][2]rune{{0xE000, 0xF8FF}}, cControl)
	for _, t := range [][][2]rune{hfPc, hfPd, hfPe, hfPf, hfPi, hfPo, hfPs} {
		mark(t, cPunct)
	}
	mark(hfNonspacingMark, cMn)
	for x := rune(0); x < 0x10000; x++ {
		if unicode.IsSpace(x) {
			bmpClass[x] |= cWhitespace
		}
		if x < 0x80 && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", x) {
			bmpClass[x] |= cPunct
		}
		if isChinese(x) {
			bmpClass[x] |= cChinese
		}
	}
	for _, x := range []rune{'\t', '\n', '\r'} {
		bmpClass[x] &^= cControl
		bmpClass[x] |= cWhitespace
	}
}

func inRanges(ranges [][2]rune, r rune) bool {
	lo, hi := 0, len(ranges)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < ranges[m][0]:
			hi = m
		case r > ranges[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

func class(r rune) uint8 {
	if r >= 0 && r < 0x10000 {
		return bmpClass[r]
	}
	var c uint8
	if inRanges(hfFormat, r) || (r >= 0xF0000 && r <= 0xFFFFD) || (r >= 0x100000 && r <= 0x10FFFD) {
		c |= cControl
	}
	for _, t := range [][][2]rune{hfPc, hfPd, hfPe, hfPf, hfPi, hfPo, hfPs} {
		if inRanges(t, r) {
			c |= cPunct
			break
		}
	}
	if inRanges(hfNonspacingMark, r) {
		c |= cMn
	}
	if isChinese(r) {
		c |= cChinese
	}
	return c
}

// isChinese reports the CJK blocks that BertNormalizer pads with spaces.
func isChinese(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// isSpace is Rust's char::is_whitespace (the White_Space property), which
// is the set Go's unicode.IsSpace reports.
func isSpace(r rune) bool { return unicode.IsSpace(r) }

// appendLower appends Rust's char::to_lowercase of r: the simple mapping,
// except U+0130, whose full lowercase is two characters.
func appendLower(dst []byte, r rune) []byte {
	if r == 0x130 {
		return append(dst, "i\u0307"...)
	}
	return utf8.AppendRune(dst, unicode.ToLower(r))
}

// validUTF8 replaces each invalid byte with U+FFFD, as Go's range loop and
// encoding/json read them, so that every later step sees valid text.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// isWordChar approximates the regex class \w (alphanumeric, marks,
// connector punctuation, joiners), used for single_word added tokens.
func isWordChar(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) ||
		unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Pc, r) || r == 0x200C || r == 0x200D
}
