// Package crossencoder scores (query, passage) pairs with a cross-encoder
// reranker: a Hugging Face model directory (config.json, safetensors
// weights, tokenizer.json) loaded onto a backend. It implements
// eval.Scorer, so `rerank eval` and training-time dev evaluation share it.
//
// Pairs are encoded with Hugging Face-identical tokenization and either
// longest_first truncation to MaxLen (sentence-transformers' CrossEncoder)
// or FlagEmbedding's query_max_len/passage_max_len rule, sorted by length
// and run in padded batches so that padding stays small.
package crossencoder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/tokenize"
)

// Options configure truncation and batching.
type Options struct {
	// MaxLen is the most tokens of a pair, special tokens included, cut
	// longest_first. 0 means 512; a value above the model's limit (its
	// position table) is lowered to it, as sentence-transformers does.
	MaxLen int
	// QueryMaxLen and PassageMaxLen, when both are positive, select
	// FlagEmbedding's rule instead of MaxLen (see tokenize.FlagEmbedding).
	QueryMaxLen, PassageMaxLen int
	// BatchSize is the most pairs per forward pass (default 32).
	BatchSize int
	// Adapter is a LoRA adapter directory (PEFT format) applied to the
	// model on Load; "" for none.
	Adapter string
	// Seed draws a fresh head when the directory holds a plain encoder.
	Seed uint64
	// PackBudget is the most bytes of the weights each scoring call packs
	// once for the products of all its batches (nn.Lanes.PackWeights): 0
	// means nn.DefaultPackBudget, a negative value none.
	PackBudget int64
}

// Truncation returns the tokenizer truncation the options select for a
// model whose inputs may hold at most maxSeq tokens, checking the limits.
func (o Options) Truncation(maxSeq int) (tokenize.Truncation, error) {
	switch {
	case o.QueryMaxLen > 0 || o.PassageMaxLen > 0:
		if o.QueryMaxLen <= 0 || o.PassageMaxLen <= 0 {
			return tokenize.Truncation{}, fmt.Errorf("query max length %d and passage max length %d: set both or neither", o.QueryMaxLen, o.PassageMaxLen)
		}
		if n := o.QueryMaxLen + o.PassageMaxLen; n > maxSeq {
			return tokenize.Truncation{}, fmt.Errorf("query max length %d + passage max length %d = %d exceeds the model's %d positions: lower them",
				o.QueryMaxLen, o.PassageMaxLen, n, maxSeq)
		}
		return tokenize.Truncation{Strategy: tokenize.FlagEmbedding, QueryMaxLen: o.QueryMaxLen, PassageMaxLen: o.PassageMaxLen}, nil
	case o.MaxLen < 0:
		return tokenize.Truncation{}, fmt.Errorf("max length %d must be positive", o.MaxLen)
	case o.MaxLen == 0:
		return tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: min(512, maxSeq)}, nil
	}
	if o.MaxLen > maxSeq {
		return tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: maxSeq}, nil
	}
	return tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: o.MaxLen}, nil
}

// Model is a loaded cross-encoder. Score is safe for concurrent use (calls
// are serialised: the network keeps its activations between passes).
type Model struct {
	Net    *nn.Model
	Tok    *tokenize.Tokenizer
	Config *hfmodel.Config // nil when built with New
	Dir    string          // the directory Load read, "" for New

	trunc tokenize.Truncation
	batch int
	pack  int64 // PackBudget, resolved
	mu    sync.Mutex
	lanes *nn.Lanes // the lanes of Net's backend, made on first use
}

