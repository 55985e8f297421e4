package hfmodel

import (
	"os"
	"path/filepath"

	"github.com/rerank-go/rerank/safetensors"
	"github.com/rerank-go/rerank/torchbin"
)

// weights is a model directory's tensors: safetensors (preferred, as
// transformers prefers them) or PyTorch's pytorch_model.bin.
type weights interface {
	Names() []string
	Has(name string) bool
	Shape(name string) ([]int, error)
	// Float32Chunks calls fn with the tensor's values as float32, up to
	// len(buf) at a time (off: the chunk's first element); safetensors
	// and torchbin read each chunk into buf, which Load reuses for every
	// tensor.
	Float32Chunks(name string, buf []float32, fn func(off int, v []float32) error) error
	Close() error
}

// openWeights opens model.safetensors or its shard index, else
// pytorch_model.bin or its shard index.
func openWeights(dir string) (weights, error) {
	for _, st := range []string{safetensors.SingleFile, safetensors.IndexFile} {
		if _, err := os.Stat(filepath.Join(dir, st)); err == nil {
			s, err := safetensors.OpenDir(dir)
			if err != nil {
				return nil, err
			}
			return stWeights{s}, nil
		}
	}
	for _, pt := range []string{torchbin.SingleFile, torchbin.IndexFile} {
		if _, err := os.Stat(filepath.Join(dir, pt)); err == nil {
			s, err := torchbin.OpenDir(dir, torchbin.SingleFile)
			if err != nil {
				return nil, err
			}
			return tbWeights{s}, nil
		}
	}
	s, err := safetensors.OpenDir(dir) // its error says what is missing
	if err != nil {
		return nil, err
	}
	return stWeights{s}, nil
}

type stWeights struct{ *safetensors.Set }

func (w stWeights) Shape(name string) ([]int, error) {
	ti, err := w.Info(name)
	return ti.Shape, err
}

type tbWeights struct{ *torchbin.Set }

var _ weights = tbWeights{}

func (w tbWeights) Shape(name string) ([]int, error) {
	ti, err := w.Info(name)
	return ti.Shape, err
}
