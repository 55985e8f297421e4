// Package nn holds the cross-encoder model: BERT and XLM-RoBERTa encoders
// with their sequence-classification heads, each layer's forward and
// backward pass side by side over explicit parameter, gradient and
// activation buffers (llm.c style), computed through a backend.Backend.
//
// The data path is: Batch (token ids, type ids, mask) → embeddings →
// encoder layers → head → logits; then a loss gives d(loss)/d(logits) and
// Backward fills every trainable parameter's gradient. There is no
// autograd: each backward is written by hand and checked against finite
// differences and against Hugging Face's own gradients (../shared/golden).
// Model.Forward is the training path: it keeps what Backward needs. Scoring
// runs on package nn/infer, which reads the same weights in place and
// keeps nothing.
package nn

import (
	"errors"
	"fmt"
)

// Arch is the encoder family.
type Arch int

const (
	// BERT is BertForSequenceClassification: pooler (dense + tanh on
	// [CLS]) then a classifier Linear.
	BERT Arch = iota
	// XLMRoberta is XLMRobertaForSequenceClassification: no pooler; the
	// head is dense + tanh on <s>, then out_proj. Position ids start at
	// pad_token_id+1 and come from the input ids.
	XLMRoberta
)

// String returns the Hugging Face model_type.
func (a Arch) String() string {
	switch a {
	case BERT:
		return "bert"
	case XLMRoberta:
		return "xlm-roberta"
	}
	return fmt.Sprintf("Arch(%d)", int(a))
}

// Prefix is the encoder's tensor-name prefix in Hugging Face checkpoints.
func (a Arch) Prefix() string {
	if a == XLMRoberta {
		return "roberta"
	}
	return "bert"
}

// Config holds the shapes and hyper-parameters of a cross-encoder. It is
// read from a Hugging Face config.json by package hfmodel; nothing in nn
// assumes a particular size.
type Config struct {
	Arch         Arch
	VocabSize    int
	Hidden       int
	Layers       int
	Heads        int
	Intermediate int
	MaxPositions int
	TypeVocab    int
	PadID        int
	LayerNormEps float32
	// Dropout probabilities, used only in training mode.
	HiddenDropout     float32
	AttentionDropout  float32
	ClassifierDropout float32
	// NumLabels is the width of the head's output; rerankers use 1.
	NumLabels int
}

// Bounds of Config.Validate: far above every real encoder (XLM-R large:
// 250002 tokens, 1024 wide, 24 layers; 560M parameters).
const (
	MaxVocab  = 1 << 24
	MaxDim    = 1 << 16
	MaxLayers = 1 << 10
	MaxParams = 1 << 36
)

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.Hidden / c.Heads }

// Validate checks that the shapes are usable and consistent.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	pos("vocab_size", c.VocabSize)
	pos("hidden_size", c.Hidden)
	pos("num_hidden_layers", c.Layers)
	pos("num_attention_heads", c.Heads)
	pos("intermediate_size", c.Intermediate)
	pos("max_position_embeddings", c.MaxPositions)
	pos("type_vocab_size", c.TypeVocab)
	pos("num_labels", c.NumLabels)
	// Upper bounds, far above every real checkpoint, keep the sizes below
	// (and every product of them) from overflowing and keep an absurd
	// config from allocating anything.
	for _, d := range []struct {
		name   string
		v, max int
	}{{"vocab_size", c.VocabSize, MaxVocab}, {"hidden_size", c.Hidden, MaxDim}, {"num_hidden_layers", c.Layers, MaxLayers},
		{"num_attention_heads", c.Heads, MaxDim}, {"intermediate_size", c.Intermediate, MaxDim},
		{"max_position_embeddings", c.MaxPositions, MaxDim}, {"type_vocab_size", c.TypeVocab, MaxDim}, {"num_labels", c.NumLabels, MaxDim}} {
		if d.v > d.max {
			errs = append(errs, fmt.Errorf("%s %d is more than rerank supports (%d)", d.name, d.v, d.max))
		}
	}
	if len(errs) == 0 && c.Hidden > 0 && c.Layers > 0 && c.VocabSize > 0 {
		// Within the bounds the count fits a 64-bit int; it is the one
		// New allocates (the same layout).
		if n := NumParams(c); n > MaxParams {
			errs = append(errs, fmt.Errorf("the config describes %d parameters (%d GiB as float32), more than rerank supports (%d)", n, n*4>>30, MaxParams))
		}
	}
	if c.Heads > 0 && c.Hidden%c.Heads != 0 {
		errs = append(errs, fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.Hidden, c.Heads))
	}
	if c.PadID < 0 || (c.VocabSize > 0 && c.PadID >= c.VocabSize) {
		errs = append(errs, fmt.Errorf("pad_token_id %d is outside the vocabulary (size %d)", c.PadID, c.VocabSize))
	}
	if c.Arch == XLMRoberta && c.MaxPositions <= c.PadID+1 {
		errs = append(errs, fmt.Errorf("max_position_embeddings %d leaves no position after pad_token_id %d", c.MaxPositions, c.PadID))
	}
	if !(c.LayerNormEps > 0) {
		errs = append(errs, fmt.Errorf("layer_norm_eps must be positive, got %g", c.LayerNormEps))
	}
	for _, d := range []struct {
		name string
		p    float32
	}{{"hidden_dropout_prob", c.HiddenDropout}, {"attention_probs_dropout_prob", c.AttentionDropout}, {"classifier_dropout", c.ClassifierDropout}} {
		if d.p < 0 || d.p >= 1 {
			errs = append(errs, fmt.Errorf("%s must be in [0, 1), got %g", d.name, d.p))
		}
	}
	return errors.Join(errs...)
}

// MaxSequence is the longest input the position table allows: all of it
// for BERT, max_position_embeddings − pad_token_id − 1 for XLM-R (514 − 2
// = 512 for the real checkpoints).
func (c Config) MaxSequence() int {
	if c.Arch == XLMRoberta {
		return c.MaxPositions - c.PadID - 1
	}
	return c.MaxPositions
}
