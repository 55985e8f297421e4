package infer

import (
	"errors"
	"fmt"
	"sync"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn"
)

// Int8Weights quantizes the weights of a model's encoder linear layers to
// int8 while they load, for a Runner that will score with them
// (Runner.UseInt8Weights): each weight is quantized as soon as the
// parameters it spans are loaded (Loaded), and with Int8Options.Drop each
// float32 parameter is dropped (backend.Discarder) once every int8 weight
// that reads it is written. Loading a model layer by layer this way never
// holds the float32 encoder whole: a process that only scores peaks near
// the embeddings, the int8 weights and a layer or two of float32 ones,
// where Runner.QuantizeWeightsDropping, given a model loaded whole, peaks
// near the float32 model's size. hfmodel.LoadOptions.OnParam and
// nn.Model.InitRandomEach call Loaded as the parameters arrive.
//
// The int8 weights are QuantizeWeights' to the bit: the same weights
// quantized by the same backend, from the same float32 values. Weights
// must not change once loaded (an adapter must be merged before its
// weights are reported loaded). Loaded may quantize on other goroutines
// (one per lane of the backend); Wait waits for them.
type Int8Weights struct {
	m     *nn.Model
	be    backend.Backend
	ds    backend.Discarder // nil: the float32 weights are kept
	items []packItem
	bufs  []backend.Buf
	total int64
	// free hands out the quantizers of the backend's lanes (the backend's
	// own without lanes), one per weight being quantized.
	free chan backend.Quantizer
	wg   sync.WaitGroup

	mu sync.Mutex
	// waiting[i] is the number of item i's parameters not yet loaded;
	// readers[p] the items reading p not yet quantized; of[p] the items
	// reading p.
	waiting []int
	readers map[*nn.Param]int
	of      map[*nn.Param][]int
	loaded  map[*nn.Param]bool
	done    int
	dropped int64
	// live is the bytes of float32 linear weights loaded and not dropped,
	// peak its largest value.
	live, peak int64
	used       bool
}

// Int8Options tune NewInt8Weights.
type Int8Options struct {
	// Drop gives each float32 weight's memory back once its int8 copies
	// are written, and marks the model (nn.Model.MarkLinearWeightsDropped)
	// as Runner.QuantizeWeightsDropping does, with the same consequences.
	// On a backend that cannot discard memory nothing is dropped.
	Drop bool
}

// NewInt8Weights prepares the int8 copies of m's encoder linear weights
// (allocated now, written as the weights load). It fails on a backend
// without int8 products (backend.Quantizer).
func NewInt8Weights(m *nn.Model, o Int8Options) (*Int8Weights, error) {
	if m == nil || len(m.Params()) == 0 {
		return nil, errors.New("int8: a model without weights")
	}
	if err := m.CheckLinearWeights(); err != nil {
		return nil, err
	}
	be := m.Backend()
	if _, ok := be.(backend.Quantizer); !ok {
		return nil, fmt.Errorf("int8: the %s backend has no int8 products", be.Name())
	}
	q := &Int8Weights{m: m, be: be, readers: map[*nn.Param]int{}, of: map[*nn.Param][]int{}, loaded: map[*nn.Param]bool{}}
	if o.Drop {
		q.ds, _ = be.(backend.Discarder)
	}
	qzs := []backend.Quantizer{be.(backend.Quantizer)}
	if ln, ok := be.(backend.Laner); ok && len(ln.Lanes()) > 0 {
		qzs = qzs[:0]
		for _, lb := range ln.Lanes() {
			qz, ok := lb.(backend.Quantizer)
			if !ok {
				return nil, fmt.Errorf("int8: a lane of the %s backend has no int8 products", be.Name())
			}
			qzs = append(qzs, qz)
		}
	}
	q.free = make(chan backend.Quantizer, len(qzs))
	for _, qz := range qzs {
		q.free <- qz
	}
	q.items = (&Runner{m: m}).encoderItems()
	for i, it := range q.items {
		q.waiting = append(q.waiting, len(it.params))
		for _, p := range it.params {
			q.readers[p]++
			q.of[p] = append(q.of[p], i)
		}
	}
	var err error
	if q.bufs, q.total, err = allocQuantized(be, qzs[0], q.items); err != nil {
		return nil, err
	}
	return q, nil
}

