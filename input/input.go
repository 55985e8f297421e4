// Package input turns (query, passage) pairs into a model's input, in one
// place for training and scoring: the tokenizer a model directory holds
// (LoadTokenizer), one check that a tokenizer and a truncation fit a model
// (NewEncoder), and the padded nn.Batch of encoded pairs (Batch).
//
//	tok, err := input.LoadTokenizer(dir)
//	enc, err := input.NewEncoder(net.Cfg, tok, tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: 512})
//	e, err := enc.Encode(query, passage)
//	logits, err := net.Forward(enc.Batch([]tokenize.Encoding{e}), nn.RunOptions{})
package input

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/tokenize"
)

// LoadTokenizer reads the tokenizer.json of a model directory (or the file
// itself, or the tokenizer of a Hugging Face Hub id, through hub.FromEnv).
func LoadTokenizer(path string) (*tokenize.Tokenizer, error) {
	if _, err := os.Stat(path); err != nil && hub.IsRef(path) {
		dir, err := (*hub.Client)(nil).Dir(context.Background(), path, hub.Tokenizer)
		if err != nil {
			return nil, fmt.Errorf("load tokenizer: %w", err)
		}
		path = dir
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		f := filepath.Join(path, "tokenizer.json")
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%s has no tokenizer.json: copy the model's tokenizer files into it (AutoTokenizer.save_pretrained writes them)", path)
		}
		path = f
	}
	tok, err := tokenize.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	return tok, nil
}

// CheckTokenizer reports a tokenizer whose ids do not fit the model.
func CheckTokenizer(cfg nn.Config, tok *tokenize.Tokenizer) error {
	if tok.VocabSize() > cfg.VocabSize {
		return fmt.Errorf("tokenizer %s has %d ids but the model's vocab_size is %d: they do not belong together", tok.Name(), tok.VocabSize(), cfg.VocabSize)
	}
	if p := tok.PadID(); p >= 0 && int(p) != cfg.PadID {
		return fmt.Errorf("tokenizer %s pads with id %d but the model's pad_token_id is %d: they do not belong together", tok.Name(), p, cfg.PadID)
	}
	// A BERT tokenizer gives the passage token type 1: a model with one
	// type (type_vocab_size 1) has no embedding for it (transformers fails
	// with an IndexError at the first pair).
	if e, err := tok.EncodePair("a", "b", tokenize.Truncation{}); err == nil {
		for _, ty := range e.TypeIDs {
			if int(ty) >= cfg.TypeVocab && cfg.TypeVocab > 0 {
				return fmt.Errorf("tokenizer %s gives the passage token type %d but the model's type_vocab_size is %d: they do not belong together", tok.Name(), ty, cfg.TypeVocab)
			}
		}
	}
	return nil
}

// A LengthError says that a truncation keeps more tokens than the model's
// position table holds.
type LengthError struct {
	Trunc tokenize.Truncation
	Max   int // the model's longest input (nn.Config.MaxSequence)
}

// Error says which lengths to lower: the query and passage limits under
// FlagEmbedding truncation, else the one max length.
func (e *LengthError) Error() string {
	if e.Trunc.Strategy == tokenize.FlagEmbedding {
		return fmt.Sprintf("query max length %d + passage max length %d = %d exceeds the model's %d positions: lower them",
			e.Trunc.QueryMaxLen, e.Trunc.PassageMaxLen, e.Trunc.Limit(), e.Max)
	}
	return fmt.Sprintf("max length %d exceeds the model's %d positions: lower it", e.Trunc.Limit(), e.Max)
}

// Encoder encodes pairs for one model: its tokenizer, the truncation, and
// the model's padding id. NewEncoder checks them once; the encodings it
// makes then always fit the model.
type Encoder struct {
	Tok   *tokenize.Tokenizer
	Trunc tokenize.Truncation
	PadID int32
}

// NewEncoder checks that the model of cfg has one output per pair (a
// reranker: num_labels 1), that tok belongs to it (CheckTokenizer), that
// tok can apply tr (tokenize.Tokenizer.CheckTruncation: room for the
// special tokens) and that tr keeps at most the model's positions (a
// *LengthError otherwise; tr must have a limit), and returns their
// Encoder.
func NewEncoder(cfg nn.Config, tok *tokenize.Tokenizer, tr tokenize.Truncation) (*Encoder, error) {
	if tok == nil {
		return nil, fmt.Errorf("input: no tokenizer")
	}
	if cfg.NumLabels > 1 {
		// Scoring reads one logit per pair, and training's losses group
		// them: a classifier's N×labels logits would be misread.
		return nil, fmt.Errorf("the model has %d labels (num_labels %d, config.json's id2label): rerank scores and trains rerankers, with one relevance logit per pair (num_labels 1), as FlagEmbedding, text-embeddings-inference and sentence-transformers' rerankers do", cfg.NumLabels, cfg.NumLabels)
	}
	if err := CheckTokenizer(cfg, tok); err != nil {
		return nil, err
	}
	if err := tok.CheckTruncation(tr); err != nil {
		return nil, err
	}
	if n := tr.Limit(); n <= 0 {
		return nil, fmt.Errorf("input: the truncation has no length limit (strategy %v): inputs could exceed the model's %d positions", tr.Strategy, cfg.MaxSequence())
	} else if n > cfg.MaxSequence() {
		return nil, &LengthError{Trunc: tr, Max: cfg.MaxSequence()}
	}
	return &Encoder{Tok: tok, Trunc: tr, PadID: int32(cfg.PadID)}, nil
}

// Encode encodes one pair, truncated.
func (e *Encoder) Encode(query, passage string) (tokenize.Encoding, error) {
	return e.Tok.EncodePair(query, passage, e.Trunc)
}

// Batch pads encodings into the model's input (see Batch).
func (e *Encoder) Batch(encs []tokenize.Encoding) *nn.Batch { return Batch(encs, e.PadID) }

// Batch builds the model input from encodings: every row as long as the
// longest, padded with padID, type id 0 and mask 0 (tokenize.Pad).
func Batch(encs []tokenize.Encoding, padID int32) *nn.Batch {
	b := tokenize.Pad(encs, padID, 1)
	return &nn.Batch{N: b.N, S: b.S, InputIDs: b.IDs, TypeIDs: b.TypeIDs, Mask: b.Mask}
}
