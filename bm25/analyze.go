package bm25

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// StopWords is the 33-word English stop list of Lucene's EnglishAnalyzer
// (ENGLISH_STOP_WORDS_SET), which Anserini uses too.
var StopWords = map[string]bool{
	"a": true, "an": true, "and": true, "are": true, "as": true, "at": true, "be": true,
	"but": true, "by": true, "for": true, "if": true, "in": true, "into": true, "is": true,
	"it": true, "no": true, "not": true, "of": true, "on": true, "or": true, "such": true,
	"that": true, "the": true, "their": true, "then": true, "there": true, "these": true,
	"they": true, "this": true, "to": true, "was": true, "will": true, "with": true,
}

// Analyze turns text into index terms, the way the shared collections'
// BM25 was computed:
//
//  1. lowercase (full Unicode lowercasing, as Python's str.lower: "İ"
//     becomes "i" plus a combining dot, a final "Σ" becomes "ς");
//  2. tokens are maximal runs of Unicode letters and numbers (the regex
//     [^\W_]+ of Python 3; marks and the underscore split tokens);
//  3. the stop words (StopWords) are dropped;
//  4. tokens made only of ASCII letters are Porter-stemmed (Stem).
func Analyze(text string) []string {
	return AppendTerms(nil, text)
}

// AppendTerms appends the terms of text to dst (see Analyze).
func AppendTerms(dst []string, text string) []string {
	return appendTerms(dst, text, nil)
}

// stemCache memoizes Stem for one goroutine; the strings it returns do
// not keep the analyzed text alive.
type stemCache map[string]string

func (c stemCache) stem(tok string) string {
	if s, ok := c[tok]; ok {
		return s
	}
	s := Stem(tok)
	if s == tok {
		s = strings.Clone(tok)
	}
	c[strings.Clone(tok)] = s
	return s
}

func appendTerms(dst []string, text string, cache stemCache) []string {
	text = lower(text)
	start := -1
	ascii := true
	flush := func(end int) {
		tok := text[start:end]
		start = -1
		if StopWords[tok] {
			return
		}
		switch {
		case ascii && cache != nil:
			tok = cache.stem(tok)
		case ascii:
			tok = Stem(tok)
		case cache != nil:
			tok = strings.Clone(tok)
		}
		dst = append(dst, tok)
	}
	for i, r := range text {
		if isWordRune(r) {
			if start < 0 {
				start, ascii = i, true
			}
			if r > unicode.MaxASCII || r < 'a' || r > 'z' {
				ascii = false
			}
			continue
		}
		if start >= 0 {
			flush(i)
		}
	}
	if start >= 0 {
		flush(len(text))
	}
	return dst
}

// isWordRune: Python's \w without the underscore is exactly the letters
// (L*) and the numbers (N*).
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

// lower lowercases like Python's str.lower, which differs from
// strings.ToLower in two special cases that matter for token boundaries
// and term identity.
func lower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	if !strings.ContainsRune(s, 'İ') && !strings.ContainsRune(s, 'Σ') {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i, r := range s {
		switch r {
		case 'İ': // U+0130 -> "i" + U+0307 COMBINING DOT ABOVE
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(s, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma applies Unicode's Final_Sigma condition at byte offset i:
// a cased letter comes before (skipping case-ignorable runes) and none
// comes after.
func finalSigma(s string, i int) bool {
	before := false
	for j := i; j > 0; {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if caseIgnorable(r) {
			continue
		}
		before = cased(r)
		break
	}
	if !before {
		return false
	}
	for j := i + len("Σ"); j < len(s); {
		r, n := utf8.DecodeRuneInString(s[j:])
		j += n
		if caseIgnorable(r) {
			continue
		}
		return !cased(r)
	}
	return true
}

func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

func caseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) ||
		r == '\'' || r == '.' || r == ':' || r == '^' || r == '`' || r == '·' || r == '\u2019'
}
