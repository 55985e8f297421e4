// Package crossencoder scores (query, passage) pairs with a cross-encoder
// reranker: a Hugging Face model directory (config.json, safetensors
// weights, tokenizer.json) loaded onto a backend. It is the library call
// that `rerank score`, `rerank serve` and `rerank eval` share, so that all
// three give the same bits for the same pairs:
//
//	m, err := crossencoder.Load(cpu.New(), dir, crossencoder.Options{})
//	defer m.Close()
//	scores, err := m.Rerank(ctx, query, passages)           // one logit per passage
//	scores, err = m.RerankPairs(ctx, []crossencoder.Pair{...}) // pairs of any queries
//
// A Model is safe for concurrent use: the pairs of concurrent calls are
// batched together by length into shared forward passes (a pair's score
// does not depend on what it is batched with), and a cancelled context
// drops a call's pairs that are still queued. Options.Sigmoid maps logits
// to [0, 1]; Options.Long chooses between truncating and chunking long
// passages; Model.WithAdapter serves LoRA adapters over one copy of the
// base weights. Model implements eval.Scorer.
//
// Pairs are encoded with Hugging Face-identical tokenization and either
// longest_first truncation to MaxLen (sentence-transformers' CrossEncoder)
// or FlagEmbedding's query_max_len/passage_max_len rule.
package crossencoder

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/input"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
	"github.com/rerank-go/rerank/tokenize"
)

// Options configure truncation, long passages, batching and the output.
type Options struct {
	// MaxLen is the most tokens of a pair, special tokens included, cut
	// longest_first. 0 means 512; a value above the model's limit (its
	// position table) is lowered to it, as sentence-transformers does.
	MaxLen int
	// QueryMaxLen and PassageMaxLen, when both are positive, select
	// FlagEmbedding's rule instead of MaxLen (see tokenize.FlagEmbedding).
	QueryMaxLen, PassageMaxLen int
	// Long says what happens to a passage that does not fit beside the
	// query: cut (the default) or scored in windows (see LongPolicy).
	Long LongPolicy
	// BatchSize is the most pairs per forward pass; 0 means as many as
	// MaxBatchTokens allows.
	BatchSize int
	// MaxBatchTokens is the most tokens of a forward pass, padding
	// included: pairs × the longest pair's length (0 means 16384). It
	// bounds the activation memory of a pass; a single pair longer than
	// it still runs, alone.
	MaxBatchTokens int
	// Workers is how many forward passes run at once, each with
	// activations of its own over the one copy of the weights (0 means
	// 1). On the CPU one pass already uses every core (infer.Runner), so more
	// workers only help when passes are small or the device idles
	// between them; each adds a pass's activations and PackBudget.
	Workers int
	// Sigmoid maps the logits that Score, Rerank and RerankPairs return
	// through 1/(1+e^−x) (FlagReranker's normalize=True): scores in
	// [0, 1], in the same order.
	Sigmoid bool
	// Adapter is a LoRA adapter (PEFT format: a directory or a Hugging
	// Face Hub id) merged into the model on Load; "" for none. To serve
	// several adapters over one base model, use Model.WithAdapter instead.
	Adapter string
	// Hub resolves Hugging Face Hub ids given for the model or the
	// adapter; nil means hub.FromEnv().
	Hub *hub.Client
	// Seed draws a fresh head when the directory holds a plain encoder.
	Seed uint64
	// OnPass, when set, is called after every forward pass (from the
	// worker that ran it), e.g. to export metrics.
	OnPass func(PassInfo)
	// PackBudget is the most bytes of the weights each worker packs,
	// beside the float32 weights, for the products of its passes
	// (infer.Runner.PackWeights): 0 means infer.DefaultPackBudget, a
	// negative value none.
	//
	// A model made by Load and scored by one worker (Workers ≤ 1) on a
	// backend that packs (the CPU's avx512 and avx2 routes) packs all of
	// them instead, once, at its first pass, each written over its
	// float32 original (infer.Runner.PackWeightsDropping): one copy of
	// each weight, read by every pass, a single pair's too, with the
	// same scores to the bit. PackBudget then only says whether to pack
	// (a negative value: no), and Net can no longer train, be saved or
	// run float32 passes (nn.ErrLinearWeightsDropped); WithAdapter is
	// refused once the model has scored. KeepFloat32 keeps the float32
	// weights, and the budget.
	PackBudget int64
	// Int8 scores with the encoder layers' linear layers quantized to
	// int8 (infer.Runner.QuantizeWeights, ONNX Runtime's dynamic
	// quantization; PackBudget then does not apply): faster on CPUs, the
	// scores close to float32 ones (bench/RESULTS.md measures how close).
	// The backend must have int8 products (backend.Quantizer: the CPU).
	//
	// A model made by Load and scored by one worker (Workers ≤ 1) then
	// holds one copy of those weights, the int8 one: Load quantizes each
	// weight as the checkpoint streams in and drops its float32 original
	// at once (infer.Int8Weights), so that the float32 encoder is never
	// whole in memory; with Adapter, whose merge needs it whole, the
	// originals are dropped once quantized at the first pass
	// (infer.Runner.QuantizeWeightsDropping). Net can then no longer
	// train, be saved or run float32 passes (nn.ErrLinearWeightsDropped),
	// and WithAdapter is refused. KeepFloat32 keeps them.
	Int8 bool
	// KeepFloat32 keeps the float32 weights of a model made by Load
	// beside the packed copy (within PackBudget) or, with Int8, the int8
	// one (about 3.3 MiB more per million encoder parameters), for
	// WithAdapter after scoring or to use Net for anything but scoring.
	KeepFloat32 bool
}

