package main

import (
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/eval"
)

// engineScorer loads a model directory (and LoRA adapter) as a
// crossencoder.Model. --query-max-len selects FlagEmbedding's truncation
// with passage max length max-len − query-max-len, the rule the model was
// trained with; otherwise pairs are cut longest_first to --max-len.
func engineScorer(modelDir, adapter string, opts scorerOptions) (eval.Scorer, error) {
	o := crossencoder.Options{BatchSize: opts.BatchSize, Adapter: adapter, Long: opts.Long, Hub: opts.Hub, Int8: opts.Int8}
	if err := truncationOptions(&o, opts.MaxLen, opts.QueryMaxLen); err != nil {
		return nil, err
	}
	be, release, err := openDevice(opts.Device, false)
	if err != nil {
		return nil, err
	}
	m, err := crossencoder.Load(be, modelDir, o)
	if err != nil {
		release()
		return nil, err
	}
	return &deviceScorer{m, release}, nil
}

// deviceScorer is a model that releases its device when closed.
type deviceScorer struct {
	*crossencoder.Model
	release func()
}

// Close closes the model, then releases the device.
func (s *deviceScorer) Close() error {
	err := s.Model.Close()
	s.release()
	return err
}
