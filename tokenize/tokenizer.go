package tokenize

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Tokenizer encodes text exactly as Hugging Face tokenizers does for the
// pipelines of BERT (BertNormalizer, BertPreTokenizer, WordPiece) and XLM-R
// (Precompiled and Replace normalizers, Metaspace, Unigram), with
// TemplateProcessing, BertProcessing or RobertaProcessing around the
// sequences. It is safe for concurrent use.
type Tokenizer struct {
	name        string
	fingerprint [32]byte

	all       []addedToken // as listed in the file
	raw       addedSet     // added tokens matched in the raw text (normalized=false)
	normAdded addedSet     // added tokens matched in normalized text (normalized=true)

	norm    []normalizer
	bert    *bertNormalizer // set when the normalizer is a lone BertNormalizer
	bertPre bool
	meta    *metaspace

	wp     *wordPiece
	uni    *unigram
	models interface{} // sugarme tokenizer.Model view, see model.go

	single, pair []templateItem
	vocabSize    int
	padID        int32

	pool sync.Pool
}

type addedToken struct {
	content                    string
	id                         int32
	lstrip, rstrip, singleWord bool
}

// templateItem is a special token (ids) or a sequence (seq 1 = A, 2 = B).
type templateItem struct {
	ids    []int32
	seq    int
	typeID int32
}

// PadID is the id of the padding token: the tokenizer.json padding pad_id
// when set, else the id of [PAD] or <pad>; -1 when there is none.
func (t *Tokenizer) PadID() int32 { return t.padID }

// VocabSize is the number of ids, added tokens included.
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// Name is the path the tokenizer was loaded from.
func (t *Tokenizer) Name() string { return t.name }

// Fingerprint is the SHA-256 of the tokenizer.json contents.
func (t *Tokenizer) Fingerprint() [32]byte { return t.fingerprint }

// SpecialTokens is the number of special tokens the post-processor adds
// around one sequence (pair false) or a pair.
func (t *Tokenizer) SpecialTokens(pair bool) int {
	items := t.single
	if pair {
		items = t.pair
	}
	n := 0
	for _, it := range items {
		n += len(it.ids)
	}
	return n
}

// scratch is per-goroutine working memory.
type scratch struct {
	lat     lattice
	cache   map[string][]int32 // word -> ids
	word    []byte
	n0      int  // where the current sequence starts in dst
	limit   int  // stop after the word that reaches this many tokens (0: never)
	stopped bool // the limit was reached
}

func (t *Tokenizer) getScratch() *scratch {
	if s, ok := t.pool.Get().(*scratch); ok {
		return s
	}
	return &scratch{}
}

// Tokenize returns the ids of text without special tokens and without
// truncation.
func (t *Tokenizer) Tokenize(text string) []int32 {
	s := t.getScratch()
	defer t.pool.Put(s)
	return t.tokenize(text, 0, s, nil)
}

// tokenize appends the ids of text. With limit > 0 it stops after the
// first word (pre-tokenized split) that brings the count to limit or more,
// as Hugging Face tokenizers does when truncation is set (its right
// truncation early exit): LongestFirst then compares these capped lengths,
// which decides which sequence keeps the odd token. Added tokens count but
// never trigger the stop.
func (t *Tokenizer) tokenize(text string, limit int, s *scratch, dst []int32) []int32 {
	text = validUTF8(text)
	s.n0, s.limit, s.stopped = len(dst), limit, false
	t.raw.split(text,
		func(piece string, atStart bool) bool {
			dst = t.tokenizePiece(piece, atStart, s, dst)
			return !s.stopped
		},
		func(id int32) bool {
			dst = append(dst, id) // counted, but never what stops tokenization
			return true
		})
	return dst
}

// addedSet is a set of added tokens, matched leftmost-longest.
type addedSet struct {
	tokens []addedToken // longest first
	first  [256]bool    // first bytes of the tokens
}

func (a *addedSet) add(tok addedToken) {
	a.tokens = append(a.tokens, tok)
	sort.SliceStable(a.tokens, func(i, j int) bool { return len(a.tokens[i].content) > len(a.tokens[j].content) })
	a.first[tok.content[0]] = true
}

