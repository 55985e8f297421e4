package main

import (
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/eval"
)

// Wire the model engine into `rerank eval`.
func init() { newScorer = engineScorer }

// engineScorer loads a model directory (and LoRA adapter) as a
// crossencoder.Model. --query-max-len selects FlagEmbedding's truncation
// with passage max length max-len − query-max-len, the rule the model was
// trained with; otherwise pairs are cut longest_first to --max-len.
func engineScorer(modelDir, adapter string, opts scorerOptions) (eval.Scorer, error) {
	be, _, err := openDevice(opts.Device, false)
	if err != nil {
		return nil, err
	}
	o := crossencoder.Options{BatchSize: opts.BatchSize, Adapter: adapter, Long: opts.Long}
	if err := truncationOptions(&o, opts.MaxLen, opts.QueryMaxLen); err != nil {
		return nil, err
	}
	return crossencoder.Load(be, modelDir, o)
}