// LoadTokenizer reads the tokenizer.json of a model directory (or the file
// itself).
func LoadTokenizer(path string) (*tokenize.Tokenizer, error) {
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

// Load reads a model directory onto be: weights and config with package
// hfmodel, tokenizer.json from the same directory.
func Load(be backend.Backend, dir string, opts Options) (*Model, error) {
	tok, err := LoadTokenizer(dir)
	if err != nil {
		return nil, err
	}
	net, info, err := hfmodel.Load(be, dir, hfmodel.LoadOptions{Seed: opts.Seed})
	if err != nil {
		return nil, err
	}
	if opts.Adapter != "" {
		ad, err := lora.Load(net, opts.Adapter)
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", opts.Adapter, err)
		}
		// Fold the low-rank update into the weights: scoring then costs
		// what the base model costs.
		if err := ad.Merge(); err != nil {
			return nil, fmt.Errorf("adapter %s: %w", opts.Adapter, err)
		}
	}
	m, err := New(net, tok, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	m.Config, m.Dir = info.Config, dir
	return m, nil
}

// New wraps a network and its tokenizer, checking that they belong
// together. Training uses it to evaluate the model it is updating.
func New(net *nn.Model, tok *tokenize.Tokenizer, opts Options) (*Model, error) {
	if net == nil || tok == nil {
		return nil, fmt.Errorf("crossencoder: a model and a tokenizer are both needed")
	}
	if err := CheckTokenizer(net.Cfg, tok); err != nil {
		return nil, err
	}
	tr, err := opts.Truncation(net.Cfg.MaxSequence())
	if err != nil {
		return nil, err
	}
	bs := opts.BatchSize
	if bs <= 0 {
		bs = 32
	}
	pack := opts.PackBudget
	switch {
	case pack == 0:
		pack = nn.DefaultPackBudget
	case pack < 0:
		pack = 0
	}
	return &Model{Net: net, Tok: tok, trunc: tr, batch: bs, pack: pack}, nil
}

// CheckTokenizer reports a tokenizer whose ids do not fit the model.
func CheckTokenizer(cfg nn.Config, tok *tokenize.Tokenizer) error {
	if tok.VocabSize() > cfg.VocabSize {
		return fmt.Errorf("tokenizer %s has %d ids but the model's vocab_size is %d: they do not belong together", tok.Name(), tok.VocabSize(), cfg.VocabSize)
	}
	if p := tok.PadID(); p >= 0 && int(p) != cfg.PadID {
		return fmt.Errorf("tokenizer %s pads with id %d but the model's pad_token_id is %d: they do not belong together", tok.Name(), p, cfg.PadID)
	}
	return nil
}

// Truncation is the truncation the model applies to pairs.
func (m *Model) Truncation() tokenize.Truncation { return m.trunc }

// Encode encodes one pair as the model scores it.
func (m *Model) Encode(query, passage string) (tokenize.Encoding, error) {
	return m.Tok.EncodePair(query, passage, m.trunc)
}

// Pad builds the model input from encodings: every row as long as the
// longest, padded with padID, type id 0 and mask 0 (tokenize.Pad).
func Pad(encs []tokenize.Encoding, padID int32) *nn.Batch {
	b := tokenize.Pad(encs, padID, 1)
	return &nn.Batch{N: b.N, S: b.S, InputIDs: b.IDs, TypeIDs: b.TypeIDs, Mask: b.Mask}
}

// Score returns one relevance logit per passage for query (eval.Scorer).
// Passages are encoded, sorted by token length and scored in batches of
// at most BatchSize pairs.
func (m *Model) Score(ctx context.Context, query string, passages []string) ([]float32, error) {
	encs := make([]tokenize.Encoding, len(passages))
	for i, p := range passages {
		e, err := m.Encode(query, p)
		if err != nil {
			return nil, fmt.Errorf("passage %d: %w", i, err)
		}
		encs[i] = e
	}
	return m.ScoreEncoded(ctx, encs)
}

// ScoreEncoded scores encoded pairs, in the order given.
func (m *Model) ScoreEncoded(ctx context.Context, encs []tokenize.Encoding) ([]float32, error) {
	order := make([]int, len(encs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return encs[order[a]].Len() > encs[order[b]].Len() })
	out := make([]float32, len(encs))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lanes == nil || m.lanes.Model() != m.Net {
		ln, err := nn.NewLanes(m.Net)
		if err != nil {
			return nil, err
		}
		m.lanes = ln
	}
	// The weights stay fixed for the call (m.mu is held), so the lanes
	// may pack them once for all its batches; a single pair runs on the
	// model alone and gains nothing from it.
	if len(encs) > 1 {
		release, err := m.lanes.PackWeights(m.pack)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	labels := m.Net.Cfg.NumLabels
	for start := 0; start < len(order); start += m.batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx := order[start:min(len(order), start+m.batch)]
		chunk := make([]tokenize.Encoding, len(idx))
		for i, k := range idx {
			chunk[i] = encs[k]
		}
		logits, err := m.lanes.Forward(Pad(chunk, int32(m.Net.Cfg.PadID)), nn.RunOptions{SkipPadding: true})
		if err != nil {
			return nil, err
		}
		for i, k := range idx {
			out[k] = logits[i*labels]
		}
	}
	return out, nil
}