// match finds the longest token starting at text[i].
func (a *addedSet) match(text string, i int) (addedToken, bool) {
	if !a.first[text[i]] {
		return addedToken{}, false
	}
	for _, tok := range a.tokens {
		if strings.HasPrefix(text[i:], tok.content) {
			return tok, true
		}
	}
	return addedToken{}, false
}

// split walks text as HF's AddedVocabulary does: piece gets each non-empty
// stretch between matches (atStart when it begins the text), token each
// match's id; the walk ends when either returns false.
func (a *addedSet) split(text string, piece func(p string, atStart bool) bool, token func(id int32) bool) {
	start := 0 // start of the text not yet emitted
	for i := 0; i < len(text) && len(a.tokens) > 0; {
		m, ok := a.match(text, i)
		if !ok {
			i++
			continue
		}
		b, e := i, i+len(m.content)
		if m.singleWord {
			if (b > 0 && endsWithWord(text[:b])) || (e < len(text) && startsWithWord(text[e:])) {
				i = e // HF's match iterator resumes after the discarded match
				continue
			}
		}
		if m.lstrip {
			for b > start {
				r, size := utf8.DecodeLastRuneInString(text[:b])
				if !isSpace(r) {
					break
				}
				b -= size
			}
		}
		if m.rstrip {
			for e < len(text) {
				r, size := utf8.DecodeRuneInString(text[e:])
				if !isSpace(r) {
					break
				}
				e += size
			}
		}
		if start < b && !piece(text[start:b], start == 0) {
			return
		}
		if !token(m.id) {
			return
		}
		start, i = e, e
	}
	if start < len(text) {
		piece(text[start:], start == 0)
	}
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return isWordChar(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return isWordChar(r)
}

// tokenizePiece normalizes, pre-tokenizes and models one piece of text
// between added tokens. atStart tells whether it starts the sequence.
func (t *Tokenizer) tokenizePiece(text string, atStart bool, s *scratch, dst []int32) []int32 {
	if s.stopped {
		return dst
	}
	emit := func(w string) bool {
		dst = t.model(w, s, dst)
		s.stopped = s.limit > 0 && len(dst)-s.n0 >= s.limit
		return !s.stopped
	}
	if t.bert != nil && t.bertPre && len(t.normAdded.tokens) == 0 && isASCII(text) {
		s.word = t.bert.wordsASCII(text, s.word, emit)
		return dst
	}
	text = t.normalize(text)
	pre := func(p string, first bool) bool {
		switch {
		case t.bertPre:
			bertPreTokenize(p, emit)
		case t.meta != nil:
			t.meta.preTokenize(p, first, emit)
		default:
			if p != "" {
				emit(p)
			}
		}
		return !s.stopped
	}
	if len(t.normAdded.tokens) == 0 {
		pre(text, atStart)
		return dst
	}
	// Added tokens with normalized=true match the normalized text.
	t.normAdded.split(text,
		func(p string, first bool) bool { return pre(p, atStart && first) },
		func(id int32) bool {
			dst = append(dst, id)
			return true
		})
	return dst
}

func (t *Tokenizer) normalize(text string) string {
	for _, n := range t.norm {
		text = n.normalize(text)
	}
	return text
}

// Words repeat a lot in natural text, so each scratch space remembers the
// ids of up to wordCacheSize short words (cleared when full).
const (
	wordCacheSize  = 1 << 15
	wordCacheBytes = 48
)

func (t *Tokenizer) model(word string, s *scratch, dst []int32) []int32 {
	if len(word) <= wordCacheBytes {
		if ids, ok := s.cache[word]; ok {
			return append(dst, ids...)
		}
	}
	n := len(dst)
	if t.wp != nil {
		dst = t.wp.encode(word, dst)
	} else {
		dst = t.uni.encode(word, &s.lat, dst)
	}
	if len(word) <= wordCacheBytes {
		if s.cache == nil || len(s.cache) >= wordCacheSize {
			s.cache = make(map[string][]int32, 1024)
		}
		s.cache[strings.Clone(word)] = append([]int32(nil), dst[n:]...)
	}
	return dst
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Strategy is how an over-long pair is cut.
type Strategy int

const (
	// NoTruncation keeps every token.
	NoTruncation Strategy = iota
	// LongestFirst cuts the longer sequence first, as Hugging Face's
	// longest_first, so that the pair with special tokens fits MaxLen.
	LongestFirst
	// OnlyFirst cuts only the query; it is an error when that is not enough.
	OnlyFirst
	// OnlySecond cuts only the passage; it is an error when that is not
	// enough.
	OnlySecond
	// FlagEmbedding is FlagEmbedding's reranker rule: the query is cut to
	// QueryMaxLen + PassageMaxLen/4 tokens, the passage to
	// PassageMaxLen + QueryMaxLen/2, then the pair only_second to
	// QueryMaxLen + PassageMaxLen with special tokens.
	FlagEmbedding
)

var strategyNames = []string{"none", "longest_first", "only_first", "only_second", "flag"}

func (s Strategy) String() string {
	if s >= 0 && int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// ParseStrategy reads none, longest_first, only_first, only_second or flag.
func ParseStrategy(name string) (Strategy, error) {
	for i, n := range strategyNames {
		if n == name {
			return Strategy(i), nil
		}
	}
	return 0, fmt.Errorf("tokenize: truncation %q is not one of %s", name, strings.Join(strategyNames, ", "))
}

// Truncation says how pairs are cut.
type Truncation struct {
	Strategy Strategy
	// MaxLen is the most tokens of a pair, special tokens included, for
	// LongestFirst, OnlyFirst and OnlySecond.
	MaxLen int
	// QueryMaxLen and PassageMaxLen are FlagEmbedding's query_max_len and
	// passage_max_len.
	QueryMaxLen, PassageMaxLen int
	// FullLengths reproduces Hugging Face tokenizers before 0.23, which
	// tokenized both sequences in full before truncating. From 0.23 on (and
	// by default here), a sequence stops after the word that reaches MaxLen
	// tokens and LongestFirst compares those capped lengths. The two differ
	// only in which sequence keeps the odd token when both are cut.
	FullLengths bool
}

// Limit is the most tokens a pair can have under tr (0: no limit).
func (tr Truncation) Limit() int {
	switch tr.Strategy {
	case LongestFirst, OnlyFirst, OnlySecond:
		return tr.MaxLen
	case FlagEmbedding:
		return tr.QueryMaxLen + tr.PassageMaxLen
	}
	return 0
}

// ErrTooShort is returned (wrapped) when OnlyFirst or OnlySecond cannot
// reach the length limit by cutting its sequence, where Hugging Face
// raises "Sequence to truncate too short to respect the provided
// max_length".
var ErrTooShort = errors.New("sequence to truncate too short to respect the provided max_length")

// CheckTruncation reports a truncation this tokenizer cannot apply: a
// limit below the special tokens of a pair, FlagEmbedding's rule without
// both lengths, an unknown strategy. Encoding a pair returns the same
// error; checking first refuses the options before any text is read.
func (t *Tokenizer) CheckTruncation(tr Truncation) error { return t.check(tr) }

func (t *Tokenizer) check(tr Truncation) error {
	switch tr.Strategy {
	case NoTruncation:
		return nil
	case LongestFirst, OnlyFirst, OnlySecond:
		if n := t.SpecialTokens(true); tr.MaxLen < n {
			return fmt.Errorf("tokenize: max length %d is less than the %d special tokens of a pair", tr.MaxLen, n)
		}
		return nil
	case FlagEmbedding:
		if tr.QueryMaxLen <= 0 || tr.PassageMaxLen <= 0 {
			return fmt.Errorf("tokenize: flag truncation needs positive query and passage max lengths, got %d and %d", tr.QueryMaxLen, tr.PassageMaxLen)
		}
		if n := t.SpecialTokens(true); tr.QueryMaxLen+tr.PassageMaxLen < n {
			return fmt.Errorf("tokenize: query + passage max length %d is less than the %d special tokens of a pair", tr.QueryMaxLen+tr.PassageMaxLen, n)
		}
		return nil
	}
	return fmt.Errorf("tokenize: unknown truncation strategy %d", int(tr.Strategy))
}

// Encoding is one encoded pair, unpadded.
type Encoding struct {
	IDs, TypeIDs, Mask []int32
}

// Len is the number of tokens.
func (e Encoding) Len() int { return len(e.IDs) }

// EncodePair encodes a (query, passage) pair with special tokens, cut as
// tr says.
func (t *Tokenizer) EncodePair(query, passage string, tr Truncation) (Encoding, error) {
	if err := t.check(tr); err != nil {
		return Encoding{}, err
	}
	s := t.getScratch()
	defer t.pool.Put(s)
	return t.encodePair(query, passage, tr, s)
}

func (t *Tokenizer) encodePair(query, passage string, tr Truncation, s *scratch) (Encoding, error) {
	// Limits at which tokenization stops early (0: never).
	la, lb := tr.MaxLen, tr.MaxLen
	switch {
	case tr.Strategy == NoTruncation:
		// Nothing is cut, so nothing may stop early: MaxLen is ignored.
		la, lb = 0, 0
	case tr.Strategy == FlagEmbedding:
		// Each side is cut to a fixed length first, so stopping there
		// changes nothing but the work done.
		la, lb = tr.QueryMaxLen+tr.PassageMaxLen/4, tr.PassageMaxLen+tr.QueryMaxLen/2
	case tr.FullLengths:
		la, lb = 0, 0
	case tr.Strategy == OnlySecond:
		la = 0 // HF does not stop early on the first sequence here
	}
	a := t.tokenize(query, la, s, nil)
	b := t.tokenize(passage, lb, s, nil)
	var err error
	if a, b, err = t.truncate(a, b, tr); err != nil {
		return Encoding{}, err
	}
	return t.postProcess(a, b), nil
}

// truncate cuts the two sequences (without special tokens) as Hugging Face
// does in truncate_encodings, with the limit less the pair's special
// tokens.
func (t *Tokenizer) truncate(a, b []int32, tr Truncation) ([]int32, []int32, error) {
	added := t.SpecialTokens(true)
	switch tr.Strategy {
	case NoTruncation:
		return a, b, nil
	case FlagEmbedding:
		a = cut(a, tr.QueryMaxLen+tr.PassageMaxLen/4)
		b = cut(b, tr.PassageMaxLen+tr.QueryMaxLen/2)
		return truncatePair(a, b, OnlySecond, tr.QueryMaxLen+tr.PassageMaxLen-added)
	}
	return truncatePair(a, b, tr.Strategy, tr.MaxLen-added)
}

func cut(x []int32, n int) []int32 {
	if len(x) > n {
		return x[:n]
	}
	return x
}

func truncatePair(a, b []int32, strategy Strategy, max int) ([]int32, []int32, error) {
	total := len(a) + len(b)
	if total <= max {
		return a, b, nil
	}
	remove := total - max
	switch strategy {
	case LongestFirst:
		n1, n2 := len(a), len(b)
		swap := n1 > n2
		if swap {
			n1, n2 = n2, n1
		}
		if n1 > max {
			n2 = n1
		} else {
			n2 = n1
			if max-n1 > n2 {
				n2 = max - n1
			}
		}
		if n1+n2 > max {
			n1 = max / 2
			n2 = n1 + max%2
		}
		if swap {
			n1, n2 = n2, n1
		}
		return cut(a, n1), cut(b, n2), nil
	case OnlyFirst:
		if len(a) > remove {
			return a[:len(a)-remove], b, nil
		}
	case OnlySecond:
		if len(b) > remove {
			return a, b[:len(b)-remove], nil
		}
	}
	return nil, nil, fmt.Errorf("tokenize: %s: %w", strategy, ErrTooShort)
}

func (t *Tokenizer) postProcess(a, b []int32) Encoding {
	items := t.pair
	if items == nil {
		items = []templateItem{{seq: 1}, {seq: 2}}
	}
	n := 0
	for _, it := range items {
		switch it.seq {
		case 1:
			n += len(a)
		case 2:
			n += len(b)
		default:
			n += len(it.ids)
		}
	}
	buf := make([]int32, 3*n)
	e := Encoding{IDs: buf[:0:n], TypeIDs: buf[n : n : 2*n], Mask: buf[2*n : 3*n]}
	for _, it := range items {
		src := it.ids
		switch it.seq {
		case 1:
			src = a
		case 2:
			src = b
		}
		e.IDs = append(e.IDs, src...)
		for range src {
			e.TypeIDs = append(e.TypeIDs, it.typeID)
		}
	}
	for i := range e.Mask {
		e.Mask[i] = 1
	}
	return e
}

// dropScratch forgets the per-goroutine scratch spaces and their word
// caches (benchmarks use it to measure cold passes).
func (t *Tokenizer) dropScratch() { t.pool = sync.Pool{} }
