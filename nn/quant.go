package nn

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/rerank-go/rerank/backend"
)

// QuantizeWeights quantizes the weights of the encoder layers' linear
// layers (query-key-value, attention output, intermediate, output) to
// int8, once, for the passes that follow (backend.Quantizer): their
// products then quantize the activations per row and sum in int32, as
// ONNX Runtime's dynamic quantization does. Embeddings, attention,
// softmax, LayerNorm and the classification head stay float32. Scores
// move by the quantization error: use it for scoring, never training.
//
// It takes the place of PackWeights (release that first), and the same
// rules hold: the weights must not change until release is called, which
// frees the int8 copy. It fails on a backend without int8 products.
func (l *Lanes) QuantizeWeights() (release func(), err error) {
	if l.holding {
		return nil, errors.New("weights already packed or quantized: call the release function of the last PackWeights or QuantizeWeights first")
	}
	// The model itself too: a pass of one sequence runs on it alone.
	targets := append(slices.Clone(l.reps), l.m)
	be := targets[0].be
	qz, ok := be.(backend.Quantizer)
	if !ok {
		return nil, fmt.Errorf("int8: the %s backend has no int8 products", be.Name())
	}
	var items []packItem
	for _, it := range l.m.packItems() {
		if it.head {
			continue
		}
		items = append(items, it)
	}
	bufs := make([]backend.Buf, len(items))
	var total int64
	for i, it := range items {
		size := qz.QuantizedSize(it.n, it.k)
		if bufs[i], err = be.Alloc(size); err != nil {
			for _, b := range bufs[:i] {
				be.Free(b)
			}
			return nil, fmt.Errorf("int8: %w", err)
		}
		total += int64(size) * 4
	}
	// Each target quantizes every len(targets)-th weight, all at once.
	var wg sync.WaitGroup
	for i, r := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := r.be.(backend.Quantizer)
			for j := i; j < len(items); j += len(targets) {
				q.QuantizeWeight(bufs[j], items[j].w, items[j].k, items[j].n, items[j].k)
			}
		}()
	}
	wg.Wait()
	for _, r := range targets {
		for j, it := range items {
			it.set(r, bufs[j])
		}
		r.qz = r.be.(backend.Quantizer)
	}
	l.holding, l.bytes = true, total
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, r := range targets {
				for _, it := range items {
					it.set(r, nil)
				}
				r.qz = nil
			}
			for _, b := range bufs {
				be.Free(b)
			}
			l.holding, l.bytes = false, 0
		})
	}, nil
}
