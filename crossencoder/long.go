package crossencoder

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rerank-go/rerank/tokenize"
)

// LongMode is what happens to a passage that does not fit beside the
// query within the model's MaxLen tokens.
type LongMode int

const (
	// Truncate cuts the pair longest_first to MaxLen (or by
	// FlagEmbedding's rule when the options select it): the default, and
	// what sentence-transformers, FlagEmbedding and TEI do.
	Truncate LongMode = iota
	// Chunk splits the passage into windows of MaxTokensPerDoc tokens,
	// pairs the query with every window, and scores the passage as the
	// highest of its windows, as Cohere's rerank does with long
	// documents.
	Chunk
	// Reject refuses a pair longer than MaxLen with an error wrapping
	// ErrTooLong (TEI's truncate=false).
	Reject
)

var longModeNames = []string{"truncate", "chunk", "reject"}

func (l LongMode) String() string {
	if l >= 0 && int(l) < len(longModeNames) {
		return longModeNames[l]
	}
	return fmt.Sprintf("LongMode(%d)", int(l))
}

// ParseLongMode reads truncate, chunk or reject.
func ParseLongMode(s string) (LongMode, error) {
	for i, n := range longModeNames {
		if strings.EqualFold(s, n) {
			return LongMode(i), nil
		}
	}
	return 0, fmt.Errorf("long-passage policy %q: want truncate or chunk", s)
}

// DefaultMaxChunksPerDoc is the most windows of a passage under Chunk
// when LongPolicy.MaxChunksPerDoc is 0 (Cohere's max_chunks_per_doc).
const DefaultMaxChunksPerDoc = 10

// ErrTooLong is wrapped by the error of a pair longer than the model's
// MaxLen under Reject.
var ErrTooLong = errors.New("input too long")

// LongPolicy is the one rule for long passages that Rerank, `rerank
// score`, `rerank serve` and `rerank eval` follow.
type LongPolicy struct {
	Mode LongMode
	// MaxTokensPerDoc, under Chunk, is the number of passage tokens per
	// window (0: as many as fit beside the query in MaxLen); windows
	// longer than fit are cut as Truncate cuts. Under Truncate a positive
	// value first cuts the passage to that many tokens (Cohere v2's
	// max_tokens_per_doc).
	MaxTokensPerDoc int
	// MaxChunksPerDoc is the most windows of a passage under Chunk: the
	// first ones are scored, the rest of the passage is not (0 means
	// DefaultMaxChunksPerDoc).
	MaxChunksPerDoc int
	// Left cuts tokens from the start of each sequence instead of its end
	// (TEI's truncation_direction "Left").
	Left bool
}

func (p LongPolicy) validate() error {
	if p.Mode < Truncate || p.Mode > Reject {
		return fmt.Errorf("crossencoder: unknown long-passage policy %d", int(p.Mode))
	}
	if p.MaxTokensPerDoc < 0 || p.MaxChunksPerDoc < 0 {
		return fmt.Errorf("crossencoder: max tokens per doc %d and max chunks per doc %d must not be negative", p.MaxTokensPerDoc, p.MaxChunksPerDoc)
	}
	return nil
}

// Doc is one passage encoded with its query: one window, or several under
// Chunk.
type Doc struct {
	Windows []tokenize.Encoding
}

// Tokens is the number of tokens of the passage's windows.
func (d Doc) Tokens() int {
	n := 0
	for _, w := range d.Windows {
		n += w.Len()
	}
	return n
}

// EncodeDoc encodes one passage with its query under policy p. Under
// Truncate (without MaxTokensPerDoc and Left) the encoding is Encode's,
// so every policy scores a short pair alike.
func (m *Model) EncodeDoc(query, passage string, p LongPolicy) (Doc, error) {
	if err := p.validate(); err != nil {
		return Doc{}, err
	}
	limit := m.trunc.Limit()
	switch p.Mode {
	case Truncate:
		if p.MaxTokensPerDoc == 0 && !p.Left {
			e, err := m.Encode(query, passage)
			return Doc{Windows: []tokenize.Encoding{e}}, err
		}
		b := m.Tok.Tokenize(passage)
		if p.MaxTokensPerDoc > 0 && len(b) > p.MaxTokensPerDoc {
			if p.Left {
				b = b[len(b)-p.MaxTokensPerDoc:]
			} else {
				b = b[:p.MaxTokensPerDoc]
			}
		} else if !p.Left {
			e, err := m.Encode(query, passage)
			return Doc{Windows: []tokenize.Encoding{e}}, err
		}
		e, err := m.Tok.EncodeIDs(m.Tok.Tokenize(query), b, m.trunc, p.Left)
		return Doc{Windows: []tokenize.Encoding{e}}, err
	case Reject:
		e, err := m.Tok.EncodeIDs(m.Tok.Tokenize(query), m.Tok.Tokenize(passage), tokenize.Truncation{}, false)
		if err != nil {
			return Doc{}, err
		}
		if e.Len() > limit {
			return Doc{}, fmt.Errorf("%w: the pair has %d tokens and the model takes at most %d", ErrTooLong, e.Len(), limit)
		}
		return Doc{Windows: []tokenize.Encoding{e}}, nil
	}
	// Chunk.
	a, b := m.Tok.Tokenize(query), m.Tok.Tokenize(passage)
	w := p.MaxTokensPerDoc
	if w == 0 {
		// As many as fit beside the query; at least half the room when
		// the query takes more (it is then cut, longest_first).
		room := limit - m.Tok.SpecialTokens(true)
		w = max(room-len(a), room/2, 1)
	}
	chunks := p.MaxChunksPerDoc
	if chunks == 0 {
		chunks = DefaultMaxChunksPerDoc
	}
	if len(b) <= w {
		// One window: exactly the truncate policy's pair.
		if len(a)+len(b)+m.Tok.SpecialTokens(true) <= limit {
			e, err := m.Encode(query, passage)
			return Doc{Windows: []tokenize.Encoding{e}}, err
		}
	}
	var d Doc
	for start := 0; start < len(b) || start == 0; start += w {
		if len(d.Windows) == chunks {
			break
		}
		e, err := m.Tok.EncodeIDs(a, b[start:min(len(b), start+w)], m.trunc, false)
		if err != nil {
			return Doc{}, err
		}
		d.Windows = append(d.Windows, e)
	}
	return d, nil
}