// Truncation returns the tokenizer truncation the options select for a
// model whose inputs may hold at most maxSeq tokens (MaxLen is lowered to
// it; input.NewEncoder, which New and Load call, rejects a FlagEmbedding
// truncation longer than that).
func (o Options) Truncation(maxSeq int) (tokenize.Truncation, error) {
	switch {
	case o.QueryMaxLen > 0 || o.PassageMaxLen > 0:
		if o.QueryMaxLen <= 0 || o.PassageMaxLen <= 0 {
			return tokenize.Truncation{}, fmt.Errorf("query max length %d and passage max length %d: set both or neither", o.QueryMaxLen, o.PassageMaxLen)
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

// Model is a loaded cross-encoder. Its methods are safe for concurrent
// use: the pairs of concurrent calls are batched together by length into
// the same forward passes (up to MaxBatchTokens each), which Workers
// goroutines run over one copy of the weights. A call returns when its
// own pairs are scored, or at once when its context is cancelled. Close
// stops the workers.
type Model struct {
	Net *nn.Model
	Tok *tokenize.Tokenizer
	// HFConfig is config.json as read (architectures, model_type and every
	// raw key); nil when built with New. The network's shape is Net.Cfg.
	HFConfig *hfmodel.Config
	Dir      string // the directory Load read (a Hub id's cached snapshot), "" for New

	freshHead []string

	trunc tokenize.Truncation
	opts  Options
	eng   *engine
	// base is the model an adapter view (WithAdapter) shares weights
	// with, nil for a base model.
	base *Model
	name string // the adapter's name, "" for a base model
}

// Load reads a model onto be: weights and config with package hfmodel,
// tokenizer.json from the same directory. ref is a model directory or a
// Hugging Face Hub id ("org/name[@revision]"), resolved by opts.Hub.
func Load(be backend.Backend, ref string, opts Options) (*Model, error) {
	dir, err := opts.Hub.Dir(context.Background(), ref, hub.Model)
	if err != nil {
		return nil, err
	}
	tok, err := input.LoadTokenizer(dir)
	if err != nil {
		return nil, err
	}
	if err := checkInt8(be, opts); err != nil {
		return nil, err
	}
	lo := hfmodel.LoadOptions{Seed: opts.Seed}
	// int8 scoring by one worker quantizes each weight as it loads and
	// drops its float32 copy (see Options.Int8); a merged adapter needs
	// the float32 model whole first.
	var q8 *infer.Int8Weights
	if opts.Int8 && !opts.KeepFloat32 && opts.Workers <= 1 && opts.Adapter == "" {
		lo.OnParam = func(net *nn.Model, p *nn.Param) error {
			if q8 == nil {
				var err error
				if q8, err = infer.NewInt8Weights(net, infer.Int8Options{Drop: true}); err != nil {
					return err
				}
			}
			return q8.Loaded(p)
		}
	}
	net, info, err := hfmodel.Load(be, dir, lo)
	if q8 != nil {
		if werr := q8.Wait(); err == nil {
			err = werr
		}
	}
	if err != nil {
		return nil, err
	}
	if opts.Adapter != "" {
		adapterDir, err := opts.Hub.Dir(context.Background(), opts.Adapter, hub.Adapter)
		if err != nil {
			return nil, fmt.Errorf("adapter: %w", err)
		}
		ad, err := lora.Load(net, adapterDir)
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", opts.Adapter, err)
		}
		// Fold the low-rank update into the weights: scoring then costs
		// what the base model costs.
		if err := ad.Merge(); err != nil {
			return nil, fmt.Errorf("adapter %s: %w", opts.Adapter, err)
		}
	}
	m, err := newModel(net, tok, opts, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	m.eng.q8 = q8
	m.HFConfig, m.Dir = info.Config, dir
	if opts.Adapter == "" {
		m.freshHead = info.Initialized
	}
	return m, nil
}

// FreshHead lists the head tensors the checkpoint lacked (a BertModel or
// XLMRobertaModel encoder): they were drawn at load, so the scores are an
// untrained head's. Empty for a sequence-classification checkpoint, or when
// an adapter supplies the head.
func (m *Model) FreshHead() []string { return m.freshHead }

// New wraps a network and its tokenizer, checking that they belong
// together. Training uses it to evaluate the model it is updating: the
// weights may change between calls, never during one.
func New(net *nn.Model, tok *tokenize.Tokenizer, opts Options) (*Model, error) {
	return newModel(net, tok, opts, false)
}

// NewWithEncoder is New for an encoder already checked against net
// (input.NewEncoder): its truncation applies, and the truncation fields
// of opts (MaxLen, QueryMaxLen, PassageMaxLen) are ignored. Training uses
// it to score its dev set with the encoder of its batches.
func NewWithEncoder(net *nn.Model, enc *input.Encoder, opts Options) (*Model, error) {
	if net == nil || enc == nil {
		return nil, fmt.Errorf("crossencoder: a model and an encoder are both needed")
	}
	return newModelEnc(net, enc, opts, false)
}

// newModel is New; frozen says that the weights never change (Load), so
// that the workers may keep them packed for good.
func newModel(net *nn.Model, tok *tokenize.Tokenizer, opts Options, frozen bool) (*Model, error) {
	if net == nil || tok == nil {
		return nil, fmt.Errorf("crossencoder: a model and a tokenizer are both needed")
	}
	tr, err := opts.Truncation(net.Cfg.MaxSequence())
	if err != nil {
		return nil, err
	}
	enc, err := input.NewEncoder(net.Cfg, tok, tr) // the one check of tokenizer and length
	if err != nil {
		return nil, err
	}
	return newModelEnc(net, enc, opts, frozen)
}

// newModelEnc is newModel past the encoder's checks.
func newModelEnc(net *nn.Model, enc *input.Encoder, opts Options, frozen bool) (*Model, error) {
	if err := opts.Long.validate(); err != nil {
		return nil, err
	}
	if opts.BatchSize < 0 || opts.MaxBatchTokens < 0 || opts.Workers < 0 {
		return nil, fmt.Errorf("crossencoder: batch size %d, max batch tokens %d and workers %d must not be negative", opts.BatchSize, opts.MaxBatchTokens, opts.Workers)
	}
	if err := checkInt8(net.Backend(), opts); err != nil {
		return nil, err
	}
	m := &Model{Net: net, Tok: enc.Tok, trunc: enc.Trunc, opts: opts}
	m.eng = newEngine(net, opts, frozen, func() (*nn.Model, error) { return net.Share(false) })
	m.eng.drop = frozen && !opts.KeepFloat32 && m.eng.workers == 1 && (opts.Int8 || opts.PackBudget >= 0 && packs(net))
	if net.Backend().Name() != "cpu" {
		m.eng.device = &sync.Mutex{}
	}
	runtime.AddCleanup(m, (*engine).close, m.eng)
	return m, nil
}

// checkInt8 refuses Options.Int8 on a backend without int8 products.
func checkInt8(be backend.Backend, opts Options) error {
	if _, ok := be.(backend.Quantizer); opts.Int8 && !ok {
		return fmt.Errorf("crossencoder: int8 scoring needs a backend with int8 products (the CPU); the %s backend has none", be.Name())
	}
	return nil
}

// packs reports whether net's backend packs weights for its products
// (backend.WeightPacker), so that scoring can hold them packed alone.
func packs(net *nn.Model) bool {
	wp, ok := net.Backend().(backend.WeightPacker)
	return ok && wp.PackedSize(net.Cfg.Hidden, net.Cfg.Hidden) > 0
}

// Truncation is the truncation the model applies to pairs.
func (m *Model) Truncation() tokenize.Truncation { return m.trunc }

// Options returns the options the model was made with.
func (m *Model) Options() Options { return m.opts }

// MaxLen is the most tokens of a pair the model scores, special tokens
// included.
func (m *Model) MaxLen() int { return m.trunc.Limit() }

// Encode encodes one pair as the model scores it under the truncate
// policy.
func (m *Model) Encode(query, passage string) (tokenize.Encoding, error) {
	return m.Tok.EncodePair(query, passage, m.trunc)
}

// Pair is one (query, passage) pair.
type Pair struct {
	Query, Passage string
}

// Sigmoid is 1/(1+e^−x), computed in float64: the activation of
// Options.Sigmoid, for callers that choose it per call (rerank serve).
func Sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// Rerank returns one score per passage for query, in the order given:
// the relevance logit, or its sigmoid with Options.Sigmoid. Passages that
// do not fit beside the query follow Options.Long.
func (m *Model) Rerank(ctx context.Context, query string, passages []string) ([]float32, error) {
	docs := make([]Doc, len(passages))
	for i, p := range passages {
		d, err := m.EncodeDoc(query, p, m.opts.Long)
		if err != nil {
			return nil, fmt.Errorf("passage %d: %w", i, err)
		}
		docs[i] = d
	}
	return m.finish(m.ScoreDocs(ctx, docs, nil))
}

// RerankPairs is Rerank for pairs of any queries.
func (m *Model) RerankPairs(ctx context.Context, pairs []Pair) ([]float32, error) {
	docs := make([]Doc, len(pairs))
	for i, p := range pairs {
		d, err := m.EncodeDoc(p.Query, p.Passage, m.opts.Long)
		if err != nil {
			return nil, fmt.Errorf("pair %d: %w", i, err)
		}
		docs[i] = d
	}
	return m.finish(m.ScoreDocs(ctx, docs, nil))
}

// finish applies the output activation.
func (m *Model) finish(scores []float32, err error) ([]float32, error) {
	if err != nil {
		return nil, err
	}
	if m.opts.Sigmoid {
		for i, s := range scores {
			scores[i] = Sigmoid(s)
		}
	}
	return scores, nil
}

// Score is Rerank: it makes Model an eval.Scorer.
func (m *Model) Score(ctx context.Context, query string, passages []string) ([]float32, error) {
	return m.Rerank(ctx, query, passages)
}

// ScoreEncoded returns the relevance logit of each encoded pair, in the
// order given (no activation).
func (m *Model) ScoreEncoded(ctx context.Context, encs []tokenize.Encoding) ([]float32, error) {
	return m.eng.score(ctx, encs, nil)
}

// PassInfo describes one forward pass.
type PassInfo struct {
	Pairs    int           // pairs in the pass
	Tokens   int           // their real tokens
	Padded   int           // pairs × the longest pair
	Duration time.Duration // the pass itself
	Err      error
}

// Timing is where the time of a scoring call went.
type Timing struct {
	// Queue is the wait from the call to its first forward pass;
	// Inference the rest, until its last pass ended.
	Queue, Inference time.Duration
	// Passes is the number of forward passes that held its pairs.
	Passes int
}

// ScoreDocs returns the relevance logit of each encoded passage (the
// highest of its windows), in the order given, and fills t when it is not
// nil.
func (m *Model) ScoreDocs(ctx context.Context, docs []Doc, t *Timing) ([]float32, error) {
	n := 0
	for _, d := range docs {
		n += len(d.Windows)
	}
	encs := make([]tokenize.Encoding, 0, n)
	for i, d := range docs {
		if len(d.Windows) == 0 {
			return nil, fmt.Errorf("crossencoder: passage %d has no encoded window", i)
		}
		encs = append(encs, d.Windows...)
	}
	logits, err := m.eng.score(ctx, encs, t)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(docs))
	k := 0
	for i, d := range docs {
		best := logits[k]
		for _, s := range logits[k+1 : k+len(d.Windows)] {
			best = max(best, s)
		}
		out[i], k = best, k+len(d.Windows)
	}
	return out, nil
}

// Pending is the number of pairs waiting for a forward pass.
func (m *Model) Pending() int { return m.eng.pending() }

// Close stops the model's workers once the calls in flight are answered;
// later calls fail. The adapters made with WithAdapter close with it.
func (m *Model) Close() error {
	m.eng.close()
	return nil
}
