package train

import (
	"fmt"
	"os"

	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/input"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/tokenize"
)

// Encoded holds every (query, passage) pair of the training data,
// tokenized once: Pos[i][j] is example i with its positive j, Neg[i][k]
// with its negative k. Epochs and resumed runs reuse it.
type Encoded struct {
	Pos, Neg [][]tokenize.Encoding
	Enc      *input.Encoder // what encoded them, and pads their batches
	Pairs    int
}

// Encode tokenizes the pairs of all examples with enc, concurrently.
// With cachePath set, encodings are memoized in that file (package
// tokenize's Cache): a resumed or repeated run with the same tokenizer,
// truncation and data does not tokenize again; a stale file is rebuilt.
func Encode(enc *input.Encoder, examples []flagdata.Example, cachePath string) (*Encoded, error) {
	tok, tr := enc.Tok, enc.Trunc
	var cache *tokenize.Cache
	var err error
	if cachePath != "" {
		if _, serr := os.Stat(cachePath); serr == nil {
			cache, err = tokenize.LoadCache(cachePath, tok, tr)
			if err != nil {
				cache = nil // another tokenizer or truncation: rebuild
			}
		}
	}
	if cache == nil {
		if cache, err = tokenize.NewCache(tok, tr); err != nil {
			return nil, err
		}
	}
	before := cache.Len()
	var pairs []tokenize.Pair
	for i := range examples {
		ex := &examples[i]
		for _, p := range ex.Pos {
			pairs = append(pairs, tokenize.Pair{Query: ex.Query, Passage: p})
		}
		for _, p := range ex.Neg {
			pairs = append(pairs, tokenize.Pair{Query: ex.Query, Passage: p})
		}
	}
	encs, err := cache.EncodePairs(pairs, 0)
	if err != nil {
		return nil, locateEncodeError(tok, examples, tr, err)
	}
	if cachePath != "" && cache.Len() != before {
		if err := cache.Save(cachePath); err != nil {
			return nil, err
		}
	}
	e := &Encoded{Pos: make([][]tokenize.Encoding, len(examples)), Neg: make([][]tokenize.Encoding, len(examples)), Enc: enc, Pairs: len(pairs)}
	k := 0
	for i := range examples {
		n, m := len(examples[i].Pos), len(examples[i].Neg)
		e.Pos[i], e.Neg[i] = encs[k:k+n:k+n], encs[k+n:k+n+m:k+n+m]
		k += n + m
	}
	return e, nil
}

// locateEncodeError finds the first pair that does not encode and names
// its file, line and field.
func locateEncodeError(tok *tokenize.Tokenizer, examples []flagdata.Example, tr tokenize.Truncation, orig error) error {
	for i := range examples {
		ex := &examples[i]
		for field, ps := range map[string][]string{"pos": ex.Pos, "neg": ex.Neg} {
			for j, p := range ps {
				if _, err := tok.EncodePair(ex.Query, p, tr); err != nil {
					return fmt.Errorf("%s:%d: field \"%s[%d]\": %w", ex.File, ex.Line, field, j, err)
				}
			}
		}
	}
	return orig
}

// Batch assembles the padded model input of a sampler batch (rows: query
// b's group, positive first) and, when the groups carry them, the teacher
// scores aligned with the rows.
func (e *Encoded) Batch(b flagdata.StepGroups) (*nn.Batch, []float64) {
	var encs []tokenize.Encoding
	var teacher []float64
	for _, g := range b.Groups {
		encs = append(encs, e.Pos[g.Example][g.PosIndex])
		for _, k := range g.NegIndex {
			encs = append(encs, e.Neg[g.Example][k])
		}
		teacher = append(teacher, g.TeacherScores...)
	}
	if len(teacher) != len(encs) {
		teacher = nil
	}
	return e.Enc.Batch(encs), teacher
}