// Loaded tells that p holds its final values (read from a checkpoint,
// drawn, merged). The int8 weights whose parameters are then all loaded
// are quantized, on goroutines of their own once a lane is free (Loaded
// waits for one); parameters that no int8 weight reads are ignored. It
// fails when p was reported loaded before.
func (q *Int8Weights) Loaded(p *nn.Param) error {
	q.mu.Lock()
	idx, ok := q.of[p]
	if !ok {
		q.mu.Unlock()
		return nil
	}
	if q.used || q.loaded[p] {
		q.mu.Unlock()
		return fmt.Errorf("int8: %s reported loaded twice", p.Name)
	}
	q.loaded[p] = true
	q.live += int64(p.Size()) * 4
	q.peak = max(q.peak, q.live)
	var ready []int
	for _, i := range idx {
		if q.waiting[i]--; q.waiting[i] == 0 {
			ready = append(ready, i)
		}
	}
	q.mu.Unlock()
	for _, i := range ready {
		qz := <-q.free
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			it := q.items[i]
			qz.QuantizeWeight(q.bufs[i], it.w, it.k, it.n, it.k)
			q.free <- qz
			q.quantized(i)
		}()
	}
	return nil
}

// quantized records that item i is written: the parameters no other
// pending item reads are dropped.
func (q *Int8Weights) quantized(i int) {
	q.mu.Lock()
	q.done++
	var drop []*nn.Param
	for _, p := range q.items[i].params {
		if q.readers[p]--; q.readers[p] == 0 && q.ds != nil {
			drop = append(drop, p)
		}
	}
	if len(drop) > 0 {
		// Before the first page goes: nothing may read the zeros.
		q.m.MarkLinearWeightsDropped()
	}
	q.mu.Unlock()
	var n, live int64
	for _, p := range drop {
		n += q.ds.Discard(p.W)
		live += int64(p.Size()) * 4
	}
	q.mu.Lock()
	q.dropped += n
	q.live -= live
	q.mu.Unlock()
}

// Wait waits for the quantizations in flight. It fails when a weight is
// not quantized: one of its parameters was never reported loaded.
func (q *Int8Weights) Wait() error {
	q.wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.done < len(q.items) {
		for _, it := range q.items {
			for _, p := range it.params {
				if !q.loaded[p] {
					return fmt.Errorf("int8: %d of %d weights not quantized: %s was never loaded", len(q.items)-q.done, len(q.items), p.Name)
				}
			}
		}
	}
	return nil
}

// Bytes is the size of the int8 weights.
func (q *Int8Weights) Bytes() int64 { return q.total }

// DroppedBytes returns the bytes of float32 weights given back to the
// system so far.
func (q *Int8Weights) DroppedBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// PeakFloat32Bytes returns the most bytes of the float32 weights that
// the int8 ones are made from that were held at once (loaded, not yet
// dropped): with Drop and weights loaded layer by layer, about a layer's
// worth; without Drop, all of them.
func (q *Int8Weights) PeakFloat32Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.peak
}

// UseInt8Weights makes the passes that follow read q's int8 weights, as
// after QuantizeWeights (or QuantizeWeightsDropping, when q dropped the
// float32 ones): q must be made for the runner's model and every weight
// quantized (it waits for those in flight). The runner takes q over: a
// second use fails, and release frees the int8 weights.
func (r *Runner) UseInt8Weights(q *Int8Weights) (release func(), err error) {
	if q == nil || q.m != r.m {
		return nil, errors.New("int8: the weights were quantized for another model")
	}
	if r.holding {
		return nil, errHolding
	}
	if err := q.Wait(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	used := q.used
	q.used = true
	q.mu.Unlock()
	if used {
		return nil, errors.New("int8: the weights are already in use by a runner")
	}
	targets := append([]*pass{r.whole}, r.lanes...)
	r.hold(q.items, q.bufs, q.total)
	r.quantized, r.dropped = true, q.DroppedBytes()
	for _, p := range targets {
		p.pk, p.qz = &r.pk, p.be.(backend.Quantizer)
	}
	return r.releaser(q.bufs, targets, q.be), nil
}
